"""A 5,000-recipient campaign through the gateway's JSON API while things break, every service its own process.

1. Each service is killed with SIGKILL once mid-campaign and restarted, one at a time: a dispatcher
   worker, the dispatcher (serve: it also relays the workers' outbox and re-queues the batches of dead
   workers), notifier, composer, list-validator, pass-service, gateway. The processes the running campaign
   needs come first and must strike mid-campaign; on a machine so loaded that seven restarts outlast the
   campaign, the last ones (services it no longer calls) may strike after it: the table says so.
2. The test's own RabbitMQ node is restarted mid-campaign.
3. The test's own PostgreSQL cluster is restarted mid-campaign.

Each time: the campaign completes, every recipient is delivered, duplicates are at most what was in
flight at the faults (per batch being sent: one uncommitted outcome group and the message on the wire),
and exactly one completion mail arrives. Restarts use private servers (testing/private_infra.py):
restarting the machine's shared ones would break other tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from tests.e2e.support import cp932_csv, system_mails, wait_until

from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_testing.dns import DnsServer
from isseimail_testing.pdfs import sample_pdf
from isseimail_testing.private_infra import PrivatePostgres, PrivateRabbitMQ
from isseimail_testing.smtp import CaptureServer
from isseimail_testing.system import ApiClient, SystemProcesses, new_pass

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

RECIPIENTS = 5000
DOMAINS = [f"kaisha{i}.example.jp" for i in range(10)]  # each has an MX record (e2e_dns in conftest.py)
APPLICANT = "hanako.sato@corp.example.jp"
EXPECTED = {f"user{i}@{DOMAINS[i % len(DOMAINS)]}" for i in range(1, RECIPIENTS + 1)} | {APPLICANT}
VERP = re.compile(r"b-[0-9a-f]{32}-\d+-")
KILL_ORDER = ["worker-0", "dispatcher", "notifier", "composer", "list-validator", "pass-service", "gateway"]
# What sends the campaign and reports it: killed while the campaign runs, or the test has proved nothing.
CAMPAIGN_PATH = {"worker-0", "dispatcher", "notifier"}
# 600 a minute per domain: since outcome groups the workers' batches cover most of the ten domains at once
# (1,200 gave about 170 messages/s and a 30 s campaign), so about 85 messages/s and a campaign of about a
# minute, long enough for seven kills and restarts of 5-8 s each on a loaded machine. A short claim lets
# a killed worker's batches go back to the queue in seconds.
# Logs stay at the harness's INFO: they are what a failure prints (at WARNING they were empty).
PACED = {
    "ISSEIMAIL_DOMAIN_PER_MINUTE": "600",
    "ISSEIMAIL_CLAIM_SECONDS": "3",
}
# One fault per campaign needs no pacing: as fast as the machine goes.
UNPACED = {**PACED, "ISSEIMAIL_DOMAIN_PER_MINUTE": "100000"}
# What a fault may resend per batch being sent: the default outcome group and the message on the wire.
REPEATABLE_PER_BATCH = int(DispatcherSettings.model_fields["outcome_flush_count"].default) + 1
# Small PDFs keep 5,000 captured messages cheap for the in-process SMTP server (about 25 KB each).
PDFS = [("資料1.pdf", sample_pdf(8_000, seed=1, title="fault 1")), ("資料2.pdf", sample_pdf(8_000, seed=2))]


@dataclass
class Fault:
    what: str
    captured_before: int  # campaign mails captured when it struck
    in_flight: int  # batches being sent at that moment
    recovery_s: float  # until the process (or server) answered again
    at: float = 0.0  # time.monotonic() when it struck
    mid_campaign: bool = True  # some recipients were still waiting when it struck


def rows() -> list[tuple[str, str, str, str, str]]:
    return [
        (f"user{i}@{DOMAINS[i % len(DOMAINS)]}", f"株式会社テスト{i}", "営業部", "", f"髙橋{i}")
        for i in range(1, RECIPIENTS + 1)
    ]


def campaign_rcpts(smtp: CaptureServer) -> list[str]:
    """Recipients of the campaign mails captured so far (their return path is a VERP address; system mail's
    is not)."""
    return [m.rcpt_tos[0] for m in smtp.messages if VERP.match(m.mail_from)]


def delivered(smtp: CaptureServer) -> int:
    """Distinct campaign recipients captured so far (a resent message does not count twice)."""
    return len(set(campaign_rcpts(smtp)))


async def connect(database_url: str, patience: float = 60.0) -> asyncpg.Connection:
    """A connection for the test's own queries; waits while the shared server has no slot free (other runs'
    clients fill max_connections on a busy machine and leave within seconds)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return await asyncpg.connect(database_url, timeout=10)
        except asyncpg.TooManyConnectionsError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def in_flight(database_url: str) -> int:
    """Batches being sent: a worker sends each over one connection and commits its outcomes in groups
    (outcome_group.py), so a kill can repeat at most one uncommitted group plus the message on the wire of
    each (REPEATABLE_PER_BATCH)."""
    conn = await connect(database_url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(DISTINCT batch_id) FROM dispatcher.deliveries WHERE state = 'sending'"
        )
        return count
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def running(
    database_url: str,
    amqp_url: str,
    smtp: CaptureServer,
    dns: DnsServer,
    tmp_path: Path,
    env: dict[str, str] = PACED,
) -> AsyncIterator[SystemProcesses]:
    system = SystemProcesses(
        database_url=database_url,
        amqp_url=amqp_url,
        smtp_relay=("127.0.0.1", smtp.port),
        dns_nameserver=dns.nameserver,
        log_dir=tmp_path / "logs",
        workers=2,
        env=env,
    )
    await system.start()
    try:
        yield system
    except BaseException:
        await system.stop()  # first, so that the logs end with what each process did last
        print(system.logs_report())
        raise
    finally:
        await system.stop()


