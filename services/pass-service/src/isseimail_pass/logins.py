"""Logins of applicants (user ID + password + day of use) and administrators, throttled per client.

Following OWASP's authentication guidance, failures never lock an account as such: they are counted per
(user ID or admin e-mail, client address) and per client address within a window, and past a threshold
each further attempt from *that* client must wait a delay that doubles with every failure (capped). So
whoever guesses from one address slows only themselves, and the right credentials from another client
still work while an attack runs. Failures over all accounts are exported for a spraying alarm
(isseimail_pass_failed_logins_recent). The attempts of one subject are serialised with an advisory
lock, so parallel guesses cannot slip past the threshold. Wrong password, unknown ID and wrong day get
one generic answer; a consumed or past pass gets the distinct 失効 answer, but only to someone who knows
its password. Passwords are never logged or stored in clear.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from dataclasses import dataclass
from functools import partial
from typing import Literal

from isseimail_pass.audit import audit
from isseimail_pass.credentials import verify_password
from isseimail_pass.metrics import FAILED_ACCOUNTS, FAILED_RECENT, LOGINS
from isseimail_pass.passes import EXPIRED, state_of
from isseimail_shared.contracts.pass_service import AdminLoginIn, AdminOut, PassLoginIn, PassOut
from isseimail_shared.db import Conn
from isseimail_shared.errors import ApiError

log = logging.getLogger(__name__)

GENERIC = "ユーザーID、パスワードまたは利用日が正しくありません。"
ADMIN_GENERIC = "メールアドレスまたはパスワードが正しくありません。"
LOCKED = "ログインの失敗が続いたため、しばらくログインできません。時間をおいて再度お試しください。"

Kind = Literal["pass", "admin"]


@dataclass(frozen=True)
class LockoutPolicy:
    window_seconds: int
    per_subject: int  # failures of one account from one client before the delays start
    per_client: int  # failures from one client over all accounts before the delays start
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 900.0

    def delay(self, failures: int, threshold: int) -> float:
        """The wait after the latest failure: none below the threshold, then base, 2×base, 4×base ... (capped)."""
        if failures < threshold:
            return 0.0
        return min(self.base_delay_seconds * 2.0 ** min(failures - threshold, 40), self.max_delay_seconds)


class LoginRefused(ApiError):
    """A login answered with a 4xx; a throttled one says when to try again (Retry-After)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(status, message, headers={"Retry-After": str(retry_after)} if retry_after else None)
        self.retry_after = retry_after


async def _wait_needed(conn: Conn, kind: Kind, subject: str, client_ip: str | None, policy: LockoutPolicy) -> float:
    """Seconds this client must still wait before it may try this account again (0: it may try now)."""
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE kind = $1 AND subject = $2 AND client_ip IS NOT DISTINCT FROM $3::inet) "
        "         AS pair_n, "
        "       max(at) FILTER (WHERE kind = $1 AND subject = $2 AND client_ip IS NOT DISTINCT FROM $3::inet) "
        "         AS pair_last, "
        "       count(*) FILTER (WHERE client_ip = $3::inet) AS client_n, "
        "       max(at) FILTER (WHERE client_ip = $3::inet) AS client_last, now() AS now "
        "FROM login_attempts WHERE counts AND at > now() - make_interval(secs => $4) "
        "AND ((kind = $1 AND subject = $2) OR client_ip = $3::inet)",
        kind,
        subject,
        client_ip,
        float(policy.window_seconds),
    )
    assert row is not None
    wait = 0.0
    for n, last, threshold in (
        (row["pair_n"], row["pair_last"], policy.per_subject),
        (row["client_n"], row["client_last"], policy.per_client),
    ):
        if last is not None:
            wait = max(wait, policy.delay(n, threshold) - (row["now"] - last).total_seconds())
    return wait


async def _observe_spraying(conn: Conn, policy: LockoutPolicy) -> None:
    """Failed logins over every account and client in the window: the spraying alarm's gauges."""
    row = await conn.fetchrow(
        "SELECT count(*) AS failures, count(DISTINCT (kind, subject)) AS accounts FROM login_attempts "
        "WHERE counts AND at > now() - make_interval(secs => $1)",
        float(policy.window_seconds),
    )
    assert row is not None
    FAILED_RECENT.set(row["failures"])
    FAILED_ACCOUNTS.set(row["accounts"])


def _throttled(wait: float) -> LoginRefused:
    return LoginRefused(429, LOCKED, retry_after=max(1, math.ceil(wait)))


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
        wait = await _wait_needed(conn, "pass", body.user_id, client_ip, policy)
        if wait > 0:
            await _record(conn, "pass", body.user_id, client_ip, success=False, reason="locked", counts=False)
            refused = _throttled(wait)
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
        if refused.status == 401:
            await _observe_spraying(conn, policy)
        raise refused
    assert row is not None
    return PassOut(pass_id=row["id"], user_id=row["user_id"], use_date=row["use_date"], state="active")


async def admin_login(conn: Conn, body: AdminLoginIn, policy: LockoutPolicy) -> AdminOut:
    client_ip = str(body.client_ip) if body.client_ip else None
    email = body.email.strip().lower()
    refused: LoginRefused | None = None
    async with conn.transaction():
        await _lock_subject(conn, "admin", email)
        wait = await _wait_needed(conn, "admin", email, client_ip, policy)
        if wait > 0:
            await _record(conn, "admin", email, client_ip, success=False, reason="locked", counts=False)
            refused = _throttled(wait)
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
        if refused.status == 401:
            await _observe_spraying(conn, policy)
        raise refused
    assert row is not None
    return AdminOut(admin_id=row["id"], email=row["email"])
