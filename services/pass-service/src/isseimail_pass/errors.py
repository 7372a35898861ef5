"""Japanese error answers: `{"detail": ..., "errors": {field: ...}}`, never a 500 for bad input."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from isseimail_shared.errors import INVALID_INPUT, install_validation_handler


class FieldError(Exception):
    """A per-field problem found after parsing (e.g. a day of use out of range): answered with 422."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def install(app: FastAPI) -> None:
    install_validation_handler(app)

    @app.exception_handler(FieldError)
    async def field_error(request: Request, exc: FieldError) -> JSONResponse:
        return JSONResponse({"detail": INVALID_INPUT, "errors": {exc.field: exc.message}}, status_code=422)
