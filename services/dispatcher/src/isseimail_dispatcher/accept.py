"""campaign.accepted: stream the composer's snapshot into COPY, create one delivery per recipient, cut batches.

Runs inside the consumer's transaction that records the event id, so a redelivered event creates
nothing twice; the campaign's primary key guards against a second event for the same campaign. The
batches are rows here; the scheduler publishes them to the work queue after this transaction commits.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_shared.clients.base import Unavailable
from isseimail_shared.clients.composer import ComposerClient, Snapshot
from isseimail_shared.db import Conn
from isseimail_shared.events import CampaignAccepted, Envelope
from isseimail_shared.mailmerge import Recipient

log = logging.getLogger(__name__)

BATCHES_NOTIFY = "isseimail_dispatcher_batches"
ANALYZE_AFTER = 10_000  # recipients of one campaign that make the deliveries table's statistics stale


class SnapshotError(RuntimeError):
    """The composer's snapshot could not be read or is malformed; the event is retried, then DLQ'd."""


@contextlib.asynccontextmanager
async def open_snapshot(client: ComposerClient, campaign_id: uuid.UUID) -> AsyncIterator[Snapshot]:
    """The composer's snapshot, header parsed, recipients left on the wire until iterated."""
    try:
        async with client.snapshot(campaign_id) as snapshot:
            yield snapshot
    except Unavailable as exc:
        raise SnapshotError(str(exc)) from exc


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower()


# Batches cut in the database from the streamed rows: a repeated CSV row number is kept once (its last
# occurrence); each domain's recipients, in snapshot order, are cut into batches of at most $1; the
# batch ids go in rounds over the domains (every domain's first batch, then every domain's second, ...),
# the order the scheduler publishes them in, so the first batches workers take spread over many domains
# instead of queueing behind one domain's politeness limit.
_NUMBER = (
    "CREATE TEMP TABLE numbered ON COMMIT DROP AS "
    "SELECT *, (row_number() OVER (PARTITION BY domain ORDER BY seq) - 1) / $1 AS k "
    "FROM (SELECT DISTINCT ON (row_number) * FROM incoming ORDER BY row_number, seq DESC) kept"
)
_CUT = (
    "CREATE TEMP TABLE cut ON COMMIT DROP AS "
    "SELECT k, domain, nextval('batches_id_seq') AS id "
    "FROM (SELECT DISTINCT k, domain FROM numbered ORDER BY k, domain) b"
)


async def store_recipients(
    conn: Conn, campaign_id: uuid.UUID, recipients: AsyncIterator[Recipient], batch_size: int
) -> tuple[int, int]:
    """COPY the streamed recipients, cut them into batches; returns (recipients, batches). Memory stays flat."""
    await conn.execute(
        "CREATE TEMP TABLE incoming (seq bigint, row_number int, email text, domain text, recipient text) "
        "ON COMMIT DROP"
    )

    async def records() -> AsyncIterator[tuple[object, ...]]:
        seq = 0
        async for r in recipients:
            seq += 1
            yield (seq, r.row, r.email, domain_of(r.email), r.model_dump_json())

    await conn.copy_records_to_table(
        "incoming", records=records(), columns=["seq", "row_number", "email", "domain", "recipient"]
    )
    await conn.execute(_NUMBER, batch_size)
    await conn.execute(_CUT)
    batches = await conn.fetchval(
        "WITH b AS (INSERT INTO batches (id, campaign_id, domain) SELECT id, $1, domain FROM cut RETURNING 1) "
        "SELECT count(*) FROM b",
        campaign_id,
    )
    # Ordered by batch: a batch's deliveries get consecutive ids (the notifier keeps each group as an id range).
    total = await conn.fetchval(
        "WITH d AS (INSERT INTO deliveries (campaign_id, row_number, email, domain, recipient, batch_id) "
        "SELECT $1, n.row_number, n.email, n.domain, n.recipient::jsonb, c.id FROM numbered n "
        "JOIN cut c USING (k, domain) ORDER BY c.id, n.seq RETURNING 1) SELECT count(*) FROM d",
        campaign_id,
    )
    await conn.execute("DROP TABLE incoming, numbered, cut")
    if total >= ANALYZE_AFTER:
        # Fresh statistics after a bulk load, whether or not autovacuum runs (or has run yet): without them
        # the planner takes `next_attempt_at IS NOT NULL` for nearly every row, and the scheduler's count of
        # waiting retries became a parallel scan of the whole table every second (a third of PostgreSQL's
        # CPU in a 1,000,000-recipient campaign) instead of a look at the partial index deliveries_due.
        await conn.execute("ANALYZE deliveries")
    return int(total), int(batches)


def campaign_accepted(settings: DispatcherSettings, client: ComposerClient) -> Any:
    async def handle(conn: Conn, envelope: Envelope, event: CampaignAccepted) -> None:
        if await conn.fetchval("SELECT 1 FROM campaigns WHERE campaign_id = $1", event.campaign_id):
            log.info("campaign %s already accepted", event.campaign_id)
            return
        async with open_snapshot(client, event.campaign_id) as snapshot:
            await conn.execute(
                "INSERT INTO campaigns (campaign_id, pass_id, sender_email, subject, template, total) "
                "VALUES ($1, $2, $3, $4, $5, 0)",
                event.campaign_id,
                event.pass_id,
                snapshot.header.campaign.sender_email,
                snapshot.header.campaign.subject,
                snapshot.header.template.model_dump_json(),
            )
            total, batches = await store_recipients(conn, event.campaign_id, snapshot.recipients, settings.batch_size)
        await conn.execute("UPDATE campaigns SET total = $2 WHERE campaign_id = $1", event.campaign_id, total)
        await conn.execute("SELECT pg_notify($1, '')", BATCHES_NOTIFY)
        log.info("campaign %s accepted: %d recipients in %d batches", event.campaign_id, total, batches)

    return handle
