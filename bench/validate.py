"""List validation throughput: 100,000 rows over 5,000 domains, upload to list.validated.

    uv run python bench/validate.py                      # 100,000 rows, 5,000 domains, two workers
    uv run python bench/validate.py --rows 20000 --domains 1000 --workers 1

Needs PostgreSQL and RabbitMQ as for the tests. Starts a fresh database and vhost, the testing DNS
server on loopback (a mix of good MX, NXDOMAIN, null MX, A-only and slow domains), the real notifier
(suppression list) and N list-validator processes (replicas sharing the domain work queue), uploads
one CSV (CP932, CRLF, header row) to the first replica and waits for list.validated on the broker.
Prints rows/s end to end, the DNS queries the server received, and each replica's peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import tempfile
import time
from pathlib import Path

import aio_pika
import httpx
from dnslib.server import DNSLogger

from isseimail_shared.messaging import EVENTS_EXCHANGE
from isseimail_testing.dns import DnsServer
from isseimail_testing.fixtures import CREDENTIALS_KEY, INTERNAL_HEADERS, INTERNAL_TOKEN
from isseimail_testing.infra import create_database, create_vhost, delete_vhost, drop_database
from isseimail_testing.process import ServiceProcess, free_port

MIX = [("good", 0.70), ("nxdomain", 0.10), ("null_mx", 0.05), ("a_only", 0.10), ("slow", 0.05)]


def build_zones(dns: DnsServer, domains: int, slow_delay: float) -> list[tuple[str, str]]:
    rng = random.Random(7)
    kinds = [k for k, share in MIX for _ in range(round(share * domains))][:domains]
    kinds += ["good"] * (domains - len(kinds))
    rng.shuffle(kinds)
    out = []
    for i, kind in enumerate(kinds):
        name = f"bench{i}.example.co.jp"
        if kind == "good":
            dns.zone(name, mx=[(10, f"mx.{name}")])
        elif kind == "null_mx":
            dns.zone(name, null_mx=True)
        elif kind == "a_only":
            dns.zone(name, a=["192.0.2.10"])
        elif kind == "slow":
            dns.zone(name, mx=[(10, f"mx.{name}")], delay=slow_delay)
        out.append((name, kind))  # nxdomain: never declared
    return out


def build_csv(rows: int, domains: list[tuple[str, str]]) -> bytes:
    lines = ["メールアドレス,会社名,部署名1,部署名2,ご担当者名"]
    for i in range(rows):
        name = domains[i % len(domains)][0]
        lines.append(f"user{i}@{name},株式会社ベンチ{i % 977},営業部,第{i % 9 + 1}課,担当 {i}様")
    return ("\r\n".join(lines) + "\r\n").encode("cp932")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def print_timeline(database_url: str, slow: list[str]) -> None:
    """Domains answered per 0.5 s after the list was opened (where the time after the 202 goes)."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT floor(extract(epoch FROM d.checked_at - l.created_at) * 2) / 2 AS t, count(*) AS n"
            " FROM list_validator.list_domains d JOIN list_validator.lists l USING (list_id)"
            " GROUP BY 1 ORDER BY 1"
        )
        slow_rows = await conn.fetch(
            "SELECT floor(extract(epoch FROM d.checked_at - l.created_at) * 2) / 2 AS t, count(*) AS n"
            " FROM list_validator.list_domains d JOIN list_validator.lists l USING (list_id)"
            " WHERE d.domain = ANY($1::text[]) GROUP BY 1 ORDER BY 1",
            slow,
        )
        finished = await conn.fetchrow(
            "SELECT extract(epoch FROM finished_at - created_at) AS finished,"
            " (SELECT extract(epoch FROM max(checked_at) - l.created_at) FROM list_validator.list_domains) AS last"
            " FROM list_validator.lists l"
        )
    finally:
        await conn.close()
    print(
        "domains answered, seconds after the list was opened:", ", ".join(f"{float(r['t']):g}s {r['n']}" for r in rows)
    )
    print("  of which slow domains:", ", ".join(f"{float(r['t']):g}s {r['n']}" for r in slow_rows))
    assert finished is not None
    print(f"last domain answered {float(finished['last']):.2f}s, list finished {float(finished['finished']):.2f}s")


