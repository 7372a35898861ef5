"""Fixtures of the pass-service tests: an injectable clock, a running app, issued passes."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet

from isseimail_pass.app import create_app
from isseimail_pass.settings import PassSettings
from isseimail_testing.fixtures import CREDENTIALS_KEY
from isseimail_testing.process import running_app

JST = ZoneInfo("Asia/Tokyo")
ADMIN_EMAIL = "admin@example.jp"
ADMIN_PASSWORD = "admin-password-long-enough"
DAY = dt.date(2026, 12, 3)


class FakeClock:
    """What the pass-service believes "now" is; tests move it instead of patching datetime."""

    def __init__(self, when: dt.datetime) -> None:
        self.when = when

    def __call__(self) -> dt.datetime:
        return self.when

    def at(self, day: dt.date, hour: int = 10, minute: int = 0) -> None:
        self.when = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=JST)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2026, 12, 1, 10, 0, tzinfo=JST))


@pytest.fixture
def pass_settings(make_settings: Callable[..., Any]) -> PassSettings:
    settings: PassSettings = make_settings(
        PassSettings,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        lockout_per_user=3,
        lockout_per_client=6,
        # long enough that a loaded machine never outlasts a delay between two requests of a test; tests
        # move the recorded attempts back in time instead of sleeping
        lockout_base_delay_seconds=30,
    )
    return settings


@pytest.fixture
async def client(pass_settings: PassSettings, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(create_app(pass_settings, clock=clock)) as c:
        yield c


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the pass schema, for assertions on the tables and the outbox."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "pass"})
    yield conn
    await conn.close()


def application(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "applicant_name": "山田 太郎",
        "applicant_email": "taro@example.jp",
        "department": "総務部",
        "use_date": DAY.isoformat(),
        "purpose": "年末のご挨拶の一斉メール",
    }
    body.update(overrides)
    return body


async def admin_id(client: httpx.AsyncClient) -> int:
    r = await client.post("/internal/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    value: int = r.json()["admin_id"]
    return value


@dataclass
class Issued:
    application_id: int
    pass_id: int
    user_id: str
    password: str


async def issued_password(db: asyncpg.Connection, pass_id: int) -> str:
    """Decrypt the password from the pass.issued event in the outbox, as the notifier would."""
    for row in await db.fetch("SELECT body FROM outbox WHERE routing_key = 'pass.issued'"):
        payload = json.loads(bytes(row["body"]))["payload"]
        if payload["pass_id"] == pass_id:
            return Fernet(CREDENTIALS_KEY.encode()).decrypt(payload["encrypted_password"].encode()).decode()
    raise AssertionError(f"no pass.issued event for pass {pass_id}")


async def issue(client: httpx.AsyncClient, db: asyncpg.Connection, **overrides: Any) -> Issued:
    r = await client.post("/internal/applications", json=application(**overrides))
    assert r.status_code == 201, r.text
    application_id = r.json()["application_id"]
    r = await client.post(f"/internal/applications/{application_id}/approve", json={"admin_id": await admin_id(client)})
    assert r.status_code == 201, r.text
    out = r.json()
    return Issued(application_id, out["pass_id"], out["user_id"], await issued_password(db, out["pass_id"]))
