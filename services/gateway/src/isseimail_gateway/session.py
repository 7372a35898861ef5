"""Signed session cookies: one for the applicant's pass, one for administrators.

The cookie carries only ids, signed with ISSEIMAIL_SESSION_SECRET (itsdangerous). A pass session is
checked against the pass-service on every use, so it stops working the moment the pass is consumed or
its day ends; the cookie itself also expires after a day.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel

from isseimail_gateway.settings import GatewaySettings
from isseimail_gateway.upstream import Upstreams, get_upstreams

PASS_COOKIE = "isseimail_session"  # noqa: S105 - a cookie name, not a secret
ADMIN_COOKIE = "isseimail_admin"
MAX_AGE = 24 * 3600

NOT_LOGGED_IN = "ログインしてください。"
EXPIRED = "この1DayPassは失効しています。再度申請してください。"


class PassSession(BaseModel):
    pass_id: int
    user_id: str
    use_date: str


class AdminSession(BaseModel):
    admin_id: int
    email: str


def _serializer(request: Request, salt: str) -> URLSafeTimedSerializer:
    settings: GatewaySettings = request.app.state.runtime.settings
    return URLSafeTimedSerializer(settings.session_secret.get_secret_value(), salt=salt)


def set_cookie(request: Request, response: Response, name: str, data: dict[str, Any]) -> None:
    settings: GatewaySettings = request.app.state.runtime.settings
    response.set_cookie(
        name,
        _serializer(request, name).dumps(data),
        max_age=MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
        path="/",
    )


def read_cookie(request: Request, name: str) -> dict[str, Any] | None:
    raw = request.cookies.get(name)
    if not raw or len(raw) > 4096:
        return None
    try:
        data = _serializer(request, name).loads(raw, max_age=MAX_AGE)
    except BadSignature:  # also SignatureExpired
        return None
    return data if isinstance(data, dict) else None


async def _pass_session(request: Request, upstreams: Upstreams, states: frozenset[str]) -> PassSession:
    data = read_cookie(request, PASS_COOKIE)
    if data is None:
        raise HTTPException(401, NOT_LOGGED_IN)
    try:
        session = PassSession.model_validate(data)
    except ValueError:
        raise HTTPException(401, NOT_LOGGED_IN) from None
    response = await upstreams.call("pass", "GET", f"/internal/passes/{session.pass_id}")
    found = response.json() if response.status_code == 200 else {}
    # In an allowed state, and the very pass the cookie names (a cookie never outlives its pass's user ID).
    if found.get("state") not in states or found.get("user_id") != session.user_id:
        raise HTTPException(401, EXPIRED)
    return session


async def require_pass_session(
    request: Request, upstreams: Annotated[Upstreams, Depends(get_upstreams)]
) -> PassSession:
    """The applicant's session, still valid: signed, and its pass neither consumed nor past its day."""
    return await _pass_session(request, upstreams, frozenset({"active"}))


async def require_sending_session(
    request: Request, upstreams: Annotated[Upstreams, Depends(get_upstreams)]
) -> PassSession:
    """Like require_pass_session, but also once the pass was consumed by sending: for watching that one
    campaign's progress. An expired pass or a forged cookie is still refused."""
    return await _pass_session(request, upstreams, frozenset({"active", "consumed"}))


def require_admin_session(request: Request) -> AdminSession:
    data = read_cookie(request, ADMIN_COOKIE)
    if data is None:
        raise HTTPException(401, NOT_LOGGED_IN)
    try:
        return AdminSession.model_validate(data)
    except ValueError:
        raise HTTPException(401, NOT_LOGGED_IN) from None


PassSessionDep = Annotated[PassSession, Depends(require_pass_session)]
SendingSessionDep = Annotated[PassSession, Depends(require_sending_session)]
AdminSessionDep = Annotated[AdminSession, Depends(require_admin_session)]
UpstreamsDep = Annotated[Upstreams, Depends(get_upstreams)]


def pass_headers(session: PassSession) -> dict[str, str]:
    """How the gateway tells an internal service whose pass a request acts for."""
    return {"X-Isseimail-Pass-Id": str(session.pass_id), "X-Isseimail-User-Id": session.user_id}
