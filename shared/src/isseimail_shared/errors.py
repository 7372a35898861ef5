"""The one error style of every service (docs/internal-api.md): `{"detail": <Japanese>, "errors": {field: ...}}`.

Routes raise `ApiError`; `install_error_handlers` (called by `isseimail_shared.app.create_app`) answers it,
Starlette's own HTTP errors (an unknown route, a wrong method), request validation and any unexpected
exception in that one shape. Nothing English and no traceback ever reaches a caller; the log gets the
traceback, in English.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

INVALID_INPUT = "入力内容に誤りがあります。"
INTERNAL = "システムエラーが発生しました。しばらくしてから再度お試しください。"
ROUTE_NOT_FOUND = "指定されたURLは見つかりません。"
UNSTORABLE_TEXT = "使用できない文字（NUL などの制御文字）が含まれています。"
# Text PostgreSQL cannot store (a NUL byte in a UTF-8 string): the caller's input, never a 500.
_UNSTORABLE = (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)
# Starlette's and FastAPI's own HTTP errors carry English text: callers get these instead.
HTTP_MESSAGES: Mapping[int, str] = {
    400: "リクエストの形式が正しくありません。",
    401: "認証が必要です。",
    403: "この操作は許可されていません。",
    404: ROUTE_NOT_FOUND,
    405: "このURLではその操作はできません。",
    413: "リクエストが大きすぎます。",
    415: "リクエストの形式（Content-Type）が正しくありません。",
    429: "リクエストが多すぎます。しばらくしてから再度お試しください。",
}
OTHER_HTTP = "リクエストを処理できませんでした。"
_LOCATIONS = frozenset({"body", "query", "path", "header"})


class ErrorBody(BaseModel):
    """Every error answer of every service; absent fields are left out of the JSON."""

    detail: str = Field(description="日本語のメッセージ")
    errors: dict[str, str] | None = Field(
        default=None, description="項目ごとの日本語のメッセージ（項目名 → メッセージ）"
    )
    code: str | None = Field(default=None, description="理由コード（機械判定用、ある場合のみ）")

    def response(self, status: int, headers: Mapping[str, str] | None = None) -> JSONResponse:
        return JSONResponse(self.model_dump(exclude_none=True), status_code=status, headers=headers)


class ApiError(Exception):
    """An answer other than success: the status, a Japanese detail, per-field messages, a reason code, headers.

    Domain exceptions that carry their own status (a refused login, a refused decision) subclass it, so a
    route lets them through instead of translating them.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        errors: Mapping[str, str] | None = None,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = dict(errors) if errors else None
        self.code = code
        self.headers = dict(headers) if headers else None

    @classmethod
    def invalid(cls, errors: Mapping[str, str], detail: str = INVALID_INPUT) -> ApiError:
        """422 with a message per field (a problem found after parsing, e.g. a day of use out of range)."""
        return cls(422, detail, errors)

    @property
    def body(self) -> ErrorBody:
        return ErrorBody(detail=self.detail, errors=self.errors, code=self.code)

    def response(self) -> JSONResponse:
        return self.body.response(self.status, self.headers)


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


def http_message(exc: StarletteHTTPException) -> str:
    """A Japanese detail for a framework HTTP error; a Japanese detail already given is kept."""
    given = exc.detail
    if isinstance(given, str) and given and not given.isascii():
        return given
    return HTTP_MESSAGES.get(exc.status_code, OTHER_HTTP)


async def api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return ErrorBody(detail=http_message(exc)).response(exc.status_code, exc.headers)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return ApiError.invalid(field_errors(exc)).response()


async def unstorable_text(request: Request, exc: Exception) -> JSONResponse:
    """A last line behind the edge checks: text with a NUL reached a query. 422, as for any bad input."""
    log.info("refused text the database cannot store on %s %s", request.method, request.url.path[:200])
    return ErrorBody(detail=UNSTORABLE_TEXT).response(422)


def log_unexpected(request: Request, exc: Exception) -> None:
    """The traceback of an exception no handler expected, in English, for the operator (never for the caller)."""
    log.error("unhandled error on %s %s", request.method, request.url.path[:200], exc_info=exc)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug or an outage we did not foresee: the traceback goes to the log, the caller gets a Japanese 500."""
    log_unexpected(request, exc)
    return ErrorBody(detail=INTERNAL).response(500)


def install_error_handlers(app: FastAPI) -> None:
    """The one handler set: ApiError, Starlette's HTTP errors (404/405 from routing), validation, text the
    database cannot store (422), and 500."""
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    for unstorable in _UNSTORABLE:
        app.add_exception_handler(unstorable, unstorable_text)
    app.add_exception_handler(Exception, unexpected_error)
