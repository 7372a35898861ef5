"""Error bodies as docs/internal-api.md says: {"detail": <Japanese>, "errors": {...}}; never a 500 for bad input."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from isseimail_shared.errors import install_validation_handler

INVALID_INPUT = "入力内容に誤りがあります。"


def install(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        body = exc.detail if isinstance(exc.detail, dict) else {"detail": exc.detail}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    install_validation_handler(app, INVALID_INPUT)
