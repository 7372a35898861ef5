"""Throwaway PostgreSQL databases and RabbitMQ vhosts for tests, on the servers named by the environment.

ISSEIMAIL_TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres) and
ISSEIMAIL_TEST_AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/) name the servers; a database and a
vhost are created per test and removed afterwards, so tests never see each other's rows or queues.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/"


class InfrastructureMissing(RuntimeError):
    """A server the integration tests need does not answer; the message says how to start it."""


def admin_database_url() -> str:
    return os.environ.get("ISSEIMAIL_TEST_DATABASE_URL", DEFAULT_PG)


def base_amqp_url() -> str:
    return os.environ.get("ISSEIMAIL_TEST_AMQP_URL", DEFAULT_AMQP)


async def create_database(prefix: str = "isseimail_test") -> str:
    admin = admin_database_url()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(admin, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        raise InfrastructureMissing(
            f"PostgreSQL does not answer at {admin} ({exc}); start it with "
            "'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start' "
            "or set ISSEIMAIL_TEST_DATABASE_URL"
        ) from exc
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))


async def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(admin_database_url(), timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _rabbitmqctl(*args: str) -> None:
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    if not os.path.exists(exe):
        raise InfrastructureMissing("rabbitmqctl not found: the tests create a RabbitMQ vhost per test with it")
    done = subprocess.run([exe, "-q", *args], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise InfrastructureMissing(
            f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}; "
            "is RabbitMQ running? start it with 'rabbitmq-server -detached'"
        )


def create_vhost(prefix: str = "isseimail_test") -> tuple[str, str]:
    """Returns (vhost, amqp url for it)."""
    vhost = f"{prefix}_{uuid.uuid4().hex[:12]}"
    _rabbitmqctl("add_vhost", vhost)
    user = urlsplit(base_amqp_url()).username or "guest"
    _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    return vhost, urlunsplit(urlsplit(base_amqp_url())._replace(path=f"/{vhost}"))


def delete_vhost(vhost: str) -> None:
    _rabbitmqctl("delete_vhost", vhost)
