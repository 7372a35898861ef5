"""The running system for each end-to-end test: every service as its own process (see testing/system.py),
on this test's database and vhost, with a loopback DNS server answering MX for the test domains and the
SMTP capture server as the relay. Logs go to the test's tmp dir and are printed when a test fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from isseimail_testing.dns import DnsServer
from isseimail_testing.smtp import CaptureServer
from isseimail_testing.system import SystemProcesses

# Domains the e2e tests send to; each has an MX record on the loopback DNS server.
DOMAINS = ["corp.example.jp", "example.co.jp", *(f"kaisha{i}.example.jp" for i in range(10))]


@pytest.fixture
def e2e_dns(dns_server: DnsServer) -> DnsServer:
    for domain in DOMAINS:
        dns_server.zone(domain, mx=[(10, f"mx.{domain}")])
    return dns_server


@pytest.fixture
async def system(
    request: pytest.FixtureRequest,
    database_url: str,
    amqp_url: str,
    smtp_server: CaptureServer,
    e2e_dns: DnsServer,
    tmp_path: Path,
) -> AsyncIterator[SystemProcesses]:
    """All services as separate processes; a test may set `@pytest.mark.system(workers=2, env={...})`."""
    marker = request.node.get_closest_marker("system")
    options = dict(marker.kwargs) if marker else {}
    procs = SystemProcesses(
        database_url=database_url,
        amqp_url=amqp_url,
        smtp_relay=("127.0.0.1", smtp_server.port),
        dns_nameserver=e2e_dns.nameserver,
        log_dir=tmp_path / "logs",
        **options,
    )
    await procs.start()
    try:
        yield procs
    finally:
        await procs.stop()
        if request.node.stash.get(FAILED, False):
            print(procs.logs_report(60))


FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if call.when == "call" and getattr(report, "failed", False):
        item.stash[FAILED] = True
    return report
