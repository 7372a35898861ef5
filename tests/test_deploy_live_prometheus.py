"""Live: the services run as real processes, a real Prometheus (Debian's) scrapes them with the repository's
rules, a small campaign is dispatched, and Prometheus's HTTP API shows its messages and no alert.

The campaign enters at the dispatcher (campaign.accepted on the broker, the snapshot served by the shared
SnapshotPeer in place of the composer): that is where the metrics under test are made. Set
ISSEIMAIL_PLOT_OUT=path.png to also draw the dashboard's main panels from this run (bench/plot_metrics.py),
and ISSEIMAIL_LIVE_RECIPIENTS to make the campaign larger.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet
from tests.deploy_support import ROOT, load_script, tool

from isseimail_shared.events import CampaignAccepted, envelope_for
from isseimail_shared.messaging import Broker
from isseimail_shared.testing.dns import DnsServer
from isseimail_shared.testing.http import serving
from isseimail_shared.testing.process import ServiceProcess, free_port
from isseimail_shared.testing.smtp import CaptureServer
from isseimail_shared.testing.snapshot import SENDER, SnapshotPeer, make_recipients

RULES = ROOT / "deploy" / "prometheus" / "rules"
RECIPIENTS = int(os.environ.get("ISSEIMAIL_LIVE_RECIPIENTS", "60"))
PLOT_OUT = os.environ.get("ISSEIMAIL_PLOT_OUT")
REQUIRED_ALERTS = load_script("tests/test_deploy_prometheus.py").REQUIRED_ALERTS

# (component, module, port variable, arguments)
PROCESSES = [
    ("gateway", "isseimail_gateway", "ISSEIMAIL_GATEWAY_PORT", ()),
    ("pass-service", "isseimail_pass", "ISSEIMAIL_PASS_PORT", ()),
    ("list-validator", "isseimail_list_validator", "ISSEIMAIL_LIST_VALIDATOR_PORT", ()),
    ("composer", "isseimail_composer", "ISSEIMAIL_COMPOSER_PORT", ()),
    ("dispatcher", "isseimail_dispatcher", "ISSEIMAIL_DISPATCHER_PORT", ()),
    ("dispatcher-worker", "isseimail_dispatcher", "ISSEIMAIL_WORKER_PORT", ("worker",)),
    ("notifier", "isseimail_notifier", "ISSEIMAIL_NOTIFIER_PORT", ()),
]


class Process(ServiceProcess):
    """A service subprocess with arguments (`python -m isseimail_dispatcher worker`)."""

    def __init__(self, module: str, args: tuple[str, ...], env: dict[str, str], port: int, log: Path) -> None:
        super().__init__(module, env, port, log)
        self.args = args

    def start(self) -> None:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args], env=self.env, stdout=out, stderr=subprocess.STDOUT
        )


def stop_all(processes: list[Process], timeout: float = 10.0) -> None:
    """SIGTERM to every process at once, then wait: the graceful stops overlap instead of adding up."""
    running = [p.proc for p in processes if p.proc is not None and p.proc.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
async def peer() -> AsyncIterator[SnapshotPeer]:
    p = SnapshotPeer()
    async with serving(p.app()) as url:
        p.url = url
        yield p


@pytest.fixture
async def stack(
    database_url: str,
    amqp_url: str,
    smtp_server: CaptureServer,
    dns_server: DnsServer,
    peer: SnapshotPeer,
    tmp_path: Path,
) -> AsyncIterator[dict[str, int]]:
    """Every service and the dispatcher's worker as subprocesses; yields component → port."""
    ports = {name: free_port() for name, *_ in PROCESSES}
    common = {
        "ISSEIMAIL_DATABASE_URL": database_url,
        "ISSEIMAIL_AMQP_URL": amqp_url,
        "ISSEIMAIL_SMTP_RELAY": f"smtp://127.0.0.1:{smtp_server.port}",
        "ISSEIMAIL_DNS_NAMESERVERS": dns_server.nameserver,
        "ISSEIMAIL_VERP_SECRET": "live-test-verp-secret",
        "ISSEIMAIL_CREDENTIALS_KEY": Fernet.generate_key().decode(),
        "ISSEIMAIL_SESSION_SECRET": "live-test-session-secret",
        "ISSEIMAIL_BOUNCE_LISTEN_PORT": str(free_port()),
        "ISSEIMAIL_LOG_LEVEL": "WARNING",
        "ISSEIMAIL_SHUTDOWN_GRACE_SECONDS": "5",
        "ISSEIMAIL_PASS_URL": f"http://127.0.0.1:{ports['pass-service']}",
        "ISSEIMAIL_LIST_VALIDATOR_URL": f"http://127.0.0.1:{ports['list-validator']}",
        "ISSEIMAIL_DISPATCHER_URL": f"http://127.0.0.1:{ports['dispatcher']}",
        "ISSEIMAIL_NOTIFIER_URL": f"http://127.0.0.1:{ports['notifier']}",
        "ISSEIMAIL_SCHEDULER_SECONDS": "0.2",
        "ISSEIMAIL_BATCH_SIZE": "10",
        # ~2 messages/s per domain after a small burst: the campaign spans several scrapes, so rate() sees it
        "ISSEIMAIL_DOMAIN_PER_MINUTE": os.environ.get("ISSEIMAIL_LIVE_PER_MINUTE", "120"),
    }
    processes = []
    for name, module, port_env, args in PROCESSES:
        composer = peer.url if name.startswith("dispatcher") else f"http://127.0.0.1:{ports['composer']}"
        env = {**common, port_env: str(ports[name]), "ISSEIMAIL_COMPOSER_URL": composer}
        processes.append(Process(module, args, env, ports[name], tmp_path / f"{name}.log"))
    try:
        for process in processes:
            process.start()
        await asyncio.gather(*(p.wait_ready(timeout=90) for p in processes))
        yield ports
    finally:
        # in a thread: the SMTP capture server and the snapshot peer live in this event loop, and a worker
        # says QUIT to its SMTP connections while it stops
        await asyncio.to_thread(stop_all, processes)


