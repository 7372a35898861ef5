"""Gateway JSON API of issue 3 in front of the real pass-service (over HTTP): apply, admin, login, session."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet

from isseimail_gateway.app import create_app as gateway_app
from isseimail_gateway.session import ADMIN_COOKIE, PASS_COOKIE
from isseimail_gateway.settings import GatewaySettings
from isseimail_pass.app import create_app as pass_app
from isseimail_pass.settings import PassSettings
from isseimail_testing.fixtures import CREDENTIALS_KEY
from isseimail_testing.http import serving
from isseimail_testing.process import running_app

JST = ZoneInfo("Asia/Tokyo")
DAY = dt.date(2026, 12, 3)
ADMIN = {"email": "admin@example.jp", "password": "admin-password-long-enough"}
SECRET = "gateway-test-session-secret"
EXPIRED = "この1DayPassは失効しています。再度申請してください。"
OUTSIDE = "一斉メールは社内ネットワークからのみ利用できます。"


class Clock:
    def __init__(self) -> None:
        self.when = dt.datetime(2026, 12, 1, 10, 0, tzinfo=JST)

    def __call__(self) -> dt.datetime:
        return self.when

    def at(self, day: dt.date, hour: int = 10) -> None:
        self.when = dt.datetime(day.year, day.month, day.day, hour, tzinfo=JST)


@dataclass
class Stack:
    clock: Clock
    pass_url: str
    pass_client: httpx.AsyncClient
    db: asyncpg.Connection
    gateway: Callable[..., Any]  # (client_ip=..., **settings) -> async context manager of a client


@pytest.fixture
async def stack(make_settings: Callable[..., Any], database_url: str) -> AsyncIterator[Stack]:
    clock = Clock()
    settings = make_settings(
        PassSettings, admin_email=ADMIN["email"], admin_password=ADMIN["password"], lockout_per_client=50
    )
    app = pass_app(settings, clock=clock)
    async with AsyncExitStack() as stack:
        pass_client = await stack.enter_async_context(running_app(app))
        pass_url = await stack.enter_async_context(serving(app))
        db = await asyncpg.connect(database_url, server_settings={"search_path": "pass"})
        stack.push_async_callback(db.close)

        def gateway(client_ip: str = "10.20.30.40", **overrides: Any) -> Any:
            values = {"pass_url": pass_url, "session_secret": SECRET, **overrides}
            return running_app(gateway_app(make_settings(GatewaySettings, **values)), client_ip=client_ip)

        yield Stack(clock, pass_url, pass_client, db, gateway)


def application(**overrides: Any) -> dict[str, Any]:
    return {
        "applicant_name": "山田 太郎",
        "applicant_email": "taro@example.jp",
        "department": "総務部",
        "use_date": DAY.isoformat(),
        "purpose": "年末のご挨拶",
        **overrides,
    }


async def password_of(db: asyncpg.Connection, pass_id: int) -> str:
    for row in await db.fetch("SELECT body FROM outbox WHERE routing_key = 'pass.issued'"):
        payload = json.loads(bytes(row["body"]))["payload"]
        if payload["pass_id"] == pass_id:
            return Fernet(CREDENTIALS_KEY.encode()).decrypt(payload["encrypted_password"].encode()).decode()
    raise AssertionError("no pass.issued event")


async def approved_pass(gw: httpx.AsyncClient, db: asyncpg.Connection) -> tuple[dict[str, Any], str]:
    r = await gw.post("/api/v1/applications", json=application())
    assert r.status_code == 201, r.text
    assert (await gw.post("/api/v1/admin/session", json=ADMIN)).status_code == 200
    r = await gw.post(f"/api/v1/admin/applications/{r.json()['application_id']}/approve")
    assert r.status_code == 201, r.text
    issued = r.json()
    gw.cookies.delete(ADMIN_COOKIE)
    return issued, await password_of(db, issued["pass_id"])


async def test_whole_pass_flow_through_the_gateway(stack: Stack) -> None:
    """Apply, admin login, list, approve; login on the day; the session ends when the pass is consumed."""
    async with stack.gateway(cookie_secure=True) as secure:
        r = await secure.post("/api/v1/admin/session", json=ADMIN)
        assert r.status_code == 200
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "secure" in cookie
    async with stack.gateway() as gw:
        r = await gw.post("/api/v1/applications", json=application())
        assert r.status_code == 201
        assert r.json()["state"] == "pending"
        application_id = r.json()["application_id"]

        assert (await gw.get("/api/v1/admin/applications")).status_code == 401
        r = await gw.post("/api/v1/admin/session", json=ADMIN)
        assert r.status_code == 200
        assert "secure" not in r.headers["set-cookie"].lower()
        listing = (await gw.get("/api/v1/admin/applications", params={"state": "pending"})).json()
        assert [a["application_id"] for a in listing["items"]] == [application_id]
        r = await gw.post(f"/api/v1/admin/applications/{application_id}/approve")
        assert r.status_code == 201
        issued = r.json()
        assert set(issued) == {"application_id", "pass_id", "user_id", "use_date"}  # never a password
        replay = await gw.post(f"/api/v1/admin/applications/{application_id}/approve")
        assert replay.status_code == 409
        assert replay.json()["detail"] == "この申請はすでに処理されています。"
        password = await password_of(stack.db, issued["pass_id"])

        stack.clock.at(DAY)
        login = {"user_id": issued["user_id"], "password": password, "use_date": DAY.isoformat()}
        r = await gw.post("/api/v1/session", json=login)
        assert r.status_code == 200, r.text
        assert password not in r.text
        assert "samesite=strict" in r.headers["set-cookie"].lower()
        me = await gw.get("/api/v1/session")
        assert me.status_code == 200
        assert me.json()["user_id"] == issued["user_id"]

        won = await stack.pass_client.post(
            f"/internal/passes/{issued['pass_id']}/consume", json={"campaign_id": str(uuid.uuid4())}
        )
        assert won.status_code == 200
        r = await gw.get("/api/v1/session")
        assert r.status_code == 401
        assert r.json()["detail"] == EXPIRED
        r = await gw.post("/api/v1/session", json=login)
        assert r.status_code == 403
        assert r.json()["detail"] == EXPIRED
        # The clock moved two days on: the administrator's session (8 hours) has ended, log in again.
        assert (await gw.get("/api/v1/admin/passes")).status_code == 401
        assert (await gw.post("/api/v1/admin/session", json=ADMIN)).status_code == 200
        listed = (await gw.get("/api/v1/admin/passes")).json()
        assert [(p["user_id"], p["state"]) for p in listed["items"]] == [(issued["user_id"], "consumed")]
        assert password not in json.dumps(listed)


async def test_session_ends_with_the_day_and_logout_clears_it(stack: Stack) -> None:
    """A session valid on the day stops at 24:00 JST; DELETE /session removes the cookie."""
    async with stack.gateway() as gw:
        issued, password = await approved_pass(gw, stack.db)
        stack.clock.at(DAY, hour=23)
        login = {"user_id": issued["user_id"], "password": password, "use_date": DAY.isoformat()}
        assert (await gw.post("/api/v1/session", json=login)).status_code == 200
        assert (await gw.get("/api/v1/session")).status_code == 200
        stack.clock.at(DAY + dt.timedelta(days=1), hour=0)
        r = await gw.get("/api/v1/session")
        assert r.status_code == 401
        assert r.json()["detail"] == EXPIRED
        stack.clock.at(DAY, hour=12)
        r = await gw.delete("/api/v1/session")
        assert r.status_code == 200
        assert PASS_COOKIE not in gw.cookies
        assert (await gw.get("/api/v1/session")).json()["detail"] == "ログインしてください。"


async def test_sessions_end_on_the_server(stack: Stack) -> None:
    """Issue 18 #3: guessed or edited session ids, an old cookie after logout, the id a login replaced, and a
    pass session offered as an administrator's are all refused (401); a login always issues a new id."""
    async with stack.gateway() as gw:
        issued, password = await approved_pass(gw, stack.db)
        stack.clock.at(DAY)
        credentials = {"user_id": issued["user_id"], "password": password, "use_date": DAY.isoformat()}
        assert (await gw.post("/api/v1/session", json=credentials)).status_code == 200
        first = gw.cookies[PASS_COOKIE]
        assert (await gw.post("/api/v1/session", json=credentials)).status_code == 200
        second = gw.cookies[PASS_COOKIE]
        assert second != first  # rotated at login
        for value in (first, second[:-2] + ("AA" if not second.endswith("AA") else "BB"), "x" * 5000, "a" * 43):
            gw.cookies.set(PASS_COOKIE, value)
            r = await gw.get("/api/v1/session")
            assert r.status_code == 401, value[:40]
            assert r.json()["detail"] == "ログインしてください。"
        gw.cookies.set(PASS_COOKIE, second)
        assert (await gw.get("/api/v1/session")).status_code == 200  # the control: the live session works
        gw.cookies.set(ADMIN_COOKIE, second)  # a pass session is no administrator's
        assert (await gw.get("/api/v1/admin/applications")).status_code == 401
        gw.cookies.delete(ADMIN_COOKIE)
        assert (await gw.delete("/api/v1/session")).status_code == 200
        gw.cookies.set(PASS_COOKIE, second)  # the stolen or kept copy of the cookie after logout
        assert (await gw.get("/api/v1/session")).status_code == 401
        stored = await stack.db.fetch(
            "SELECT revoked_at IS NOT NULL AS revoked FROM sessions WHERE pass_id = $1", issued["pass_id"]
        )
        assert [r["revoked"] for r in stored] == [True, True]


