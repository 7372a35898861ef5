"""The dispatcher's internal API, typed (isseimail_shared.contracts.dispatcher)."""

from __future__ import annotations

import uuid

from isseimail_shared.clients.base import InternalClient, acting_for
from isseimail_shared.contracts.dispatcher import DkimKey, DkimKeys, Progress


class DispatcherClient(InternalClient):
    service = "dispatcher"

    async def dkim_keys(self, domain: str) -> list[DkimKey]:
        """The signing keys of the domain ([] when the dispatcher has none for it)."""
        found = await self.call("GET", f"/internal/dkim/{domain}", DkimKeys, none_on=frozenset({404}))
        return found.keys if found is not None else []

    async def progress(self, campaign_id: uuid.UUID | str, pass_id: int) -> Progress | None:
        """The campaign's progress as the pass that sent it reads it; None until the dispatcher has it."""
        path = f"/internal/campaigns/{campaign_id}/progress"
        return await self.call("GET", path, Progress, none_on=frozenset({404}), headers=acting_for(pass_id))
