"""Storing a streamed snapshot on the real database: every recipient once, batches by domain in rounds."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isseimail_dispatcher import accept
from isseimail_dispatcher.accept import SnapshotError, domain_of, open_snapshot, store_recipients
from isseimail_dispatcher.scheduler import RETRY_BACKLOG_SQL
from isseimail_shared.clients.composer import ComposerClient
from isseimail_shared.mailmerge import Recipient, render_campaign


async def stream(rows: list[Recipient]) -> AsyncIterator[Recipient]:
    for r in rows:
        yield r


class Rollback(Exception):
    """Leaves the example's transaction without a trace."""


async def cut(pool: asyncpg.Pool, rows: list[Recipient], size: int) -> list[tuple[int, str, list[int]]]:
    """(batch id, domain, CSV rows in delivery-id order) of each batch, inside a transaction rolled back after."""
    result: list[tuple[int, str, list[int]]] = []
    campaign = uuid.uuid4()
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO campaigns (campaign_id, pass_id, sender_email, subject, template, total) "
                "VALUES ($1, 1, 's@example.jp', 'x', '{}', 0)",
                campaign,
            )
            total, batches = await store_recipients(conn, campaign, stream(rows), size)
            for b in await conn.fetch("SELECT id, domain FROM batches WHERE campaign_id = $1 ORDER BY id", campaign):
                members = await conn.fetch(
                    "SELECT row_number, email FROM deliveries WHERE batch_id = $1 ORDER BY id", b["id"]
                )
                assert {domain_of(m["email"]) for m in members} == {b["domain"]}
                result.append((b["id"], b["domain"], [m["row_number"] for m in members]))
            assert (total, batches) == (sum(len(r) for _, _, r in result), len(result))
            raise Rollback
    except Rollback:
        pass
    return result


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.integers(1, 40), st.sampled_from(["a.jp", "b.jp", "C.jp", "d.example"])), max_size=80),
    st.integers(min_value=1, max_value=7),
)
async def test_batches_hold_one_domain_in_rounds_and_every_row_once(
    pool: asyncpg.Pool, rows: list[tuple[int, str]], size: int
) -> None:
    """Each CSV row number once (its last occurrence), a batch one domain and at most `size`, rows in
    snapshot order within a domain, and batch ids in rounds over the domains (every k-th before any k+1-th)."""
    recipients = [Recipient(row=n, email=f"u{i}@{d}") for i, (n, d) in enumerate(rows)]
    last = {r.row: r for r in recipients}
    batches = await cut(pool, recipients, size)
    stored = [n for _, _, group in batches for n in group]
    assert sorted(stored) == sorted(last)
    seen: dict[str, int] = {}
    rounds = []
    for _, domain, group in batches:
        assert 1 <= len(group) <= size
        assert {domain_of(last[n].email) for n in group} == {domain}
        rounds.append(seen.get(domain, 0))
        seen[domain] = seen.get(domain, 0) + 1
    assert rounds == sorted(rounds)
    order = {r.row: i for i, r in enumerate(recipients)}  # the position of each row's kept (last) occurrence
    for domain in seen:
        in_domain = [n for _, d, group in batches if d == domain for n in group]
        assert in_domain == sorted(in_domain, key=lambda n: order[n])


def composer_serving(body: bytes) -> ComposerClient:
    """A stand-in composer whose snapshot endpoint streams `body` as it is."""
    app = FastAPI()

    @app.get("/internal/campaigns/{campaign_id}/snapshot")
    async def snapshot(campaign_id: uuid.UUID) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 7):  # small chunks: lines cross chunk boundaries
                yield body[start : start + 7]

        return StreamingResponse(chunks(), media_type="application/x-ndjson")

    return ComposerClient("http://composer", [], timeout=10.0, transport=httpx.ASGITransport(app=app))


def head(campaign: uuid.UUID) -> bytes:
    template = render_campaign("s@example.jp", "送信", "件名", "本文")
    campaign_facts = {"campaign_id": str(campaign), "sender_email": "s@example.jp", "subject": "件名"}
    return json.dumps(
        {"campaign": {**campaign_facts, "recipient_count": 2}, "template": template.model_dump()}
    ).encode()


async def accept_into(pool: asyncpg.Pool, client: ComposerClient, campaign: uuid.UUID) -> None:
    async with pool.acquire() as conn, conn.transaction(), open_snapshot(client, campaign) as snapshot:
        await conn.execute(
            "INSERT INTO campaigns (campaign_id, pass_id, sender_email, subject, template, total) "
            "VALUES ($1, 1, 's@example.jp', 'x', '{}', 0)",
            campaign,
        )
        await store_recipients(conn, campaign, snapshot.recipients, 10)


async def test_a_large_campaign_leaves_statistics_that_keep_the_retry_count_on_its_index(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a bulk load the scheduler's count of waiting retries (every second) reads the partial index,
    not the whole table: without statistics the planner took a (parallel) sequential scan."""
    rows = [Recipient(row=n, email=f"u{n}@d{n % 7}.example.jp") for n in range(1, 3001)]

    async def plan(threshold: int) -> str:
        monkeypatch.setattr(accept, "ANALYZE_AFTER", threshold)
        try:
            async with pool.acquire() as conn, conn.transaction():
                campaign = uuid.uuid4()
                await conn.execute(
                    "INSERT INTO campaigns (campaign_id, pass_id, sender_email, subject, template, total) "
                    "VALUES ($1, 1, 's@example.jp', 'x', '{}', 0)",
                    campaign,
                )
                await store_recipients(conn, campaign, stream(rows), 200)
                lines = await conn.fetch(f"EXPLAIN {RETRY_BACKLOG_SQL}")
                raise Rollback("\n".join(r[0] for r in lines))
        except Rollback as done:
            return str(done)
        raise AssertionError("unreachable")

    assert "Seq Scan" in await plan(len(rows) + 1)  # below the threshold: no ANALYZE, the plan this fixes
    assert "deliveries_due" in await plan(len(rows))


@pytest.mark.parametrize(
    "rest",
    [
        b'{"row": 1, "email": "a@example.jp"}\n{"row": -3, "email": "b@example.jp"}\n',
        b'{"row": 1, "email": "a@ex',
        b"\xff\n",
    ],
)
async def test_a_broken_recipient_line_stores_nothing(pool: asyncpg.Pool, rest: bytes) -> None:
    """A malformed line mid-stream (bad row, cut off, not UTF-8) raises SnapshotError; the transaction keeps nothing."""
    campaign = uuid.uuid4()
    async with composer_serving(head(campaign) + b"\n" + rest) as client:
        with pytest.raises(SnapshotError):
            await accept_into(pool, client, campaign)
    assert await pool.fetchval("SELECT count(*) FROM deliveries") == 0
    assert await pool.fetchval("SELECT count(*) FROM campaigns") == 0


async def test_a_snapshot_of_another_campaign_is_refused(pool: asyncpg.Pool) -> None:
    """The header must name the campaign asked for."""
    async with composer_serving(head(uuid.uuid4()) + b"\n") as client:
        with pytest.raises(SnapshotError, match="another campaign"):
            async with open_snapshot(client, uuid.uuid4()):
                pass
