"""The list-validator's internal API, typed (isseimail_shared.contracts.list_validator)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from isseimail_shared.clients.base import InternalClient, acting_for
from isseimail_shared.contracts.list_validator import BadRow, ListLimits, ListRow, ListSummary, SuppressedRows


class ListsClient(InternalClient):
    service = "list-validator"

    async def limits(self) -> ListLimits:
        return await self.fetch("GET", "/internal/lists/limits", ListLimits)

    async def get_list(self, list_id: uuid.UUID, pass_id: int, bad_rows: int = 0) -> ListSummary | None:
        """The list's status record, or None when the list-validator knows no such list of this pass."""
        return await self.call(
            "GET",
            f"/internal/lists/{list_id}",
            ListSummary,
            none_on=frozenset({404}),
            params={"bad_rows": bad_rows},
            headers=acting_for(pass_id),
        )

    async def suppressed(self, list_id: uuid.UUID, pass_id: int, organisation: str, limit: int = 10) -> SuppressedRows:
        """The list's rows suppressed for a sender organisation (first `limit`, and the total)."""
        return await self.fetch(
            "GET",
            f"/internal/lists/{list_id}/suppressed",
            SuppressedRows,
            params={"organisation": organisation, "limit": limit},
            headers=acting_for(pass_id),
        )

    def rows(self, list_id: uuid.UUID, pass_id: int, limit: int | None = None) -> AsyncIterator[ListRow]:
        """The recipient rows in CSV order, streamed."""
        return self.ndjson(f"/internal/lists/{list_id}/rows", ListRow, headers=acting_for(pass_id), limit=limit)

    def errors(self, list_id: uuid.UUID, pass_id: int) -> AsyncIterator[BadRow]:
        return self.ndjson(f"/internal/lists/{list_id}/errors", BadRow, headers=acting_for(pass_id))
