"""The seed's workload through the whole system, from the press of 一斉送信 to the completion mail.

    uv run python bench/e2e.py                        # 5,000 recipients, 2 MB of PDFs, 1 and 2 workers
    uv run python bench/e2e.py --recipients 1000 --workers 1    # a quick run
    uv run python bench/e2e.py --recipients 10000 100000 1000000 --workers 2 --attachment-kb 0 --domains 50
                                                      # the scale runs: small messages, 10k / 100k / 1M
    uv run python bench/e2e.py --recipients 2000 --workers 1 --per-domain-minute 600 --batch-size 50 \
        --attachment-kb 50                            # politeness on: is every domain kept busy?

Every service runs as its own process (testing/system.py, as in the end-to-end tests) on a fresh
database and vhost of the shared PostgreSQL and RabbitMQ, with a loopback DNS server answering MX for
the recipients' domains. The dispatcher's workers relay to Postfix's smtp-sink (`apt-get install
postfix`; smtp-sink listens on a free loopback port, never on 25); the notifier's system mail
(credentials, completion) goes to an in-process capture server, where the bench reads it.

The applicant's path goes through the gateway's JSON API: apply, approval, the credentials mail, login,
upload of a 5,000-row CP932 list (timed to `valid`), compose with 4 PDFs (2 MB together), preview, send.
The clock starts when the send request leaves; "first mail" is the first delivery row marked sent (it is
marked after the relay's 250 to DATA), "done" is when the completion mail reaches the capture server.
Peak RSS (VmHWM) and CPU seconds (utime + stime) of each process come from /proc, and so does the whole
machine's CPU (every core's busy time in /proc/stat, from the press to the completion mail: it includes
PostgreSQL, RabbitMQ and whatever else runs on the machine); "sending CPU" is the same from the first committed
outcome to the completion mail, per message sent in that time, without what a campaign pays once before
its first mail (the send checks, the snapshot, COPY and batching). After each run, Postfix's smtp-source sends the
same number of messages of the same size (read from the workers' byte counter) into a fresh smtp-sink over
as many sessions as our workers keep open, and its msg/s and whole-machine CPU are printed beside ours.
A timeline from the services' own tables shows where the time goes. Politeness limits per domain are
lifted (a relay is the only hop), as in bench/dispatch.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from isseimail_testing.dns import DnsServer
from isseimail_testing.infra import create_database, create_vhost, delete_vhost, drop_database
from isseimail_testing.pdfs import sample_pdf
from isseimail_testing.process import free_port
from isseimail_testing.smtp import CaptureServer
from isseimail_testing.system import SystemProcesses, new_pass

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
PREFETCH = 8  # batches (= SMTP connections) per worker
APPLICANT = "hanako.sato@corp.example.jp"
SUBJECT = "【ご案内】新製品発表会のお知らせ"
BODY = "いつもお世話になっております。\n新製品発表会のご案内をお送りします。\n" * 10
HEADER = "メールアドレス,会社名,部署名1,部署名2,ご担当者名\r\n"
MAX_ATTACHMENT_BYTES = 2_097_152  # the composer's limit for all attachments together
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Usage:
    """What /proc says about one process; the last reading is kept when the process is gone."""

    rss_peak_mb: float = 0.0
    cpu_s: float = 0.0
    cpu_at_press: float = 0.0


@dataclass
class Run:
    workers: int
    recipients: int
    list_valid_s: float = 0.0
    first_mail_s: float = 0.0
    total_s: float = 0.0
    machine_cpu_s: float = 0.0  # every core's busy time, press -> completion mail
    sending_cpu_ms: float = 0.0  # the same per message, first committed outcome -> completion mail
    servers_cpu_s: dict[str, float] = field(default_factory=dict)  # PostgreSQL, RabbitMQ: press -> completion
    bench_cpu_s: float = 0.0  # this process (the client, the capture and DNS servers): press -> completion
    message_bytes: int = 0
    source_rate: float = 0.0  # smtp-source, same count, size and sessions
    source_cpu_s: float = 0.0
    usage: dict[str, Usage] = field(default_factory=dict)
    timeline: list[tuple[str, float]] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return self.recipients + 1  # the sender's own copy

    @property
    def rate(self) -> float:
        return self.messages / self.total_s


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command name) of every process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = _stat(int(entry.name))
        if fields is not None:
            found.append((int(entry.name), int(fields[1]), comm))
    return found


def servers_cpu_s() -> dict[str, float]:
    """CPU seconds so far of the shared servers we want counted apart: PostgreSQL (the postmaster, its live
    children and, through cutime/cstime, the backends that already ended) and RabbitMQ (the Erlang VM and
    its helpers). Private servers the tests start are not running during a bench."""
    procs = _processes()
    totals = {"PostgreSQL": 0.0, "RabbitMQ": 0.0}
    postmasters = {pid for pid, ppid, comm in procs if comm == "postgres" and ppid == 1}
    for pid, ppid, comm in procs:
        fields = _stat(pid)
        if fields is None:
            continue
        own = int(fields[11]) + int(fields[12])
        if pid in postmasters:
            totals["PostgreSQL"] += (own + int(fields[13]) + int(fields[14])) / TICK
        elif ppid in postmasters:
            totals["PostgreSQL"] += own / TICK
        elif comm.startswith(("beam", "erl_child", "epmd", "inet_gethost")):
            totals["RabbitMQ"] += own / TICK
    return totals


def machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine since boot, all cores (user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


async def message_bytes(system: SystemProcesses, workers: int) -> tuple[int, int]:
    """(bytes, messages) the workers sent, from their own counters."""
    sent_bytes = sent = 0.0
    async with httpx.AsyncClient(timeout=10) as client:
        for i in range(workers):
            text = (await client.get(system.url(f"worker-{i}") + "/metrics")).text
            for line in text.splitlines():
                if line.startswith("isseimail_dispatch_bytes_sent_total "):
                    sent_bytes += float(line.split()[-1])
                elif line.startswith("isseimail_dispatch_messages_total{") and 'outcome="sent"' in line:
                    sent += float(line.split()[-1])
    return int(sent_bytes), int(sent)


def run_smtp_source(count: int, size: int, sessions: int) -> tuple[float, float]:
    """Postfix's smtp-source into a fresh smtp-sink: (msg/s, whole-machine busy CPU seconds)."""
    with smtp_sink() as (port, _):
        busy = machine_busy_s()
        started = time.perf_counter()
        subprocess.run(
            [
                *(SMTP_SOURCE, "-d", "-s", str(sessions), "-m", str(count), "-l", str(size)),
                *("-f", "bench@bench.example.jp", "-t", "user@kaisha0.example.jp", f"127.0.0.1:{port}"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        seconds = time.perf_counter() - started
        return count / seconds, machine_busy_s() - busy


def read_proc(pid: int) -> tuple[float, float] | None:
    """(VmHWM in MB, utime + stime in seconds) of a live process, None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = _stat(pid)
    if fields is None:
        return None
    hwm = next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0.0)
    return hwm, (int(fields[11]) + int(fields[12])) / TICK


async def sample(pids: dict[str, int], usage: dict[str, Usage], stop: asyncio.Event) -> None:
    while True:
        for name, pid in pids.items():
            reading = read_proc(pid)
            if reading is not None:
                u = usage.setdefault(name, Usage())
                u.rss_peak_mb, u.cpu_s = max(u.rss_peak_mb, reading[0]), reading[1]
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


@contextlib.contextmanager
def smtp_sink() -> Iterator[tuple[int, int]]:
    """Postfix's smtp-sink on a free loopback port; yields (port, pid)."""
    port = free_port()
    proc = subprocess.Popen(
        [SMTP_SINK, "-u", "nobody", f"127.0.0.1:{port}", "1024"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(0.3)
    try:
        yield port, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def domains(count: int) -> list[str]:
    return [f"kaisha{i}.example.jp" for i in range(count)]


def recipient_csv(count: int, spread: list[str]) -> bytes:
    """A CP932 list as Excel writes it: a header, CRLF, company / departments / contact per row."""
    lines = [HEADER]
    for i in range(1, count + 1):
        dept2 = f"第{i % 5 + 1}課" if i % 2 else ""
        lines.append(f"user{i}@{spread[i % len(spread)]},株式会社テスト{i},営業部,{dept2},髙橋{i}\r\n")
    return "".join(lines).encode("cp932")


def attachments(total: int = 2_080_000, count: int = 4) -> list[tuple[str, bytes]]:
    if total <= 0:
        return []  # small messages: the body alone
    files = [(f"資料{n}.pdf", sample_pdf(total // count, seed=n, title=f"bench {n}")) for n in range(1, count + 1)]
    assert sum(len(d) for _, d in files) <= MAX_ATTACHMENT_BYTES
    return files


async def timeline(database_url: str, pressed: dt.datetime, campaign_id: str) -> list[tuple[str, float]]:
    """Seconds after the press at which each step left its mark in its service's own table."""
    steps = [
        ("pass consumed (pass-service)", "SELECT max(consumed_at) FROM pass.passes"),
        ("pass.consumed published", "SELECT max(published_at) FROM pass.outbox WHERE routing_key = 'pass.consumed'"),
        ("snapshot frozen (composer)", "SELECT max(frozen_at) FROM composer.snapshots"),
        (
            "campaign.accepted published",
            "SELECT max(published_at) FROM composer.outbox WHERE routing_key = 'campaign.accepted'",
        ),
        ("campaign stored (dispatcher)", "SELECT accepted_at FROM dispatcher.campaigns WHERE campaign_id = $1"),
        ("first batch published", "SELECT min(published_at) FROM dispatcher.batches WHERE campaign_id = $1"),
        ("first batch claimed", "SELECT min(first_attempt_at) FROM dispatcher.deliveries WHERE campaign_id = $1"),
        (
            "first mail accepted by relay",
            "SELECT min(finished_at) FROM dispatcher.deliveries WHERE campaign_id = $1 AND state = 'sent'",
        ),
        (
            "last mail accepted by relay",
            "SELECT max(finished_at) FROM dispatcher.deliveries WHERE campaign_id = $1 AND state = 'sent'",
        ),
        ("campaign finished (dispatcher)", "SELECT finished_at FROM dispatcher.campaigns WHERE campaign_id = $1"),
        (
            "campaign.completed published",
            "SELECT max(published_at) FROM dispatcher.outbox WHERE routing_key = 'campaign.completed'",
        ),
        (
            "completion mail queued (notifier)",
            "SELECT max(created_at) FROM notifier.mail_log WHERE kind = 'campaign.completed'",
        ),
        (
            "completion mail sent (notifier)",
            "SELECT max(sent_at) FROM notifier.mail_log WHERE kind = 'campaign.completed'",
        ),
    ]
    conn = await asyncpg.connect(database_url)
    out = []
    try:
        for label, sql in steps:
            args = [campaign_id] if "$1" in sql else []
            try:
                when = await conn.fetchval(sql, *args)
            except asyncpg.PostgresError as exc:
                print(f"  (timeline: {label}: {exc})")
                continue
            if when is not None:
                out.append((label, (when - pressed).total_seconds()))
    finally:
        await conn.close()
    return out


async def first_sent(database_url: str, campaign_id: str, timeout: float) -> tuple[float, float, int]:
    """(time.monotonic(), machine_busy_s(), messages sent) when the campaign's first outcome commit was seen
    (polled every 20 ms)."""
    conn = await asyncpg.connect(database_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            sent = await conn.fetchval(  # the counter: O(1), where counting rows would load a 1M-row table
                "SELECT sent FROM dispatcher.campaigns WHERE campaign_id = $1", uuid.UUID(campaign_id)
            )
            if sent:
                return time.monotonic(), machine_busy_s(), int(sent)
            await asyncio.sleep(0.02)
    finally:
        await conn.close()
    raise TimeoutError("no delivery sent")


async def completion_mail(capture: CaptureServer, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for captured in capture.to(APPLICANT):
            if "送信完了" in str(captured.message()["Subject"]):
                return time.monotonic()
        await asyncio.sleep(0.05)
    raise TimeoutError("no completion mail")


async def run(workers: int, recipients: int, spread: int, log_level: str, keep: bool, args: argparse.Namespace) -> Run:
    result = Run(workers, recipients)
    database_url = await create_database("isseimail_bench")
    vhost, amqp_url = create_vhost("isseimail_bench")
    dns = DnsServer()
    dns.start()
    with contextlib.suppress(AttributeError):  # dnslib prints every query; a bench wants its table only
        dns._server.server.logger.logf = lambda _line: None  # type: ignore[union-attr]
    targets = domains(spread)
    for domain in [*targets, "corp.example.jp"]:
        dns.zone(domain, mx=[(10, f"mx.{domain}")])
    capture = CaptureServer()
    await capture.start()
    log_dir = Path(tempfile.mkdtemp(prefix=f"isseimail-bench-e2e-{workers}w-"))
    try:
        with smtp_sink() as (sink_port, sink_pid):
            system = SystemProcesses(
                database_url=database_url,
                amqp_url=amqp_url,
                smtp_relay=("127.0.0.1", capture.port),
                dns_nameserver=dns.nameserver,
                log_dir=log_dir,
                workers=workers,
                env={
                    "ISSEIMAIL_LOG_LEVEL": log_level,
                    "ISSEIMAIL_DOMAIN_PER_MINUTE": str(args.per_domain_minute or 10_000_000),
                    # smtp-sink is the relay: measure the sending, not the relay's cap (1,000/s by default)
                    "ISSEIMAIL_RELAY_PER_MINUTE": "10000000",
                    "ISSEIMAIL_OUTCOME_FLUSH_COUNT": str(args.outcome_group),
                    "ISSEIMAIL_DOMAIN_CONNECTIONS": "100",
                    "ISSEIMAIL_BATCH_SIZE": str(args.batch_size),
                    "ISSEIMAIL_WORKER_PREFETCH": str(PREFETCH),
                    "ISSEIMAIL_LIST_MAX_ROWS": "1000000",
                    "ISSEIMAIL_LIST_MAX_BYTES": str(512 * 1024 * 1024),
                    "ISSEIMAIL_DB_POOL_SIZE": "24",
                    "ISSEIMAIL_UNVERIFIED_POLICY": "block",
                },
                service_env={"worker": {"ISSEIMAIL_SMTP_RELAY": f"smtp://127.0.0.1:{sink_port}"}},
            )
            await system.start()
            pids = {**system.pids(), "smtp-sink": sink_pid}
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample(pids, result.usage, stop))
            try:
                applicant, _ = await new_pass(system, capture, APPLICANT)
                async with applicant:
                    uploaded = time.monotonic()
                    list_id = await applicant.upload_list(recipient_csv(recipients, targets))
                    checked = await applicant.wait_list(list_id, timeout=600)
                    result.list_valid_s = time.monotonic() - uploaded
                    assert (checked["status"], checked["ok"]) == ("valid", recipients), checked
                    campaign_id = await applicant.create_campaign(
                        list_id,
                        sender_email=APPLICANT,
                        sender_name="株式会社サンプル 営業本部 佐藤花子",
                        subject=SUBJECT,
                        body=BODY,
                        attachments=attachments(args.attachment_kb * 1000),
                    )
                    await applicant.preview(campaign_id)
                    for u in result.usage.values():
                        u.cpu_at_press = u.cpu_s
                    pressed_wall = dt.datetime.now(dt.UTC)
                    busy, servers, own = machine_busy_s(), servers_cpu_s(), time.process_time()
                    pressed = time.monotonic()
                    first = asyncio.create_task(first_sent(database_url, campaign_id, 600))
                    done = asyncio.create_task(completion_mail(capture, 3600))
                    await applicant.send(campaign_id)
                    first_at, busy_at_first, sent_at_first = await first
                    result.first_mail_s = first_at - pressed
                    result.total_s = await done - pressed
                    busy_at_end = machine_busy_s()
                    result.machine_cpu_s = busy_at_end - busy
                    result.sending_cpu_ms = (
                        1000 * (busy_at_end - busy_at_first) / max(1, result.messages - sent_at_first)
                    )
                    result.bench_cpu_s = time.process_time() - own
                    result.servers_cpu_s = {k: v - servers[k] for k, v in servers_cpu_s().items()}
                    sent_bytes, sent = await message_bytes(system, workers)
                    result.message_bytes = sent_bytes // max(1, sent)
                    progress = await applicant.progress(campaign_id)
                    assert progress["sent"] == result.messages, progress
            finally:
                stop.set()
                await sampler
                await system.stop()
            result.timeline = await timeline(database_url, pressed_wall, campaign_id)
        result.source_rate, result.source_cpu_s = run_smtp_source(
            result.messages, result.message_bytes, PREFETCH * workers
        )
    finally:
        await capture.stop()
        dns.stop()
        if keep:
            print(f"  kept: logs in {log_dir}, database {database_url}, vhost {vhost}")
        else:
            await drop_database(database_url)
            delete_vhost(vhost)
            shutil.rmtree(log_dir, ignore_errors=True)
    return result


def report(results: list[Run]) -> str:
    out = [
        "| workers | recipients | message | upload → valid s | send → first mail s | send → completion mail s "
        "| msg/s | ms per recipient | machine CPU ms/msg | sending CPU ms/msg | smtp-source msg/s "
        "| smtp-source CPU ms/msg | ratio | largest peak RSS MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        biggest = max(r.usage.items(), key=lambda item: item[1].rss_peak_mb)
        out.append(
            f"| {r.workers} | {r.recipients} | {r.message_bytes / 1000:.1f} KB | {r.list_valid_s:.1f} "
            f"| {r.first_mail_s:.2f} | {r.total_s:.1f} | {r.rate:.0f} | {1000 * r.total_s / r.messages:.3f} "
            f"| {1000 * r.machine_cpu_s / r.messages:.2f} | {r.sending_cpu_ms:.2f} | {r.source_rate:.0f} "
            f"| {1000 * r.source_cpu_s / r.messages:.3f} | {r.rate / r.source_rate:.3f} "
            f"| {biggest[1].rss_peak_mb:.0f} ({biggest[0]}) |"
        )
    for r in results:
        out += [
            "",
            f"{r.workers} worker(s): each process's peak RSS and CPU",
            "",
            "| process | peak RSS MB | CPU s, whole run | CPU s, send → completion | CPU ms/msg, send → completion |",
            "|---|---:|---:|---:|---:|",
        ]
        counted = 0.0
        for name, u in r.usage.items():
            sending = u.cpu_s - u.cpu_at_press
            counted += sending
            out.append(
                f"| {name} | {u.rss_peak_mb:.0f} | {u.cpu_s:.1f} | {sending:.1f} | {1000 * sending / r.messages:.3f} |"
            )
        out.append(f"| **our processes + smtp-sink** | | | {counted:.1f} | {1000 * counted / r.messages:.3f} |")
        others = {**r.servers_cpu_s, "bench process (client, capture, DNS)": r.bench_cpu_s}
        for name, seconds in others.items():
            counted += seconds
            out.append(f"| {name} | – | – | {seconds:.1f} | {1000 * seconds / r.messages:.3f} |")
        rest = r.machine_cpu_s - counted
        label = "rest of the machine (kernel, other processes)"
        out.append(f"| {label} | – | – | {rest:.1f} | {1000 * rest / r.messages:.3f} |")
        out.append(f"| **whole machine** | | | {r.machine_cpu_s:.1f} | {1000 * r.machine_cpu_s / r.messages:.3f} |")
        out += ["", f"{r.workers} worker(s): timeline after the press (from the services' tables)", ""]
        out += ["| step | s after press |", "|---|---:|"]
        out += [f"| {label} | {seconds:.2f} |" for label, seconds in r.timeline]
    return "\n".join(out)


async def main(args: argparse.Namespace) -> None:
    results = []
    for recipients in args.recipients:
        for workers in args.workers:
            print(f"run: {recipients} recipients, {workers} worker(s) ...", flush=True)
            results.append(await run(workers, recipients, args.domains, args.log_level, args.keep, args))
            print(report(results[-1:]), flush=True)  # each run's figures as soon as it ends (the 1M run is long)
    print("\nall runs:\n")
    print(report(results))


def cli() -> argparse.Namespace:
    if not os.path.exists(SMTP_SINK):
        raise SystemExit("smtp-sink not found: apt-get install postfix (only its smtp-sink is used)")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--recipients", type=int, nargs="*", default=[5000], help="list sizes, one run each")
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2], help="dispatcher worker processes per run")
    parser.add_argument("--domains", type=int, default=10, help="recipient domains the list is spread over")
    parser.add_argument(
        "--per-domain-minute", type=int, default=0, help="messages per minute per domain (0: politeness lifted)"
    )
    parser.add_argument("--batch-size", type=int, default=200, help="recipients per dispatch batch")
    parser.add_argument(
        "--outcome-group", type=int, default=20, help="outcomes committed together (ISSEIMAIL_OUTCOME_FLUSH_COUNT)"
    )
    parser.add_argument("--attachment-kb", type=int, default=2080, help="PDF bytes in all, in kB (at most 2,097)")
    parser.add_argument("--log-level", default="WARNING", help="the services' ISSEIMAIL_LOG_LEVEL")
    parser.add_argument("--keep", action="store_true", help="keep the services' logs, database and vhost")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(cli()))
