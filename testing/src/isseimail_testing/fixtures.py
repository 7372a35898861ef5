"""pytest plugin with the fixtures every service's tests use (registered in the root conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import pytest

from isseimail_shared.messaging import Broker
from isseimail_shared.settings import ServiceSettings, SmtpRelay
from isseimail_testing.clamd import ClamdServer
from isseimail_testing.dns import DnsServer
from isseimail_testing.http import serving_peer
from isseimail_testing.infra import create_database, create_vhost, delete_vhost, drop_database
from isseimail_testing.private_infra import PrivatePostgres, PrivateRabbitMQ
from isseimail_testing.smtp import CaptureServer
from isseimail_testing.snapshot import SnapshotPeer

S = TypeVar("S", bound=ServiceSettings)

CREDENTIALS_KEY = "pZ4mY0a8mJv1m0m1eJ6bK0pXq3b9l0QmKxRk2cZpW1E="  # a Fernet key for tests only


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """A database of its own for this test, dropped afterwards."""
    url = await create_database()
    yield url
    await drop_database(url)


@pytest.fixture
def amqp_url() -> Iterator[str]:
    """A RabbitMQ vhost of its own for this test, deleted afterwards."""
    vhost, url = create_vhost()
    yield url
    delete_vhost(vhost)


@pytest.fixture
async def broker(amqp_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    """A broker connection of the test's own (named after the test), for publishing and watching events."""
    b = Broker(amqp_url, name=request.node.nodeid[-200:])
    await b.connect()
    yield b
    await b.close()


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this module's own that its tests may stop and restart (about 1 s to create)."""
    with PrivatePostgres() as server:
        yield server


@pytest.fixture(scope="module")
def private_rabbitmq() -> Iterator[PrivateRabbitMQ]:
    """A RabbitMQ node of this module's own that its tests may stop and restart (about 5 s to boot)."""
    with PrivateRabbitMQ() as server:
        yield server


@pytest.fixture(scope="session")
def clamd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClamdServer]:
    """A real clamd (TCP on loopback and a unix socket) with an EICAR database the tests build; started once."""
    server = ClamdServer(tmp_path_factory.mktemp("clamd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def snapshot_peer() -> AsyncIterator[SnapshotPeer]:
    """A stand-in composer on a loopback port serving the snapshot NDJSON contract."""
    async with serving_peer(SnapshotPeer()) as peer:
        yield peer


@pytest.fixture
async def smtp_server() -> AsyncIterator[CaptureServer]:
    """A real SMTP server on a loopback port that captures every message."""
    server = CaptureServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """A real DNS server on a loopback port; undeclared names answer NXDOMAIN."""
    server = DnsServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_settings(database_url: str, amqp_url: str, smtp_server: CaptureServer) -> Callable[..., Any]:
    """Build a service's settings pointed at this test's database, vhost and SMTP server."""

    def build(cls: type[S], **overrides: Any) -> S:
        values: dict[str, Any] = {
            "database_url": database_url,
            "amqp_url": amqp_url,
            "smtp_relay": SmtpRelay(host="127.0.0.1", port=smtp_server.port),
            "outbox_poll_seconds": 0.2,
            "shutdown_grace_seconds": 5,
            # Shared secrets as every service of one test must agree on them; services that do not
            # know a field ignore it (settings use extra="ignore").
            "credentials_key": CREDENTIALS_KEY,
            "verp_secret": "test-verp-secret",
            # The notifier's bounce SMTP listener: any free port, so tests never collide on 2525.
            "bounce_listen_port": 0,
            # Most tests compose text-only mail; the manual's (必須) default has tests of its own.
            "attachments_required": False,
        }
        values.update(overrides)
        return cls(**values)

    return build
