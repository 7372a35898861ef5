"""A real notifier process for the bench scripts, and mail to its SMTP listener as a remote MTA sends it.

Imported by the scripts as `from notifier_process import ...` (they run as `uv run python bench/x.py`, so bench/
is on sys.path)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib

from isseimail_testing.fixtures import CREDENTIALS_KEY, INTERNAL_TOKEN
from isseimail_testing.infra import create_database, create_vhost, delete_vhost, drop_database
from isseimail_testing.process import ServiceProcess, free_port
from isseimail_testing.smtp import CaptureServer


@dataclass(frozen=True)
class Notifier:
    database_url: str
    smtp_port: int  # the bounce, unsubscribe and feedback-report listener
    http_url: str


@contextlib.asynccontextmanager
async def running_notifier(verp_secret: str, bounce_domain: str, log_name: str) -> AsyncIterator[Notifier]:
    """`python -m isseimail_notifier` on a fresh database and vhost, relaying its own mail to a capture server;
    all of it removed afterwards. Its log goes to $TMPDIR/`log_name`."""
    database_url = await create_database("isseimail_bench")
    vhost, amqp_url = create_vhost("isseimail_bench")
    relay = CaptureServer()
    await relay.start()
    smtp_port, http_port = free_port(), free_port()
    env = {
        "ISSEIMAIL_DATABASE_URL": database_url,
        "ISSEIMAIL_AMQP_URL": amqp_url,
        "ISSEIMAIL_CREDENTIALS_KEY": CREDENTIALS_KEY,
        "ISSEIMAIL_INTERNAL_TOKENS": INTERNAL_TOKEN,
        "ISSEIMAIL_VERP_SECRET": verp_secret,
        "ISSEIMAIL_BOUNCE_DOMAIN": bounce_domain,
        "ISSEIMAIL_BOUNCE_LISTEN_PORT": str(smtp_port),
        "ISSEIMAIL_NOTIFIER_PORT": str(http_port),
        "ISSEIMAIL_SMTP_RELAY": f"smtp://127.0.0.1:{relay.port}",
        "ISSEIMAIL_LOG_LEVEL": "WARNING",
    }
    proc = ServiceProcess("isseimail_notifier", env, http_port, log_path=Path(tempfile.gettempdir()) / log_name)
    try:
        proc.start()
        try:
            await proc.wait_ready(60)
            yield Notifier(database_url, smtp_port, f"http://127.0.0.1:{http_port}")
        finally:
            proc.terminate()
    finally:
        await relay.stop()
        delete_vhost(vhost)
        await drop_database(database_url)


async def send_mail(port: int, rcpt: str, data: bytes, mail_from: str = "") -> None:
    """One message over SMTP to the listener on `port` (null sender, as for a DSN, unless given)."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
    await client.connect()
    try:
        await client.sendmail(mail_from, [rcpt], data)
    finally:
        client.close()
