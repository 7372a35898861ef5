"""The OpenAPI document says what the API really answers: its 422 body is `{"detail", "errors"}` (see
isseimail_shared.errors), not FastAPI's default list of pydantic errors."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_BODY: dict[str, Any] = {
    "title": "ErrorBody",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "日本語のメッセージ"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "項目ごとの日本語のメッセージ（項目名 → メッセージ）",
        },
    },
}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas.pop("ValidationError", None)
            schemas["HTTPValidationError"] = ERROR_BODY  # every 422 of the document refers to this name
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