async def run(args: argparse.Namespace) -> None:
    load_before = os.getloadavg()[0]
    dns = DnsServer()
    dns.start()
    assert dns._server is not None
    dns._server.server.logger = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    if args.dns_rcvbuf:
        # The default 208 KB socket buffer holds ~100 queries: two replicas' bursts of 200 each would be
        # dropped and retransmitted by c-ares, a limit of this Python test server, not of a real resolver.
        dns._server.server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.dns_rcvbuf)
    zones = build_zones(dns, args.domains, args.slow_delay)
    data = build_csv(args.rows, zones)
    database_url = await create_database("isseimail_bench")
    vhost, amqp_url = create_vhost("isseimail_bench")
    logs = Path(tempfile.mkdtemp(prefix="isseimail-bench-"))
    common = {
        "ISSEIMAIL_DATABASE_URL": database_url,
        "ISSEIMAIL_AMQP_URL": amqp_url,
        "ISSEIMAIL_DNS_NAMESERVERS": dns.nameserver,
        "ISSEIMAIL_CREDENTIALS_KEY": CREDENTIALS_KEY,
        "ISSEIMAIL_INTERNAL_TOKENS": INTERNAL_TOKEN,
        "ISSEIMAIL_LOG_LEVEL": "INFO",
    }
    notifier_port = free_port()
    procs = [
        ServiceProcess(
            "isseimail_notifier",
            {**common, "ISSEIMAIL_NOTIFIER_PORT": str(notifier_port), "ISSEIMAIL_BOUNCE_LISTEN_PORT": "0"},
            notifier_port,
            logs / "notifier.log",
        )
    ]
    workers = []
    for n in range(args.workers):
        port = free_port()
        env = {
            **common,
            "ISSEIMAIL_LIST_VALIDATOR_PORT": str(port),
            "ISSEIMAIL_LIST_MAX_ROWS": str(max(args.rows, 50_000)),
            "ISSEIMAIL_LIST_MAX_BYTES": str(max(len(data) + 1024, 10 * 1024 * 1024)),
            "ISSEIMAIL_NOTIFIER_URL": f"http://127.0.0.1:{notifier_port}",
            "ISSEIMAIL_DNS_TIMEOUT_SECONDS": "2",
        }
        workers.append(ServiceProcess("isseimail_list_validator", env, port, logs / f"list-validator-{n}.log"))
    procs += workers
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        for p in procs:  # one after the other: replicas declaring a quorum queue at once can race in RabbitMQ
            p.start()
            await p.wait_ready(60)
        channel = await connection.channel()
        exchange = await channel.declare_exchange(EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue("", exclusive=True)
        await queue.bind(exchange, routing_key="list.validated")
        done: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                if not done.done():
                    done.set_result(json.loads(message.body)["payload"])

        await queue.consume(on_message)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{workers[0].port}", timeout=300, headers=INTERNAL_HEADERS
        ) as client:
            cpu_before = [cpu_seconds(p.proc.pid) for p in procs if p.proc is not None]
            own_before = time.process_time()
            start = time.perf_counter()
            response = await client.post("/internal/lists", content=data, headers={"X-Isseimail-Pass-Id": "1"})
            accepted = time.perf_counter() - start
            response.raise_for_status()
            payload = await asyncio.wait_for(done, 600)
            total = time.perf_counter() - start
            own_cpu = time.process_time() - own_before
            cpu = [cpu_seconds(p.proc.pid) - b for p, b in zip(procs, cpu_before, strict=True) if p.proc is not None]
        peaks = [peak_rss_mb(w.proc.pid) for w in workers if w.proc is not None]
        if args.timeline:
            await print_timeline(database_url, [name for name, kind in zones if kind == "slow"])
    finally:
        await connection.close()
        for p in procs:
            p.terminate(20)
        dns.stop()
        await drop_database(database_url)
        delete_vhost(vhost)
    queries = sum(dns.queries.values())
    worst = max(dns.queries.values())
    by_kind = {k: sum(1 for _, kind in zones if kind == k) for k, _ in MIX}
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load_before:.1f} → {os.getloadavg()[0]:.1f}; "
        f"workers: {args.workers}; CSV: {len(data) / 1e6:.1f} MB CP932"
    )
    print(f"domains: {args.domains} ({', '.join(f'{k} {v}' for k, v in by_kind.items())}; slow = {args.slow_delay}s)")
    print(
        f"{'rows':>8} {'domains':>8} {'upload→202 s':>13} {'upload→validated s':>19} {'rows/s':>8}"
        f" {'DNS queries':>12} {'max/name':>9} {'peak RSS MB':>14}"
    )
    print(
        f"{args.rows:>8} {args.domains:>8} {accepted:>13.2f} {total:>19.2f} {args.rows / total:>8.0f}"
        f" {queries:>12} {worst:>9} {' / '.join(f'{p:.0f}' for p in peaks):>14}"
    )
    print(
        f"CPU s during the run: notifier {cpu[0]:.1f}, replicas {' / '.join(f'{c:.1f}' for c in cpu[1:])},"
        f" this process (DNS server, upload) {own_cpu:.1f}"
    )
    print(
        f"result: {payload['status']} ok={payload['ok']} invalid={payload['invalid']} "
        f"unverified={payload['unverified']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--domains", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--dns-rcvbuf", type=int, default=4 << 20, help="DNS server socket receive buffer, bytes (0: system default)"
    )
    parser.add_argument("--timeline", action="store_true", help="print when the domains were answered")
    parser.add_argument("--slow-delay", type=float, default=0.5, help="answer delay of the slow domains (s)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
