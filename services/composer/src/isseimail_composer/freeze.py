"""On pass.consumed: freeze the campaign into an immutable snapshot and announce campaign.accepted.

Runs inside the inbox transaction that records the event id, so the snapshot, the state change and the
outgoing event commit together or not at all. A second pass.consumed for the same campaign finds it
frozen and changes nothing. The recipient rows are read once from the list validator, streamed
straight into COPY; if it cannot be reached the handler raises and the event is retried.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from isseimail_composer import drafts
from isseimail_composer.attachment_safety import AttachmentGuard
from isseimail_shared.clients.list_validator import ListsClient
from isseimail_shared.contracts.composer import SnapshotCampaign, SnapshotHeader
from isseimail_shared.db import Conn
from isseimail_shared.events import CampaignAccepted, Envelope, PassConsumed
from isseimail_shared.mailmerge import CampaignTemplate, Recipient
from isseimail_shared.outbox import add_event

log = logging.getLogger(__name__)

ROW_COLUMNS = ("campaign_id", "row_no", "email", "company", "department1", "department2", "contact")


def sender_copy(sender_email: str, sender_name: str) -> Recipient:
    """The sender's own copy (row 0): the addressee block shows the sender."""
    return Recipient(row=0, email=sender_email, contact=sender_name)


async def _mark_failed(conn: Conn, campaign_id: object, reason: str) -> None:
    log.error("campaign %s cannot be frozen: %s", campaign_id, reason)
    await conn.execute("UPDATE campaigns SET state = 'failed', failure = $2 WHERE id = $1", campaign_id, reason)


class AttachmentsUnscanned(Exception):
    """clamd could not scan an attachment at freeze: the event is retried, nothing goes out unscanned."""


def on_pass_consumed(
    lists: ListsClient, guard: AttachmentGuard
) -> Callable[[Conn, Envelope, PassConsumed], Awaitable[None]]:
    async def handle(conn: Conn, envelope: Envelope, event: PassConsumed) -> None:
        stored = await drafts.load(conn, event.campaign_id, for_update=True)
        if stored is None:
            log.warning("pass.consumed for unknown campaign %s; nothing to freeze", event.campaign_id)
            return
        if stored.state != "draft":
            log.info("campaign %s already %s; pass.consumed changes nothing", event.campaign_id, stored.state)
            return
        if stored.pass_id != event.pass_id:
            log.error("campaign %s belongs to another pass than %s", event.campaign_id, event.pass_id)
            return
        draft = stored.draft
        # Checked again at freeze: the signatures or the policy may have changed since the draft was stored.
        problems = await guard.problems(draft.attachments)
        if any("scan_failed" in p.reasons for p in problems):
            raise AttachmentsUnscanned(f"campaign {stored.campaign_id}: attachments could not be scanned")
        if problems:
            reasons = "; ".join(f"{p.filename}: {','.join(p.reasons)}" for p in problems)
            await _mark_failed(conn, stored.campaign_id, f"attachment refused at freeze: {reasons}")
            return
        info = await lists.get_list(draft.list_id, stored.pass_id)
        if info is None or info.status != "valid" or info.pass_id != stored.pass_id:
            await _mark_failed(conn, stored.campaign_id, f"list {draft.list_id} is not a valid list of this pass")
            return
        template = stored.template()
        counted = 0

        async def records() -> AsyncIterator[tuple[object, ...]]:
            nonlocal counted
            async for r in lists.rows(draft.list_id, stored.pass_id):
                if r.row < 1:
                    raise ValueError(f"list {draft.list_id} has a row numbered {r.row}")
                counted += 1
                yield (stored.campaign_id, r.row, r.email, r.company, r.department1, r.department2, r.contact)

        # snapshot_rows references snapshots DEFERRABLE: the rows go first, the count is known after.
        await conn.copy_records_to_table("snapshot_rows", records=records(), columns=ROW_COLUMNS)
        recipient_count = counted + 1  # the sender's own copy is a recipient too
        await conn.execute(
            "INSERT INTO snapshots (campaign_id, pass_id, list_id, sender_email, sender_name, subject,"
            " recipient_count, template) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            stored.campaign_id,
            stored.pass_id,
            draft.list_id,
            draft.sender_email,
            draft.sender_name,
            draft.subject,
            recipient_count,
            template.model_dump_json(),
        )
        await conn.execute(
            "UPDATE campaigns SET state = 'frozen', updated_at = now() WHERE id = $1", stored.campaign_id
        )
        await add_event(
            conn,
            CampaignAccepted(
                campaign_id=stored.campaign_id,
                pass_id=stored.pass_id,
                recipient_count=recipient_count,
                sender_email=draft.sender_email,
                subject=draft.subject,
                sender_name=draft.sender_name,
            ),
        )
        log.info("campaign %s frozen with %d recipients", stored.campaign_id, recipient_count)

    return handle


def campaign_header(record: Mapping[str, Any]) -> SnapshotHeader:
    """The snapshot's first NDJSON line, from the stored snapshot row."""
    campaign = SnapshotCampaign(
        campaign_id=record["campaign_id"],
        sender_email=record["sender_email"],
        sender_name=record["sender_name"],
        subject=record["subject"],
        recipient_count=record["recipient_count"],
    )
    return SnapshotHeader(campaign=campaign, template=CampaignTemplate.model_validate_json(record["template"]))