@contextlib.contextmanager
def prometheus_server(ports: dict[str, int], tmp_path: Path) -> Iterator[str]:
    """Debian's Prometheus with the repository's rules, scraping every process each second."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES / "*.yml")],
        "scrape_configs": [
            {
                "job_name": "isseimail",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"], "labels": {"component": name}} for name, port in ports.items()
                ],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            tool("prometheus", "prometheus"),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "prometheus.log").read_text(errors="replace")[-2000:])
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


async def query(client: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
    body = (await client.get("/api/v1/query", params={"query": expr})).json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def scalar(client: httpx.AsyncClient, expr: str) -> float | None:
    result = await query(client, expr)
    return float(result[0]["value"][1]) if result else None


async def wait_until(client: httpx.AsyncClient, expr: str, want: float, timeout: float) -> float | None:
    """Poll an instant query until it equals `want`; returns the last value seen."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = await scalar(client, expr)
        if value == want:
            return value
        await asyncio.sleep(0.5)
    return value


@pytest.mark.timeout(240)
async def test_campaign_shows_in_prometheus_and_no_alert_fires(
    stack: dict[str, int], amqp_url: str, smtp_server: CaptureServer, peer: SnapshotPeer, tmp_path: Path
) -> None:
    """Every target is up and ready, the campaign's messages, bytes and latencies are in Prometheus (raw and
    through the recording rules), every rule evaluates without error, and no alert is pending or firing."""
    with prometheus_server(stack, tmp_path) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            assert await wait_until(client, 'count(up{job="isseimail"} == 1)', len(stack), 30) == len(stack)
            assert await wait_until(client, "count(isseimail_ready == 1)", len(stack), 30) == len(stack)
            started = time.time()

            half = RECIPIENTS // 2
            recipients = make_recipients(half) + make_recipients(RECIPIENTS - half, "example.co.jp", start=half + 1)
            campaign_id = peer.add(recipients)
            broker = Broker(amqp_url, name="live-prometheus-test")
            await broker.connect()
            try:
                event = CampaignAccepted(
                    campaign_id=campaign_id,
                    pass_id=1,
                    recipient_count=RECIPIENTS,
                    sender_email=SENDER,
                    subject="ご案内",
                )
                await broker.publish_event(envelope_for(event))
            finally:
                await broker.close()

            sent = 'sum(isseimail_dispatch_messages_total{outcome="sent"})'
            assert await wait_until(client, sent, RECIPIENTS + 1, 90) == RECIPIENTS + 1
            delivered = {r for m in smtp_server.messages for r in m.rcpt_tos}
            assert {r.email for r in recipients} | {SENDER} <= delivered
            assert await scalar(client, "sum(isseimail_dispatch_smtp_transaction_seconds_count)") == RECIPIENTS + 1
            assert (await scalar(client, "sum(isseimail_dispatch_bytes_sent_total)") or 0) > RECIPIENTS * 500
            assert await scalar(client, 'sum(isseimail_dispatch_messages_total{outcome="failed"})') in (None, 0)
            assert (await scalar(client, "max_over_time(isseimail:messages_sent:rate1m[5m])") or 0) > 0
            assert (await scalar(client, "isseimail:smtp_transaction_seconds:p95_5m") or 0) > 0
            assert await scalar(client, 'max(isseimail:queue_messages:max{queue=~".+\\\\.dlq"})') == 0

            await asyncio.sleep(3)  # a few more evaluations after the campaign
            rules = (await client.get("/api/v1/rules")).json()["data"]["groups"]
            evaluated = [r for g in rules for r in g["rules"]]
            assert [r["name"] for r in evaluated if r["health"] != "ok"] == []
            alerts = {r["name"]: r for r in evaluated if r["type"] == "alerting"}
            assert set(alerts) >= REQUIRED_ALERTS
            assert {n: r["state"] for n, r in alerts.items() if r["state"] != "inactive"} == {}
            assert (await client.get("/api/v1/alerts")).json()["data"]["alerts"] == []

            if PLOT_OUT:
                await asyncio.sleep(5)
                plot_metrics = load_script("bench/plot_metrics.py")
                peaks = plot_metrics.plot(url, started - 10, time.time(), Path(PLOT_OUT), step=1.0)
                plot_metrics.print_table(peaks)
