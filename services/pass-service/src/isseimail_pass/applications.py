"""Applications: submitted by applicants, decided once by an administrator.

Approval issues exactly one pass: the application row is locked and must still be pending, and
passes.application_id is UNIQUE, so a replayed or concurrent approval changes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import asyncpg

from isseimail_pass.audit import audit
from isseimail_pass.credentials import encrypt_for_notifier, hash_password, new_password, new_user_id
from isseimail_pass.metrics import APPLICATIONS
from isseimail_shared.contracts.pass_service import ApplicationIn, ApplicationOut, IssuedOut
from isseimail_shared.db import Conn
from isseimail_shared.errors import ApiError
from isseimail_shared.events import ApplicationRejected, ApplicationSubmitted, PassIssued
from isseimail_shared.outbox import add_event

log = logging.getLogger(__name__)

ALREADY_DECIDED = "この申請はすでに処理されています。"
NOT_FOUND = "申請が見つかりません。"
DAY_PASSED = "利用日が過ぎているため承認できません。"
UNKNOWN_ADMIN = "管理者が見つかりません。再度ログインしてください。"


class DecisionRefused(ApiError):
    """The application cannot be decided (unknown, already decided, day passed): a 4xx, nothing changed."""


async def submit(conn: Conn, app: ApplicationIn) -> int:
    async with conn.transaction():
        application_id: int = await conn.fetchval(
            "INSERT INTO applications (applicant_name, applicant_email, department, use_date, purpose, client_ip) "
            "VALUES ($1, $2, $3, $4, $5, $6::inet) RETURNING id",
            app.applicant_name,
            str(app.applicant_email),
            app.department,
            app.use_date,
            app.purpose,
            str(app.client_ip) if app.client_ip else None,
        )
        await audit(
            conn,
            actor=str(app.applicant_email),
            action="application.submitted",
            subject=str(application_id),
            client_ip=str(app.client_ip) if app.client_ip else None,
            detail={"use_date": app.use_date.isoformat()},
        )
        await add_event(
            conn,
            ApplicationSubmitted(
                application_id=application_id,
                applicant_name=app.applicant_name,
                applicant_email=app.applicant_email,
                department=app.department,
                use_date=app.use_date,
            ),
        )
    APPLICATIONS.labels("submitted").inc()
    log.info("application %d submitted", application_id)
    return application_id


_SELECT = (
    "SELECT a.*, ad.email AS decided_by_email, p.id AS pass_id, p.user_id "
    "FROM applications a LEFT JOIN admins ad ON ad.id = a.decided_by LEFT JOIN passes p ON p.application_id = a.id"
)


def _out(row: asyncpg.Record) -> ApplicationOut:
    return ApplicationOut(
        application_id=row["id"],
        applicant_name=row["applicant_name"],
        applicant_email=row["applicant_email"],
        department=row["department"],
        use_date=row["use_date"],
        purpose=row["purpose"],
        state=row["state"],
        created_at=row["created_at"],
        decided_at=row["decided_at"],
        decided_by=row["decided_by_email"],
        reject_reason=row["reject_reason"],
        pass_id=row["pass_id"],
        user_id=row["user_id"],
    )


async def list_applications(conn: Conn, state: str | None, limit: int, offset: int) -> tuple[list[ApplicationOut], int]:
    rows = await conn.fetch(
        f"{_SELECT} WHERE ($1::text IS NULL OR a.state = $1) ORDER BY a.id DESC LIMIT $2 OFFSET $3",
        state,
        limit,
        offset,
    )
    total: int = await conn.fetchval("SELECT count(*) FROM applications WHERE ($1::text IS NULL OR state = $1)", state)
    return [_out(r) for r in rows], total


async def get_application(conn: Conn, application_id: int) -> ApplicationOut | None:
    row = await conn.fetchrow(f"{_SELECT} WHERE a.id = $1", application_id)
    return _out(row) if row else None


async def _lock_pending(conn: Conn, application_id: int, admin_id: int) -> tuple[asyncpg.Record, str]:
    admin_email = await conn.fetchval("SELECT email FROM admins WHERE id = $1", admin_id)
    if admin_email is None:
        raise DecisionRefused(403, UNKNOWN_ADMIN)
    row = await conn.fetchrow("SELECT * FROM applications WHERE id = $1 FOR UPDATE", application_id)
    if row is None:
        raise DecisionRefused(404, NOT_FOUND)
    if row["state"] != "pending":
        raise DecisionRefused(409, ALREADY_DECIDED)
    return row, str(admin_email)


async def approve(
    conn: Conn,
    application_id: int,
    *,
    admin_id: int,
    today: dt.date,
    credentials_key: str,
    password_length: int,
    login_url: str,
    client_ip: str | None,
) -> IssuedOut:
    """Issue the application's one pass and put pass.issued (password encrypted) in the outbox."""
    password = new_password(password_length)
    # Before the transaction and off the event loop: Argon2 is deliberately slow.
    password_hash = await asyncio.to_thread(hash_password, password)
    async with conn.transaction():
        row, admin_email = await _lock_pending(conn, application_id, admin_id)
        if row["use_date"] < today:
            raise DecisionRefused(409, DAY_PASSED)
        await conn.execute(
            "UPDATE applications SET state = 'approved', decided_by = $2, decided_at = now() WHERE id = $1",
            application_id,
            admin_id,
        )
        pass_id, user_id = await _insert_pass(conn, application_id, row["use_date"], password_hash)
        await audit(
            conn,
            actor=admin_email,
            action="application.approved",
            subject=str(application_id),
            client_ip=client_ip,
            detail={"pass_id": pass_id, "user_id": user_id},
        )
        await add_event(
            conn,
            PassIssued(
                pass_id=pass_id,
                application_id=application_id,
                user_id=user_id,
                use_date=row["use_date"],
                applicant_name=row["applicant_name"],
                applicant_email=row["applicant_email"],
                admin_email=admin_email,
                encrypted_password=encrypt_for_notifier(credentials_key, password),
                login_url=login_url,
            ),
        )
    APPLICATIONS.labels("approved").inc()
    log.info("application %d approved: pass %d issued", application_id, pass_id)
    return IssuedOut(application_id=application_id, pass_id=pass_id, user_id=user_id, use_date=row["use_date"])


