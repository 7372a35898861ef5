"""Failed recipients and the sender's failure reports, gathered per campaign into digests.

The first failure of a campaign is reported at once; later ones wait until the digest window since the
previous report has passed and then go out together. Claiming the right to send (the failure_digests
row) and marking the failures reported happen in one transaction with queueing the mail, so each
failure is reported exactly once, whoever (an event handler or the digest loop) gets there first.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg

from isseimail_notifier import report_texts
from isseimail_notifier.mail_queue import mail_domain, queue_mail
from isseimail_notifier.mail_texts import one_line
from isseimail_notifier.report_texts import FailureLine
from isseimail_shared.db import Conn, Wakeup

log = logging.getLogger(__name__)

NOTIFY = "isseimail_notifier_failures"
# Where each delivery went: needed while bounces can come back and, above all, while the unsubscribe links
# in a sent mail must work (their token names the delivery); CAN-SPAM asks 30 days, we give a year and more.
KEEP_DELIVERIES = "400 days"
KEEP_RAW_BOUNCES = "90 days"


@dataclass(frozen=True)
class DigestPolicy:
    window_seconds: float
    system_from: str
    csv_threshold: int


async def remember_campaign(
    conn: Conn, campaign_id: uuid.UUID, sender_email: str, subject: str, sender_name: str = ""
) -> None:
    """First sighting wins; only campaign.accepted knows the sender's name and adds it whenever it comes."""
    await conn.execute(
        "INSERT INTO campaigns (campaign_id, sender_email, subject, sender_name) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (campaign_id) DO UPDATE SET sender_name = EXCLUDED.sender_name WHERE EXCLUDED.sender_name <> ''",
        campaign_id,
        sender_email.lower(),
        subject,
        sender_name,
    )


async def addressee(conn: Conn, campaign_id: uuid.UUID, sender_email: str) -> str:
    """Whom the sender's reports greet (… 様): the 送信者名 given at compose, else the address."""
    name = await conn.fetchval("SELECT sender_name FROM campaigns WHERE campaign_id = $1", campaign_id)
    return one_line(name or "", 100) or sender_email


async def record(
    conn: Conn,
    *,
    campaign_id: uuid.UUID,
    delivery_id: int,
    source: str,
    recipient: str,
    row_number: int | None,
    status: str | None,
    smtp_code: int | None,
    reason: str,
    hard: bool,
    diagnostic: str,
) -> bool:
    """Store one failed recipient; False when this delivery's failure of this kind is already known."""
    inserted = await conn.fetchval(
        "INSERT INTO failures (campaign_id, delivery_id, source, recipient, row_number, status, smtp_code, "
        "reason, hard, diagnostic) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        "ON CONFLICT (campaign_id, delivery_id, source) DO NOTHING RETURNING true",
        campaign_id,
        delivery_id,
        source,
        recipient.lower(),
        row_number,
        status,
        smtp_code,
        reason,
        hard,
        diagnostic[:2000],
    )
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY)
    return bool(inserted)


async def page(pool: asyncpg.Pool, campaign_id: uuid.UUID, limit: int, offset: int) -> tuple[int, list[asyncpg.Record]]:
    """One page of a campaign's failed and bounced recipients, in the order they were recorded."""
    total = await pool.fetchval("SELECT count(*) FROM failures WHERE campaign_id = $1", campaign_id)
    rows = await pool.fetch(
        "SELECT recipient, row_number, source, status, smtp_code, reason, hard, diagnostic, created_at "
        "FROM failures WHERE campaign_id = $1 ORDER BY id LIMIT $2 OFFSET $3",
        campaign_id,
        limit,
        offset,
    )
    return int(total), rows


def line_of(row: asyncpg.Record) -> FailureLine:
    return FailureLine(
        recipient=row["recipient"],
        row_number=row["row_number"],
        source=row["source"],
        reason=row["reason"],
        status=row["status"],
        smtp_code=row["smtp_code"],
        diagnostic=row["diagnostic"],
    )