async def test_bad_input_gets_japanese_4xx_and_changes_nothing(stack: Stack) -> None:
    """Oversized, malformed and injecting input, non-numeric IDs and bad paths: Japanese 4xx, nothing stored."""
    async with stack.gateway() as gw:
        cases = [
            application(applicant_name="x\r\nBcc: victim@example.com"),
            application(use_date="2020-01-01"),
            application(use_date="2036-01-01"),
            application(purpose="x" * 5000),
            application(applicant_email="a@b@c"),
            {"applicant_name": "only"},
        ]
        for body in cases:
            r = await gw.post("/api/v1/applications", json=body)
            assert r.status_code == 422, body
            assert r.json()["errors"], body
            assert any(ord(c) > 0x3000 for c in r.json()["detail"])
        r = await gw.post(
            "/api/v1/applications", content=b"\xff\xfe garbage", headers={"content-type": "application/json"}
        )
        assert r.status_code == 422
        r = await gw.post("/api/v1/session", json={"user_id": "abcdef", "password": "p", "use_date": DAY.isoformat()})
        assert r.status_code == 422
        assert r.json()["errors"]["user_id"] == "ユーザーIDは6桁の数字で入力してください。"
        assert (await gw.post("/api/v1/admin/session", json=ADMIN)).status_code == 200
        assert (await gw.post("/api/v1/admin/applications/abc/approve")).status_code == 422
        assert (await gw.post("/api/v1/admin/applications/0/approve")).status_code == 422
        assert (await gw.post("/api/v1/admin/applications/77/approve")).status_code == 404
        r = await gw.post("/api/v1/admin/applications/77/reject", json={"reason": "x" * 501})
        assert r.status_code == 422
        r = await gw.get("/api/v1/admin/applications", params={"state": "'; DROP TABLE applications; --"})
        assert r.status_code == 422
        # the JSON API is documented by the gateway's OpenAPI schema
        paths = (await gw.get("/api/v1/openapi.json")).json()["paths"]
        for path in (
            "/api/v1/applications",
            "/api/v1/session",
            "/api/v1/admin/session",
            "/api/v1/admin/applications",
            "/api/v1/admin/applications/{application_id}/approve",
            "/api/v1/admin/applications/{application_id}/reject",
        ):
            assert path in paths, path
    assert await stack.db.fetchval("SELECT count(*) FROM applications") == 0


