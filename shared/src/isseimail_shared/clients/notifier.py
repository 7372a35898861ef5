"""The notifier's internal API, typed (isseimail_shared.contracts.notifier)."""

from __future__ import annotations

from collections.abc import Sequence

from isseimail_shared.clients.base import InternalClient
from isseimail_shared.contracts.notifier import MAX_CHECK, CheckRequest, CheckResponse


class NotifierClient(InternalClient):
    service = "notifier"

    async def suppressed(self, addresses: Sequence[str], organisation: str | None = None) -> dict[str, str]:
        """{address as asked: reason} of the suppressed ones, asked in chunks of the notifier's maximum."""
        found: dict[str, str] = {}
        for start in range(0, len(addresses), MAX_CHECK):
            # Not validated here: the notifier's 422 for a bad address is its answer (Unavailable to the caller).
            body = CheckRequest.model_construct(addresses=list(addresses[start : start + MAX_CHECK]))
            if organisation:
                body.organisation = organisation
            json = body.model_dump(exclude_none=True)
            answer = await self.fetch("POST", "/internal/suppressions/check", CheckResponse, json=json)
            found.update(answer.suppressed)
        return found
