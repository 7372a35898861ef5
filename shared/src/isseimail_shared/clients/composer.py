"""The composer's internal API, typed (isseimail_shared.contracts.composer)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from isseimail_shared.clients.base import InternalClient, Unavailable, acting_for
from isseimail_shared.contracts.composer import AttachmentPolicy, DraftOut, SnapshotHeader, SnapshotRow

MAX_HEADER_LINE = 1 << 26  # the header line carries the template with its attachments (a few MB)


@dataclass
class Snapshot:
    """The frozen campaign, streamed: the header read first, the recipients left on the wire until iterated."""

    header: SnapshotHeader
    recipients: AsyncIterator[SnapshotRow]


async def _lines(response: httpx.Response) -> AsyncIterator[bytes]:
    buffer = b""
    async for chunk in response.aiter_bytes():
        buffer += chunk
        if len(buffer) > MAX_HEADER_LINE:
            raise Unavailable("composer: snapshot line too long")
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


class ComposerClient(InternalClient):
    service = "composer"

    async def attachment_policy(self) -> AttachmentPolicy:
        return await self.fetch("GET", "/internal/attachment-policy", AttachmentPolicy)

    async def draft(self, campaign_id: uuid.UUID | str, pass_id: int, user_id: str) -> DraftOut | None:
        """The draft's fields as its pass reads them; None when it is not that pass's (or unknown)."""
        path = f"/internal/campaigns/{campaign_id}"
        return await self.call("GET", path, DraftOut, none_on=frozenset({404}), headers=acting_for(pass_id, user_id))

    @contextlib.asynccontextmanager
    async def snapshot(self, campaign_id: uuid.UUID) -> AsyncIterator[Snapshot]:
        """GET /internal/campaigns/{id}/snapshot in constant memory; Unavailable when unreadable or another's."""
        try:
            async with self.http.stream("GET", f"/internal/campaigns/{campaign_id}/snapshot") as response:
                if response.status_code != 200:
                    raise Unavailable(
                        f"composer answered {response.status_code} for the snapshot", response.status_code
                    )
                lines = _lines(response)
                first = await anext(lines, None)
                if first is None:
                    raise Unavailable("composer: empty snapshot")
                header = SnapshotHeader.model_validate_json(first)
                if header.campaign.campaign_id != campaign_id:
                    raise Unavailable("composer: snapshot is for another campaign")

                async def recipients() -> AsyncIterator[SnapshotRow]:
                    try:
                        async for line in lines:
                            yield SnapshotRow.model_validate_json(line)
                    except (httpx.HTTPError, ValueError) as exc:
                        raise Unavailable(f"composer: snapshot unreadable: {exc.__class__.__name__}") from exc

                yield Snapshot(header, recipients())
        except (httpx.HTTPError, ValidationError) as exc:
            raise Unavailable(f"composer: snapshot unreadable: {exc.__class__.__name__}") from exc
