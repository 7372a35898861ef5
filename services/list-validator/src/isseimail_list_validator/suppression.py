"""The notifier's suppression list, read over its internal API.

Without an organisation it answers the bounces of earlier campaigns (they hold for every sender); with the
sender organisation (the From domain) also that organisation's unsubscribes and spam complaints.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from pydantic import SecretStr

from isseimail_shared.clients.base import Unavailable
from isseimail_shared.clients.notifier import NotifierClient
from isseimail_shared.contracts.notifier import MAX_CHECK

log = logging.getLogger(__name__)

CHUNK = MAX_CHECK  # the notifier's documented maximum per request


async def check_suppressed(
    base_url: str,
    addresses: list[str],
    *,
    timeout: float,
    tokens: Sequence[SecretStr],
    organisation: str | None = None,
    client: NotifierClient | None = None,
) -> dict[str, str] | None:
    """{lower-cased address: reason} for suppressed addresses; None when the list cannot be read.

    The reason is "unsubscribed" or "complained" for an organisation's own rows, else the bounce reason.
    `client` (from `suppression_client`) serves many checks over one connection (an upload's batches).
    """
    try:
        async with contextlib.nullcontext(client) if client else suppression_client(base_url, tokens, timeout) as c:
            found = await c.suppressed(addresses, organisation)
    except Unavailable as exc:
        log.warning("suppression list unavailable: %s", exc)
        return None
    return {address.lower(): reason for address, reason in found.items()}


def suppression_client(base_url: str, tokens: Sequence[SecretStr], timeout: float) -> NotifierClient:
    return NotifierClient(base_url, tokens, timeout=timeout, connect_timeout=timeout)


def reason_code(reason: str) -> str:
    """The list-validator's row code for a notifier reason."""
    return reason if reason in ("unsubscribed", "complained") else "suppressed"
