"""1DayPass: approval, login and consumption-race figures against a real pass-service process.

    uv run python bench/pass_service.py                    # 40 passes, 8 concurrent logins, 200-way races
    uv run python bench/pass_service.py --passes 100 --race 500

Needs PostgreSQL and RabbitMQ as for the tests. Starts a fresh database and vhost and one pass-service
process (`python -m isseimail_pass`), applies for and approves N passes for today (Asia/Tokyo), logs in
with each (Argon2 verification dominates), then for every pass fires `--race` concurrent consume calls
and checks that exactly one wins. Prints one table: operation, count, wall time, rate, p50 and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from cryptography.fernet import Fernet
from timing import timed

from isseimail_testing.fixtures import CREDENTIALS_KEY, INTERNAL_HEADERS, INTERNAL_TOKEN
from isseimail_testing.infra import create_database, create_vhost, delete_vhost, drop_database
from isseimail_testing.process import ServiceProcess, free_port

ADMIN = {"email": "bench-admin@example.jp", "password": "bench-admin-password"}


def row(name: str, count: int, wall: float, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"| {name} | {count} | {wall:.2f} s | {count / wall:.1f}/s "
        f"| {statistics.median(ordered) * 1000:.0f} ms | {p99 * 1000:.0f} ms |"
    )


async def main(args: argparse.Namespace) -> None:
    database_url = await create_database("isseimail_bench")
    vhost, amqp_url = create_vhost("isseimail_bench")
    port = free_port()
    log = Path(tempfile.gettempdir()) / f"bench-pass-{os.getpid()}.log"
    service = ServiceProcess(
        "isseimail_pass",
        {
            "ISSEIMAIL_DATABASE_URL": database_url,
            "ISSEIMAIL_AMQP_URL": amqp_url,
            "ISSEIMAIL_CREDENTIALS_KEY": CREDENTIALS_KEY,
            "ISSEIMAIL_INTERNAL_TOKENS": INTERNAL_TOKEN,
            "ISSEIMAIL_PASS_PORT": str(port),
            "ISSEIMAIL_ADMIN_EMAIL": ADMIN["email"],
            "ISSEIMAIL_ADMIN_PASSWORD": ADMIN["password"],
            "ISSEIMAIL_LOG_LEVEL": "WARNING",
            "ISSEIMAIL_DB_POOL_SIZE": str(args.pool),
        },
        port,
        log,
    )
    service.start()
    try:
        await service.wait_ready(60)
        today = dt.datetime.now(ZoneInfo("Asia/Tokyo")).date().isoformat()
        limits = httpx.Limits(max_connections=args.race + 10)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=120, limits=limits, headers=INTERNAL_HEADERS
        ) as client:
            admin_id = (await client.post("/internal/admin/login", json=ADMIN)).json()["admin_id"]
            app_ids: list[int] = []

            async def apply(i: int) -> None:
                body = {
                    "applicant_name": f"申請者 {i}",
                    "applicant_email": f"user{i}@example.jp",
                    "department": "総務部",
                    "use_date": today,
                    "purpose": "ベンチマーク",
                }
                r = await client.post("/internal/applications", json=body)
                r.raise_for_status()
                app_ids.append(r.json()["application_id"])

            issued: list[dict[str, object]] = []

            async def approve(i: int) -> None:
                r = await client.post(f"/internal/applications/{app_ids[i]}/approve", json={"admin_id": admin_id})
                r.raise_for_status()
                issued.append(r.json())

            results = [("apply", args.passes, *(await timed(args.passes, 8, apply)))]
            results.append(("approve (Argon2 hash + Fernet)", args.passes, *(await timed(args.passes, 8, approve))))

            conn = await asyncpg.connect(database_url, server_settings={"search_path": "pass"})
            fernet = Fernet(CREDENTIALS_KEY.encode())
            passwords = {}
            for r in await conn.fetch("SELECT body FROM outbox WHERE routing_key = 'pass.issued'"):
                payload = json.loads(bytes(r["body"]))["payload"]
                passwords[payload["pass_id"]] = fernet.decrypt(payload["encrypted_password"].encode()).decode()
            await conn.close()

            async def login(i: int) -> None:
                p = issued[i]
                body = {"user_id": p["user_id"], "password": passwords[p["pass_id"]], "use_date": today}
                r = await client.post("/internal/login", json=body)
                r.raise_for_status()

            results.append(
                ("login (Argon2 verify)", args.passes, *(await timed(args.passes, args.login_concurrency, login)))
            )

            race_walls: list[float] = []
            race_latencies: list[float] = []
            for p in issued:
                calls = [
                    client.post(f"/internal/passes/{p['pass_id']}/consume", json={"campaign_id": str(uuid.uuid4())})
                    for _ in range(args.race)
                ]
                start = time.perf_counter()
                answers = await asyncio.gather(*calls)
                race_walls.append(time.perf_counter() - start)
                codes = [a.status_code for a in answers]
                if codes.count(200) != 1 or codes.count(409) != args.race - 1:
                    raise SystemExit(f"race on pass {p['pass_id']}: {codes.count(200)} winners")
            race_latencies = race_walls
            results.append(
                (f"consume race ({args.race} callers, 1 winner)", len(issued), sum(race_walls), race_latencies)
            )
        print(f"pass-service bench: {args.passes} passes, pool {args.pool}, {os.cpu_count()} CPUs")
        print("| operation | count | wall | rate | p50 | p99 |")
        print("|---|---|---|---|---|---|")
        for name, count, wall, latencies in results:
            print(row(name, count, wall, latencies))
        print("(consume race: rate = races/s; p50/p99 = time until all callers of one race were answered)")
    finally:
        service.terminate()
        delete_vhost(vhost)
        await drop_database(database_url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passes", type=int, default=40)
    parser.add_argument("--race", type=int, default=200)
    parser.add_argument("--login-concurrency", type=int, default=8)
    parser.add_argument("--pool", type=int, default=10)
    asyncio.run(main(parser.parse_args()))
