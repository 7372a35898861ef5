"""`make run`'s script brings up all six services and the mail catcher, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from isseimail_testing.process import free_port
from isseimail_testing.services import services

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


@pytest.mark.timeout(180)
def test_run_starts_everything_and_ctrl_c_stops_it(database_url: str, amqp_url: str, tmp_path: Path) -> None:
    """Six services and a dispatcher worker answer /readyz 200, SMTP is caught, SIGINT ends every process."""
    ports = {s.name: free_port() for s in services()}
    catcher = free_port()
    env = {
        **os.environ,
        **{s.port_env: str(ports[s.name]) for s in services()},
        **{s.url_env: f"http://127.0.0.1:{ports[s.name]}" for s in services() if s.url_env is not None},
        "ISSEIMAIL_MAILCATCHER_PORT": str(catcher),
        "ISSEIMAIL_DATABASE_URL": database_url,
        "ISSEIMAIL_AMQP_URL": amqp_url,
        "ISSEIMAIL_BOUNCE_LISTEN_PORT": str(free_port()),
    }
    env.pop("ISSEIMAIL_SMTP_RELAY", None)
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "scripts/run.py"], cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 120
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
