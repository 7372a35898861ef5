"""Internal routes for the gateway's one-click unsubscribe (docs/internal-api.md).

The gateway holds no key: it passes the token on, and the answer is only "done" or "not found" — never
the address or the organisation, so nothing about a recipient leaves the notifier.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from isseimail_notifier import unsubscribes
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.app import Db, held
from isseimail_shared.contracts.notifier import TokenValid, Unsubscribed, UnsubscribeRequest
from isseimail_shared.errors import ApiError

router = APIRouter(prefix="/internal/unsubscribes", tags=["unsubscribes"])

NOT_FOUND = "この配信停止のリンクは無効です。"
Token = Annotated[str, Path(min_length=1, max_length=100)]


def _secret(settings: Annotated[NotifierSettings, Depends(held(NotifierSettings))]) -> bytes:
    return settings.verp_secret.get_secret_value().encode()


Secret = Annotated[bytes, Depends(_secret)]


@router.get("/{token}", response_model=TokenValid, responses={404: {"description": "invalid token"}})
async def check_token(token: Token, pool: Db, secret: Secret) -> TokenValid:
    """200 when the token names a delivery it was made for (the confirmation page may be shown), else 404."""
    async with pool.acquire() as conn:
        target = await unsubscribes.resolve(conn, secret, token)
    if target is None:
        raise ApiError(404, NOT_FOUND)
    return TokenValid(valid=True)


@router.post("/{token}", response_model=Unsubscribed, responses={404: {"description": "invalid token"}})
async def unsubscribe(token: Token, body: UnsubscribeRequest, pool: Db, secret: Secret) -> Unsubscribed:
    """Suppress the token's recipient for its sender organisation (idempotent); 404 for an invalid token."""
    target = await unsubscribes.unsubscribe(pool, secret, token, body.channel)
    if target is None:
        raise ApiError(404, NOT_FOUND)
    return Unsubscribed(unsubscribed=True)
