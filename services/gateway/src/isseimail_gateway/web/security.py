"""Security headers on every response: a CSP without inline script, no framing, no sniffing, no referrer leaks."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# 'self' only: every script and style is a file under /static, so an injected <script> cannot run.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# FastAPI's interactive docs load Swagger UI from a CDN with an inline bootstrap script; they are a
# developer page, so they get a looser policy but still no framing.
DOCS_CSP = "frame-ancestors 'none'; object-src 'none'; base-uri 'none'"
DOCS_PATHS = ("/api/v1/docs", "/api/v1/redoc")

HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]


def security_headers(path: str) -> dict[str, str]:
    """The headers for a response at `path`, for an answer the middleware does not wrap (the 500 page)."""
    csp = DOCS_CSP if path.startswith(DOCS_PATHS) else CSP
    return {"content-security-policy": csp, **{k.decode(): v.decode() for k, v in HEADERS}}


class SecurityHeaders:
    """ASGI middleware adding the headers to every HTTP response, error pages and the intranet 403 included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if str(scope.get("path", "")).startswith(DOCS_PATHS) else CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-security-policy"]
                headers.append((b"content-security-policy", csp.encode()))
                present = {k.lower() for k, _ in headers}
                headers.extend((k, v) for k, v in HEADERS if k not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
