"""Delivery state changes and the events that go with them, a group of outcomes in one transaction.

pending -> sending -> sent | retrying | failed. Every write is conditional on the row still being
`sending`, so repeating it (after a lost commit acknowledgement) changes nothing and emits nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from isseimail_shared.db import Conn
from isseimail_shared.events import (
    CampaignCompleted,
    CampaignPaused,
    DeliveriesSettled,
    SettledFailure,
    envelope_for,
)
from isseimail_shared.outbox import add_envelopes, add_event

log = logging.getLogger(__name__)

MAX_BACKOFF = 3600.0
# Outcomes of each kind per deliveries.settled event: 200 failures with 1,000-character diagnostics (up to
# 3 bytes a character) and 254-character addresses, and 200 delivered addresses, stay under MAX_EVENT_BYTES.
SETTLED_CHUNK = 200


@dataclass(frozen=True)
class Outcome:
    code: int | None
    enhanced: str | None
    text: str


@dataclass(frozen=True)
class CampaignInfo:
    campaign_id: uuid.UUID
    sender_email: str
    subject: str


def backoff(attempts: int, base: float) -> float:
    """Exponential with full jitter between half and one and a half of the step; capped at an hour."""
    step: float = min(MAX_BACKOFF, base * float(2 ** max(0, attempts - 1)))
    jitter: float = random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not security
    return step * jitter


@dataclass(frozen=True)
class Settled:
    """One recipient's outcome, waiting in its group for the commit."""

    delivery_id: int
    email: str
    row_number: int
    kind: str  # 'sent', 'failed' (permanent) or 'temporary' (retried, or failed past the retry age)
    outcome: Outcome
    attempts: int  # before this attempt, as read at the claim
    first_attempt_at: dt.datetime | None


@dataclass
class FlushResult:
    sent: int = 0
    failed: int = 0
    retrying: int = 0


def _decide(items: list[Settled], *, base: float, max_age: float) -> tuple[list[Settled], list[Settled], list[float]]:
    """(failed, retrying, their delays): a temporary failure past the retry age fails for good."""
    failed: list[Settled] = []
    retrying: list[Settled] = []
    delays: list[float] = []
    now = dt.datetime.now(dt.UTC)
    for item in items:
        if item.kind == "failed":
            failed.append(item)
        elif item.kind == "temporary":
            age = (now - item.first_attempt_at).total_seconds() if item.first_attempt_at else 0.0
            delay = backoff(item.attempts + 1, base)
            if age + delay > max_age:
                o = item.outcome
                text = f"{o.text} (retried for {age / 3600:.1f} h)"
                failed.append(
                    Settled(
                        item.delivery_id,
                        item.email,
                        item.row_number,
                        "failed",
                        Outcome(o.code, o.enhanced, text),
                        item.attempts,
                        item.first_attempt_at,
                    )
                )
            else:
                retrying.append(item)
                delays.append(delay)
    return failed, retrying, delays


def _columns(items: list[Settled]) -> tuple[list[int], list[int | None], list[str | None], list[str]]:
    return (
        [i.delivery_id for i in items],
        [i.outcome.code for i in items],
        [i.outcome.enhanced for i in items],
        [i.outcome.text for i in items],
    )


_SET_SENT = (
    "UPDATE deliveries d SET state = 'sent', attempts = d.attempts + 1, finished_at = now(), "
    "first_attempt_at = coalesce(d.first_attempt_at, now()), smtp_code = u.code, enhanced_status = u.enh, "
    "diagnostic = u.text FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[]) AS u(id, code, enh, text) "
    "WHERE d.id = u.id AND d.state = 'sending' RETURNING d.id"
)
_SET_FAILED = (
    "UPDATE deliveries d SET state = 'failed', attempts = d.attempts + 1, finished_at = now(), "
    "first_attempt_at = coalesce(d.first_attempt_at, now()), next_attempt_at = NULL, smtp_code = u.code, "
    "enhanced_status = u.enh, diagnostic = u.text "
    "FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[]) AS u(id, code, enh, text) "
    "WHERE d.id = u.id AND d.state = 'sending' RETURNING d.id"
)
_SET_RETRYING = (
    "UPDATE deliveries d SET state = 'retrying', attempts = d.attempts + 1, "
    "first_attempt_at = coalesce(d.first_attempt_at, now()), next_attempt_at = now() + make_interval(secs => u.delay), "
    "smtp_code = u.code, enhanced_status = u.enh, diagnostic = u.text "
    "FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::float8[]) AS u(id, code, enh, text, delay) "
    "WHERE d.id = u.id AND d.state = 'sending' RETURNING d.id"
)


async def flush_all(
    pool: asyncpg.Pool, groups: Mapping[CampaignInfo, list[Settled]], *, base: float, max_age: float
) -> dict[CampaignInfo, FlushResult]:
    """Commit the outcomes of several campaigns and their events in ONE transaction (a few statements per
    campaign, one commit): what a worker process's connections settled since its last commit.

    Every UPDATE is conditional on the row still being `sending`, so a group committed twice (a lost commit
    acknowledgement, then a retry) changes nothing and emits nothing the second time.
    """
    groups = {campaign: items for campaign, items in groups.items() if items}
    if not groups:
        return {}
    async with pool.acquire() as conn, conn.transaction():
        return {
            campaign: await _record(conn, campaign, items, base=base, max_age=max_age)
            for campaign, items in groups.items()
        }


