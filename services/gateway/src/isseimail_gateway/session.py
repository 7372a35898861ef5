"""Server-side sessions: one cookie for the applicant's pass, one for administrators.

The cookie holds only a random session id. The session record (owner, expiry, revocation) is kept by the
pass-service (sessions.py there), which opens it at login and answers a lookup on every request, so:
logging out ends the session on the server (the old cookie is worthless afterwards); a login always issues
a new id and revokes the one the browser held; a pass session ends with its day of use; consuming the pass
narrows it to reading that campaign's progress.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response
from pydantic import BaseModel

from isseimail_gateway.settings import GatewaySettings
from isseimail_gateway.upstream import UNAVAILABLE, Upstreams, get_upstreams
from isseimail_shared.app import registered

PASS_COOKIE = "isseimail_session"  # noqa: S105 - a cookie name, not a secret
ADMIN_COOKIE = "isseimail_admin"
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{20,100}")

NOT_LOGGED_IN = "ログインしてください。"
EXPIRED = "この1DayPassは失効しています。再度申請してください。"


class PassSession(BaseModel):
    pass_id: int
    user_id: str
    use_date: str
    campaign_id: uuid.UUID | None = None  # the pass's campaign once it is consumed (read-only session)


class AdminSession(BaseModel):
    admin_id: int
    email: str


def session_id(request: Request, name: str) -> str | None:
    """The session id in the cookie, if it has the shape of one (anything else is no session)."""
    raw = request.cookies.get(name, "")
    return raw if SESSION_ID.fullmatch(raw) else None


def set_cookie(request: Request, response: Response, name: str, sid: str) -> None:
    """A browser-session cookie: the server decides when the session ends (its record's expiry)."""
    settings = registered(request, GatewaySettings)
    response.set_cookie(name, sid, httponly=True, samesite="strict", secure=settings.cookie_secure, path="/")


def delete_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="strict")


async def lookup(request: Request, upstreams: Upstreams, name: str) -> dict[str, Any] | None:
    """The live session record named by the cookie, or None (no cookie, revoked, expired)."""
    sid = session_id(request, name)
    if sid is None:
        return None
    response = await upstreams.call("pass", "POST", "/internal/sessions/lookup", json={"session_id": sid})
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise HTTPException(503, UNAVAILABLE)
    found: dict[str, Any] = response.json()
    return found


async def revoke(request: Request, upstreams: Upstreams, name: str) -> None:
    sid = session_id(request, name)
    if sid is not None:
        await upstreams.call("pass", "POST", "/internal/sessions/revoke", json={"session_id": sid})


async def _pass_session(request: Request, upstreams: Upstreams, *, sending: bool) -> PassSession:
    found = await lookup(request, upstreams, PASS_COOKIE)
    if found is None or found.get("kind") != "pass":
        raise HTTPException(401, NOT_LOGGED_IN)
    session = PassSession(
        pass_id=found["pass_id"],
        user_id=found["user_id"],
        use_date=found["use_date"],
        campaign_id=found.get("campaign_id"),
    )
    usable = found.get("state") == "active" and session.campaign_id is None
    if sending:  # watching the progress of the campaign that consumed the pass stays allowed that day
        usable = usable or found.get("state") == "consumed"
    if not usable:
        raise HTTPException(401, EXPIRED)
    return session


async def require_pass_session(
    request: Request, upstreams: Annotated[Upstreams, Depends(get_upstreams)]
) -> PassSession:
    """The applicant's live session whose pass is neither consumed nor past its day."""
    return await _pass_session(request, upstreams, sending=False)


async def require_sending_session(
    request: Request, upstreams: Annotated[Upstreams, Depends(get_upstreams)]
) -> PassSession:
    """Like require_pass_session, but also once the pass was consumed by sending: for watching that one
    campaign's progress. An expired pass, a logged-out or forged session is still refused."""
    return await _pass_session(request, upstreams, sending=True)


async def require_admin_session(
    request: Request, upstreams: Annotated[Upstreams, Depends(get_upstreams)]
) -> AdminSession:
    found = await lookup(request, upstreams, ADMIN_COOKIE)
    if found is None or found.get("kind") != "admin":
        raise HTTPException(401, NOT_LOGGED_IN)
    return AdminSession(admin_id=found["admin_id"], email=found["email"])


PassSessionDep = Annotated[PassSession, Depends(require_pass_session)]
SendingSessionDep = Annotated[PassSession, Depends(require_sending_session)]
AdminSessionDep = Annotated[AdminSession, Depends(require_admin_session)]
UpstreamsDep = Annotated[Upstreams, Depends(get_upstreams)]


def pass_headers(session: PassSession) -> dict[str, str]:
    """How the gateway tells an internal service whose pass a request acts for."""
    return {"X-Isseimail-Pass-Id": str(session.pass_id), "X-Isseimail-User-Id": session.user_id}


def own_campaign_id(raw: str, session: PassSession, not_found: str) -> uuid.UUID:
    """The path's campaign id as a UUID (404 when malformed); a consumed pass reads its own campaign only."""
    try:
        cid = uuid.UUID(raw)
    except ValueError:
        raise HTTPException(404, not_found) from None
    if session.campaign_id is not None and session.campaign_id != cid:
        raise HTTPException(404, not_found)
    return cid
