"""Dispatch under faults with the real broker, database and SMTP server: a worker killed with SIGKILL,
the broker cut mid-campaign, the database cut mid-campaign. Every recipient arrives; none twice, except
at most the uncommitted outcome group and the message on the wire of each connection a killed worker had."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from isseimail_dispatcher.app import create_app, create_worker_app
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_shared.events import CampaignAccepted, envelope_for
from isseimail_shared.messaging import Broker
from isseimail_testing.process import ServiceProcess, free_port, running_app
from isseimail_testing.smtp import CaptureServer
from isseimail_testing.snapshot import SENDER, SnapshotPeer, make_recipients
from isseimail_testing.tcpproxy import TcpProxy
from isseimail_testing.watch import EventWatch, watching

RECIPIENTS = 100
EXPECTED = {f"user{i}@example.jp" for i in range(1, RECIPIENTS + 1)} | {SENDER}
# 10 messages/s after a burst of 60: the campaign takes a few seconds, long enough to break something.
SLOW = {"domain_per_minute": 600, "batch_size": 10, "scheduler_seconds": 0.2, "claim_seconds": 2.0}


@pytest.fixture
async def watch(broker: Broker) -> AsyncIterator[EventWatch]:
    async with watching(broker, ["campaign.*"]) as w:
        yield w


def via(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    auth = f"{netloc[0]}@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{proxy.port}"))


async def accept(broker: Broker, snapshot_peer: SnapshotPeer, recipients: int = RECIPIENTS) -> Any:
    campaign_id = snapshot_peer.add(make_recipients(recipients))
    event = CampaignAccepted(
        campaign_id=campaign_id, pass_id=7, recipient_count=recipients, sender_email=SENDER, subject="x"
    )
    await broker.publish_event(envelope_for(event))
    return campaign_id


def counts(smtp_server: CaptureServer) -> Counter[str]:
    return Counter(m.rcpt_tos[0] for m in smtp_server.messages)


def worker_env(database_url: str, amqp_url: str, smtp_server: CaptureServer, port: int) -> dict[str, str]:
    return {
        "ISSEIMAIL_DATABASE_URL": database_url,
        "ISSEIMAIL_AMQP_URL": amqp_url,
        "ISSEIMAIL_SMTP_RELAY": f"smtp://127.0.0.1:{smtp_server.port}",
        "ISSEIMAIL_VERP_SECRET": "test-verp-secret",
        "ISSEIMAIL_WORKER_PORT": str(port),
        "ISSEIMAIL_WORKER_PREFETCH": "1",
        "ISSEIMAIL_DOMAIN_PER_MINUTE": "600",
        "ISSEIMAIL_CLAIM_SECONDS": "2",
    }


async def start(worker: ServiceProcess) -> None:
    worker.start()
    await worker.wait_ready()


async def dispatcher_count(database_url: str, query: str) -> int:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "dispatcher"})
    try:
        return int(await conn.fetchval(query))
    finally:
        await conn.close()


def assert_each_once(smtp_server: CaptureServer, watch: EventWatch) -> None:
    """Every recipient and the sender's copy arrived exactly once; the campaign completed once."""
    seen = counts(smtp_server)
    assert set(seen) == EXPECTED
    assert max(seen.values()) == 1
    assert len(watch.of("campaign.completed")) == 1


WithWorker = Callable[..., AbstractAsyncContextManager[ServiceProcess]]


@pytest.fixture
def with_worker(database_url: str, amqp_url: str, smtp_server: CaptureServer, tmp_path: Path) -> WithWorker:
    """`async with with_worker(settings, **env) as worker`: the dispatcher in-process with `settings` and one
    worker process, ready, with worker_env() plus `env`; the worker is killed on leaving, whatever happened."""

    @contextlib.asynccontextmanager
    async def run(settings: DispatcherSettings, **env: str) -> AsyncIterator[ServiceProcess]:
        port = free_port()
        environment = {**worker_env(database_url, amqp_url, smtp_server, port), **env}
        worker = ServiceProcess("isseimail_dispatcher", environment, port, tmp_path / "worker.log", args=["worker"])
        async with running_app(create_app(settings)):
            try:
                await start(worker)
                yield worker
            finally:
                worker.kill()

    return run


@contextlib.asynccontextmanager
async def proxied(url: str, default_port: int) -> AsyncIterator[tuple[TcpProxy, str]]:
    """A TCP proxy before the server of `url` (which the test can cut), and `url` pointed at the proxy."""
    proxy = TcpProxy("127.0.0.1", urlsplit(url).port or default_port)
    await proxy.start()
    try:
        yield proxy, via(url, proxy)
    finally:
        await proxy.stop()


CutMidCampaign = Callable[[DispatcherSettings, TcpProxy], Awaitable[tuple[int, int]]]


@pytest.fixture
def cut_mid_campaign(
    smtp_server: CaptureServer, snapshot_peer: SnapshotPeer, broker: Broker, watch: EventWatch
) -> CutMidCampaign:
    """Run a campaign in-process (API and worker with `settings`), cut `proxy` for two seconds once 65 have
    arrived, wait for the completion; returns the messages arrived when the cut came and when it ended."""

    async def run(settings: DispatcherSettings, proxy: TcpProxy) -> tuple[int, int]:
        async with running_app(create_app(settings)), running_app(create_worker_app(settings)):
            await accept(broker, snapshot_peer)
            await smtp_server.wait_for(65, timeout=30)
            proxy.cut()
            at_cut = len(smtp_server.messages)
            await asyncio.sleep(2.0)
            at_restore = len(smtp_server.messages)
            proxy.restore()
            await watch.wait_for("campaign.completed", timeout=60)
        return at_cut, at_restore

    return run


