"""Service-to-service authentication: every internal API call carries a shared token from settings.

Every service but the gateway refuses a request without a valid `X-Isseimail-Internal-Token` (401), except
the probes (/healthz, /readyz, /metrics), which the cluster reaches without credentials. Rotation:
ISSEIMAIL_INTERNAL_TOKENS is a comma list; a service sends the first and accepts any of them, so a new token
is put first everywhere, then the old one removed once every replica runs with the new one. With no token
configured the internal API refuses every call (closed, not open).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from isseimail_shared.asgi_answer import send_json

log = logging.getLogger(__name__)

HEADER = "X-Isseimail-Internal-Token"
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
REFUSED = "内部APIの認証に失敗しました。"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def internal_headers(tokens: Sequence[SecretStr]) -> dict[str, str]:
    """The header a caller sends: the current (first) token; none when no token is configured."""
    return {HEADER: tokens[0].get_secret_value()} if tokens else {}


def token_accepted(presented: str | None, tokens: Sequence[SecretStr]) -> bool:
    """Constant-time comparison against every accepted token (digests, so lengths leak nothing either)."""
    if not presented:
        return False
    digest = _digest(presented)
    return any(hmac.compare_digest(digest, _digest(t.get_secret_value())) for t in tokens)


class InternalOnly:
    """ASGI guard of an internal service: a valid token or 401, the probes open."""

    def __init__(self, app: ASGIApp, tokens: Sequence[SecretStr], service: str) -> None:
        self.app = app
        self.tokens = list(tokens)
        self.service = service
        if not self.tokens:
            log.warning("ISSEIMAIL_INTERNAL_TOKENS is empty: the %s internal API refuses every call", service)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        presented = None
        for name, value in scope.get("headers") or []:
            if name == HEADER.lower().encode():
                presented = value.decode("latin-1")
                break
        if token_accepted(presented, self.tokens):
            await self.app(scope, receive, send)
            return
        peer = (scope.get("client") or ("?", 0))[0]
        log.warning(
            "refused internal call without a valid token",
            extra={"client": peer, "path": scope["path"][:200], "token_sent": presented is not None},
        )
        await send_json(send, 401, REFUSED)
