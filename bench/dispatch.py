"""Dispatch throughput: the dispatcher's SMTP workers vs Postfix's smtp-source, both into smtp-sink.

    uv run python bench/dispatch.py                 # all three scenarios (about 5 minutes)
    uv run python bench/dispatch.py --big 500 --small 5000   # a quick run

Needs PostgreSQL and RabbitMQ as for the tests, and Postfix's smtp-sink / smtp-source
(`apt-get install postfix`). smtp-sink listens on a free loopback port, never on port 25.

Scenario 1: the seed's workload, N recipients with 2 MB of PDF attachments (one worker process).
Scenario 2: M small messages (5 KB body), with one worker process and with two.
Each scenario starts a fresh database and vhost, the dispatcher (`serve`, as a subprocess) and the
worker subprocesses, serves the campaign snapshot from a stand-in composer, publishes
campaign.accepted and waits for campaign.completed. The wall time runs from campaign.accepted to
campaign.completed (snapshot, batching, sending, every outcome recorded). smtp-source then sends the
same number of messages of the same size, over as many parallel sessions as our workers open.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from isseimail_shared.events import CampaignAccepted, envelope_for
from isseimail_shared.mailmerge import Recipient
from isseimail_shared.messaging import Broker
from isseimail_shared.verp import bounce_address
from isseimail_testing.http import serving
from isseimail_testing.infra import create_database, create_vhost, delete_vhost, drop_database
from isseimail_testing.process import ServiceProcess, free_port
from isseimail_testing.snapshot import SENDER, SnapshotPeer
from isseimail_testing.watch import watching

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
EXTRA_ENV: dict[str, str] = {}  # --dkim: every message signed by the workers
PROFILE = os.environ.get("BENCH_PROFILE", "")  # a path: the worker runs under cProfile and writes it there
DOMAINS = [f"d{i}.example.jp" for i in range(10)]


@dataclass
class Result:
    name: str
    messages: int
    size: int
    seconds: float
    peak_rss_mb: float | None = None
    cpu_ms_per_message: float | None = None
    send_seconds: float | None = None  # first batch claimed -> campaign.completed (the database's clock)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.messages * self.size / self.seconds / 1e6


class Worker(ServiceProcess):
    def start(self) -> None:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        profile = ["-m", "cProfile", "-o", PROFILE] if PROFILE else []
        self.proc = subprocess.Popen(
            [sys.executable, *profile, "-m", self.module, "worker"], env=self.env, stdout=out, stderr=subprocess.STDOUT
        )

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")


@contextlib.contextmanager
def smtp_sink() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [SMTP_SINK, "-u", "nobody", f"127.0.0.1:{port}", "1024"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    try:
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def pdf(size: int) -> bytes:
    return b"%PDF-1.5\n" + os.urandom(size - 20) + b"\n%%EOF\n"


def recipients(count: int) -> list[Recipient]:
    return [
        Recipient(row=i, email=f"user{i}@{DOMAINS[i % len(DOMAINS)]}", company="株式会社ベンチ", contact=f"担当 {i}")
        for i in range(1, count + 1)
    ]


async def run_dispatch(
    name: str, count: int, attachments: list[tuple[str, bytes]], body: str, workers: int, prefetch: int, log: Path
) -> tuple[Result, int]:
    """Our side; returns the result and the size of one message on the wire."""
    database_url = await create_database("isseimail_bench")
    vhost, amqp_url = create_vhost("isseimail_bench")
    peer = SnapshotPeer()
    campaign_id = peer.add(recipients(count - 1), attachments=attachments, body=body)
    template, rows = peer.campaigns[campaign_id]
    size = len(
        template.stamp(rows[0], message_id="<x@bench>", bounce_address=bounce_address(b"k", "b.jp", campaign_id, 1))
    )
    procs: list[ServiceProcess] = []
    try:
        with smtp_sink() as sink_port:
            async with serving(peer.app()) as composer_url:
                env = {
                    "ISSEIMAIL_DATABASE_URL": database_url,
                    "ISSEIMAIL_AMQP_URL": amqp_url,
                    "ISSEIMAIL_SMTP_RELAY": f"smtp://127.0.0.1:{sink_port}",
                    "ISSEIMAIL_COMPOSER_URL": composer_url,
                    "ISSEIMAIL_DOMAIN_CONNECTIONS": "100",
                    "ISSEIMAIL_DOMAIN_PER_MINUTE": "10000000",
                    "ISSEIMAIL_RELAY_PER_MINUTE": "10000000",  # the sink is the relay: measure the sending, not a cap
                    "ISSEIMAIL_WORKER_PREFETCH": str(prefetch),
                    "ISSEIMAIL_BATCH_SIZE": "200",
                    "ISSEIMAIL_DB_POOL_SIZE": "24",
                    "ISSEIMAIL_LOG_LEVEL": "WARNING",
                    "ISSEIMAIL_OUTBOX_POLL_SECONDS": "0.2",
                    **EXTRA_ENV,
                }
                serve = ServiceProcess(
                    "isseimail_dispatcher", {**env, "ISSEIMAIL_DISPATCHER_PORT": str(free_port())}, 0
                )
                serve.port = int(serve.env["ISSEIMAIL_DISPATCHER_PORT"])
                serve.log_path = log
                procs.append(serve)
                serve.start()
                await serve.wait_ready(60)
                pool: list[Worker] = []
                for _ in range(workers):
                    port = free_port()
                    w = Worker("isseimail_dispatcher", {**env, "ISSEIMAIL_WORKER_PORT": str(port)}, port, log)
                    w.start()
                    pool.append(w)
                    procs.append(w)
                for w in pool:
                    await w.wait_ready(60)
                broker = Broker(amqp_url, name="bench")
                await broker.connect()
                try:
                    async with watching(broker, ["campaign.completed"]) as watch:
                        event = CampaignAccepted(
                            campaign_id=campaign_id, pass_id=1, recipient_count=count, sender_email=SENDER, subject="b"
                        )
                        started = time.perf_counter()
                        await broker.publish_event(envelope_for(event))
                        done = await watch.wait_for("campaign.completed", timeout=3600)
                        seconds = time.perf_counter() - started
                finally:
                    await broker.close()
                assert done[0].sent == count, done[0]
                rss = max(w.peak_rss_mb() for w in pool)
                cpu = sum(w.cpu_seconds() for w in pool)
    finally:
        for p in procs:
            p.terminate(20)
        await drop_database(database_url)
        delete_vhost(vhost)
    send = (done[0].finished_at - done[0].started_at).total_seconds()
    return Result(name, count, size, seconds, rss, cpu * 1000 / count, send), size


def run_smtp_source(count: int, size: int, sessions: int) -> Result:
    with smtp_sink() as port:
        started = time.perf_counter()
        subprocess.run(
            [
                SMTP_SOURCE,
                "-d",
                "-s",
                str(sessions),
                "-m",
                str(count),
                "-l",
                str(size),
                "-f",
                "bench@bench.example.jp",
                "-t",
                "user@d0.example.jp",
                f"127.0.0.1:{port}",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        seconds = time.perf_counter() - started
    return Result(f"smtp-source ({sessions} sessions)", count, size, seconds)


def table(rows: list[Result]) -> str:
    lines = [
        "| run | messages | size | wall s | msg/s | MB/s | sending s (msg/s) | worker RSS MB | worker CPU ms/msg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rss = f"{r.peak_rss_mb:.0f}" if r.peak_rss_mb is not None else "–"
        cpu = f"{r.cpu_ms_per_message:.2f}" if r.cpu_ms_per_message is not None else "–"
        send = f"{r.send_seconds:.1f} ({r.messages / r.send_seconds:.0f})" if r.send_seconds else "–"
        lines.append(
            f"| {r.name} | {r.messages} | {r.size / 1e3:.0f} KB | {r.seconds:.1f} | {r.rate:.0f} | "
            f"{r.mb_per_s:.1f} | {send} | {rss} | {cpu} |"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--big", type=int, default=5000, help="recipients of the 2 MB campaign (0 skips it)")
    parser.add_argument("--small", type=int, default=50_000, help="recipients of the 5 KB campaign (0 skips it)")
    parser.add_argument("--attachment-mb", type=float, default=2.0)
    parser.add_argument("--prefetch", type=int, default=8, help="batches (= SMTP connections) per worker, 2 MB run")
    parser.add_argument("--dkim", action="store_true", help="workers DKIM-sign every message (RSA 2048)")
    parser.add_argument("--small-prefetch", type=int, default=32, help="the same for the small-message runs")
    args = parser.parse_args()
    log = Path(tempfile.gettempdir()) / f"isseimail-bench-{uuid.uuid4().hex[:6]}.log"
    results: list[Result] = []
    ratios: list[str] = []
    if args.dkim:
        from isseimail_dispatcher.dkim_keys import generate

        pem = generate("rsa-sha256").private_key.decode()
        EXTRA_ENV.update({"ISSEIMAIL_DKIM_SELECTOR": "bench", "ISSEIMAIL_DKIM_PRIVATE_KEY": pem})
    if args.big:
        files = [
            ("資料1.pdf", pdf(int(args.attachment_mb * 1e6 / 2))),
            ("資料2.pdf", pdf(int(args.attachment_mb * 1e6 / 2))),
        ]
        ours, size = await run_dispatch(
            "dispatcher, 1 worker", args.big, files, "ご案内です。\n" * 20, 1, args.prefetch, log
        )
        ref = run_smtp_source(args.big, size, args.prefetch)
        results += [ours, ref]
        ratios.append(f"{args.attachment_mb:g} MB messages: {ours.rate / ref.rate:.2f}")
    if args.small:
        body = ("いつもお世話になっております。ご案内を申し上げます。" * 4 + "\n") * 11  # 5 KB on the wire
        p = args.small_prefetch
        one, size = await run_dispatch("dispatcher, 1 worker", args.small, [], body, 1, p, log)
        two, _ = await run_dispatch("dispatcher, 2 workers", args.small, [], body, 2, p, log)
        ref = run_smtp_source(args.small, size, p)
        ref2 = run_smtp_source(args.small, size, p * 2)
        results += [one, two, ref, ref2]
        ratios.append(f"small messages, 1 worker: {one.rate / ref.rate:.2f}; 2 workers: {two.rate / ref2.rate:.2f}")
    print(table(results))
    print()
    print("ratio of our msg/s to smtp-source's (same count, size and sessions):")
    for line in ratios:
        print(f"- {line}")
    print(f"\n(service logs: {log})")


if __name__ == "__main__":
    asyncio.run(main())