async def test_worker_killed_mid_campaign_then_restarted(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    snapshot_peer: SnapshotPeer,
    broker: Broker,
    watch: EventWatch,
    with_worker: WithWorker,
) -> None:
    """SIGKILL of the only worker mid-campaign, then a restart: all 101 arrive, at most one outcome group
    (20, the default flush count) plus the message on the wire twice."""
    settings = make_settings(DispatcherSettings, composer_url=snapshot_peer.url, **SLOW)
    async with with_worker(settings) as worker:
        await accept(broker, snapshot_peer)
        await smtp_server.wait_for(65, timeout=30)
        worker.kill()
        assert len(smtp_server.messages) < RECIPIENTS + 1
        await start(worker)
        completed = await watch.wait_for("campaign.completed", timeout=60)
    seen = counts(smtp_server)
    assert set(seen) == EXPECTED
    assert sum(seen.values()) - len(seen) <= settings.outcome_flush_count + 1
    assert (completed[0].sent, completed[0].failed) == (RECIPIENTS + 1, 0)
    assert len(watch.of("campaign.completed")) == 1


async def test_worker_killed_with_outcomes_uncommitted_resends_at_most_one_group(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    snapshot_peer: SnapshotPeer,
    broker: Broker,
    watch: EventWatch,
    database_url: str,
    with_worker: WithWorker,
) -> None:
    """SIGKILL while outcomes wait in their group: at most flush_count + 1 resent on the one connection, none lost."""
    total, flush_count = 1500, 20
    settings = make_settings(DispatcherSettings, composer_url=snapshot_peer.url, batch_size=5000, claim_seconds=2.0)
    async with with_worker(
        settings,
        ISSEIMAIL_DOMAIN_PER_MINUTE="1000000",
        ISSEIMAIL_OUTCOME_FLUSH_COUNT=str(flush_count),
        ISSEIMAIL_OUTCOME_FLUSH_SECONDS="5",  # only the count closes a group: the widest window
    ) as worker:
        await accept(broker, snapshot_peer, total)
        await smtp_server.wait_for(300, timeout=60)
        worker.kill()
        received = len(smtp_server.messages)
        assert received < total + 1
        recorded = await dispatcher_count(database_url, "SELECT count(*) FROM deliveries WHERE state = 'sent'")
        # Sent but not recorded when the process died: the crash window, one group plus the one on the wire.
        assert 0 <= received - recorded <= flush_count + 1
        await start(worker)
        completed = await watch.wait_for("campaign.completed", timeout=120)
    seen = counts(smtp_server)
    assert set(seen) == {f"user{i}@example.jp" for i in range(1, total + 1)} | {SENDER}
    assert sum(seen.values()) - len(seen) <= flush_count + 1
    assert (completed[0].sent, completed[0].failed) == (total + 1, 0)


async def test_worker_stopped_with_sigterm_hands_its_batch_over(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    snapshot_peer: SnapshotPeer,
    broker: Broker,
    watch: EventWatch,
    database_url: str,
    with_worker: WithWorker,
) -> None:
    """SIGTERM mid-batch: the worker finishes the message on the wire, hands the rest back; nobody gets two."""
    # One batch of all 101 takes ~5 s at 10/s, longer than the 3 s grace: only handing back stops in time.
    settings = make_settings(DispatcherSettings, composer_url=snapshot_peer.url, **{**SLOW, "batch_size": 200})
    async with with_worker(settings, ISSEIMAIL_SHUTDOWN_GRACE_SECONDS="3") as worker:
        await accept(broker, snapshot_peer)
        await smtp_server.wait_for(65, timeout=30)
        # in a thread: the capture server lives in this event loop and must keep answering
        assert await asyncio.to_thread(worker.terminate, 20) in (0, -15)  # uvicorn re-raises SIGTERM
        assert len(smtp_server.messages) < RECIPIENTS + 1
        # handed back, not abandoned: nothing left 'sending', no batch still claimed
        sending = await dispatcher_count(database_url, "SELECT count(*) FROM deliveries WHERE state = 'sending'")
        claimed = await dispatcher_count(database_url, "SELECT count(*) FROM batches WHERE claimed_by IS NOT NULL")
        assert (sending, claimed) == (0, 0)
        await start(worker)
        await watch.wait_for("campaign.completed", timeout=60)
    assert_each_once(smtp_server, watch)


async def test_broker_cut_mid_campaign(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    snapshot_peer: SnapshotPeer,
    watch: EventWatch,
    amqp_url: str,
    cut_mid_campaign: CutMidCampaign,
) -> None:
    """Every connection to RabbitMQ dropped for two seconds mid-campaign: it completes, nobody gets two."""
    async with proxied(amqp_url, 5672) as (proxy, url):
        settings = make_settings(DispatcherSettings, composer_url=snapshot_peer.url, amqp_url=url, **SLOW)
        await cut_mid_campaign(settings, proxy)
    assert_each_once(smtp_server, watch)


async def test_database_cut_mid_campaign(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    snapshot_peer: SnapshotPeer,
    watch: EventWatch,
    database_url: str,
    cut_mid_campaign: CutMidCampaign,
) -> None:
    """PostgreSQL unreachable for two seconds mid-campaign: workers pause, resume, and send nobody twice."""
    async with proxied(database_url, 5432) as (proxy, url):
        settings = make_settings(DispatcherSettings, composer_url=snapshot_peer.url, database_url=url, **SLOW)
        at_cut, at_restore = await cut_mid_campaign(settings, proxy)
    assert at_restore - at_cut <= 2  # at most the messages already on the wire when the cut came
    assert_each_once(smtp_server, watch)
