"""Database helpers: a pool bound to the service's own schema, and plain SQL migrations at start-up."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from importlib import resources
from importlib.resources.abc import Traversable

import asyncpg

log = logging.getLogger(__name__)

# What handlers receive: a plain connection, or one borrowed from a pool (same interface).
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MIGRATION_NAME = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


async def create_pool(database_url: str, schema: str, *, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections see the service's schema first (and only it, besides pg_catalog)."""
    check_schema_name(schema)
    # The schema must exist before search_path can point at it; creating it is idempotent.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    finally:
        await conn.close()
    server_settings = {"search_path": schema, "application_name": f"isseimail-{schema}"}
    pool = ServicePool(
        database_url,
        min_size=1,
        max_size=max_size,
        server_settings=server_settings,
        reset=_keep_session,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
    )
    pool.listen_target = (database_url, server_settings)
    await pool
    return pool


class ServicePool(asyncpg.Pool):
    """asyncpg's pool, remembering how to open the LISTEN connection Wakeup keeps beside it."""

    __slots__ = ("listen_target",)
    listen_target: tuple[str, dict[str, str]]


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's release step: nothing beyond asyncpg's own (ROLLBACK of a forgotten transaction).

    asyncpg's default runs `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on every release,
    a second transaction for each one of ours. Nothing here leaves session state behind: LISTEN has its
    own connection outside the pool (Wakeup), advisory locks are transaction-scoped or unlocked in
    `finally` (migrate), no SET, no cursor outside a transaction.
    """


def _migration_files(package: str) -> list[tuple[str, Traversable]]:
    found = []
    for entry in resources.files(package).iterdir():
        if entry.is_file() and _MIGRATION_NAME.match(entry.name):
            found.append((entry.name, entry))
    return sorted(found, key=lambda item: item[0])


async def migrate(pool: asyncpg.Pool, schema: str, packages: list[str]) -> list[str]:
    """Apply the packages' NNN_name.sql files not yet recorded, in order; returns the names applied.

    The shared library's own tables (outbox, processed events) come from `isseimail_shared.sql`,
    which every service lists first; names are recorded as "package:file".

    An advisory lock per schema serialises replicas that start together; each file runs in its own
    transaction together with its record, so a failed file leaves nothing half-applied.
    """
    check_schema_name(schema)
    applied: list[str] = []
    lock_key = int.from_bytes(hashlib.sha256(f"migrate:{schema}".encode()).digest()[:8], "big", signed=True)
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
        try:
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
                " name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {
                r["name"]: r["checksum"]
                for r in await conn.fetch(f"SELECT name, checksum FROM {schema}.schema_migrations")
            }
            pending = [(f"{pkg}:{n}", e) for pkg in packages for n, e in _migration_files(pkg)]
            for name, entry in pending:
                sql = entry.read_text(encoding="utf-8")
                checksum = hashlib.sha256(sql.encode()).hexdigest()
                if name in done:
                    if done[name] != checksum:
                        log.warning("migration %s changed after it was applied; not re-applying", name)
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        f"INSERT INTO {schema}.schema_migrations (name, checksum) VALUES ($1, $2)",
                        name,
                        checksum,
                    )
                applied.append(name)
                log.info("applied migration %s.%s", schema, name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)
    return applied


async def ensure_database(database_url: str) -> bool:
    """Create the database named in the URL if it does not exist; True when it was created."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not re.match(r"^[A-Za-z0-9_]+$", name):
        raise ValueError(f"refusing to create a database with name {name!r}")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await conn.close()


class Wakeup:
    """LISTEN on a channel with a connection of its own; `wait(timeout)` returns on NOTIFY or timeout.

    Loops that poll a table (outbox relay, mail sender) use it to react at once to new rows while the
    poll interval stays a fallback. A lost connection is re-opened on the next wait. The connection is
    opened beside the pool, not borrowed from it: a pooled connection that LISTENed would need the
    `UNLISTEN *` reset the pool no longer runs.
    """

    def __init__(self, pool: asyncpg.Pool, channel: str) -> None:
        self._pool = pool
        self._channel = channel
        self._event = asyncio.Event()
        self._conn: asyncpg.Connection | None = None

    def _on_notify(self, *_: object) -> None:
        self._event.set()

    async def _ensure(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            return
        await self.close()
        if not isinstance(self._pool, ServicePool):
            raise TypeError("Wakeup needs a pool made by create_pool")
        dsn, server_settings = self._pool.listen_target
        conn = await asyncpg.connect(dsn, server_settings=server_settings)
        try:
            await conn.add_listener(self._channel, self._on_notify)
        except BaseException:
            conn.terminate()  # cancelled (shutdown) or failed before keeping it
            raise
        self._conn = conn

    async def wait(self, timeout: float) -> None:
        try:
            await self._ensure()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await self.close()  # database away: plain polling until it is back
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=timeout)
        self._event.clear()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.remove_listener(self._channel, self._on_notify)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2.0)
            if not conn.is_closed():
                conn.terminate()
