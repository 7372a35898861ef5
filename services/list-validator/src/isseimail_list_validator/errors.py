"""Error bodies as docs/internal-api.md says: {"detail": <Japanese>, "errors": {...}}; never a 500 for bad input."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

INVALID_INPUT = "入力内容に誤りがあります。"


def install(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        body = exc.detail if isinstance(exc.detail, dict) else {"detail": exc.detail}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors: dict[str, str] = {}
        for error in exc.errors():
            loc = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header"))
            errors.setdefault(
                loc or "request", "必須項目です。" if error.get("type") == "missing" else "値が正しくありません。"
            )
        return JSONResponse({"detail": INVALID_INPUT, "errors": errors}, status_code=422)
