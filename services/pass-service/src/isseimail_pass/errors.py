"""Japanese error answers: `{"detail": ..., "errors": {field: ...}}`, never a 500 for bad input."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

INVALID_INPUT = "入力内容に誤りがあります。"


class FieldError(Exception):
    """A per-field problem found after parsing (e.g. a day of use out of range): answered with 422."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def message_for(error: Any) -> str:
    kind = str(error.get("type", ""))
    if kind == "value_error" and "reason" in error.get("ctx", {}):
        return "メールアドレスの形式が正しくありません。"  # pydantic's EmailStr
    if kind == "value_error":
        # Our validators raise ValueError with the Japanese message itself.
        return str(error.get("ctx", {}).get("error", "値が正しくありません。"))
    if kind == "missing":
        return "必須項目です。"
    if "too_long" in kind:
        return f"{error.get('ctx', {}).get('max_length', '')}文字以内で入力してください。"
    if "too_short" in kind or kind == "string_too_short":
        return "入力してください。"
    if kind.startswith("date"):
        return "日付は YYYY-MM-DD の形式で入力してください。"
    if kind in {"json_invalid", "model_attributes_type", "dict_type"}:
        return "リクエストの形式が正しくありません。"
    if kind in {"int_parsing", "int_type"}:
        return "数値で指定してください。"
    return "値が正しくありません。"


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors: dict[str, str] = {}
        for error in exc.errors():
            loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
            errors.setdefault(".".join(loc) or "request", message_for(error))
        return JSONResponse({"detail": INVALID_INPUT, "errors": errors}, status_code=422)

    @app.exception_handler(FieldError)
    async def field_error(request: Request, exc: FieldError) -> JSONResponse:
        return JSONResponse({"detail": INVALID_INPUT, "errors": {exc.field: exc.message}}, status_code=422)
