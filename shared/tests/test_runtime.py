"""The service skeleton: health, readiness, metrics, and a graceful stop that finishes in-flight work."""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from isseimail_shared import runtime as runtime_module
from isseimail_shared.app import create_app
from isseimail_shared.db import Conn
from isseimail_shared.events import AdminCreated, Envelope, envelope_for
from isseimail_shared.runtime import Runtime, ServiceSpec
from isseimail_shared.settings import ServiceSettings
from isseimail_testing.process import running_app
from isseimail_testing.tcpproxy import TcpProxy


def spec(consumers=None) -> ServiceSpec:  # type: ignore[no-untyped-def]
    return ServiceSpec(name="probe", schema="probe", migrations=None, **({"consumers": consumers} if consumers else {}))


async def test_health_ready_and_metrics(database_url: str, amqp_url: str) -> None:
    """A started service is alive, ready (database and broker answer) and exports isseimail_ metrics."""
    settings = ServiceSettings(database_url=database_url, amqp_url=amqp_url)
    async with running_app(create_app(spec(), settings)) as client:
        assert (await client.get("/healthz")).json() == {"status": "alive"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": True, "broker": True}
        metrics = (await client.get("/metrics")).text
        assert 'isseimail_ready{service="probe"} 1.0' in metrics
        assert "isseimail_outbox_backlog" in metrics


async def test_not_ready_when_database_unreachable(database_url: str, amqp_url: str) -> None:
    """When PostgreSQL stops answering, /readyz says 503 and names the database; it recovers by itself."""
    target = urlsplit(database_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    proxied = urlunsplit(target._replace(netloc=f"postgres@127.0.0.1:{proxy.port}"))
    settings = ServiceSettings(database_url=proxied, amqp_url=amqp_url)
    try:
        async with running_app(create_app(spec(), settings)) as client:
            assert (await client.get("/readyz")).status_code == 200
            proxy.cut()
            down = await client.get("/readyz")
            assert down.status_code == 503
            assert down.json()["checks"]["database"] is False
            proxy.restore()
            for _ in range(50):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert (await client.get("/readyz")).status_code == 200
    finally:
        await proxy.stop()


async def test_stop_waits_for_in_flight_handler(database_url: str, amqp_url: str) -> None:
    """On shutdown the consumer stops taking messages but the handler already running completes and acks."""
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow(conn: Conn, envelope: Envelope, event: AdminCreated) -> None:
        started.set()
        await asyncio.sleep(0.5)
        finished.set()

    def consumers(rt: Runtime):  # type: ignore[no-untyped-def]
        return [rt.event_consumer("probe.events", {AdminCreated: slow})]

    settings = ServiceSettings(database_url=database_url, amqp_url=amqp_url)
    app = create_app(spec(consumers), settings)
    async with running_app(app):
        runtime: Runtime = app.state.runtime
        await runtime.broker.publish_event(envelope_for(AdminCreated(admin_id=1, email="a@example.jp")))
        await asyncio.wait_for(started.wait(), 10)
    assert finished.is_set()
    # The message was acked: a new consumer on the queue gets nothing.
    async with running_app(create_app(spec(consumers), settings)) as client:
        assert (await client.get("/readyz")).status_code == 200
        started.clear()
        await asyncio.sleep(0.5)
        assert not started.is_set()


async def test_stop_ends_even_when_a_task_and_the_pool_hang(
    database_url: str, amqp_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A background task that ignores cancellation and a connection never given back to the pool do not hang
    the stop: each step is abandoned after its time limit, with a warning naming it, and the pool is terminated."""
    monkeypatch.setattr(runtime_module, "STOP_STEP_SECONDS", 0.3)
    release, running = asyncio.Event(), asyncio.Event()

    async def stubborn(_rt: Runtime) -> None:
        running.set()
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.05)

    async def hold_a_connection(rt: Runtime) -> None:
        await rt.pool.acquire()  # never released

    probe = ServiceSpec(
        name="probe", schema="probe", migrations=None, background=[stubborn], on_start=[hold_a_connection]
    )
    app = create_app(probe, ServiceSettings(database_url=database_url, amqp_url=amqp_url))
    try:
        async with running_app(app):
            pool = app.state.runtime.pool
            await asyncio.wait_for(running.wait(), timeout=5)
        started = time.monotonic()
    finally:
        release.set()
    assert pool.is_closing()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("probe:stubborn did not stop" in w for w in warnings), warnings
    assert any("database pool close did not finish" in w for w in warnings), warnings
    assert time.monotonic() - started < 5


async def test_a_failed_start_closes_what_it_opened(database_url: str, amqp_url: str) -> None:
    """A start hook that raises (a broken key, a bad preset file) still leaves no pool or broker connection open."""

    async def broken(_rt: Runtime) -> None:
        raise RuntimeError("broken configuration")

    app = create_app(
        ServiceSpec(name="probe", schema="probe", migrations=None, on_start=[broken]),
        ServiceSettings(database_url=database_url, amqp_url=amqp_url),
    )
    with pytest.raises(RuntimeError, match="broken configuration"):
        async with running_app(app):
            pass
    runtime = app.state.runtime
    assert runtime.pool_ is not None
    assert runtime.pool_.is_closing()
    assert runtime.broker_ is not None
    assert not runtime.broker_.is_connected()
