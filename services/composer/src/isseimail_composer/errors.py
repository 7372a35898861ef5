"""Error bodies per docs/internal-api.md: {"detail", "errors": {field: message}} in Japanese; no 500 for bad input."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from isseimail_shared.errors import install_validation_handler

log = logging.getLogger(__name__)

INVALID_INPUT = "入力内容に誤りがあります。各項目のメッセージを確認してください。"
INTERNAL = "システムエラーが発生しました。しばらくしてから再度お試しください。"
NOT_FOUND = "指定された一斉メールが見つかりません。"
FROZEN = "この一斉メールは送信を受け付け済みのため、変更できません。"
NO_PASS = "ログインしてください。"  # noqa: S105 - a message, not a secret


class ApiError(Exception):
    def __init__(self, status: int, detail: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        body: dict[str, object] = {"detail": exc.detail}
        if exc.errors:
            body["errors"] = exc.errors
        return JSONResponse(body, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.detail, dict):
            return JSONResponse(exc.detail, status_code=exc.status_code)
        detail = exc.detail if isinstance(exc.detail, str) and not exc.detail.isascii() else NOT_FOUND
        if exc.status_code != 404 and detail == NOT_FOUND:
            detail = INVALID_INPUT
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    install_validation_handler(app, INVALID_INPUT)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": INTERNAL}, status_code=500)