async def start_campaign(system: SystemProcesses, smtp: CaptureServer) -> tuple[ApiClient, str]:
    """Apply, approve, log in, upload 5,000 rows, compose, send; returns the applicant and the campaign."""
    began = time.monotonic()
    applicant, _ = await new_pass(system, smtp, APPLICANT)
    list_id = await applicant.upload_list(cp932_csv(rows()))
    checked = await applicant.wait_list(list_id, timeout=180)
    assert (checked["status"], checked["ok"]) == ("valid", RECIPIENTS), checked
    campaign_id = await applicant.create_campaign(
        list_id,
        sender_email=APPLICANT,
        sender_name="株式会社サンプル 営業本部 佐藤花子",
        subject="【ご案内】障害試験",
        body="いつもお世話になっております。\nご案内をお送りします。",
        attachments=PDFS,
    )
    assert (await applicant.send(campaign_id))["status"] == "accepted"
    print(f"\ncampaign sent {time.monotonic() - began:.1f} s after the system was up")
    return applicant, campaign_id


async def after_progress(smtp: CaptureServer, more: int, faults_left: int = 1, timeout: float = 120) -> int:
    """Wait for `more` further recipients to be delivered, but never past the campaign's share still left
    for this fault: at most what is left divided among this fault, the ones after it and the end. A fixed
    step (the count so far + 100) could aim past the campaign's last mail when slow restarts on a loaded
    machine had let the campaign run on, and then waited for mails that would never come.
    Returns the number of distinct recipients delivered then."""
    done = delivered(smtp)
    left = RECIPIENTS + 1 - done
    if left <= 0:
        return done  # nothing left to wait for; strike() decides whether this fault may come after the end
    target = done + max(1, min(more, left // (faults_left + 1)))
    await wait_until(lambda: delivered(smtp) >= target, timeout, f"{target} of {RECIPIENTS + 1} recipients delivered")
    return delivered(smtp)


async def strike(
    what: str,
    smtp: CaptureServer,
    database_url: str,
    fault: Callable[[], Awaitable[None]],
    recover: Callable[[], Awaitable[None]],
    mid_campaign: bool = True,
) -> Fault:
    """Break something, wait until it is back; `mid_campaign`: the campaign must still be running then."""
    captured = delivered(smtp)
    running = captured < RECIPIENTS + 1
    assert running or not mid_campaign, f"the campaign was over before {what} broke"
    # counted before the fault: a database restart makes the count unreadable afterwards
    flying = await in_flight(database_url)
    await fault()
    started = time.monotonic()
    flying = max(flying, await in_flight(database_url)) if what != "postgresql restart" else flying
    await recover()
    struck = Fault(what, captured, flying, time.monotonic() - started, started, running)
    # printed as it happens, so that a run that fails later still shows where each fault fell
    print(
        f"{what}: {captured} delivered before{'' if running else ' (after the campaign)'}, {flying} in flight, "
        f"back after {struck.recovery_s:.1f} s, {delivered(smtp)} delivered then"
    )
    return struck


async def failures(database_url: str) -> list[str]:
    conn = await connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT email, attempts, smtp_code, diagnostic FROM dispatcher.deliveries WHERE state = 'failed'"
        )
    finally:
        await conn.close()
    return [f"{r['email']} after {r['attempts']}: {r['smtp_code']} {r['diagnostic']}" for r in rows]


async def finish(
    applicant: ApiClient,
    campaign_id: str,
    smtp: CaptureServer,
    database_url: str,
    faults: list[Fault],
    started: float,
) -> None:
    """The campaign completes; everyone got it; duplicates within what was in flight; one completion mail."""
    progress = await applicant.wait_completed(campaign_id, timeout=400)
    print(f"campaign completed at {time.monotonic() - started:.0f} s")
    if progress["failed"]:
        print("failed deliveries:", *await failures(database_url), sep="\n  ")
    assert (progress["total"], progress["sent"], progress["failed"]) == (RECIPIENTS + 1, RECIPIENTS + 1, 0), progress
    await wait_until(lambda: set(campaign_rcpts(smtp)) >= EXPECTED, 60, "every recipient captured")
    completions = await wait_until(lambda: system_mails(smtp, APPLICANT, "送信完了"), 60, "the completion mail")
    await asyncio.sleep(3)  # a second completion mail would arrive within the notifier's send loop
    assert len(system_mails(smtp, APPLICANT, "送信完了")) == 1
    assert f"配信成功: {RECIPIENTS + 1} 件" in completions[0].get_body(preferencelist=("plain",)).get_content()

    counts = Counter(campaign_rcpts(smtp))
    assert set(counts) == EXPECTED
    duplicates = sum(counts.values()) - len(counts)
    allowed = sum(f.in_flight for f in faults) * REPEATABLE_PER_BATCH
    print(f"\n{'fault':<24} {'at s':>5} {'delivered before':>16} {'in flight':>9} {'back after s':>12} mid-campaign")
    for f in faults:
        print(
            f"{f.what:<24} {f.at - started:>5.0f} {f.captured_before:>16} {f.in_flight:>9} {f.recovery_s:>12.1f} "
            f"{'yes' if f.mid_campaign else 'no (restarts outlasted the campaign)'}"
        )
    print(
        f"duplicates: {duplicates} (allowed: {allowed}: a group + 1 per batch in flight at the faults); "
        f"{sum(counts.values())} campaign mails captured; {time.monotonic() - started:.0f} s"
    )
    assert duplicates <= allowed, counts.most_common(5)


async def test_each_service_killed_once_mid_campaign(
    database_url: str, amqp_url: str, smtp_server: CaptureServer, e2e_dns: DnsServer, tmp_path: Path
) -> None:
    """SIGKILL and restart of every service in turn during one 5,000-recipient campaign."""
    started = time.monotonic()
    async with running(database_url, amqp_url, smtp_server, e2e_dns, tmp_path) as system:
        applicant, campaign_id = await start_campaign(system, smtp_server)
        faults = []
        async with applicant:
            for done, name in enumerate(KILL_ORDER):
                await after_progress(smtp_server, 100, faults_left=len(KILL_ORDER) - done)

                async def kill(name: str = name) -> None:
                    system.kill(name)

                async def restart(name: str = name) -> None:
                    await system.restart(name)

                fault = await strike(
                    f"kill {name}", smtp_server, database_url, kill, restart, mid_campaign=name in CAMPAIGN_PATH
                )
                faults.append(fault)
            await finish(applicant, campaign_id, smtp_server, database_url, faults, started)


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def test_rabbitmq_restarted_mid_campaign(
    database_url: str,
    private_rabbitmq: PrivateRabbitMQ,
    smtp_server: CaptureServer,
    e2e_dns: DnsServer,
    tmp_path: Path,
) -> None:
    """The broker (a node of this module's own) stopped and started again while the campaign runs."""
    started = time.monotonic()
    async with running(database_url, private_rabbitmq.url, smtp_server, e2e_dns, tmp_path, UNPACED) as system:
        applicant, campaign_id = await start_campaign(system, smtp_server)
        async with applicant:
            await after_progress(smtp_server, 1000)

            async def stop() -> None:
                await asyncio.to_thread(private_rabbitmq.stop)

            async def start() -> None:
                await asyncio.to_thread(private_rabbitmq.start)

            fault = await strike("rabbitmq restart", smtp_server, database_url, stop, start)
            await finish(applicant, campaign_id, smtp_server, database_url, [fault], started)


async def test_postgresql_restarted_mid_campaign(
    amqp_url: str,
    private_postgres: PrivatePostgres,
    smtp_server: CaptureServer,
    e2e_dns: DnsServer,
    tmp_path: Path,
) -> None:
    """The database (a cluster of this module's own) stopped and started again while the campaign runs."""
    started = time.monotonic()
    conn = await asyncpg.connect(private_postgres.url)
    try:
        await conn.execute("CREATE DATABASE isseimail_faults")
    finally:
        await conn.close()
    database_url = with_database(private_postgres.url, "isseimail_faults")
    async with running(database_url, amqp_url, smtp_server, e2e_dns, tmp_path, UNPACED) as system:
        applicant, campaign_id = await start_campaign(system, smtp_server)
        async with applicant:
            await after_progress(smtp_server, 1000)

            async def stop() -> None:
                await asyncio.to_thread(private_postgres.stop, "fast")

            async def start() -> None:
                await asyncio.sleep(2)  # down long enough for every service to notice
                await asyncio.to_thread(private_postgres.start)

            fault = await strike("postgresql restart", smtp_server, database_url, stop, start)
            await finish(applicant, campaign_id, smtp_server, database_url, [fault], started)
