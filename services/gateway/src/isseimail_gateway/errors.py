"""Errors users see are Japanese: validation errors name the field; no stack trace ever reaches a user."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from isseimail_shared.errors import install_validation_handler

log = logging.getLogger(__name__)

INTERNAL = "システムエラーが発生しました。しばらくしてから再度お試しください。"


def install(app: FastAPI) -> None:
    install_validation_handler(app)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": INTERNAL}, status_code=500)