async def _record(
    conn: Conn, campaign: CampaignInfo, items: list[Settled], *, base: float, max_age: float
) -> FlushResult:
    """One campaign's part of a commit: the rows, the campaign's counters and one deliveries.settled event."""
    result = FlushResult()
    sent = [i for i in items if i.kind == "sent"]
    failed, retrying, delays = _decide(items, base=base, max_age=max_age)
    delivered: list[Settled] = []
    if sent:
        done = {r["id"] for r in await conn.fetch(_SET_SENT, *_columns(sent))}
        delivered = [i for i in sent if i.delivery_id in done]
    if retrying:
        result.retrying = len(await conn.fetch(_SET_RETRYING, *_columns(retrying), delays))
    if failed:
        done = {r["id"] for r in await conn.fetch(_SET_FAILED, *_columns(failed))}
        failed = [i for i in failed if i.delivery_id in done]
    result.sent, result.failed = len(delivered), len(failed)
    if delivered or failed:
        await conn.execute(
            "UPDATE campaigns SET sent = sent + $2, failed = failed + $3 WHERE campaign_id = $1",
            campaign.campaign_id,
            result.sent,
            result.failed,
        )
        # The failure mails wait for no poll; delivered addresses can (NOTIFY takes a global lock at commit).
        await add_envelopes(
            conn, [envelope_for(e) for e in settled_events(campaign, delivered, failed)], notify=bool(failed)
        )
    return result


def settled_events(campaign: CampaignInfo, delivered: list[Settled], failed: list[Settled]) -> list[DeliveriesSettled]:
    """The commit's outcomes as events of at most SETTLED_CHUNK delivered and SETTLED_CHUNK failed each: a
    process's commit has no fixed size, and an event must stay within its list and byte limits."""
    return [
        settled_event(campaign, delivered[start : start + SETTLED_CHUNK], failed[start : start + SETTLED_CHUNK])
        for start in range(0, max(len(delivered), len(failed)), SETTLED_CHUNK)
    ]


def settled_event(campaign: CampaignInfo, delivered: list[Settled], failed: list[Settled]) -> DeliveriesSettled:
    return DeliveriesSettled(
        campaign_id=campaign.campaign_id,
        sender_email=campaign.sender_email,
        subject=campaign.subject,
        delivered_ids=[i.delivery_id for i in delivered],
        delivered_rows=[i.row_number or None for i in delivered],  # 0 is the sender's own copy, not a CSV row
        delivered_to=[i.email for i in delivered],
        failed=[
            SettledFailure(
                delivery_id=i.delivery_id,
                recipient=i.email,
                row_number=i.row_number or None,
                smtp_code=i.outcome.code,
                enhanced_status=i.outcome.enhanced,
                diagnostic=i.outcome.text or "delivery failed",
            )
            for i in failed
        ],
    )


async def check_campaign(
    pool: asyncpg.Pool, campaign: CampaignInfo, *, pause_rate: float, pause_min: int
) -> str | None:
    """Complete the campaign when every recipient is final, or pause it on too many hard failures.

    Returns the new status when this call changed it. The conditional UPDATE on the campaign row makes
    the event exactly-once even when several workers finish batches of the same campaign together.
    """
    async with pool.acquire() as conn, conn.transaction():
        # The counters every outcome group adds to: O(1), however large the campaign.
        counts = await conn.fetchrow(
            "SELECT total, sent, failed FROM campaigns WHERE campaign_id = $1", campaign.campaign_id
        )
        assert counts is not None
        total, sent, failed = counts["total"], counts["sent"], counts["failed"]
        if sent + failed == total:
            row = await conn.fetchrow(
                "UPDATE campaigns SET status = 'completed', finished_at = now(), "
                "started_at = coalesce(started_at, now()) WHERE campaign_id = $1 AND status <> 'completed' "
                "RETURNING started_at, finished_at",
                campaign.campaign_id,
            )
            if row is not None:
                await add_event(
                    conn,
                    CampaignCompleted(
                        campaign_id=campaign.campaign_id,
                        sender_email=campaign.sender_email,
                        subject=campaign.subject,
                        total=total,
                        sent=sent,
                        failed=failed,
                        started_at=row["started_at"],
                        finished_at=row["finished_at"],
                    ),
                )
                return "completed"
            return None
        finished = sent + failed
        rate = failed / finished if finished else 0.0
        if finished >= pause_min and rate > pause_rate:
            paused = await conn.fetchval(
                "UPDATE campaigns SET status = 'paused' WHERE campaign_id = $1 AND status = 'dispatching' "
                "RETURNING true",
                campaign.campaign_id,
            )
            if paused:
                log.warning("campaign %s paused: %.0f%% hard failures", campaign.campaign_id, rate * 100)
                await add_event(
                    conn,
                    CampaignPaused(
                        campaign_id=campaign.campaign_id,
                        sender_email=campaign.sender_email,
                        subject=campaign.subject,
                        total=total,
                        sent=sent,
                        failed=failed,
                        failure_rate=round(rate, 4),
                    ),
                )
                return "paused"
    return None