async def test_outside_the_intranet_everything_is_403(stack: Stack) -> None:
    """From 203.0.113.5 (directly, or behind a trusted proxy) apply and login get 403 and nothing happens."""
    async with stack.gateway(client_ip="203.0.113.5") as gw:
        r = await gw.post("/api/v1/applications", json=application())
        assert r.status_code == 403
        assert r.json()["detail"] == OUTSIDE
        assert (await gw.post("/api/v1/admin/session", json=ADMIN)).status_code == 403
        r = await gw.post("/api/v1/session", json={"user_id": "123456", "password": "p", "use_date": DAY.isoformat()})
        assert r.status_code == 403
    async with stack.gateway(client_ip="10.0.0.1", trusted_proxies="10.0.0.1/32") as gw:
        r = await gw.post("/api/v1/admin/session", json=ADMIN, headers={"X-Forwarded-For": "203.0.113.5"})
        assert r.status_code == 403
        r = await gw.post("/api/v1/admin/session", json=ADMIN, headers={"X-Forwarded-For": "203.0.113.5, 10.9.8.7"})
        assert r.status_code == 200  # the right-most untrusted hop is the intranet client
    async with stack.gateway(client_ip="203.0.113.5") as gw:
        # An outside peer cannot claim an intranet address: its header is not believed.
        r = await gw.post("/api/v1/admin/session", json=ADMIN, headers={"X-Forwarded-For": "10.1.1.1"})
        assert r.status_code == 403
    assert await stack.db.fetchval("SELECT count(*) FROM applications") == 0
    ips = await stack.db.fetch("SELECT DISTINCT host(client_ip) AS ip FROM login_attempts")
    assert [r["ip"] for r in ips] == ["10.9.8.7"]  # the client address reached the pass-service's audit
