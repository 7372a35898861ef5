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
from typing import Annotated

from fastapi import Depends, Request, Response
from pydantic import BaseModel

from isseimail_gateway.settings import GatewaySettings
from isseimail_gateway.upstream import Upstreams, get_upstreams, unavailable
from isseimail_shared.app import registered
from isseimail_shared.clients.base import Unavailable
from isseimail_shared.contracts.pass_service import SessionOut
from isseimail_shared.errors import ApiError

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


async def lookup(request: Request, upstreams: Upstreams, name: str) -> SessionOut | None:
    """The live session record named by the cookie, or None (no cookie, revoked, expired)."""
    sid = session_id(request, name)
    if sid is None:
        return None
    try:
        return await upstreams.pass_service.lookup_session(sid)
    except Unavailable as exc:
        raise unavailable(exc) from exc


async def revoke(request: Request, upstreams: Upstreams, name: str) -> None:
    sid = session_id(request, name)
    if sid is not None:
        await upstreams.call("pass", "POST", "/internal/sessions/revoke", json={"session_id": sid})


async def _pass_session(request: Request, upstreams: Upstreams, *, sending: bool) -> PassSession:
    found = await lookup(request, upstreams, PASS_COOKIE)
    if found is None or found.kind != "pass" or found.pass_id is None or found.user_id is None:
        raise ApiError(401, NOT_LOGGED_IN)
    session = PassSession(
        pass_id=found.pass_id,
        user_id=found.user_id,
        use_date=str(found.use_date),
        campaign_id=found.campaign_id,
    )
    usable = found.state == "active" and session.campaign_id is None
    if sending:  # watching the progress of the campaign that consumed the pass stays allowed that day
        usable = usable or found.state == "consumed"
    if not usable:
        raise ApiError(401, EXPIRED)
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
    if found is None or found.kind != "admin" or found.admin_id is None or found.email is None:
        raise ApiError(401, NOT_LOGGED_IN)
    return AdminSession(admin_id=found.admin_id, email=found.email)


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
        raise ApiError(404, not_found) from None
    if session.campaign_id is not None and session.campaign_id != cid:
        raise ApiError(404, not_found)
    return cid
