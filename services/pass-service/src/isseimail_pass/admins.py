"""Administrators: Argon2-hashed accounts; the first one comes from the environment or the CLI."""

from __future__ import annotations

import logging

from isseimail_pass.credentials import ADMIN_HASHER
from isseimail_shared.db import Conn
from isseimail_shared.events import AdminCreated
from isseimail_shared.outbox import add_event

log = logging.getLogger(__name__)

MIN_PASSWORD = 12


async def create_admin(conn: Conn, email: str, password: str) -> int | None:
    """Create an administrator and announce it (admin.created, via the outbox); None if the email exists."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"administrator password must have at least {MIN_PASSWORD} characters")
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or len(email) > 254 or any(c.isspace() or ord(c) < 32 for c in email):
        raise ValueError(f"not an e-mail address: {email!r}")
    async with conn.transaction():
        admin_id: int | None = await conn.fetchval(
            "INSERT INTO admins (email, password_hash) VALUES ($1, $2) ON CONFLICT (email) DO NOTHING RETURNING id",
            email,
            ADMIN_HASHER.hash(password),
        )
        if admin_id is None:
            return None
        await conn.execute(
            "INSERT INTO audit_log (actor, action, subject) VALUES ('system', 'admin.created', $1)", email
        )
        await add_event(conn, AdminCreated(admin_id=admin_id, email=email))
    log.info("administrator %d created", admin_id)
    return admin_id


async def ensure_first_admin(conn: Conn, email: str, password: str) -> int | None:
    """Create the first administrator only when there is none; replicas starting together create one."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE admins IN SHARE ROW EXCLUSIVE MODE")
        if await conn.fetchval("SELECT count(*) FROM admins"):
            return None
        return await create_admin(conn, email, password)
