"""A JSON answer sent straight from an ASGI middleware (a refusal before the app runs)."""

from __future__ import annotations

from starlette.types import Send

from isseimail_shared.errors import ErrorBody


async def send_json(send: Send, status: int, detail: str) -> None:
    """`{"detail": ...}` with `status`, in the error shape every service answers with."""
    body = ErrorBody(detail=detail).model_dump_json(exclude_none=True).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": body})