async def _insert_pass(conn: Conn, application_id: int, use_date: dt.date, password_hash: str) -> tuple[int, str]:
    """A fresh 6-digit user ID; a collision with an existing one just draws again."""
    for _ in range(50):
        user_id = new_user_id()
        pass_id: int | None = await conn.fetchval(
            "INSERT INTO passes (application_id, user_id, password_hash, use_date) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (user_id) DO NOTHING RETURNING id",
            application_id,
            user_id,
            password_hash,
            use_date,
        )
        if pass_id is not None:
            return pass_id, user_id
    raise RuntimeError("no free 6-digit user ID found after 50 draws")


async def reject(conn: Conn, application_id: int, *, admin_id: int, reason: str, client_ip: str | None) -> None:
    async with conn.transaction():
        row, admin_email = await _lock_pending(conn, application_id, admin_id)
        await conn.execute(
            "UPDATE applications SET state = 'rejected', decided_by = $2, decided_at = now(), reject_reason = $3 "
            "WHERE id = $1",
            application_id,
            admin_id,
            reason,
        )
        await audit(
            conn, actor=admin_email, action="application.rejected", subject=str(application_id), client_ip=client_ip
        )
        await add_event(
            conn,
            ApplicationRejected(
                application_id=application_id,
                applicant_name=row["applicant_name"],
                applicant_email=row["applicant_email"],
                use_date=row["use_date"],
                reason=reason,
                admin_email=admin_email,
            ),
        )
    APPLICATIONS.labels("rejected").inc()
    log.info("application %d rejected", application_id)
