"""One-click unsubscribe (RFC 8058): the only route users outside the intranet reach (see intranet.py).

GET shows a confirmation page with a button and changes nothing (link scanners and previews fetch URLs);
POST with `List-Unsubscribe=One-Click` (form-urlencoded or multipart, as RFC 8058 shows) unsubscribes. The
gateway holds no key: the notifier checks the token and records the suppression. The answers say only
"配信停止しました" or "無効なリンクです" — never the address or the sender — and carry no cookie.

No session and no CSRF token: the POST comes from a mailbox provider's server without cookies, and nothing
ambient authorises it — the unguessable token in the URL is the whole authority and is bound to one
recipient and one sender. A forged cross-site POST would need that token, and whoever has it could POST
it directly; the worst it can do is what the recipient asked for by clicking.
"""

from __future__ import annotations

import email.parser
import email.policy
from email.message import Message
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from isseimail_gateway.upstream import client_ip, get_upstreams
from isseimail_gateway.web.ratelimit import RateLimiter
from isseimail_shared.errors import ApiError
from isseimail_shared.unsubscribe import TOKEN_LENGTH, read_token

router = APIRouter(include_in_schema=False)

PER_MINUTE = 10  # per client address (IPv6: /64), GET and POST together
BURST = 10
MAX_BODY = 4096
# Its own environment: the shared render() would set the CSRF cookie, and this page sets none.
_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape())

DONE = "配信停止しました。"
INVALID = "このリンクは無効です。メールに記載されたリンクをもう一度ご確認ください。"
BAD_REQUEST = "リクエストの形式が正しくありません。"
LIMITED = "短時間にアクセスが集中しています。しばらくしてから再度お試しください。"
UNAVAILABLE = "ただいま処理できません。しばらくしてから再度お試しください。"


def _page(status: int, title: str, state: str, message: str = "", action: str = "", **headers: str) -> HTMLResponse:
    html = _env.get_template("unsubscribe.html").render(title=title, state=state, message=message, action=action)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store", **headers})


def _invalid() -> HTMLResponse:
    return _page(404, "配信停止", "invalid", INVALID)


def _limiter(request: Request) -> RateLimiter:
    """One limiter per app (so two gateways in one test process do not share it)."""
    limiter = getattr(request.app.state, "unsubscribe_limiter", None)
    if not isinstance(limiter, RateLimiter):
        limiter = request.app.state.unsubscribe_limiter = RateLimiter(PER_MINUTE, BURST)
    return limiter


def _limited(request: Request) -> HTMLResponse | None:
    allowed, wait = _limiter(request).allow(client_ip(request))
    if allowed:
        return None
    return _page(429, "配信停止", "limited", LIMITED, **{"Retry-After": str(max(1, int(wait + 0.999)))})


async def _notifier(request: Request, method: str, token: str) -> int:
    """The notifier's answer (200 or 404); 503 when it cannot be asked."""
    kwargs = {"json": {"channel": "one-click"}} if method == "POST" else {}
    try:
        response = await get_upstreams(request).call("notifier", method, f"/internal/unsubscribes/{token}", **kwargs)
    except ApiError:
        return 503
    return 200 if response.status_code == 200 else 404


def _one_click(content_type: str, body: bytes) -> bool:
    """Whether the body says List-Unsubscribe=One-Click (form-urlencoded or multipart/form-data)."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        values = parse_qs(body.decode("latin-1"), keep_blank_values=True).get("List-Unsubscribe", [])
        return values == ["One-Click"]
    if kind == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
        message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(head + body)
        parts = message.get_payload() if message.is_multipart() else []
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, Message) and part.get_param("name", header="content-disposition") == "List-Unsubscribe":
                value = part.get_payload(decode=True)
                return isinstance(value, bytes) and value.strip() == b"One-Click"
    return False


async def _body(request: Request) -> bytes | None:
    """The request body, or None past MAX_BODY (a one-click body is a few dozen bytes)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
async def confirm(request: Request, token: str) -> HTMLResponse:
    limited = _limited(request)
    if limited is not None:
        return limited
    if len(token) != TOKEN_LENGTH or read_token(token) is None:
        return _invalid()
    status = await _notifier(request, "GET", token)
    if status == 503:
        return _page(503, "配信停止", "error", UNAVAILABLE)
    if status != 200:
        return _invalid()
    return _page(200, "配信停止の確認", "confirm", action=f"/unsubscribe/{token}")


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe(request: Request, token: str) -> HTMLResponse:
    limited = _limited(request)
    if limited is not None:
        return limited
    body = await _body(request)
    if body is None:
        return _page(413, "配信停止", "error", BAD_REQUEST)
    if not _one_click(request.headers.get("content-type", ""), body):
        return _page(400, "配信停止", "error", BAD_REQUEST)
    if len(token) != TOKEN_LENGTH or read_token(token) is None:
        return _invalid()
    status = await _notifier(request, "POST", token)
    if status == 503:
        return _page(503, "配信停止", "error", UNAVAILABLE)
    if status != 200:
        return _invalid()
    return _page(200, "配信停止", "done", DONE)
