"""The SMTP worker: takes a batch from the work queue and sends it over one reused connection.

Exactly-once, as far as SMTP allows: a worker claims the batch row (renewing the claim while it
works), so a batch redelivered to a second worker while the first still sends is skipped; outcomes
commit in groups (outcome_group.py), so a SIGKILL repeats at most `outcome_flush_count` + 1 messages per
connection. When the database goes away the worker holds its place and waits for it: nothing
is resent, the batch message stays unacked, and the work resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from isseimail_dispatcher import adaptive, campaign_control, limits, metrics, outcomes, shaping_targets
from isseimail_dispatcher.destinations import ConnectionPool, Host, Router
from isseimail_dispatcher.dkim_signing import DkimSigner, Keyring
from isseimail_dispatcher.metrics import (
    ACTIVE_CONNECTIONS,
    BATCHES_IN_FLIGHT,
    BYTES_SENT,
    MESSAGES,
    THROTTLE_EVENTS,
    TRANSACTION_SECONDS,
    reply_class,
)
from isseimail_dispatcher.outcome_group import OutcomeCommitter, OutcomeGroup, Pending
from isseimail_dispatcher.outcomes import CampaignInfo, Outcome, Settled
from isseimail_dispatcher.send_suppression import SKIPPED, SuppressionCheck
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_dispatcher.shaping import DomainLimit
from isseimail_dispatcher.smtp_client import SmtpConnection, SmtpError
from isseimail_dispatcher.unsubscribe_header import list_unsubscribe
from isseimail_dispatcher.work_messages import BatchMessage
from isseimail_shared.clients.notifier import NotifierClient
from isseimail_shared.events import SUPPRESSED_AT_SEND
from isseimail_shared.mailmerge import CampaignTemplate, Recipient
from isseimail_shared.verp import bounce_address
from isseimail_shared.work_handler import Handled, work_handler

log = logging.getLogger(__name__)

T = TypeVar("T")
DB_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,  # the server is full: wait, as for an outage (a requeue would resend a group)
)
TOKEN_CHUNK = 20
# A fast domain's tokens are taken this many seconds of its rate at a time (one statement per chunk): a whole
# batch at a time when the limits allow it, 20 at the default 600 a minute.
TOKEN_SECONDS = 0.25
STATUS_CHECK_SECONDS = 1.0
# The rest of a batch is asked of the notifier again this often (an HTTP call with up to a batch of addresses):
# a suppression that arrives mid-campaign comes from another campaign's bounce or complaint, so seconds do not
# matter, while asking every second cost the notifier and the worker CPU on every in-flight batch.
SUPPRESSION_RECHECK_SECONDS = 10.0
TEMPLATE_CACHE = 4
CLOSE_WAIT_SECONDS = 10.0


class Campaign:
    def __init__(self, info: CampaignInfo, template: CampaignTemplate) -> None:
        self.info = info
        self.template = template
        self.sender_domain = info.sender_email.rpartition("@")[2] or "localhost"
        self.signer: DkimSigner | None = None  # the sender domain's DKIM keys, loaded again at each batch claim


class BatchWorker:
    def __init__(self, pool: asyncpg.Pool, settings: DispatcherSettings, claim_ttl: float = 30.0) -> None:
        metrics.initialise(settings.shaping.named_domains())
        self.pool = pool
        self.settings = settings
        self.holder = uuid.uuid4()
        self.claim_ttl = claim_ttl
        self.connections = ConnectionPool(settings, Router(settings))
        self.dkim = Keyring(settings)
        self._campaigns: OrderedDict[uuid.UUID, Campaign] = OrderedDict()
        self._secret = settings.verp_secret.get_secret_value().encode()
        self._active: dict[int, asyncio.Task[None]] = {}  # batches this process is sending now
        self.stopping = False  # SIGTERM: finish the message on the wire, hand the rest back
        self._adapt = settings.adaptation()
        self._named_domains = frozenset(settings.shaping.named_domains())
        self._slowdowns: Counter[str] = Counter()  # rate decreases seen per domain by this process
        self.suppressions = SuppressionCheck(
            NotifierClient(settings.notifier_url, settings.internal_tokens, timeout=10.0, connect_timeout=3.0)
        )
        # Every connection's outcomes, committed together (outcome_group.py).
        self.commits = OutcomeCommitter(self._commit, seconds=settings.outcome_flush_seconds)
        # The batch queue's consumer callback: invalid → DLQ, failure → backoff and requeue, else ack.
        self.on_message = work_handler(BatchMessage.decode, self._handle, queue=BatchMessage.queue)

    # --- the message handler ----------------------------------------------------------------------

    async def _handle(self, message: BatchMessage) -> Handled:
        batch_id = message.batch_id
        if batch_id in self._active:
            # Redelivered (the broker lost our channel) while this process still sends it.
            return "duplicate"
        # The batch runs in a task of its own: when the broker connection drops, aio-pika cancels the message
        # callback, and a cancellation between DATA and the server's reply would leave a delivered message
        # `sending`, to be sent again. The send goes on; only the ack is lost (the claim makes the redelivery
        # a no-op).
        task = asyncio.create_task(self._run(batch_id), name=f"batch-{batch_id}")
        self._active[batch_id] = task
        await asyncio.shield(task)
        return "processed"

    async def _run(self, batch_id: int) -> None:
        BATCHES_IN_FLIGHT.inc()
        try:
            await self.process(batch_id)
        finally:
            BATCHES_IN_FLIGHT.dec()
            self._active.pop(batch_id, None)

    async def _commit(self, pending: list[Pending]) -> None:
        groups: dict[CampaignInfo, list[Settled]] = {}
        for campaign, item in pending:
            groups.setdefault(campaign, []).append(item)
        await self._db(
            lambda: outcomes.flush_all(
                self.pool, groups, base=self.settings.retry_base_seconds, max_age=self.settings.retry_max_age
            )
        )

    async def _db(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run a database operation, waiting out an outage instead of giving up the batch."""
        delay = 0.2
        while True:
            try:
                return await op()
            except DB_ERRORS as exc:
                log.warning("database unreachable (%s); worker paused", exc.__class__.__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # --- one batch --------------------------------------------------------------------------------

    async def process(self, batch_id: int) -> None:
        claimed = await self._db(lambda: self._claim(batch_id))
        if claimed is None:
            return
        campaign, domain, rows, status = claimed
        if status in campaign_control.HALTED:
            await self._db(lambda: self._release(batch_id, done=False))
            return
        heartbeat = asyncio.create_task(self._heartbeat(batch_id))
        try:
            await self._send_rows(campaign, domain, rows)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        left = await self._db(lambda: self._release(batch_id, done=True))
        if not left:
            await self._db(
                lambda: outcomes.check_campaign(
                    self.pool,
                    campaign.info,
                    pause_rate=self.settings.pause_on_failure_rate,
                    pause_min=self.settings.pause_min_attempts,
                )
            )

    async def _claim(self, batch_id: int) -> tuple[Campaign, str, list[asyncpg.Record], str] | None:
        async with self.pool.acquire() as conn, conn.transaction():
            batch = await conn.fetchrow(
                "UPDATE batches SET claimed_by = $2, claimed_until = now() + make_interval(secs => $3) "
                "WHERE id = $1 AND done_at IS NULL "
                "AND (claimed_by IS NULL OR claimed_by = $2 OR claimed_until < now()) RETURNING campaign_id, domain",
                batch_id,
                self.holder,
                self.claim_ttl,
            )
            if batch is None:
                return None  # done, unknown, or a live worker has it
            # Read first: an UPDATE, even one that matches nothing, waits for the row lock of every outcome
            # commit adding to the campaign's counters (most claims queued there, sampled in the dispatch bench).
            status = await conn.fetchval("SELECT status FROM campaigns WHERE campaign_id = $1", batch["campaign_id"])
            if status == "accepted":
                status = await conn.fetchval(
                    "UPDATE campaigns SET status = 'dispatching', started_at = coalesce(started_at, now()) "
                    "WHERE campaign_id = $1 AND status = 'accepted' RETURNING status",
                    batch["campaign_id"],
                ) or await conn.fetchval("SELECT status FROM campaigns WHERE campaign_id = $1", batch["campaign_id"])
            campaign = await self._campaign(conn, batch["campaign_id"])
            campaign.signer = await self.dkim.signer_for(conn, campaign.sender_domain)
            if status in campaign_control.HALTED:
                return campaign, batch["domain"], [], status
            # 'sending' rows are what a dead worker left: at most one of them actually went out.
            rows = await conn.fetch(
                "UPDATE deliveries SET state = 'sending' WHERE batch_id = $1 "
                "AND state IN ('pending', 'retrying', 'sending') "
                "RETURNING id, row_number, email, recipient, attempts, first_attempt_at",
                batch_id,
            )
        return campaign, batch["domain"], sorted(rows, key=lambda r: r["id"]), str(status)

    async def _campaign(self, conn: asyncpg.pool.PoolConnectionProxy, campaign_id: uuid.UUID) -> Campaign:
        cached = self._campaigns.get(campaign_id)
        if cached is not None:
            self._campaigns.move_to_end(campaign_id)
            return cached
        row = await conn.fetchrow(
            "SELECT sender_email, subject, template FROM campaigns WHERE campaign_id = $1", campaign_id
        )
        assert row is not None
        campaign = Campaign(
            CampaignInfo(campaign_id, row["sender_email"], row["subject"]),
            CampaignTemplate.model_validate_json(row["template"]),
        )
        self._campaigns[campaign_id] = campaign
        while len(self._campaigns) > TEMPLATE_CACHE:
            self._campaigns.popitem(last=False)
        return campaign

    async def _release(self, batch_id: int, *, done: bool) -> int:
        """Give the batch up (done or paused); returns how many of its recipients are still open."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE deliveries SET state = 'pending' WHERE batch_id = $1 AND state = 'sending'", batch_id
            )
            left: int = await conn.fetchval(
                "SELECT count(*) FROM deliveries WHERE batch_id = $1 AND state = 'pending'", batch_id
            )
            # Done with recipients left (a pause or a shutdown came mid-batch): unpublished again, so the
            # scheduler hands it to the next worker; a paused campaign's batch then parks on claim.
            await conn.execute(
                "UPDATE batches SET claimed_by = NULL, claimed_until = NULL, "
                "done_at = CASE WHEN $2 AND $3 = 0 THEN now() END, "
                "published_at = CASE WHEN $2 AND $3 > 0 THEN NULL ELSE published_at END "
                "WHERE id = $1 AND claimed_by = $4",
                batch_id,
                done,
                left,
                self.holder,
            )
        return left

    async def _heartbeat(self, batch_id: int) -> None:
        while True:
            await asyncio.sleep(self.claim_ttl / 3)
            with contextlib.suppress(*DB_ERRORS):
                await self.pool.execute(
                    "UPDATE batches SET claimed_until = now() + make_interval(secs => $3) "
                    "WHERE id = $1 AND claimed_by = $2",
                    batch_id,
                    self.holder,
                    self.claim_ttl,
                )
                await limits.renew_leases(self.pool, self.holder, self.claim_ttl)

    async def _campaign_status(self, campaign_id: uuid.UUID) -> str:
        status: str = await self._db(
            lambda: self.pool.fetchval("SELECT status FROM campaigns WHERE campaign_id = $1", campaign_id)
        )
        return status

    async def _send_rows(self, campaign: Campaign, domain: str, rows: list[asyncpg.Record]) -> None:
        if not rows:
            return
        limit = self.settings.limit_for(domain, await self.connections.mx_names(domain))
        buckets = shaping_targets.buckets(self.settings, domain, limit)  # + the relay's in relay mode
        per_connection = shaping_targets.messages_per_connection(self.settings, limit)
        lease = await self._db(lambda: limits.wait_for_lease(self.pool, domain, limit, self.holder, self.claim_ttl))
        # Named series only for domains with their own limits: thousands of small domains would
        # otherwise each get a time series.
        gauge = ACTIVE_CONNECTIONS.labels(self._domain_label(domain))
        gauge.inc()
        host: Host | None = None
        conn: SmtpConnection | None = None
        group = OutcomeGroup(self.commits, campaign.info, count=self.settings.outcome_flush_count)
        tokens, chunk = 0, token_chunk(buckets)
        then: tuple[str, str] | None = None  # the envelope of row `then_id`, sent ahead with the last message
        then_id = 0
        slowdowns = sum(self._slowdowns[key] for key, _ in buckets)
        next_status_check = time.monotonic() + STATUS_CHECK_SECONDS
        next_suppression_check = time.monotonic() + SUPPRESSION_RECHECK_SECONDS
        suppressed = await self._suppressed(campaign, rows)
        try:
            for index, row in enumerate(rows):
                if self.stopping:
                    return  # _release puts the rest back to pending and the batch back on the queue
                if time.monotonic() > next_status_check:
                    await group.flush()
                    next_status_check = time.monotonic() + STATUS_CHECK_SECONDS
                    if await self._campaign_status(campaign.info.campaign_id) in campaign_control.HALTED:
                        return  # _release puts the rest back to pending
                    if time.monotonic() >= next_suppression_check:
                        suppressed = await self._suppressed(campaign, rows[index:])
                        next_suppression_check = time.monotonic() + SUPPRESSION_RECHECK_SECONDS
                if row["email"].lower() in suppressed:
                    await self._skip_suppressed(group, row)
                    continue
                # The envelope computed for sending ahead is this row's when no row was skipped since.
                envelope = then if then is not None and then_id == row["id"] else self._envelope(campaign, row)
                if conn is not None and conn.ahead not in (None, envelope):
                    conn.abort()  # an envelope sent ahead for a row not sent after all (newly suppressed)
                if sum(self._slowdowns[key] for key, _ in buckets) != slowdowns:  # a rate was lowered: tokens void
                    tokens, slowdowns = 0, sum(self._slowdowns[key] for key, _ in buckets)
                while tokens == 0:
                    want = min(chunk, len(rows) - index)
                    tokens, wait = await self._db(
                        lambda w=want: limits.take_tokens_all(self.pool, buckets, w, self._adapt)  # type: ignore[misc]
                    )
                    if tokens == 0:
                        await group.flush()  # nothing waits uncommitted while the worker waits
                        if conn is not None and conn.ahead is not None:
                            conn.abort()  # the server would wait for data as long as we wait for tokens
                        await asyncio.sleep(wait)
                tokens -= 1
                if conn is None or (conn.broken and not conn.refusal_waiting(envelope)):
                    if conn is not None and host is not None:
                        await self.connections.release(host, conn)
                    conn = None
                    await group.flush()
                    try:
                        host, conn = await self.connections.connect(domain)
                    except SmtpError as exc:
                        # No connection: every recipient left in the batch shares the outcome.
                        await self._note_rate_limit(domain, exc)
                        for rest in rows[index:]:
                            await self._outcome(group, rest, exc, note_rate_limit=False)
                        return
                then = None  # the next row's envelope goes out with this message's data when it will surely follow
                if tokens and index + 1 < len(rows) and (not per_connection or conn.transactions + 1 < per_connection):
                    following = rows[index + 1]
                    if following["email"].lower() not in suppressed:
                        then, then_id = self._envelope(campaign, following), following["id"]
                await self._send_one(campaign, group, conn, row, envelope, then)
                if per_connection and conn.transactions >= per_connection:
                    await conn.quit()  # the host's (mx) or relay's messages-per-connection limit: reconnect
        finally:
            await group.flush()  # before the batch is handed back or released: no outcome is dropped
            if conn is not None and host is not None:
                await self.connections.release(host, conn)
            gauge.dec()
            with contextlib.suppress(*DB_ERRORS):
                await limits.release_lease(self.pool, lease, self.holder)

    async def _suppressed(self, campaign: Campaign, rows: list[asyncpg.Record]) -> set[str]:
        """Addresses of `rows` suppressed since the list was checked (the copy to the sender is never)."""
        return await self.suppressions.suppressed(
            campaign.info.sender_email, (r["email"] for r in rows if r["row_number"] != 0)
        )

    async def _skip_suppressed(self, group: OutcomeGroup, row: asyncpg.Record) -> None:
        SKIPPED.inc()
        await group.add(settled(row, "failed", Outcome(None, None, SUPPRESSED_AT_SEND)))

    def _envelope(self, campaign: Campaign, row: asyncpg.Record) -> tuple[str, str]:
        """(bounce address, recipient): the row's SMTP envelope."""
        verp = bounce_address(self._secret, self.settings.bounce_domain, campaign.info.campaign_id, row["id"])
        return verp, row["email"]

    async def _send_one(
        self,
        campaign: Campaign,
        group: OutcomeGroup,
        conn: SmtpConnection,
        row: asyncpg.Record,
        envelope: tuple[str, str],
        then: tuple[str, str] | None,
    ) -> None:
        delivery_id: int = row["id"]
        recipient = Recipient.model_validate_json(row["recipient"])
        verp = envelope[0]
        try:
            message = campaign.template.stamp(
                recipient,
                message_id=f"<{campaign.info.campaign_id.hex}.{delivery_id}@{campaign.sender_domain}>",
                bounce_address=verp,
                list_unsubscribe=list_unsubscribe(
                    self._secret,
                    bounce_domain=self.settings.bounce_domain,
                    public_url=self.settings.public_url,
                    campaign_id=campaign.info.campaign_id,
                    delivery_id=delivery_id,
                    recipient=row["email"],
                    sender_email=campaign.info.sender_email,
                ),
            )
        except ValueError as exc:
            if conn.ahead == envelope:
                conn.abort()  # its envelope went ahead: the server waits for data that will not come
            await self._outcome(group, row, SmtpError(str(exc), None), permanent_text=str(exc))
            return
        if campaign.signer is not None:
            message = await campaign.signer.sign(message)
        started = time.perf_counter()
        try:
            reply = await conn.send(verp, row["email"], message, then=then)
        except SmtpError as exc:
            await self._outcome(group, row, exc)
            return
        TRANSACTION_SECONDS.observe(time.perf_counter() - started)
        BYTES_SENT.inc(len(message))
        MESSAGES.labels("sent", reply_class(reply.code), self._domain_label(row["email"])).inc()
        await group.add(settled(row, "sent", Outcome(reply.code, reply.enhanced, reply.text)))

    async def _outcome(
        self,
        group: OutcomeGroup,
        row: asyncpg.Record,
        exc: SmtpError,
        permanent_text: str | None = None,
        *,
        note_rate_limit: bool = True,
    ) -> None:
        reply = exc.reply
        if permanent_text is not None:
            outcome = Outcome(None, None, permanent_text)
        elif reply is not None:
            outcome = Outcome(reply.code, reply.enhanced, reply.text)
        else:
            outcome = Outcome(None, None, str(exc))
        code = reply.code if reply else None
        if exc.permanent or permanent_text is not None:
            MESSAGES.labels("failed", reply_class(code), self._domain_label(row["email"])).inc()
            await group.add(settled(row, "failed", outcome))
            return
        MESSAGES.labels("retry", reply_class(code), self._domain_label(row["email"])).inc()
        if note_rate_limit:
            await self._note_rate_limit(row["email"].rpartition("@")[2].strip().lower(), exc)
        await group.add(settled(row, "temporary", outcome))

    async def _note_rate_limit(self, domain: str, exc: SmtpError) -> None:
        """A rate-limit reply lowers the fleet-wide rate of the domain (mx mode) or of the relay (relay mode,
        shaping_targets.py); the recipient is retried as any 4xx."""
        reply = exc.reply
        if reply is None or not adaptive.is_rate_limit(reply.code, reply.enhanced, reply.text):
            return
        mx_names = await self.connections.mx_names(domain)
        key, limit = shaping_targets.throttle_target(self.settings, domain, mx_names)
        text = f"{reply.code} {reply.text}"
        result = await self._db(lambda: limits.record_rate_limit(self.pool, key, limit, self._adapt, text))
        label = shaping_targets.metric_label(key, self._domain_label(domain))
        THROTTLE_EVENTS.labels(label, "decreased" if result.decreased else "held").inc()
        if result.decreased:
            self._slowdowns[key] += 1
            log.warning("%s asks to slow down (%s): now %.1f messages/min", key, text[:200], result.per_minute)

    def _domain_label(self, address_or_domain: str) -> str:
        domain = address_or_domain.rpartition("@")[2].lower()
        return domain if domain in self._named_domains else "other"

    async def close(self) -> None:
        # Batches whose callback was cancelled still run (see _handle); `stopping` makes them hand the rest
        # back after the message on the wire, so waiting is short. Whatever is left then is cancelled.
        running = list(self._active.values())
        if running:
            _, late = await asyncio.wait(running, timeout=CLOSE_WAIT_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self.commits.close()
        await self.connections.close()
        await self.suppressions.client.close()


def token_chunk(buckets: list[tuple[str, DomainLimit]]) -> int:
    """Tokens asked for at a time: TOKEN_SECONDS of the slowest bucket's configured rate, at least TOKEN_CHUNK."""
    per_second = min(limit.per_minute for _, limit in buckets) / 60.0
    return max(TOKEN_CHUNK, int(per_second * TOKEN_SECONDS))


def settled(row: asyncpg.Record, kind: str, outcome: Outcome) -> Settled:
    return Settled(row["id"], row["email"], row["row_number"], kind, outcome, row["attempts"], row["first_attempt_at"])
