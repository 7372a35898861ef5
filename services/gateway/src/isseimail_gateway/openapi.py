"""The OpenAPI document says what the API really answers: its 422 body is the one error shape
(isseimail_shared.errors.ErrorBody), not FastAPI's default list of pydantic errors."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from isseimail_shared.errors import ErrorBody

ERROR_BODY: dict[str, Any] = ErrorBody.model_json_schema()


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
