"""`make run`: the whole system as local processes, with an embedded mail catcher as the default relay.

Checks that PostgreSQL and RabbitMQ answer, creates the database if missing, starts the mail catcher
(every mail lands as a .eml file under var/mail/), then the six services, waits until each /readyz
answers 200, prints the gateway URL, and on Ctrl-C or SIGTERM stops everything and waits for it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx

from isseimail_shared.db import ensure_database
from isseimail_shared.settings import ServiceSettings
from isseimail_testing.services import services
from isseimail_testing.smtp import CaptureServer

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
CATCHER_PORT = int(os.environ.get("ISSEIMAIL_MAILCATCHER_PORT", "1025"))


def say(text: str) -> None:
    print(f"[make run] {text}", flush=True)


def dev_secrets() -> dict[str, str]:
    """Secrets every service must share; generated once per checkout into var/dev-secrets.env."""
    path = VAR / "dev-secrets.env"
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            if key and value:
                values[key] = value
    if not all(k in values for k in ("ISSEIMAIL_CREDENTIALS_KEY", "ISSEIMAIL_VERP_SECRET", "ISSEIMAIL_SESSION_SECRET")):
        from cryptography.fernet import Fernet

        values = {
            "ISSEIMAIL_CREDENTIALS_KEY": Fernet.generate_key().decode(),
            "ISSEIMAIL_VERP_SECRET": secrets.token_urlsafe(32),
            "ISSEIMAIL_SESSION_SECRET": secrets.token_urlsafe(32),
        }
        VAR.mkdir(exist_ok=True)
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        path.chmod(0o600)
    return {k: v for k, v in values.items() if k not in os.environ}


async def check_dependencies(settings: ServiceSettings) -> None:
    db_url = settings.database_url.get_secret_value()
    try:
        created = await ensure_database(db_url)
    except (OSError, asyncpg.PostgresError) as exc:
        where = urlsplit(db_url)
        sys.exit(
            f"[make run] PostgreSQL does not answer at {where.hostname}:{where.port or 5432} ({exc}).\n"
            "  Start it, e.g.: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"
            "  or point ISSEIMAIL_DATABASE_URL at a running server."
        )
    if created:
        say(f"created database {urlsplit(db_url).path.lstrip('/')}")
    amqp = urlsplit(settings.amqp_url.get_secret_value())
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(amqp.hostname, amqp.port or 5672), 5)
        writer.close()
    except (OSError, TimeoutError) as exc:
        sys.exit(
            f"[make run] RabbitMQ does not answer at {amqp.hostname}:{amqp.port or 5672} ({exc}).\n"
            "  Start it, e.g.: rabbitmq-server -detached\n  or point ISSEIMAIL_AMQP_URL at a running broker."
        )


async def wait_ready(ports: dict[str, int], procs: dict[str, subprocess.Popen[bytes]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(ports)
    async with httpx.AsyncClient() as client:
        while pending:
            for name, port in list(pending.items()):
                if procs[name].poll() is not None:
                    raise RuntimeError(f"{name} exited with code {procs[name].returncode}; see var/log/{name}.log")
                try:
                    r = await client.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                    if r.status_code == 200:
                        say(f"{name} ready on :{port}")
                        del pending[name]
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout:.0f}s: {', '.join(pending)} (see var/log/)")
            await asyncio.sleep(0.2)


def start(name: str, module: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log_dir = VAR / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen([sys.executable, "-m", module, *args], env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_all(procs: dict[str, subprocess.Popen[bytes]], grace: float = 25) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for name, proc in procs.items():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop in {grace:.0f}s; killing it")
            proc.kill()
            proc.wait()


def main() -> None:
    env = {**os.environ, **dev_secrets()}
    relay_default = f"smtp://127.0.0.1:{CATCHER_PORT}"
    use_catcher = "ISSEIMAIL_SMTP_RELAY" not in os.environ
    env.setdefault("ISSEIMAIL_SMTP_RELAY", relay_default)
    settings = ServiceSettings()
    asyncio.run(check_dependencies(settings))

    catcher = None
    if use_catcher:
        catcher = CaptureServer(host="127.0.0.1", port=CATCHER_PORT, store_dir=VAR / "mail")
        try:
            catcher.start_in_thread()
        except OSError as exc:
            sys.exit(f"[make run] mail catcher cannot listen on 127.0.0.1:{CATCHER_PORT} ({exc})")
        say(f"mail catcher on smtp://127.0.0.1:{CATCHER_PORT}; every mail is saved under var/mail/")
    else:
        say(f"outgoing mail goes to {settings.smtp_relay} (ISSEIMAIL_SMTP_RELAY)")

    procs: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # every process of services.toml, in its order (the gateway last), each on its port variable or default
    ports = {s.name: int(env.get(s.port_env, s.port)) for s in services()}
    try:
        for s in services():
            procs[s.name] = start(s.name, s.module, list(s.args), env)
        asyncio.run(wait_ready(ports, procs))
        say(f"isseimail is up: http://127.0.0.1:{ports['gateway']}/  (Ctrl-C stops everything)")
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    say(f"{name} exited with code {proc.returncode}; see var/log/{name}.log; stopping")
                    stopping = True
                    break
            time.sleep(0.5)
    except RuntimeError as exc:
        say(str(exc))
    finally:
        say("stopping")
        stop_all(procs)
        if catcher is not None:
            catcher.stop_thread()
        say("stopped")


if __name__ == "__main__":
    main()
