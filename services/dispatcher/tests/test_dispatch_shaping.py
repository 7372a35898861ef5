"""Shaping against real servers: rate-limit replies slow a domain down fleet-wide (PostgreSQL) and it recovers;
messages per connection; provider presets matched by MX through the real DNS server."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from isseimail_dispatcher.adaptive import Adaptation, ThrottleState, effective_per_minute, step
from isseimail_dispatcher.destinations import Router
from isseimail_dispatcher.limits import record_rate_limit, take_tokens, throttle_states
from isseimail_dispatcher.settings import DispatcherSettings, DomainLimit
from isseimail_testing.dns import DnsServer
from isseimail_testing.metrics import sample
from isseimail_testing.smtp import CaptureServer

from .conftest import deliveries, running_dispatcher

# --- the database side ----------------------------------------------------------------------------


async def test_sql_rate_function_computes_what_python_does(pool: asyncpg.Pool) -> None:
    """shaped_per_minute (used by every token debit) and adaptive.effective_per_minute agree."""
    rng = random.Random(11)
    for _ in range(200):
        ceiling = rng.choice([1.0, 6.0, 600.0, rng.uniform(1, 1e5)])
        adapt = Adaptation(window=rng.uniform(0.1, 600), increase_fraction=rng.uniform(0.01, 1))
        lowered = rng.choice([None, rng.uniform(0.1, ceiling)])
        throttled_at = 1.8e9 + rng.uniform(0, 1e5)
        now = throttled_at + rng.choice([0.0, rng.uniform(0, 10 * adapt.window), -5.0])
        in_sql = await pool.fetchval(
            "SELECT shaped_per_minute($1, to_timestamp($2), $3, $4, $5, to_timestamp($6))",
            lowered,
            throttled_at,
            ceiling,
            step(ceiling, adapt),
            adapt.window,
            now,
        )
        expected = effective_per_minute(ThrottleState(lowered, throttled_at, throttled_at), ceiling, adapt, now)
        assert in_sql == pytest.approx(expected, rel=1e-9), (lowered, ceiling, adapt, now - throttled_at)


async def test_a_rate_limit_lowers_the_bucket_for_every_worker(pool: asyncpg.Pool) -> None:
    """After a rate-limit reply the shared bucket is emptied and refills at half the rate; a burst counts once."""
    limit = DomainLimit(connections=2, per_minute=600)  # 10/s, holds 60
    adapt = Adaptation(window=60.0)
    await take_tokens(pool, "example.jp", limit, 0, adapt)  # seed
    first = await record_rate_limit(pool, "example.jp", limit, adapt, "421 4.7.0 try again later")
    second = await record_rate_limit(pool, "example.jp", limit, adapt, "421 4.7.0 try again later")
    assert (first.decreased, first.per_minute) == (True, 300.0)
    assert (second.decreased, second.per_minute) == (False, 300.0)
    granted, wait = await take_tokens(pool, "example.jp", limit, 100, adapt)
    assert granted == 0
    assert 0.05 < wait <= 0.2  # one token at 5/s
    await asyncio.sleep(1.0)
    granted, _ = await take_tokens(pool, "example.jp", limit, 100, adapt)
    assert 4 <= granted <= 6  # 5/s, not 10/s
    row = await pool.fetchrow("SELECT throttle_events, last_reply FROM domain_buckets WHERE domain = 'example.jp'")
    assert row is not None
    assert (row["throttle_events"], row["last_reply"]) == (2, "421 4.7.0 try again later")
    shown = await throttle_states(pool, [], 3600, 10)
    assert [r["domain"] for r in shown] == ["example.jp"]


async def test_the_lowered_rate_comes_back_in_steps(pool: asyncpg.Pool) -> None:
    """With a 0.4 s window and 25 % steps: 300 → 450 → 600 per minute, read back from the stored state."""
    limit = DomainLimit(connections=1, per_minute=600)
    adapt = Adaptation(window=0.4, increase_fraction=0.25)
    await record_rate_limit(pool, "example.jp", limit, adapt, "451 4.7.650 rate limited")
    seen: list[float] = []
    started = time.monotonic()
    while time.monotonic() - started < 3:
        (row,) = await throttle_states(pool, ["example.jp"], 3600, 10)
        seen.append(
            effective_per_minute(ThrottleState(row["lowered_per_minute"], row["throttled_at"]), 600, adapt, row["now"])
        )
        if seen[-1] == 600:
            break
        await asyncio.sleep(0.05)
    assert seen == sorted(seen)
    assert set(seen) == {300.0, 450.0, 600.0}


# --- the worker path ------------------------------------------------------------------------------


async def test_a_domain_answering_421_slows_down_and_the_campaign_completes(
    fast_settings: Any,
    smtp_server: CaptureServer,
    watch: Any,
    make_recipients: Any,
    send_campaign: Any,
    database_url: str,
) -> None:
    """421 4.7.0 "too many messages" for six recipients' first attempts, then acceptance: every recipient is delivered
    once and none fails; the domain's stored rate went down, the metrics show it, and it recovers step by step."""
    rows = make_recipients(20)
    for row in rows[:6]:  # per recipient, so that the sender's own copy (another domain) is never refused
        smtp_server.handler.fail_recipient(row.email, 421, "4.7.0 Too many messages, try again later", times=1)
    settings = fast_settings(
        domain_limits='{"example.jp": {"connections": 2, "per_minute": 1200}}',
        throttle_window_seconds=2.0,
        throttle_increase_fraction=0.25,
    )
    gauge = "isseimail_dispatch_domain_rate_per_minute"
    seen: list[float] = []

    async def watch_gauge(api: Any) -> None:
        while True:
            seen.append(sample((await api.get("/metrics")).text, gauge, domain="example.jp"))
            await asyncio.sleep(0.1)

    async with running_dispatcher(settings) as (api, worker):
        before = (await worker.get("/metrics")).text
        poller = asyncio.create_task(watch_gauge(api))
        try:
            completed = await send_campaign(rows)
            conn = await asyncpg.connect(database_url)
            try:
                bucket = await conn.fetchrow("SELECT * FROM dispatcher.domain_buckets WHERE domain = 'example.jp'")
            finally:
                await conn.close()
            state = (await deliveries(database_url)).values()
            after = (await worker.get("/metrics")).text
            async with asyncio.timeout(15):
                while not seen or seen[-1] < 1200:  # noqa: ASYNC110 - the poller fills `seen`
                    await asyncio.sleep(0.1)
        finally:
            poller.cancel()
    assert (completed.sent, completed.failed) == (21, 0)
    assert not watch.failed()
    assert not watch.of("campaign.paused")
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == sorted(
        [r.email for r in rows] + ["sender@corp.example.jp"]
    )
    assert len(state) == 21
    assert all(r["state"] == "sent" for r in state)
    assert sum(1 for r in state if r["attempts"] > 1) == 6  # the throttled ones were retried, not failed
    assert bucket is not None
    assert bucket["throttle_events"] == 6
    assert bucket["lowered_per_minute"] < 1200
    assert "Too many messages" in bucket["last_reply"]

    def events(text: str) -> float:
        return sum(
            sample(text, "isseimail_dispatch_throttle_events_total", domain="example.jp", action=a)
            for a in ("decreased", "held")
        )

    assert events(after) - events(before) == 6
    lowest = min(seen)
    assert lowest < 1200
    recovery = seen[seen.index(lowest) :]
    assert recovery == sorted(recovery)  # only up after the last slow-down
    assert len({v for v in recovery if lowest < v < 1200}) >= 1  # in steps, not at once
    assert recovery[-1] == 1200


