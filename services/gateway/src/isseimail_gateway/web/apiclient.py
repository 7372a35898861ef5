"""The pages call the gateway's own JSON API in-process, so a page and an API client take the same path.

Each call is an ASGI sub-request to /api/v1 on this very app (no socket): the browser's cookies go
along, the client address the intranet guard established is kept, and the Set-Cookie headers of the
answer (login, logout) are copied onto the page's response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import Request, Response

from isseimail_gateway import api_csrf
from isseimail_gateway.upstream import client_ip
from isseimail_gateway.web.render import WebError
from isseimail_shared.errors import ROUTE_NOT_FOUND

UNAVAILABLE = "ただいま処理できません。しばらくしてから再度お試しください。"
FORWARDED_COOKIES = ("isseimail_session", "isseimail_admin")


@dataclass
class ApiResult:
    status: int
    body: Any
    set_cookies: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def detail(self) -> str:
        """The Japanese message of an error answer (every error body has one, see docs/internal-api.md)."""
        if isinstance(self.body, dict) and isinstance(self.body.get("detail"), str):
            return str(self.body["detail"])
        return UNAVAILABLE

    @property
    def field_errors(self) -> dict[str, str]:
        if isinstance(self.body, dict) and isinstance(self.body.get("errors"), dict):
            return {str(k): str(v) for k, v in self.body["errors"].items()}
        return {}

    def apply_cookies(self, response: Response) -> Response:
        for cookie in self.set_cookies:
            response.headers.append("set-cookie", cookie)
        return response


async def call(request: Request, method: str, path: str, **kwargs: Any) -> ApiResult:
    """Call /api/v1<path> on this app as the current browser; 5xx answers become a Japanese error page."""
    transport = httpx.ASGITransport(app=request.app, client=(client_ip(request), 0))
    cookies = {name: value for name, value in request.cookies.items() if name in FORWARDED_COOKIES}
    # The page already checked its form's CSRF token; the sub-request says it is this site's own call.
    headers = {api_csrf.HEADER: "1"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway.internal", cookies=cookies, headers=headers
    ) as client:
        response = await client.request(method, f"/api/v1{path}", **kwargs)
    if response.status_code >= 500 or (response.status_code == 404 and _is_missing_route(response)):
        raise WebError(503, UNAVAILABLE)
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return ApiResult(response.status_code, body, response.headers.get_list("set-cookie"))


def _is_missing_route(response: httpx.Response) -> bool:
    """The router's own 404 for a route that does not exist (an API not deployed yet), not a resource's 404."""
    try:
        return bool(response.json() == {"detail": ROUTE_NOT_FOUND})
    except ValueError:
        return False
