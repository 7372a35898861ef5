"""Transactional outbox: the state change and its event commit together; a relay publishes them.

`add_event` runs inside the caller's transaction. The relay takes unpublished rows with
FOR UPDATE SKIP LOCKED (so replicas share the work), publishes each with a publisher confirm, and
marks them sent in the same transaction. If the broker is down the transaction rolls back and the
rows wait; a crash after publish but before commit republishes, which consumers absorb by event_id.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import asyncpg

from isseimail_shared.db import Conn, Wakeup
from isseimail_shared.events import Envelope, Event, encode, envelope_for
from isseimail_shared.messaging import Broker
from isseimail_shared.metrics import OUTBOX_BACKLOG

log = logging.getLogger(__name__)

BATCH = 500
KEEP_PUBLISHED = "7 days"


def notify_channel(schema: str) -> str:
    return f"isseimail_outbox_{schema}"


async def add_event(conn: Conn, event: Event, *, event_id: uuid.UUID | None = None) -> Envelope:
    """Write the event to this service's outbox; call it inside the transaction of the state change."""
    if not conn.is_in_transaction():
        raise RuntimeError("add_event must run inside the state change's transaction")
    envelope = envelope_for(event, event_id=event_id)
    await conn.execute(
        "INSERT INTO outbox (event_id, routing_key, body) VALUES ($1, $2, $3)",
        envelope.event_id,
        envelope.type,
        encode(envelope),
    )
    schema = await conn.fetchval("SELECT current_schema()")
    await conn.execute("SELECT pg_notify($1, '')", notify_channel(schema))
    return envelope


async def add_envelopes(conn: Conn, envelopes: list[Envelope], *, notify: bool = True) -> None:
    """Write many events in one statement, inside the state change's transaction.

    `notify=False` leaves them to the relay's next poll: NOTIFY serialises committing transactions on a
    global lock, which the hot path (deliveries sent) need not pay.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("add_envelopes must run inside the state change's transaction")
    await conn.execute(
        "INSERT INTO outbox (event_id, routing_key, body) SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[])",
        [e.event_id for e in envelopes],
        [e.type for e in envelopes],
        [encode(e) for e in envelopes],
    )
    if notify:
        await conn.execute("SELECT pg_notify('isseimail_outbox_' || current_schema(), '')")


class OutboxRelay:
    def __init__(self, pool: asyncpg.Pool, broker: Broker, *, service: str, schema: str, poll: float) -> None:
        self._pool = pool
        self._broker = broker
        self._service = service
        self._schema = schema
        self._poll = poll
        self._wakeup = Wakeup(pool, notify_channel(schema))

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished events; returns how many were published."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, event_id, routing_key, body FROM outbox WHERE published_at IS NULL "
                "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                BATCH,
            )
            if not rows:
                return 0
            # All published at once, their confirms awaited together: one round of confirms per batch.
            await asyncio.gather(
                *(self._broker.publish_encoded(r["routing_key"], r["event_id"], bytes(r["body"])) for r in rows)
            )
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
        return len(rows)

    async def backlog(self) -> int:
        count: int = await self._pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        OUTBOX_BACKLOG.labels(self._service).set(count)
        return count

    async def run(self) -> None:
        """Publish until cancelled; wakes on NOTIFY from add_event, polls as a fallback."""
        rounds = 0
        while True:
            try:
                while await self.publish_pending() == BATCH:
                    pass
                rounds += 1
                if rounds % 60 == 0:
                    await self._pool.execute(
                        f"DELETE FROM outbox WHERE published_at < now() - interval '{KEEP_PUBLISHED}'"
                    )
                await self.backlog()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Broker or database away: keep the rows, try again after the poll interval.
                log.warning("outbox relay could not publish: %s", exc.__class__.__name__)
            await self._wakeup.wait(self._poll)

    async def close(self) -> None:
        await self._wakeup.close()
