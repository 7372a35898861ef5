"""Shaping against real servers: rate-limit replies slow a domain down fleet-wide (PostgreSQL) and it recovers;
messages per connection; provider presets matched by MX through the real DNS server."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from isseimail_dispatcher import shaping_targets
from isseimail_dispatcher.adaptive import Adaptation, ThrottleState, effective_per_minute, step
from isseimail_dispatcher.destinations import Router
from isseimail_dispatcher.limits import record_rate_limit, take_tokens, take_tokens_all, throttle_states
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


async def test_every_bucket_is_debited_alike_and_the_surplus_given_back(pool: asyncpg.Pool) -> None:
    """Relay mode debits the domain's and the relay's bucket: the emptier one decides, the other gets back what
    it granted beyond that; with the relay empty nothing is granted and nothing is lost."""
    domain, relay = (
        ("example.jp", DomainLimit(connections=5, per_minute=600)),
        (
            "relay:smtp.example.jp:25",
            DomainLimit(connections=1000, per_minute=60),
        ),
    )
    assert await take_tokens_all(pool, [domain, relay], 1) == (0, 0.0)  # the domain's row is made
    await take_tokens_all(pool, [domain, relay], 1)  # and the relay's
    await pool.execute("UPDATE domain_buckets SET tokens = 50, refilled_at = clock_timestamp()")
    await pool.execute("UPDATE domain_buckets SET tokens = 4 WHERE domain = $1", relay[0])
    granted, _ = await take_tokens_all(pool, [domain, relay], 20)
    assert granted == 4
    tokens = {r["domain"]: r["tokens"] for r in await pool.fetch("SELECT domain, tokens FROM domain_buckets")}
    assert tokens["example.jp"] == pytest.approx(46, abs=0.5)
    assert tokens[relay[0]] == pytest.approx(0, abs=0.5)
    granted, wait = await take_tokens_all(pool, [domain, relay], 20)
    assert granted == 0
    assert wait > 0
    after = await pool.fetchval("SELECT tokens FROM domain_buckets WHERE domain = 'example.jp'")
    assert after == pytest.approx(46, abs=0.5)


def test_relay_mode_throttles_the_relay_and_mx_mode_the_domain(make_settings: Callable[..., Any]) -> None:
    """Which bucket a rate-limit reply lowers and which messages-per-connection applies, by delivery mode."""
    relay = make_settings(
        DispatcherSettings,
        relay_per_minute=900,
        relay_messages_per_connection=7,
        domain_limits='{"example.jp": {"messages_per_connection": 3}}',
    )
    limit = relay.limit_for("example.jp")
    key, relay_limit = shaping_targets.throttle_target(relay, "example.jp", ())
    assert key == f"relay:127.0.0.1:{relay.smtp_relay.port}"
    assert relay_limit.per_minute == 900
    assert [k for k, _ in shaping_targets.buckets(relay, "example.jp", limit)] == ["example.jp", key]
    assert shaping_targets.messages_per_connection(relay, limit) == 7
    assert shaping_targets.ceiling(relay, key) == 900
    assert shaping_targets.ceiling(relay, "example.jp") == limit.per_minute
    mx = make_settings(
        DispatcherSettings, delivery_mode="mx", domain_limits='{"example.jp": {"messages_per_connection": 3}}'
    )
    assert shaping_targets.throttle_target(mx, "example.jp", ()) == ("example.jp", mx.limit_for("example.jp"))
    assert [k for k, _ in shaping_targets.buckets(mx, "example.jp", limit)] == ["example.jp"]
    assert shaping_targets.messages_per_connection(mx, mx.limit_for("example.jp")) == 3


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


def mx_mode(dns: DnsServer, smtp: CaptureServer, *domains: str) -> dict[str, Any]:
    """Settings for direct-MX delivery: each domain's MX resolves (test DNS) to the capture server on loopback."""
    for domain in domains:
        dns.zone(domain, mx=[(10, f"mx.{domain}")])
        dns.zone(f"mx.{domain}", a=["127.0.0.1"])
    return {"delivery_mode": "mx", "mx_port": smtp.port, "dns_nameservers": dns.nameserver}


