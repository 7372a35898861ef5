"""The dispatcher's DKIM keys for a domain (GET /internal/dkim/{domain}): what DNS must publish."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from isseimail_shared.internal_auth import internal_client


class DkimKey(BaseModel):
    selector: str
    algorithm: Literal["rsa-sha256", "ed25519-sha256"]
    state: Literal["active", "next", "retired"]
    public_key: str  # base64, as p= carries it
    txt_name: str
    txt_value: str


class DkimKeys(BaseModel):
    domain: str
    keys: list[DkimKey]


class DkimKeysUnavailable(Exception):
    """The dispatcher did not answer properly."""


class DkimKeysClient:
    def __init__(self, base_url: str, timeout: float, tokens: Sequence[SecretStr]) -> None:
        self._client = internal_client(base_url, tokens, httpx.Timeout(timeout, connect=3.0))

    async def close(self) -> None:
        await self._client.aclose()

    async def keys(self, domain: str) -> list[DkimKey]:
        """The signing keys of the domain ([] when the dispatcher has none for it)."""
        try:
            response = await self._client.get(f"/internal/dkim/{domain}")
        except httpx.HTTPError as exc:
            raise DkimKeysUnavailable(exc.__class__.__name__) from exc
        if response.status_code == 404:
            return []
        if response.status_code != 200:
            raise DkimKeysUnavailable(f"dispatcher answered {response.status_code}")
        try:
            return DkimKeys.model_validate_json(response.content).keys
        except ValidationError as exc:
            raise DkimKeysUnavailable("dispatcher answered something that is not the DKIM key contract") from exc
