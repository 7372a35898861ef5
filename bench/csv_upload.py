"""The list-validator's CSV upload at 10k / 100k / 1M rows: time to valid and peak memory per phase.

    uv run python bench/csv_upload.py                              # 10,000 / 100,000 / 1,000,000 rows
    uv run python bench/csv_upload.py --rows 100000 --domains 50

Needs PostgreSQL and RabbitMQ as for the tests. For each size: a fresh list-validator process (alone, so
its peak RSS is this list's), the real notifier (suppression list) and the testing DNS server answering MX
for the recipients' domains. The CSV is CP932 with CRLF and a header, as Excel writes it and as
bench/e2e.py uploads it; it is streamed from a file, like the gateway streams an upload.

Phases, each with the list-validator's peak RSS (VmHWM, reset between phases through
/proc/<pid>/clear_refs):
- upload: POST → 202, then until `list.validated` arrives on the broker;
- rows: the valid list's recipients read as NDJSON (what the composer reads for its snapshot);
- suppressed: the composer's ready-check (`/suppressed?organisation=`);
- errors: the bad rows as NDJSON (the gateway's errors.csv).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from isseimail_shared.events import ListValidated
from isseimail_shared.messaging import Broker
from isseimail_testing.dns import DnsServer
from isseimail_testing.fixtures import CREDENTIALS_KEY, INTERNAL_HEADERS, INTERNAL_TOKEN
from isseimail_testing.infra import create_database, create_vhost, delete_vhost, drop_database
from isseimail_testing.process import ServiceProcess, free_port
from isseimail_testing.watch import watching

HEADER = "メールアドレス,会社名,部署名1,部署名2,ご担当者名\r\n"
PASS = {"X-Isseimail-Pass-Id": "1"}


@dataclass
class Result:
    rows: int
    mb: float
    accepted_s: float = 0.0
    valid_s: float = 0.0
    status: str = ""
    peak_mb: dict[str, float] = field(default_factory=dict)
    cpu_s: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)


def write_csv(path: Path, count: int, domains: list[str], duplicates: int) -> None:
    """CP932, CRLF, a header; every `duplicates`-th row repeats an earlier address (0: none)."""
    with path.open("wb") as out:
        out.write(HEADER.encode("cp932"))
        lines = []
        for i in range(1, count + 1):
            n = i // 2 if duplicates and i % duplicates == 0 else i
            dept2 = f"第{i % 5 + 1}課" if i % 2 else ""
            lines.append(f"user{n}@{domains[n % len(domains)]},株式会社テスト{i},営業部,{dept2},髙橋{i}\r\n")
            if len(lines) == 10_000:
                out.write("".join(lines).encode("cp932"))
                lines.clear()
        out.write("".join(lines).encode("cp932"))


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_hwm(pid: int) -> None:
    """Peak RSS starts again from the current RSS (Linux: clear_refs 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def file_chunks(path: Path, size: int = 1 << 16) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(size):
            yield chunk


async def drain(client: httpx.AsyncClient, url: str, **params: str) -> int:
    """Read a response to its end; returns its size in bytes."""
    total = 0
    async with client.stream("GET", url, headers=PASS, params=params) as response:
        response.raise_for_status()
        async for chunk in response.aiter_raw():
            total += len(chunk)
    return total


async def one_size(args: argparse.Namespace, count: int, dns: DnsServer, domains: list[str]) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix="isseimail-bench-csv-"))
    csv_path = workdir / "list.csv"
    write_csv(csv_path, count, domains, args.duplicate_every)
    result = Result(count, csv_path.stat().st_size / 1e6)
    database_url = await create_database("isseimail_bench")
    vhost, amqp_url = create_vhost("isseimail_bench")
    common = {
        "ISSEIMAIL_DATABASE_URL": database_url,
        "ISSEIMAIL_AMQP_URL": amqp_url,
        "ISSEIMAIL_DNS_NAMESERVERS": dns.nameserver,
        "ISSEIMAIL_CREDENTIALS_KEY": CREDENTIALS_KEY,
        "ISSEIMAIL_INTERNAL_TOKENS": INTERNAL_TOKEN,
        "ISSEIMAIL_LOG_LEVEL": "INFO",
    }
    notifier_port, port = free_port(), free_port()
    notifier = ServiceProcess(
        "isseimail_notifier",
        {**common, "ISSEIMAIL_NOTIFIER_PORT": str(notifier_port), "ISSEIMAIL_BOUNCE_LISTEN_PORT": "0"},
        notifier_port,
        workdir / "notifier.log",
    )
    validator = ServiceProcess(
        "isseimail_list_validator",
        {
            **common,
            "ISSEIMAIL_LIST_VALIDATOR_PORT": str(port),
            "ISSEIMAIL_LIST_MAX_ROWS": "1000000",
            "ISSEIMAIL_LIST_MAX_BYTES": str(512 * 1024 * 1024),
            "ISSEIMAIL_NOTIFIER_URL": f"http://127.0.0.1:{notifier_port}",
            "ISSEIMAIL_UNVERIFIED_POLICY": "block",
        },
        port,
        workdir / "list-validator.log",
    )
    broker = Broker(amqp_url, name="bench")
    try:
        for p in (notifier, validator):
            p.start()
            await p.wait_ready(60)
        assert validator.proc is not None
        pid = validator.proc.pid
        await broker.connect()
        async with (
            watching(broker, ["list.validated"]) as watch,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=900, headers=INTERNAL_HEADERS) as client,
        ):
            load_before = os.getloadavg()[0]
            reset_hwm(pid)
            cpu_before = cpu_seconds(pid)
            start = time.perf_counter()
            response = await client.post(
                "/internal/lists",
                content=file_chunks(csv_path),
                headers={**PASS, "X-Isseimail-Filename": "list.csv"},
            )
            result.accepted_s = time.perf_counter() - start
            response.raise_for_status()
            list_id = response.json()["list_id"]
            [payload] = await watch.wait_for(ListValidated.event_type, timeout=1800)
            result.valid_s = time.perf_counter() - start
            result.cpu_s = cpu_seconds(pid) - cpu_before
            result.status = f"{payload.status} ok={payload.ok} invalid={payload.invalid}"
            result.peak_mb["upload"] = vm_hwm_mb(pid)
            for phase, path, params in (
                ("rows", f"/internal/lists/{list_id}/rows", {}),
                ("suppressed", f"/internal/lists/{list_id}/suppressed", {"organisation": "corp.example.jp"}),
                ("errors", f"/internal/lists/{list_id}/errors", {}),
            ):
                reset_hwm(pid)
                try:
                    await drain(client, path, **params)
                except httpx.HTTPStatusError as exc:
                    print(f"  {phase}: {exc.response.status_code} {exc.response.text[:200]}")
                result.peak_mb[phase] = vm_hwm_mb(pid)
            result.load = (load_before, os.getloadavg()[0])
    finally:
        await broker.close()
        for p in (validator, notifier):
            if p.proc is not None:
                p.terminate(30)
        await drop_database(database_url)
        delete_vhost(vhost)
        csv_path.unlink()
    return result