async def buckets(database_url: str) -> dict[str, asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return {r["domain"]: r for r in await conn.fetch("SELECT * FROM dispatcher.domain_buckets")}
    finally:
        await conn.close()


async def test_a_domain_answering_421_slows_down_and_the_campaign_completes(
    fast_settings: Any,
    smtp_server: CaptureServer,
    dns_server: DnsServer,
    watch: Any,
    make_recipients: Any,
    send_campaign: Any,
    database_url: str,
) -> None:
    """mx mode: 421 4.7.0 "too many messages" from the domain's MX for six recipients' first attempts, then
    acceptance: every recipient is delivered once and none fails; the domain's stored rate went down, the
    metrics show it, and it recovers step by step."""
    rows = make_recipients(20)
    for row in rows[:6]:  # per recipient, so that the sender's own copy (another domain) is never refused
        smtp_server.handler.fail_recipient(row.email, 421, "4.7.0 Too many messages, try again later", times=1)
    settings = fast_settings(
        domain_limits='{"example.jp": {"connections": 2, "per_minute": 1200}}',
        throttle_window_seconds=2.0,
        throttle_increase_fraction=0.25,
        **mx_mode(dns_server, smtp_server, "example.jp", "corp.example.jp"),
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
    assert not [key for key in await buckets(database_url) if key.startswith("relay:")]  # mx mode: no relay bucket
    assert min(seen) < 1200
    # From the last slow-down on (a late 421 may come after a first step up: the window is 2 s here), the
    # rate only rises, in steps of a quarter of 1,200 at most, back to 1,200.
    drops = [i for i in range(1, len(seen)) if seen[i] < seen[i - 1]]
    levels = sorted(set(seen[drops[-1] if drops else 0 :]))
    assert levels[-1] == 1200
    assert len(levels) >= 3  # the lowered rate, at least one step between, the configured rate
    assert all(b - a <= 300 + 1e-6 for a, b in itertools.pairwise(levels))


async def test_a_421_to_an_envelope_sent_ahead_slows_down_like_any_other(
    fast_settings: Any,
    smtp_server: CaptureServer,
    dns_server: DnsServer,
    watch: Any,
    make_recipients: Any,
    send_campaign: Any,
    database_url: str,
) -> None:
    """The MX answers 421 to a recipient in mid-batch, whose envelope went out ahead, behind the previous
    message's data: the refusal is that recipient's outcome (retried, then delivered once) and lowers the
    domain's rate, not a broken connection quietly replaced."""
    rows = make_recipients(12)
    busy = rows[1]  # batches of 5 here: the second of the first batch, its envelope sent behind the first
    smtp_server.handler.fail_recipient(busy.email, 421, "4.7.0 Too many messages, try again later", times=1)
    settings = fast_settings(
        domain_limits='{"example.jp": {"connections": 1, "per_minute": 1200}}',
        **mx_mode(dns_server, smtp_server, "example.jp", "corp.example.jp"),
    )
    async with running_dispatcher(settings):
        completed = await send_campaign(rows)
    assert (completed.sent, completed.failed) == (13, 0)
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == sorted(
        [r.email for r in rows] + ["sender@corp.example.jp"]
    )
    attempts = {r["email"]: r["attempts"] for r in (await deliveries(database_url)).values()}
    assert attempts[busy.email] == 2
    assert all(n == 1 for email, n in attempts.items() if email != busy.email)
    bucket = (await buckets(database_url))["example.jp"]
    assert bucket["throttle_events"] == 1
    assert "Too many messages" in bucket["last_reply"]


async def test_a_relay_answering_421_slows_the_relay_not_the_domains(
    fast_settings: Any,
    smtp_server: CaptureServer,
    watch: Any,
    make_recipients: Any,
    send_campaign: Any,
    database_url: str,
) -> None:
    """relay mode: the relay's own 421 4.7.0 (at MAIL FROM, for four transactions) lowers the relay's rate
    (bucket relay:HOST:PORT, metric label "relay"); no recipient domain is marked throttled; every recipient
    is delivered once."""
    rows = make_recipients(8) + make_recipients(8, domain="example.com", start=100)
    smtp_server.handler.fail_next("MAIL", 421, "4.7.0 Too many messages from you, slow down", times=4)
    settings = fast_settings(relay_per_minute=3000, throttle_window_seconds=30.0)
    async with running_dispatcher(settings) as (_api, worker):
        completed = await send_campaign(rows)
        metrics = (await worker.get("/metrics")).text
    assert (completed.sent, completed.failed) == (17, 0)
    assert not watch.of("delivery.failed")
    state = await buckets(database_url)
    relay = state[f"relay:127.0.0.1:{smtp_server.port}"]
    assert relay["throttle_events"] == 4
    assert relay["lowered_per_minute"] < 3000
    assert "Too many messages from you" in relay["last_reply"]
    for domain in ("example.jp", "example.com", "corp.example.jp"):
        assert state[domain]["throttle_events"] == 0, domain
        assert state[domain]["lowered_per_minute"] is None, domain
    events = sum(
        sample(metrics, "isseimail_dispatch_throttle_events_total", domain="relay", action=a)
        for a in ("decreased", "held")
    )
    assert events == 4
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == sorted(
        [r.email for r in rows] + ["sender@corp.example.jp"]
    )


async def test_messages_per_connection_is_the_hosts_in_mx_mode(
    fast_settings: Any, smtp_server: CaptureServer, dns_server: DnsServer, make_recipients: Any, send_campaign: Any
) -> None:
    """mx mode, messages_per_connection 3 for example.jp: ten messages arrive over at least four connections,
    none over more than three."""
    settings = fast_settings(
        batch_size=10,
        worker_prefetch=1,
        domain_limits='{"example.jp": {"messages_per_connection": 3}}',
        **mx_mode(dns_server, smtp_server, "example.jp", "corp.example.jp"),
    )
    async with running_dispatcher(settings):
        await send_campaign(make_recipients(10))
    per_connection = Counter(m.peer for m in smtp_server.messages if m.rcpt_tos[0].endswith("@example.jp"))
    assert sum(per_connection.values()) == 10
    assert None not in per_connection
    assert max(per_connection.values()) <= 3
    assert len(per_connection) >= 4


async def test_messages_per_connection_is_the_relays_in_relay_mode(
    fast_settings: Any, smtp_server: CaptureServer, make_recipients: Any, send_campaign: Any
) -> None:
    """relay mode: the relay's limit (3) caps every relay connection whatever the recipient domain's limit
    (100 here); a domain's own limit (2 for example.jp) does not close relay connections."""
    settings = fast_settings(
        batch_size=10,
        worker_prefetch=1,
        relay_messages_per_connection=3,
        domain_limits='{"example.jp": {"messages_per_connection": 100}}',
    )
    async with running_dispatcher(settings):
        await send_campaign(make_recipients(10))
    per_connection = Counter(m.peer for m in smtp_server.messages)
    assert sum(per_connection.values()) == 11
    assert max(per_connection.values()) <= 3
    first = len(smtp_server.messages)
    unlimited = fast_settings(
        batch_size=10, worker_prefetch=1, domain_limits='{"example.jp": {"messages_per_connection": 2}}'
    )
    async with running_dispatcher(unlimited):
        await send_campaign(make_recipients(10, start=100))
    later = smtp_server.messages[first:]
    per_connection = Counter(m.peer for m in later if m.rcpt_tos[0].endswith("@example.jp"))
    assert sum(per_connection.values()) == 10
    assert max(per_connection.values()) > 2


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
