"""`make run`'s script brings up all six services and the mail catcher, and Ctrl-C leaves nothing behind;
`make demo` (ISSEIMAIL_DEMO=1) adds its own DNS with the demo zone, an administrator and sample lists."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from dnslib import QTYPE, DNSRecord

from isseimail_testing import demo
from isseimail_testing.process import free_port
from isseimail_testing.services import services
from isseimail_testing.smtp import CaptureServer
from isseimail_testing.system import new_pass_with_admin

ROOT = Path(__file__).resolve().parent.parent


def children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            child = int(entry.name)
            found |= {child} | children_of(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.timeout(360)
def test_run_starts_everything_and_ctrl_c_stops_it(database_url: str, amqp_url: str, tmp_path: Path) -> None:
    """Six services and a dispatcher worker answer /readyz 200, SMTP is caught, SIGINT ends every process."""
    ports = {s.name: free_port() for s in services()}
    catcher = free_port()
    env = {
        **os.environ,
        **{s.port_env: str(ports[s.name]) for s in services()},
        "ISSEIMAIL_MAILCATCHER_PORT": str(catcher),
        "ISSEIMAIL_DATABASE_URL": database_url,
        "ISSEIMAIL_AMQP_URL": amqp_url,
        "ISSEIMAIL_BOUNCE_LISTEN_PORT": str(free_port()),
    }
    # Only the ports: every service's URL is derived from them (a stale URL variable must not leak in).
    for name in [k for k in env if k.endswith("_URL") and k not in ("ISSEIMAIL_DATABASE_URL", "ISSEIMAIL_AMQP_URL")]:
        env.pop(name)
    env.pop("ISSEIMAIL_SMTP_RELAY", None)
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "scripts/run.py"], cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 240
        while "isseimail is up" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        for name, port in ports.items():
            assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200, name
        with socket.create_connection(("127.0.0.1", catcher), timeout=5) as smtp:
            assert smtp.recv(100).startswith(b"220")
        started = children_of(proc.pid)
        assert len(started) >= 7
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        time.sleep(0.5)
        assert [pid for pid in started if alive(pid)] == []
    finally:
        if proc.poll() is None:
            proc.kill()


def start_run(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "scripts/run.py"], cwd=ROOT, env=env, stdout=out, stderr=out)


def dns_answers(nameserver: str, name: str, qtype: str) -> list[str]:
    host, _, port = nameserver.rpartition(":")
    reply = DNSRecord.parse(DNSRecord.question(name, qtype).send(host, int(port), timeout=5))
    return [str(rr.rdata) for rr in reply.rr if rr.rtype == getattr(QTYPE, qtype)]


@pytest.mark.timeout(420)
async def test_demo_zone_answers_and_the_sample_csv_shows_its_bad_rows(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    """ISSEIMAIL_DEMO=1: the demo DNS answers (MX, null MX), the demo administrator can approve a pass, and
    the sample CSV written to var/demo/ is checked against the demo zone: the good rows pass, the four bad
    ones (no MX, null MX, unknown domain, no @) are reported; the good-only list is valid."""
    ports = {s.name: free_port() for s in services()}
    smtp = CaptureServer()
    await smtp.start()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ISSEIMAIL_") or k in ("ISSEIMAIL_DATABASE_URL", "ISSEIMAIL_AMQP_URL")
    }
    env.update({s.port_env: str(ports[s.name]) for s in services()})
    env.update(
        {
            "ISSEIMAIL_DEMO": "1",
            "ISSEIMAIL_DATABASE_URL": database_url,
            "ISSEIMAIL_AMQP_URL": amqp_url,
            "ISSEIMAIL_BOUNCE_LISTEN_PORT": str(free_port()),
            "ISSEIMAIL_SMTP_RELAY": f"smtp://127.0.0.1:{smtp.port}",  # the test reads the credentials mail
        }
    )
    log = tmp_path / "run.log"
    proc = start_run(env, log)
    try:
        deadline = time.monotonic() + 240
        while "isseimail is up" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.3)
        text = log.read_text()
        nameserver = text.split("demo DNS on ", 1)[1].split()[0]
        assert dns_answers(nameserver, "shoji.example.jp", "MX") == ["10 mx.shoji.example.jp."]
        assert dns_answers(nameserver, demo.NULL_MX_DOMAIN, "MX") == ["0 ."]
        assert dns_answers(nameserver, demo.NO_MX_DOMAIN, "MX") == []

        email, password = (ROOT / "var" / "demo" / "admin.txt").read_text().split()[:2]
        assert email == demo.ADMIN_EMAIL
        gateway = f"http://127.0.0.1:{ports['gateway']}"
        try:
            applicant, _ = await new_pass_with_admin(gateway, smtp, (email, password), "koho@shoji.example.jp")
        except AssertionError as exc:
            logs = {p.name: p.read_text()[-3000:] for p in (ROOT / "var" / "log").glob("*.log")}
            raise AssertionError(f"{exc}\n{text}\n{logs}") from None
        async with applicant:
            sample = (ROOT / "var" / "demo" / "送信先-サンプル-エラーあり.csv").read_bytes()
            assert sample == demo.sample_csv()
            checked = await applicant.wait_list(await applicant.upload_list(sample), timeout=120)
            assert checked["status"] == "invalid", checked
            bad = {row["address"] for row in checked["bad_rows"]}
            assert bad == {line.split(",")[0] for line in demo.BAD_ROWS}, checked
            good = (ROOT / "var" / "demo" / "送信先-サンプル.csv").read_bytes()
            passed = await applicant.wait_list(await applicant.upload_list(good), timeout=120)
            assert passed["status"] == "valid", passed
        proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(proc.wait, 60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        await smtp.stop()