async def test_the_worker_reconnects_after_the_messages_per_connection_limit(
    fast_settings: Any, smtp_server: CaptureServer, make_recipients: Any, send_campaign: Any
) -> None:
    """messages_per_connection 3 for example.jp: ten messages arrive over at least four connections, none over
    more than three."""
    settings = fast_settings(
        batch_size=10, worker_prefetch=1, domain_limits='{"example.jp": {"messages_per_connection": 3}}'
    )
    async with running_dispatcher(settings):
        await send_campaign(make_recipients(10))
    per_connection = Counter(m.peer for m in smtp_server.messages if m.rcpt_tos[0].endswith("@example.jp"))
    assert sum(per_connection.values()) == 10
    assert None not in per_connection
    assert max(per_connection.values()) <= 3
    assert len(per_connection) >= 4


async def test_a_domain_hosted_by_google_gets_the_gmail_preset_in_mx_mode(
    make_settings: Callable[..., Any], dns_server: DnsServer
) -> None:
    """MX aspmx.l.google.com (served by the test DNS, address on loopback): the Gmail preset applies; in relay
    mode no MX is looked up."""
    dns_server.zone("workspace.example.jp", mx=[(1, "aspmx.l.google.com"), (5, "alt1.aspmx.l.google.com")])
    dns_server.zone("aspmx.l.google.com", a=["127.0.0.1"])
    dns_server.zone("alt1.aspmx.l.google.com", a=["127.0.0.1"])
    dns_server.zone("plain.example.jp", mx=[(1, "mx.plain.example.jp")])
    dns_server.zone("mx.plain.example.jp", a=["127.0.0.1"])
    settings: DispatcherSettings = make_settings(
        DispatcherSettings, delivery_mode="mx", dns_nameservers=dns_server.nameserver
    )
    router = Router(settings)
    names = await router.mx_names("workspace.example.jp")
    assert names == ("aspmx.l.google.com", "alt1.aspmx.l.google.com")
    assert settings.limit_for("workspace.example.jp", names) == settings.limit_for("gmail.com")
    plain = await router.mx_names("plain.example.jp")
    assert settings.limit_for("plain.example.jp", plain) == DomainLimit(connections=5, per_minute=600)
    assert await router.mx_names("nxdomain.example.jp") == ()
    relay: DispatcherSettings = make_settings(DispatcherSettings, dns_nameservers=dns_server.nameserver)
    queries = len(dns_server.queries)
    assert await Router(relay).mx_names("workspace.example.jp") == ()
    assert len(dns_server.queries) == queries
