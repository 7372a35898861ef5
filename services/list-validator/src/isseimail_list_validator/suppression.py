"""The notifier's suppression list, read over its internal API.

Without an organisation it answers the bounces of earlier campaigns (they hold for every sender); with the
sender organisation (the From domain) also that organisation's unsubscribes and spam complaints.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import httpx
from pydantic import SecretStr

from isseimail_shared.internal_auth import internal_client

log = logging.getLogger(__name__)

CHUNK = 50_000  # the notifier's documented maximum per request


async def check_suppressed(
    base_url: str,
    addresses: list[str],
    *,
    timeout: float,
    tokens: Sequence[SecretStr],
    organisation: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> dict[str, str] | None:
    """{lower-cased address: reason} for suppressed addresses; None when the list cannot be read.

    The reason is "unsubscribed" or "complained" for an organisation's own rows, else the bounce reason.
    `client` (from `suppression_client`) serves many checks over one connection (an upload's batches).
    """
    found: dict[str, str] = {}
    try:
        async with contextlib.nullcontext(client) if client else suppression_client(base_url, tokens, timeout) as c:
            for start in range(0, len(addresses), CHUNK):
                body: dict[str, object] = {"addresses": addresses[start : start + CHUNK]}
                if organisation:
                    body["organisation"] = organisation
                response = await c.post("/internal/suppressions/check", json=body)
                if response.status_code != 200:
                    log.warning("suppression check answered %d", response.status_code)
                    return None
                data = response.json().get("suppressed", {})
                if not isinstance(data, dict):
                    return None
                found.update({str(k).lower(): str(v) for k, v in data.items()})
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("suppression list unavailable: %s", exc.__class__.__name__)
        return None
    return found


def suppression_client(base_url: str, tokens: Sequence[SecretStr], timeout: float) -> httpx.AsyncClient:
    return internal_client(base_url, tokens, httpx.Timeout(timeout))


def reason_code(reason: str) -> str:
    """The list-validator's row code for a notifier reason."""
    return reason if reason in ("unsubscribed", "complained") else "suppressed"
