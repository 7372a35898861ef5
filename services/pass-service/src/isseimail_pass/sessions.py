"""Server-side sessions for the gateway: opened at login, looked up on every request, revoked on logout.

The session id is 32 random bytes the gateway puts in its cookie; only its SHA-256 is stored, so a copy
of this table opens no session. A login always opens a new id (and revokes the one it replaces), so a
session id planted before login is worthless. A pass session ends with its day of use (00:00 of the next
day in ISSEIMAIL_TIMEZONE); consuming the pass narrows every session of the pass to its campaign.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Literal
from zoneinfo import ZoneInfo

from isseimail_pass.passes import state_of
from isseimail_shared.contracts.pass_service import SessionOut
from isseimail_shared.db import Conn


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


def end_of_day(day: dt.date, timezone: str) -> dt.datetime:
    """When a pass's day of use ends: midnight after it, in the service's time zone."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=ZoneInfo(timezone))


async def open_session(
    conn: Conn,
    kind: Literal["pass", "admin"],
    owner_id: int,
    expires_at: dt.datetime,
    replaces: str | None,
    now: dt.datetime,
) -> str:
    """A new session id for the owner; the session the browser held before (if any) is revoked."""
    if replaces:
        await revoke(conn, replaces, now)
    session_id = secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO sessions (id_hash, kind, pass_id, admin_id, expires_at, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        _digest(session_id),
        kind,
        owner_id if kind == "pass" else None,
        owner_id if kind == "admin" else None,
        expires_at,
        now,
    )
    return session_id


async def lookup(conn: Conn, session_id: str, now: dt.datetime, today: dt.date) -> SessionOut | None:
    """The session with its owner; None when unknown, revoked, or (an administrator's) expired.

    A pass session past its end is answered as "expired", so that the user is told the pass has lapsed
    rather than merely to log in again; it opens nothing either way."""
    row = await conn.fetchrow(
        "SELECT s.kind, s.pass_id, s.admin_id, s.campaign_id, s.expires_at, p.user_id, p.use_date, p.state, "
        "a.email FROM sessions s LEFT JOIN passes p ON p.id = s.pass_id LEFT JOIN admins a ON a.id = s.admin_id "
        "WHERE s.id_hash = $1 AND s.revoked_at IS NULL",
        _digest(session_id),
    )
    if row is None:
        return None
    ended = row["expires_at"] <= now
    if row["kind"] == "admin":
        if ended:
            return None
        return SessionOut(kind="admin", admin_id=row["admin_id"], email=row["email"], expires_at=row["expires_at"])
    return SessionOut(
        kind="pass",
        pass_id=row["pass_id"],
        user_id=row["user_id"],
        use_date=row["use_date"],
        state="expired" if ended else state_of(row, today),
        campaign_id=row["campaign_id"],
        expires_at=row["expires_at"],
    )


async def revoke(conn: Conn, session_id: str, now: dt.datetime) -> bool:
    status: str = await conn.execute(
        "UPDATE sessions SET revoked_at = $2 WHERE id_hash = $1 AND revoked_at IS NULL", _digest(session_id), now
    )
    return status != "UPDATE 0"