async def flush_campaign(conn: Conn, campaign_id: uuid.UUID, policy: DigestPolicy) -> int:
    """Report the campaign's unreported failures if its digest window allows; returns how many."""
    campaign = await conn.fetchrow(
        "SELECT sender_email, subject, sender_name FROM campaigns WHERE campaign_id = $1", campaign_id
    )
    if campaign is None:
        return 0  # a bounce for a campaign we have not heard of yet: reported once campaign.accepted arrives
    if not await conn.fetchval(
        "SELECT true FROM failures WHERE campaign_id = $1 AND reported_by IS NULL LIMIT 1", campaign_id
    ):
        return 0
    claimed = await conn.fetchval(
        "INSERT INTO failure_digests AS d (campaign_id, last_sent_at, mails) VALUES ($1, now(), 1) "
        "ON CONFLICT (campaign_id) DO UPDATE SET last_sent_at = now(), mails = d.mails + 1 "
        "WHERE d.last_sent_at <= now() - make_interval(secs => $2) RETURNING mails",
        campaign_id,
        policy.window_seconds,
    )
    if claimed is None:
        return 0
    rows = await conn.fetch(
        "SELECT * FROM failures WHERE campaign_id = $1 AND reported_by IS NULL ORDER BY id FOR UPDATE",
        campaign_id,
    )
    rows = [r for r in rows if r["reported_by"] is None]
    if not rows:
        return 0
    cause = f"failures:{campaign_id}:{claimed}"
    lines = [line_of(r) for r in rows]
    attachment = None
    if len(lines) > report_texts.INLINE_DIGEST_LIMIT:
        attachment = ("failures.csv", report_texts.failures_csv(lines))
    text = report_texts.failure_report(
        one_line(campaign["sender_name"], 100) or campaign["sender_email"],
        campaign_id,
        campaign["subject"],
        lines,
        policy.window_seconds / 60,
    )
    await queue_mail(
        conn,
        kind="delivery.failures",
        cause=cause,
        recipient=campaign["sender_email"],
        subject=text.subject,
        body=text.body,
        domain=mail_domain(policy.system_from),
        attachment=attachment,
    )
    await conn.execute(
        "UPDATE failures SET reported_by = $2 WHERE id = ANY($1::bigint[])", [r["id"] for r in rows], cause
    )
    return len(rows)


class DigestLoop:
    """Flushes campaigns whose digest window has passed; wakes on new failures, polls as a fallback."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        policy: DigestPolicy,
        jobs: Sequence[Callable[[asyncpg.Pool], Awaitable[int]]] = (),
        max_poll: float = 10.0,
    ) -> None:
        self._max_poll = max_poll
        self._pool = pool
        self._policy = policy
        self._jobs = jobs  # more work woken by the same NOTIFY (waiting completion mails)

    async def flush_due(self) -> int:
        campaigns = await self._pool.fetch(
            "SELECT DISTINCT f.campaign_id FROM failures f LEFT JOIN failure_digests d USING (campaign_id) "
            "WHERE f.reported_by IS NULL AND (d.last_sent_at IS NULL "
            "OR d.last_sent_at <= now() - make_interval(secs => $1))",
            self._policy.window_seconds,
        )
        reported = 0
        for row in campaigns:
            async with self._pool.acquire() as conn, conn.transaction():
                reported += await flush_campaign(conn, row["campaign_id"], self._policy)
        for job in self._jobs:
            await job(self._pool)
        return reported

    async def _forget_old(self) -> None:
        """Delivery addresses are needed only while bounces can still come back; raw bounces only for a
        while for an operator's questions (the parsed fields stay)."""
        await self._pool.execute(f"DELETE FROM deliveries WHERE created_at < now() - interval '{KEEP_DELIVERIES}'")
        await self._pool.execute(
            f"DELETE FROM delivered_groups WHERE created_at < now() - interval '{KEEP_DELIVERIES}'"
        )
        await self._pool.execute(
            f"UPDATE bounces SET raw = ''::bytea WHERE received_at < now() - interval '{KEEP_RAW_BOUNCES}' "
            "AND length(raw) > 0"
        )
        await self._pool.execute(
            f"UPDATE complaints SET raw = ''::bytea WHERE received_at < now() - interval '{KEEP_RAW_BOUNCES}' "
            "AND length(raw) > 0"
        )

    async def run(self) -> None:
        wakeup = Wakeup(self._pool, NOTIFY)
        poll = max(0.2, min(self._policy.window_seconds / 4, self._max_poll))
        rounds = 0
        try:
            while True:
                try:
                    await self.flush_due()
                    rounds += 1
                    if rounds % 500 == 1:
                        await self._forget_old()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("failure digest paused: %s", exc.__class__.__name__)
                await wakeup.wait(poll)
        finally:
            await wakeup.close()


async def mark_campaign_reported(conn: Conn, campaign_id: uuid.UUID, cause: str) -> None:
    """The campaign's failures not yet in a mail are now reported by the mail of `cause`; no digest repeats them."""
    await conn.execute(
        "UPDATE failures SET reported_by = $2 WHERE campaign_id = $1 AND reported_by IS NULL", campaign_id, cause
    )
