"""Internal routes for the gateway's one-click unsubscribe (docs/internal-api.md).

The gateway holds no key: it passes the token on, and the answer is only "done" or "not found" — never
the address or the organisation, so nothing about a recipient leaves the notifier.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from isseimail_notifier import unsubscribes
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.app import Db, held

router = APIRouter(prefix="/internal/unsubscribes", tags=["unsubscribes"])

NOT_FOUND = "この配信停止のリンクは無効です。"
Token = Annotated[str, Path(min_length=1, max_length=100)]


class UnsubscribeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Literal["one-click"] = "one-click"


def _secret(settings: Annotated[NotifierSettings, Depends(held(NotifierSettings))]) -> bytes:
    return settings.verp_secret.get_secret_value().encode()


Secret = Annotated[bytes, Depends(_secret)]


@router.get("/{token}")
async def check_token(token: Token, pool: Db, secret: Secret) -> JSONResponse:
    """200 when the token names a delivery it was made for (the confirmation page may be shown), else 404."""
    async with pool.acquire() as conn:
        target = await unsubscribes.resolve(conn, secret, token)
    if target is None:
        return JSONResponse({"detail": NOT_FOUND}, status_code=404)
    return JSONResponse({"valid": True})


@router.post("/{token}")
async def unsubscribe(token: Token, body: UnsubscribeRequest, pool: Db, secret: Secret) -> JSONResponse:
    """Suppress the token's recipient for its sender organisation (idempotent); 404 for an invalid token."""
    target = await unsubscribes.unsubscribe(pool, secret, token, body.channel)
    if target is None:
        return JSONResponse({"detail": NOT_FOUND}, status_code=404)
    return JSONResponse({"unsubscribed": True})
