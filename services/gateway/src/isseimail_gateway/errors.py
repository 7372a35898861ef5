"""Errors users see are Japanese: validation errors name the field; no stack trace ever reaches a user."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

INVALID_INPUT = "入力内容に誤りがあります。"
INTERNAL = "システムエラーが発生しました。しばらくしてから再度お試しください。"


def _message(error: dict[str, object]) -> str:
    kind = str(error.get("type", ""))
    if kind == "missing":
        return "必須項目です。"
    if "too_long" in kind:
        return "長すぎます。"
    if "too_short" in kind:
        return "短すぎます。"
    if kind in {"json_invalid", "model_attributes_type", "dict_type"}:
        return "リクエストの形式が正しくありません。"
    return "値が正しくありません。"


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors: dict[str, str] = {}
        for error in exc.errors():
            loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
            errors.setdefault(".".join(loc) or "request", _message(error))
        return JSONResponse({"detail": INVALID_INPUT, "errors": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": INTERNAL}, status_code=500)
