"""CSRF protection for the HTML forms: a signed double-submit token.

The browser holds a random nonce in an HttpOnly, SameSite=Strict cookie; every form carries the nonce
signed with the session secret. A POST is accepted only when the field's signature is valid and it
signs the cookie's nonce, so another site can neither read nor forge the pair (and a cookie planted
by a sibling host is useless without the signature).
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response
from itsdangerous import BadSignature, Signer

from isseimail_gateway.settings import GatewaySettings
from isseimail_gateway.web.failure import WebError
from isseimail_shared.app import registered

CSRF_COOKIE = "isseimail_csrf"
CSRF_FIELD = "csrf_token"
CSRF_FAILED = "画面の有効期限が切れました。もう一度画面を開いてから操作してください。"


def _signer(request: Request) -> Signer:
    settings = registered(request, GatewaySettings)
    return Signer(settings.session_secret.get_secret_value(), salt="isseimail-csrf")


def _nonce(request: Request) -> str:
    """The nonce of this browser: the cookie's, or a new one remembered on request.state until set."""
    existing = getattr(request.state, "csrf_nonce", None)
    if isinstance(existing, str):
        return existing
    cookie = request.cookies.get(CSRF_COOKIE, "")
    nonce = cookie if 20 <= len(cookie) <= 64 and cookie.replace("-", "").replace("_", "").isalnum() else ""
    if not nonce:
        nonce = secrets.token_urlsafe(24)
        request.state.csrf_new = True
    request.state.csrf_nonce = nonce
    return nonce


def token(request: Request) -> str:
    """The value for the hidden form field."""
    return _signer(request).sign(_nonce(request)).decode()


def set_cookie_if_new(request: Request, response: Response) -> None:
    if getattr(request.state, "csrf_new", False):
        settings = registered(request, GatewaySettings)
        response.set_cookie(
            CSRF_COOKIE,
            request.state.csrf_nonce,
            httponly=True,
            samesite="strict",
            secure=settings.cookie_secure,
            path="/",
        )


def verify(request: Request, submitted: object) -> None:
    """Raise 403 unless the submitted token signs this browser's cookie nonce."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not isinstance(submitted, str) or not cookie or len(submitted) > 200:
        raise WebError(403, CSRF_FAILED)
    try:
        nonce = _signer(request).unsign(submitted).decode()
    except (BadSignature, UnicodeDecodeError):
        raise WebError(403, CSRF_FAILED) from None
    if not hmac.compare_digest(nonce, cookie):
        raise WebError(403, CSRF_FAILED)
