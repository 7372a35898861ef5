"""Logins of applicants (user ID + password + day of use) and administrators, with a lockout.

Failures are counted per user ID (or admin e-mail) and per client address within a window. The
attempts of one subject are serialised with an advisory lock, so parallel guesses cannot slip past
the threshold. Wrong password, unknown ID and wrong day get one generic answer; a consumed or past
pass gets the distinct 失効 answer, but only to someone who knows its password. Passwords are never
logged or stored in clear.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from functools import partial
from typing import Literal

from isseimail_pass.audit import audit
from isseimail_pass.credentials import verify_password
from isseimail_pass.metrics import LOGINS
from isseimail_pass.models import AdminLoginIn, AdminOut, PassLoginIn, PassOut
from isseimail_pass.passes import EXPIRED, state_of
from isseimail_shared.db import Conn

log = logging.getLogger(__name__)

GENERIC = "ユーザーID、パスワードまたは利用日が正しくありません。"
ADMIN_GENERIC = "メールアドレスまたはパスワードが正しくありません。"
LOCKED = "ログインの失敗が続いたため、しばらくログインできません。時間をおいて再度お試しください。"

Kind = Literal["pass", "admin"]


@dataclass(frozen=True)
class LockoutPolicy:
    window_seconds: int
    per_subject: int
    per_client: int


class LoginRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _is_locked(conn: Conn, kind: Kind, subject: str, client_ip: str | None, policy: LockoutPolicy) -> bool:
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE kind = $1 AND subject = $2) AS by_subject, "
        "       count(*) FILTER (WHERE client_ip = $3::inet) AS by_client "
        "FROM login_attempts WHERE counts AND at > now() - make_interval(secs => $4) "
        "AND ((kind = $1 AND subject = $2) OR client_ip = $3::inet)",
        kind,
        subject,
        client_ip,
        float(policy.window_seconds),
    )
    assert row is not None
    return bool(row["by_subject"] >= policy.per_subject or row["by_client"] >= policy.per_client)


async def _record(
    conn: Conn, kind: Kind, subject: str, client_ip: str | None, *, success: bool, reason: str, counts: bool
) -> None:
    await conn.execute(
        "INSERT INTO login_attempts (kind, subject, client_ip, success, counts) VALUES ($1, $2, $3::inet, $4, $5)",
        kind,
        subject,
        client_ip,
        success,
        counts,
    )
    LOGINS.labels(kind, reason).inc()
    action = f"{'admin.' if kind == 'admin' else ''}login.{'succeeded' if success else 'failed'}"
    await audit(conn, actor=subject, action=action, subject=subject, client_ip=client_ip, detail={"reason": reason})
    if not success:
        log.warning("%s login failed", kind, extra={"subject": subject, "client": client_ip, "reason": reason})


async def _lock_subject(conn: Conn, kind: Kind, subject: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"login:{kind}:{subject}")


async def pass_login(conn: Conn, body: PassLoginIn, today: dt.date, policy: LockoutPolicy) -> PassOut:
    client_ip = str(body.client_ip) if body.client_ip else None
    refused: LoginRefused | None = None
    async with conn.transaction():
        await _lock_subject(conn, "pass", body.user_id)
        if await _is_locked(conn, "pass", body.user_id, client_ip, policy):
            await _record(conn, "pass", body.user_id, client_ip, success=False, reason="locked", counts=False)
            refused = LoginRefused(429, LOCKED)
        else:
            row = await conn.fetchrow(
                "SELECT id, user_id, use_date, state, password_hash FROM passes WHERE user_id = $1", body.user_id
            )
            stored = row["password_hash"] if row else None
            if not await asyncio.to_thread(verify_password, stored, body.password) or row is None:
                reason = "unknown_user_id" if row is None else "wrong_password"
                await _record(conn, "pass", body.user_id, client_ip, success=False, reason=reason, counts=True)
                refused = LoginRefused(401, GENERIC)
            else:
                state = state_of(row, today)
                if state in ("consumed", "expired"):
                    await _record(conn, "pass", body.user_id, client_ip, success=False, reason=state, counts=False)
                    refused = LoginRefused(403, EXPIRED)
                elif state != "active" or body.use_date != row["use_date"]:
                    await _record(conn, "pass", body.user_id, client_ip, success=False, reason="wrong_day", counts=True)
                    refused = LoginRefused(401, GENERIC)
                else:
                    await _record(conn, "pass", body.user_id, client_ip, success=True, reason="ok", counts=False)
    if refused is not None:
        raise refused
    assert row is not None
    return PassOut(pass_id=row["id"], user_id=row["user_id"], use_date=row["use_date"], state="active")


async def admin_login(conn: Conn, body: AdminLoginIn, policy: LockoutPolicy) -> AdminOut:
    client_ip = str(body.client_ip) if body.client_ip else None
    email = body.email.strip().lower()
    refused: LoginRefused | None = None
    async with conn.transaction():
        await _lock_subject(conn, "admin", email)
        if await _is_locked(conn, "admin", email, client_ip, policy):
            await _record(conn, "admin", email, client_ip, success=False, reason="locked", counts=False)
            refused = LoginRefused(429, LOCKED)
        else:
            row = await conn.fetchrow("SELECT id, email, password_hash FROM admins WHERE email = $1", email)
            stored = row["password_hash"] if row else None
            if not await asyncio.to_thread(partial(verify_password, admin=True), stored, body.password) or row is None:
                reason = "unknown_email" if row is None else "wrong_password"
                await _record(conn, "admin", email, client_ip, success=False, reason=reason, counts=True)
                refused = LoginRefused(401, ADMIN_GENERIC)
            else:
                await _record(conn, "admin", email, client_ip, success=True, reason="ok", counts=False)
    if refused is not None:
        raise refused
    assert row is not None
    return AdminOut(admin_id=row["id"], email=row["email"])