async def run(args: argparse.Namespace) -> None:
    dns = DnsServer()
    dns.start()
    assert dns._server is not None
    dns._server.server.logger.logf = lambda _line: None  # dnslib prints every query otherwise
    domains = [f"kaisha{i}.example.jp" for i in range(args.domains)]
    for domain in domains:
        dns.zone(domain, mx=[(10, f"mx.{domain}")])
    results = []
    try:
        for count in args.rows:
            results.append(await one_size(args, count, dns, domains))
            r = results[-1]
            print(f"{r.rows:,} rows done: {r.valid_s:.1f}s, peaks {r.peak_mb}", flush=True)
    finally:
        dns.stop()
    print()
    print(f"machine: {os.cpu_count()} CPUs; domains: {args.domains}; duplicate every {args.duplicate_every} rows")
    print(
        "| rows | CSV MB | upload → 202 s | upload → valid s | µs per row | list-validator CPU s | load avg |"
        " peak RSS MB: upload | rows | suppressed | errors | result |"
    )
    print("|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|")
    for r in results:
        p = r.peak_mb
        print(
            f"| {r.rows:,} | {r.mb:.1f} | {r.accepted_s:.2f} | {r.valid_s:.2f} | {1e6 * r.valid_s / r.rows:.1f} |"
            f" {r.cpu_s:.1f} | {r.load[0]:.1f} → {r.load[1]:.1f} | {p.get('upload', 0):.0f} | {p.get('rows', 0):.0f} |"
            f" {p.get('suppressed', 0):.0f} | {p.get('errors', 0):.0f} | {r.status} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--domains", type=int, default=50)
    parser.add_argument(
        "--duplicate-every", type=int, default=0, help="every N-th row repeats an earlier address (0: none)"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
