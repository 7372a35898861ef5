"""The pass-service's internal HTTP API (reached only by the gateway inside the cluster)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from isseimail_pass import applications, logins, passes, sessions
from isseimail_pass.clock import RouteClock
from isseimail_pass.clock import today as today_in
from isseimail_pass.settings import PassSettings
from isseimail_shared.app import Db, held
from isseimail_shared.contracts.pass_service import (
    AdminLoginIn,
    AdminLoginOut,
    ApplicationIn,
    ApplicationList,
    ApplicationOut,
    ConsumeIn,
    ConsumeOut,
    Decision,
    IssuedOut,
    PassList,
    PassLoginIn,
    PassLoginOut,
    PassOut,
    Rejection,
    RevokeOut,
    SessionOut,
    SessionRef,
)
from isseimail_shared.errors import ApiError

router = APIRouter(prefix="/internal", tags=["internal"])

PASS_NOT_FOUND = "1DayPassが見つかりません。"  # noqa: S105 - a message, not a secret
SESSION_NOT_FOUND = "ログインしてください。"


Settings = Annotated[PassSettings, Depends(held(PassSettings))]
RouteClockDep = Annotated[RouteClock, Depends(held(RouteClock))]


def get_today(clock: RouteClockDep, settings: Settings) -> dt.date:
    return today_in(clock.now, settings.timezone)


def get_now(clock: RouteClockDep) -> dt.datetime:
    return clock.now()


Today = Annotated[dt.date, Depends(get_today)]
Now = Annotated[dt.datetime, Depends(get_now)]
Id = Annotated[int, Path(ge=1, le=2**62)]


def _policy(settings: PassSettings) -> logins.LockoutPolicy:
    return logins.LockoutPolicy(
        window_seconds=settings.lockout_window_seconds,
        per_subject=settings.lockout_per_user,
        per_client=settings.lockout_per_client,
        base_delay_seconds=settings.lockout_base_delay_seconds,
        max_delay_seconds=settings.lockout_max_delay_seconds,
    )


def _ip(value: object | None) -> str | None:
    return str(value) if value is not None else None


# --- applications ----------------------------------------------------------------------------------


@router.post("/applications", status_code=201)
async def submit_application(body: ApplicationIn, db: Db, settings: Settings, today: Today) -> ApplicationOut:
    if body.use_date < today:
        raise ApiError.invalid({"use_date": "利用日に過去の日付は指定できません。"})
    if body.use_date > today + dt.timedelta(days=settings.max_days_ahead):
        raise ApiError.invalid({"use_date": f"利用日は本日から{settings.max_days_ahead}日以内で指定してください。"})
    async with db.acquire() as conn:
        application_id = await applications.submit(conn, body)
        found = await applications.get_application(conn, application_id)
    assert found is not None
    return found


@router.get("/applications")
async def list_applications(
    db: Db,
    state: Literal["pending", "approved", "rejected"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> ApplicationList:
    async with db.acquire() as conn:
        items, total = await applications.list_applications(conn, state, limit, offset)
    return ApplicationList(items=items, total=total)


@router.get("/applications/{application_id}")
async def get_application(application_id: Id, db: Db) -> ApplicationOut:
    async with db.acquire() as conn:
        found = await applications.get_application(conn, application_id)
    if found is None:
        raise ApiError(404, applications.NOT_FOUND)
    return found


@router.post("/applications/{application_id}/approve", status_code=201)
async def approve_application(
    application_id: Id, body: Decision, db: Db, settings: Settings, today: Today
) -> IssuedOut:
    async with db.acquire() as conn:  # a refusal (applications.DecisionRefused) is an ApiError: answered as is
        return await applications.approve(
            conn,
            application_id,
            admin_id=body.admin_id,
            today=today,
            credentials_key=settings.credentials_key.get_secret_value(),
            password_length=settings.password_length,
            login_url=settings.login_url,
            client_ip=_ip(body.client_ip),
        )


@router.post("/applications/{application_id}/reject")
async def reject_application(application_id: Id, body: Rejection, db: Db) -> ApplicationOut:
    async with db.acquire() as conn:
        await applications.reject(
            conn, application_id, admin_id=body.admin_id, reason=body.reason, client_ip=_ip(body.client_ip)
        )
        found = await applications.get_application(conn, application_id)
    assert found is not None
    return found


# --- logins ----------------------------------------------------------------------------------------


@router.post("/login")
async def pass_login(body: PassLoginIn, db: Db, settings: Settings, today: Today, now: Now) -> PassLoginOut:
    """Check the credentials; on success open a new session that ends with the pass's day of use."""
    async with db.acquire() as conn:  # a refused login (logins.LoginRefused) is an ApiError: answered as is
        found = await logins.pass_login(conn, body, today, _policy(settings))
        expires = sessions.end_of_day(found.use_date, settings.timezone)
        session_id = await sessions.open_session(conn, "pass", found.pass_id, expires, body.replaces, now)
    return PassLoginOut(**found.model_dump(), session_id=session_id, expires_at=expires)


@router.post("/admin/login")
async def admin_login(body: AdminLoginIn, db: Db, settings: Settings, now: Now) -> AdminLoginOut:
    """Check the credentials; on success open a new administrator session (ISSEIMAIL_ADMIN_SESSION_HOURS)."""
    async with db.acquire() as conn:  # a refused login (logins.LoginRefused) is an ApiError: answered as is
        found = await logins.admin_login(conn, body, _policy(settings))
        expires = now + dt.timedelta(hours=settings.admin_session_hours)
        session_id = await sessions.open_session(conn, "admin", found.admin_id, expires, body.replaces, now)
    return AdminLoginOut(**found.model_dump(), session_id=session_id, expires_at=expires)


# --- sessions (the gateway's, see sessions.py); the id travels in bodies, never in a logged URL --------


@router.post("/sessions/lookup", responses={404: {"description": "unknown, revoked or expired"}})
async def lookup_session(body: SessionRef, db: Db, today: Today, now: Now) -> SessionOut:
    async with db.acquire() as conn:
        found = await sessions.lookup(conn, body.session_id, now, today)
    if found is None:
        raise ApiError(404, SESSION_NOT_FOUND)
    return found


@router.post("/sessions/revoke")
async def revoke_session(body: SessionRef, db: Db, now: Now) -> RevokeOut:
    async with db.acquire() as conn:
        return RevokeOut(revoked=await sessions.revoke(conn, body.session_id, now))


# --- passes ----------------------------------------------------------------------------------------


@router.get("/passes")
async def list_passes(
    db: Db,
    today: Today,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> PassList:
    """Issued passes, newest first, with their state as of today (for the administrator's page)."""
    async with db.acquire() as conn:
        items, total = await passes.list_passes(conn, today, limit, offset)
    return PassList(items=items, total=total)


@router.get("/passes/{pass_id}")
async def get_pass(pass_id: Id, db: Db, today: Today) -> PassOut:
    async with db.acquire() as conn:
        found = await passes.get_pass(conn, pass_id, today)
    if found is None:
        raise ApiError(404, PASS_NOT_FOUND)
    return found


@router.post("/passes/{pass_id}/consume", responses={409: {"description": "not consumable (失効)"}})
async def consume_pass(pass_id: Id, body: ConsumeIn, db: Db, today: Today) -> ConsumeOut:
    async with db.acquire() as conn:
        outcome = await passes.consume(conn, pass_id, body.campaign_id, today)
    if outcome == "unknown":
        raise ApiError(404, PASS_NOT_FOUND)
    if outcome == "refused":
        raise ApiError(409, passes.EXPIRED)
    return ConsumeOut(won=True)
