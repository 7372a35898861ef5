"""Cross-site request protection for the JSON API (the HTML forms carry their own tokens, web/csrf.py).

A state-changing request to /api/v1 (POST, PUT, PATCH, DELETE) must prove it comes from this site or from
a program, not from a page of another site riding on the browser's cookies:
- `Sec-Fetch-Site`, when the browser sends it, is `same-origin` or `none` (typed by the user);
- `Origin`, when present, is this gateway's own origin (the Host the request was sent to);
- and always the custom header `X-Isseimail-CSRF` (any non-empty value). A cross-site form cannot set a
  header, and a cross-site fetch that sets one needs a CORS preflight this gateway never grants.
Anything else is 403 with a Japanese message before the route runs.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from isseimail_shared.asgi_answer import send_json

log = logging.getLogger(__name__)

HEADER = "X-Isseimail-CSRF"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SAME_SITE_FETCH = frozenset({"same-origin", "none"})
REFUSED = (
    "別のサイトからの操作、または不正な形式のリクエストのため処理できません。画面を開き直してから操作してください。"
)


def refusal(method: str, path: str, headers: dict[bytes, bytes]) -> str | None:
    """Why this request is refused (for the log), or None when it may proceed."""
    if method not in STATE_CHANGING or not path.startswith("/api/v1/"):
        return None
    fetch_site = headers.get(b"sec-fetch-site", b"").decode("latin-1").strip().lower()
    if fetch_site and fetch_site not in SAME_SITE_FETCH:
        return f"Sec-Fetch-Site {fetch_site[:20]}"
    origin = headers.get(b"origin", b"").decode("latin-1").strip()
    if origin:
        host = headers.get(b"host", b"").decode("latin-1").strip().lower()
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not host or parts.netloc.lower() != host:
            return "foreign Origin"
    if not headers.get(HEADER.lower().encode(), b"").strip():
        return f"no {HEADER} header"
    return None


class ApiSameOrigin:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            reason = refusal(scope.get("method", ""), scope["path"], headers)
            if reason is not None:
                log.warning("refused a cross-site API request", extra={"path": scope["path"][:200], "why": reason})
                await send_json(send, 403, REFUSED)
                return
        await self.app(scope, receive, send)
