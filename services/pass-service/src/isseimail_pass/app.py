"""The pass-service app: its spec (schema, migrations, start-up) and its routes."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from fastapi import FastAPI

from isseimail_pass import api
from isseimail_pass.admins import ensure_first_admin
from isseimail_pass.clock import Clock, RouteClock, system_clock
from isseimail_pass.settings import PassSettings
from isseimail_shared.app import create_app as create_service_app
from isseimail_shared.app import runtime_of
from isseimail_shared.runtime import Runtime, ServiceSpec

log = logging.getLogger(__name__)


async def bootstrap_admin(runtime: Runtime[PassSettings]) -> None:
    settings = runtime.settings
    if settings.admin_email and settings.admin_password:
        async with runtime.pool.acquire() as conn:
            await ensure_first_admin(conn, settings.admin_email, settings.admin_password.get_secret_value())


async def prune_login_attempts(runtime: Runtime[PassSettings]) -> None:
    """Login attempts matter only within the lockout window (the audit log keeps the history)."""
    settings = runtime.settings
    keep = max(settings.lockout_window_seconds, 86_400)
    while True:
        try:
            await runtime.pool.execute(
                "DELETE FROM login_attempts WHERE at < now() - make_interval(secs => $1)", float(keep)
            )
            await runtime.pool.execute("DELETE FROM sessions WHERE expires_at < now() - interval '1 day'")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("could not prune login attempts: %s", exc.__class__.__name__)
        await asyncio.sleep(3600)


SPEC = ServiceSpec(
    name="pass-service",
    schema="pass",
    migrations="isseimail_pass.migrations",
    on_start=[bootstrap_admin],
    background=[prune_login_attempts],
)


def create_app(settings: PassSettings | None = None, *, clock: Clock = system_clock) -> FastAPI:
    """The app; `clock` decides what "today" is (tests pass their own instead of patching datetime)."""
    app = create_service_app(SPEC, settings or PassSettings(), [api.router])
    runtime_of(app).registry.register(RouteClock, RouteClock(clock))
    return app
