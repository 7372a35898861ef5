"""The server-rendered web UI (Japanese): the applicant's eight steps and the administrator's pages."""

from __future__ import annotations

import logging

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from isseimail_gateway.web import admin, applicant, campaign, unsubscribe
from isseimail_gateway.web.failure import WebError
from isseimail_gateway.web.render import STATIC_DIR, error_page
from isseimail_gateway.web.security import SecurityHeaders, security_headers
from isseimail_shared.errors import INTERNAL, http_error, http_message, log_unexpected, unexpected_error

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
router.include_router(applicant.router)
router.include_router(campaign.router)
router.include_router(admin.router)
router.include_router(unsubscribe.router)

API_PREFIX = "/api/"


def _is_page(request: Request) -> bool:
    """A browser's page (HTML errors) rather than the JSON API (the one error shape of isseimail_shared.errors)."""
    return not request.url.path.startswith(API_PREFIX)


async def web_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebError)
    return error_page(request, exc)


async def page_or_json_http_error(request: Request, exc: Exception) -> Response:
    """An unknown page or a wrong method: a Japanese error page for a browser, the JSON shape under /api/."""
    assert isinstance(exc, StarletteHTTPException)
    if not _is_page(request):
        return await http_error(request, exc)
    page = error_page(request, WebError(exc.status_code, http_message(exc)))
    page.headers.update(exc.headers or {})  # e.g. Allow on a 405
    return page


async def page_or_json_unexpected(request: Request, exc: Exception) -> Response:
    """A bug behind a page: the Japanese error page (never a traceback); the JSON 500 under /api/."""
    if not _is_page(request):
        return await unexpected_error(request, exc)
    log_unexpected(request, exc)
    try:
        page = error_page(request, WebError(500, INTERNAL))
    except Exception:  # the page itself cannot be drawn: the JSON answer still says it in Japanese
        log.exception("could not render the error page")
        return await unexpected_error(request, exc)
    # A 500 is answered outside every middleware (Starlette's ServerErrorMiddleware): add the headers here.
    page.headers.update(security_headers(request.url.path))
    return page


def install(app: FastAPI) -> None:
    """Static files, HTML error pages for the web routes, and the security headers on every response.

    The JSON handlers come from isseimail_shared.app.create_app; the two replaced here still answer them
    for /api/, so API clients and the pages' own sub-requests (web/apiclient.py) keep the one JSON shape."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(WebError, web_error)
    app.add_exception_handler(StarletteHTTPException, page_or_json_http_error)
    app.add_exception_handler(Exception, page_or_json_unexpected)
    app.add_middleware(SecurityHeaders)


__all__ = ["SecurityHeaders", "install", "router"]
