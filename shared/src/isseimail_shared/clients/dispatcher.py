"""The dispatcher's internal API, typed (isseimail_shared.contracts.dispatcher)."""

from __future__ import annotations

from isseimail_shared.clients.base import InternalClient
from isseimail_shared.contracts.dispatcher import DkimKey, DkimKeys


class DispatcherClient(InternalClient):
    service = "dispatcher"

    async def dkim_keys(self, domain: str) -> list[DkimKey]:
        """The signing keys of the domain ([] when the dispatcher has none for it)."""
        found = await self.call("GET", f"/internal/dkim/{domain}", DkimKeys, none_on=frozenset({404}))
        return found.keys if found is not None else []
