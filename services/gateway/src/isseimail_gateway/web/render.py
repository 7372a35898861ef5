"""Jinja2 rendering for the web UI: autoescaped templates, the CSRF token in every page, HTML errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from isseimail_gateway.settings import GatewaySettings
from isseimail_gateway.web import csrf
from isseimail_gateway.web.failure import WebError
from isseimail_shared.app import registered

__all__ = ["WebError", "error_page", "redirect", "render"]

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

# autoescape for every template: user data (a contact name "<script>") is always shown as text.
_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def local_time(value: object, zone: str) -> str:
    """An ISO timestamp from a service (UTC) as the user's local "YYYY-MM-DD HH:MM"; other values as text."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


_env.filters["local_time"] = local_time


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("errors", {})
    context.setdefault("values", {})
    html = _env.get_template(template).render(
        request=request,
        path=request.url.path,
        tz=registered(request, GatewaySettings).timezone,
        csrf_field=csrf.CSRF_FIELD,
        csrf_token=csrf.token(request),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
    csrf.set_cookie_if_new(request, response)
    return response


def redirect(url: str) -> RedirectResponse:
    """After a successful POST: 303 so that reloading the next page does not repeat the action."""
    return RedirectResponse(url, status_code=303)


def error_page(request: Request, exc: WebError) -> HTMLResponse:
    return render(request, "error.html", exc.status_code, message=exc.message, back=exc.back)
