"""campaign.accepted: read the composer's snapshot, create one delivery per recipient, cut batches.

Runs inside the consumer's transaction that records the event id, so a redelivered event creates
nothing twice; the campaign's primary key guards against a second event for the same campaign. The
batches are rows here; the scheduler publishes them to the work queue after this transaction commits.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from itertools import zip_longest
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_shared.db import Conn
from isseimail_shared.events import CampaignAccepted, Envelope
from isseimail_shared.mailmerge import CampaignTemplate, Recipient

log = logging.getLogger(__name__)

BATCHES_NOTIFY = "isseimail_dispatcher_batches"
MAX_LINE = 1 << 26  # the header line carries the template with its attachments (a few MB)


class SnapshotError(RuntimeError):
    """The composer's snapshot could not be read or is malformed; the event is retried, then DLQ'd."""


class SnapshotHeader(BaseModel):
    campaign_id: uuid.UUID
    sender_email: str
    sender_name: str = ""
    subject: str
    recipient_count: int


async def _lines(response: httpx.Response) -> AsyncIterator[bytes]:
    buffer = b""
    async for chunk in response.aiter_bytes():
        buffer += chunk
        if len(buffer) > MAX_LINE:
            raise SnapshotError("snapshot line too long")
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


async def read_snapshot(
    client: httpx.AsyncClient, campaign_id: uuid.UUID
) -> tuple[SnapshotHeader, str, list[Recipient]]:
    """(campaign header, template JSON, recipients) from GET /internal/campaigns/{id}/snapshot."""
    recipients: list[Recipient] = []
    try:
        async with client.stream("GET", f"/internal/campaigns/{campaign_id}/snapshot") as response:
            if response.status_code != 200:
                raise SnapshotError(f"composer answered {response.status_code} for the snapshot")
            lines = _lines(response)
            first = await anext(lines, None)
            if first is None:
                raise SnapshotError("empty snapshot")
            head: dict[str, Any] = json.loads(first)
            header = SnapshotHeader.model_validate(head["campaign"])
            template = CampaignTemplate.model_validate(head["template"])
            async for line in lines:
                recipients.append(Recipient.model_validate_json(line))
    except (httpx.HTTPError, ValueError, KeyError, TypeError, ValidationError) as exc:
        raise SnapshotError(f"snapshot unreadable: {exc.__class__.__name__}") from exc
    if header.campaign_id != campaign_id:
        raise SnapshotError("snapshot is for another campaign")
    return header, template.model_dump_json(), recipients


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower()


def cut_batches(recipients: list[Recipient], size: int) -> list[tuple[str, list[Recipient]]]:
    """Recipients grouped by domain, each group cut into batches of at most `size`, in rounds: every domain's
    first batch, then every domain's second, ... Batches are published in this order, so the workers' first
    batches spread over many domains instead of queueing behind one domain's politeness limit."""
    by_domain: dict[str, list[Recipient]] = defaultdict(list)
    for r in recipients:
        by_domain[domain_of(r.email)].append(r)
    per_domain = [
        [(domain, group[i : i + size]) for i in range(0, len(group), size)]
        for domain, group in sorted(by_domain.items())
    ]
    return [batch for round_ in zip_longest(*per_domain) for batch in round_ if batch is not None]


def campaign_accepted(settings: DispatcherSettings, client: httpx.AsyncClient) -> Any:
    async def handle(conn: Conn, envelope: Envelope, event: CampaignAccepted) -> None:
        if await conn.fetchval("SELECT 1 FROM campaigns WHERE campaign_id = $1", event.campaign_id):
            log.info("campaign %s already accepted", event.campaign_id)
            return
        header, template_json, recipients = await read_snapshot(client, event.campaign_id)
        rows = {r.row: r for r in recipients}  # a repeated row number is kept once
        recipients = list(rows.values())
        await conn.execute(
            "INSERT INTO campaigns (campaign_id, pass_id, sender_email, subject, template, total) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            event.campaign_id,
            event.pass_id,
            header.sender_email,
            header.subject,
            template_json,
            len(recipients),
        )
        batches = cut_batches(recipients, settings.batch_size)
        ids: list[int] = [
            r[0] for r in await conn.fetch("SELECT nextval('batches_id_seq') FROM generate_series(1, $1)", len(batches))
        ]
        await conn.copy_records_to_table(
            "batches",
            records=[(bid, event.campaign_id, domain) for bid, (domain, _) in zip(ids, batches, strict=True)],
            columns=["id", "campaign_id", "domain"],
        )
        records = [
            (event.campaign_id, r.row, r.email, domain, r.model_dump_json(), bid)
            for bid, (domain, group) in zip(ids, batches, strict=True)
            for r in group
        ]
        await conn.copy_records_to_table(
            "deliveries",
            records=records,
            columns=["campaign_id", "row_number", "email", "domain", "recipient", "batch_id"],
        )
        await conn.execute("SELECT pg_notify($1, '')", BATCHES_NOTIFY)
        log.info(
            "campaign %s accepted: %d recipients in %d batches",
            event.campaign_id,
            len(recipients),
            len(batches),
        )

    return handle
