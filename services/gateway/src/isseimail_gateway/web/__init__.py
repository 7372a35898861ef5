"""The server-rendered web UI (Japanese): the applicant's eight steps and the administrator's pages."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from isseimail_gateway.web import admin, applicant, campaign, unsubscribe
from isseimail_gateway.web.failure import WebError
from isseimail_gateway.web.render import STATIC_DIR, error_page
from isseimail_gateway.web.security import SecurityHeaders

router = APIRouter(include_in_schema=False)
router.include_router(applicant.router)
router.include_router(campaign.router)
router.include_router(admin.router)
router.include_router(unsubscribe.router)


def install(app: FastAPI) -> None:
    """Static files, HTML error pages for the web routes, and the security headers on every response."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(WebError)
    async def web_error(request: Request, exc: WebError) -> Response:
        return error_page(request, exc)

    app.add_middleware(SecurityHeaders)


__all__ = ["SecurityHeaders", "install", "router"]
