"""Reads from the list-validator (docs/internal-api.md): a list's status and its rows as NDJSON."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from pydantic import SecretStr

from isseimail_shared.internal_auth import internal_client
from isseimail_shared.mailmerge import Recipient

MAX_LINE = 64 * 1024  # one CSV row as JSON; a longer line is not a row


def _acting(pass_id: int) -> dict[str, str]:
    """The pass a read acts for: the list-validator answers only that pass's lists (404 for any other)."""
    return {"X-Isseimail-Pass-Id": str(pass_id)}


class ListsUnavailable(Exception):
    """The list-validator did not answer properly; the caller retries or reports a 503."""


class ListsClient:
    def __init__(self, base_url: str, timeout: float, tokens: Sequence[SecretStr]) -> None:
        self._client = internal_client(base_url, tokens, httpx.Timeout(timeout, connect=5.0))

    async def close(self) -> None:
        await self._client.aclose()

    async def get_list(self, list_id: uuid.UUID, pass_id: int) -> dict[str, Any] | None:
        """The list's status record, or None when the list-validator knows no such list of this pass."""
        try:
            response = await self._client.get(f"/internal/lists/{list_id}", headers=_acting(pass_id))
        except httpx.HTTPError as exc:
            raise ListsUnavailable(str(exc.__class__.__name__)) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ListsUnavailable(f"list-validator answered {response.status_code}")
        data = response.json()
        if not isinstance(data, dict):
            raise ListsUnavailable("list-validator answered something that is not an object")
        return data

    async def suppressed(self, list_id: uuid.UUID, pass_id: int, organisation: str, limit: int = 10) -> dict[str, Any]:
        """The list's rows suppressed for a sender organisation: {"total", "rows": [{"row", "address", "message"}]}."""
        try:
            response = await self._client.get(
                f"/internal/lists/{list_id}/suppressed",
                params={"organisation": organisation, "limit": limit},
                headers=_acting(pass_id),
            )
        except httpx.HTTPError as exc:
            raise ListsUnavailable(str(exc.__class__.__name__)) from exc
        if response.status_code != 200:
            raise ListsUnavailable(f"list-validator answered {response.status_code} for the suppression check")
        data = response.json()
        if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
            raise ListsUnavailable("list-validator answered something that is not a suppression check")
        return data

    async def rows(self, list_id: uuid.UUID, pass_id: int, limit: int | None = None) -> AsyncIterator[Recipient]:
        """The recipient rows in CSV order, streamed (one request however many rows)."""
        try:
            path = f"/internal/lists/{list_id}/rows"
            async with self._client.stream("GET", path, headers=_acting(pass_id)) as response:
                if response.status_code != 200:
                    raise ListsUnavailable(f"list-validator answered {response.status_code} for rows")
                count = 0
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    if len(line) > MAX_LINE:
                        raise ListsUnavailable("row line too long")
                    yield Recipient.model_validate(json.loads(line))
                    count += 1
                    if limit is not None and count >= limit:
                        return
        except httpx.HTTPError as exc:
            raise ListsUnavailable(str(exc.__class__.__name__)) from exc
