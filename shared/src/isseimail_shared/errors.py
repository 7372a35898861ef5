"""The error body every service answers (docs/internal-api.md): `{"detail": <Japanese>, "errors": {field: ...}}`.

Request validation is the same everywhere, so it lives here: each problem becomes a Japanese message for
its field, all problems at once, status 422. Services add their own domain errors on top.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

INVALID_INPUT = "入力内容に誤りがあります。"
_LOCATIONS = frozenset({"body", "query", "path", "header"})


def validation_message(error: Mapping[str, Any]) -> str:
    """A Japanese message for one pydantic error (our own validators raise ValueError in Japanese)."""
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind == "value_error" and "reason" in ctx:
        return "メールアドレスの形式が正しくありません。"  # pydantic's EmailStr
    if kind == "value_error":
        return str(ctx.get("error", "値が正しくありません。"))
    if kind == "missing":
        return "必須項目です。"
    if "too_long" in kind:
        limit = ctx.get("max_length")
        return f"{limit}文字（件）以内で入力してください。" if limit is not None else "長すぎます。"
    if "too_short" in kind:
        return "入力してください。"
    if kind.startswith("date"):
        return "日付は YYYY-MM-DD の形式で入力してください。"
    if kind in {"json_invalid", "model_attributes_type", "dict_type", "list_type"}:
        return "リクエストの形式が正しくありません。"
    if kind in {"int_parsing", "int_type"}:
        return "数値で指定してください。"
    return "値が正しくありません。"


def field_errors(exc: RequestValidationError) -> dict[str, str]:
    """The first problem of each field, keyed by its dotted location without body/query/path."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part not in _LOCATIONS]
        errors.setdefault(".".join(loc) or "request", validation_message(error))
    return errors


def install_validation_handler(app: FastAPI, detail: str = INVALID_INPUT) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": detail, "errors": field_errors(exc)}, status_code=422)
