"""Outcome groups on the real database: counters that completion and progress read, HOT updates, idempotence."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg

from isseimail_dispatcher.outcomes import (
    CampaignInfo,
    FlushResult,
    Outcome,
    Settled,
    check_campaign,
    flush_all,
)
from isseimail_shared.events import MAX_EVENT_BYTES, DeliveriesSettled, decode
from isseimail_shared.mailmerge import render_campaign

CAMPAIGN = CampaignInfo(uuid.uuid4(), "sender@corp.example.jp", "件名")


async def seed(pool: asyncpg.Pool, count: int, campaign: CampaignInfo = CAMPAIGN) -> list[int]:
    """A campaign of `count` recipients in one batch, claimed (`sending`); returns the delivery ids."""
    await pool.execute(
        "INSERT INTO campaigns (campaign_id, pass_id, sender_email, subject, template, total, status) "
        "VALUES ($1, 1, $2, $3, '{}', $4, 'dispatching')",
        campaign.campaign_id,
        campaign.sender_email,
        campaign.subject,
        count,
    )
    batch = await pool.fetchval(
        "INSERT INTO batches (campaign_id, domain) VALUES ($1, 'example.jp') RETURNING id", campaign.campaign_id
    )
    rows = await pool.fetch(
        "INSERT INTO deliveries (campaign_id, row_number, email, domain, recipient, batch_id, state) "
        "SELECT $1, n, 'user' || n || '@example.jp', 'example.jp', '{}', $2, 'sending' "
        "FROM generate_series(1, $3) n RETURNING id",
        campaign.campaign_id,
        batch,
        count,
    )
    return sorted(r["id"] for r in rows)


async def flush(
    pool: asyncpg.Pool, campaign: CampaignInfo, items: list[Settled], *, base: float, max_age: float
) -> FlushResult:
    """One campaign's outcomes in one commit, as a worker process's commit with nothing else in it."""
    return (await flush_all(pool, {campaign: items}, base=base, max_age=max_age)).get(campaign, FlushResult())


def item(delivery_id: int, kind: str, code: int, first: dt.datetime | None = None) -> Settled:
    return Settled(delivery_id, f"u{delivery_id}@example.jp", delivery_id, kind, Outcome(code, None, "x"), 0, first)


async def test_groups_keep_the_counters_and_complete_the_campaign_once(pool: asyncpg.Pool) -> None:
    """Sent, failed and retried outcomes in groups: counters match the rows; a group committed twice counts once."""
    ids = await seed(pool, 30)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    group = [
        *(item(i, "sent", 250) for i in ids[:20]),
        item(ids[20], "failed", 550),
        item(ids[21], "temporary", 451),  # retried
        item(ids[22], "temporary", 451, long_ago),  # past the retry age: failed
    ]
    first = await flush(pool, CAMPAIGN, group, base=60, max_age=86_400)
    again = await flush(pool, CAMPAIGN, group, base=60, max_age=86_400)  # a lost commit acknowledgement
    assert (first.sent, first.failed, first.retrying) == (20, 2, 1)
    assert (again.sent, again.failed, again.retrying) == (0, 0, 0)
    counters = await pool.fetchrow("SELECT sent, failed FROM campaigns WHERE campaign_id = $1", CAMPAIGN.campaign_id)
    rows = await pool.fetchrow(
        "SELECT count(*) FILTER (WHERE state = 'sent') AS sent, count(*) FILTER (WHERE state = 'failed') AS failed, "
        "count(*) FILTER (WHERE next_attempt_at IS NOT NULL) AS waiting FROM deliveries"
    )
    assert rows is not None
    assert counters is not None
    assert (counters["sent"], counters["failed"]) == (rows["sent"], rows["failed"]) == (20, 2)
    assert rows["waiting"] == 1
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE routing_key = 'deliveries.settled'") == 1
    assert await check_campaign(pool, CAMPAIGN, pause_rate=0.9, pause_min=1000) is None  # 8 still open
    # the retry is taken up again (a retry batch claims it), then it and the 7 untouched ones are sent
    await pool.execute("UPDATE deliveries SET state = 'sending', next_attempt_at = NULL WHERE id = $1", ids[21])
    rest = [item(i, "sent", 250) for i in [ids[21], *ids[23:]]]
    await flush(pool, CAMPAIGN, rest, base=60, max_age=86_400)
    assert await check_campaign(pool, CAMPAIGN, pause_rate=0.9, pause_min=1000) == "completed"
    assert await check_campaign(pool, CAMPAIGN, pause_rate=0.9, pause_min=1000) is None
    body = await pool.fetchval("SELECT body FROM outbox WHERE routing_key = 'campaign.completed'")
    assert b'"sent":28' in body
    assert b'"failed":2' in body


async def test_one_commit_of_two_campaigns_keeps_each_ones_counters_and_event(pool: asyncpg.Pool) -> None:
    """A worker process's commit carries outcomes of every campaign it sends: each campaign gets its own
    counters and its own deliveries.settled event; committing it again changes nothing."""
    other = CampaignInfo(uuid.uuid4(), "other@corp.example.jp", "別件")
    mine, theirs = await seed(pool, 5), await seed(pool, 4, other)
    groups = {
        CAMPAIGN: [item(i, "sent", 250) for i in mine[:4]] + [item(mine[4], "failed", 550)],
        other: [item(i, "sent", 250) for i in theirs],
    }
    results = await flush_all(pool, groups, base=60, max_age=86_400)
    again = await flush_all(pool, groups, base=60, max_age=86_400)
    assert {c.subject: (r.sent, r.failed) for c, r in results.items()} == {"件名": (4, 1), "別件": (4, 0)}
    assert all((r.sent, r.failed, r.retrying) == (0, 0, 0) for r in again.values())
    counters = {
        r["subject"]: (r["sent"], r["failed"]) for r in await pool.fetch("SELECT subject, sent, failed FROM campaigns")
    }
    assert counters == {"件名": (4, 1), "別件": (4, 0)}
    bodies = await pool.fetch("SELECT body FROM outbox WHERE routing_key = 'deliveries.settled'")
    assert len(bodies) == 2
    assert sum(str(other.campaign_id).encode() in r["body"] for r in bodies) == 1


async def test_a_large_commit_is_split_into_events_within_their_limits(pool: asyncpg.Pool) -> None:
    """A process's commit has no fixed size: 1,300 outcomes with the longest addresses and diagnostics become
    events each within the list and byte limits, and together they name every outcome once."""
    ids = await seed(pool, 1300)
    await pool.execute("UPDATE deliveries SET email = repeat('a', 240) || id || '@example.jp'")
    long = "５５０ " + "受信者が存在しません。" * 90  # ~1,000 characters, 3 bytes each in UTF-8
    group = [item(i, "sent", 250) for i in ids[:900]] + [
        Settled(i, "b" * 240 + f"{i}@example.jp", i, "failed", Outcome(550, "5.1.1", long[:1000]), 0, None)
        for i in ids[900:]
    ]
    result = await flush(pool, CAMPAIGN, group, base=60, max_age=86_400)
    assert (result.sent, result.failed) == (900, 400)
    bodies = [r["body"] for r in await pool.fetch("SELECT body FROM outbox WHERE routing_key = 'deliveries.settled'")]
    events = [decode(body)[1] for body in bodies]  # decode enforces MAX_EVENT_BYTES
    assert all(len(body) <= MAX_EVENT_BYTES for body in bodies)
    settled = [e for e in events if isinstance(e, DeliveriesSettled)]
    assert len(settled) == len(events) == 5  # 900 delivered and 400 failed in chunks of 200
    assert sorted(i for e in settled for i in e.delivered_ids) == ids[:900]
    assert sorted(f.delivery_id for e in settled for f in e.failed) == ids[900:]


async def test_outcome_updates_are_hot(pool: asyncpg.Pool) -> None:
    """No index names `state`: recording outcomes updates the rows in place (HOT), with no new index entries."""
    ids = await seed(pool, 50)
    indexed = await pool.fetch(
        "SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS def FROM pg_index "
        "WHERE indrelid = 'deliveries'::regclass"
    )
    assert [r["name"] for r in indexed if "state" in r["def"]] == []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE deliveries d SET state = 'sent', attempts = d.attempts + 1, finished_at = now(), "
            "first_attempt_at = coalesce(d.first_attempt_at, now()), smtp_code = 250, diagnostic = 'ok' "
            "WHERE d.id = ANY($1::bigint[])",
            ids,
        )
        stats = await conn.fetchrow(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relid = 'deliveries'::regclass"
        )
    assert stats is not None
    assert stats["n_tup_upd"] == 50
    # With `state` indexed none would be HOT; a few may still miss room on a full last page.
    assert stats["n_tup_hot_upd"] >= 40


async def test_counter_updates_do_not_grow_the_campaign_row(pool: asyncpg.Pool) -> None:
    """The template is kept out of line, so each counter update writes a narrow row version: 2,000 group
    commits from 8 connections at once leave the campaigns table a few pages, not MBs."""
    template = render_campaign(
        "sender@corp.example.jp", "送信者", "件名", "本文です。ご確認ください。\n" * 400
    ).model_dump_json()
    assert len(template) > 3000
    campaign = CampaignInfo(uuid.uuid4(), "sender@corp.example.jp", "件名")
    await pool.execute(
        "INSERT INTO campaigns (campaign_id, pass_id, sender_email, subject, template, total, status) "
        "VALUES ($1, 1, $2, $3, $4, 1000000, 'dispatching')",
        campaign.campaign_id,
        campaign.sender_email,
        campaign.subject,
        template,
    )
    toast = await pool.fetchval(
        "SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = 'campaigns'::regclass"
    )
    assert toast >= 8192  # the template went out of line: the row itself holds a pointer

    async def groups(n: int) -> None:  # as the workers' connections do: a transaction per outcome group
        for _ in range(n):
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("UPDATE campaigns SET sent = sent + 20 WHERE campaign_id = $1", campaign.campaign_id)

    await asyncio.gather(*(groups(250) for _ in range(8)))
    assert await pool.fetchval("SELECT sent FROM campaigns WHERE campaign_id = $1", campaign.campaign_id) == 40000
    pages = await pool.fetchval("SELECT pg_relation_size('campaigns') / current_setting('block_size')::int")
    assert pages <= 20, pages  # with the template inline: 72 pages
    assert (
        await pool.fetchval("SELECT template FROM campaigns WHERE campaign_id = $1", campaign.campaign_id) == template
    )
