"""Pass and admin login: the day of use, one generic answer, the 失効 answer, lockout, audit."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import asyncpg
import httpx
import pytest

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, DAY, FakeClock, issue

GENERIC = "ユーザーID、パスワードまたは利用日が正しくありません。"
EXPIRED = "この1DayPassは失効しています。再度申請してください。"


def login(user_id: str, password: str, day: dt.date = DAY, ip: str = "10.1.2.3") -> dict[str, str]:
    return {"user_id": user_id, "password": password, "use_date": day.isoformat(), "client_ip": ip}


async def test_login_works_only_on_the_day_with_the_right_credentials(
    client: httpx.AsyncClient, db: asyncpg.Connection, clock: FakeClock
) -> None:
    """On its day the pass logs in; before it, with a wrong day, password or ID the answer is one generic 401."""
    issued = await issue(client, db)
    r = await client.post("/internal/login", json=login(issued.user_id, issued.password))
    assert r.status_code == 401  # the clock says 12-01, the pass is for 12-03
    assert r.json()["detail"] == GENERIC
    clock.at(DAY, hour=0, minute=0)  # 00:00 JST on the day
    r = await client.post("/internal/login", json=login(issued.user_id, issued.password))
    assert r.status_code == 200, r.text
    found = r.json()
    assert len(found.pop("session_id")) >= 40  # a new server-side session, ending with the day
    assert found.pop("expires_at") == "2026-12-04T00:00:00+09:00"
    assert found == {
        "pass_id": issued.pass_id,
        "user_id": issued.user_id,
        "use_date": DAY.isoformat(),
        "state": "active",
    }
    other_id = "000000" if issued.user_id != "000000" else "000001"
    for attempt in (
        login(issued.user_id, issued.password + "x", ip="10.0.0.7"),
        login(other_id, issued.password, ip="10.0.0.8"),
        login(issued.user_id, issued.password, day=DAY + dt.timedelta(days=1), ip="10.0.0.9"),
    ):
        r = await client.post("/internal/login", json=attempt)
        assert r.status_code == 401
        assert r.json()["detail"] == GENERIC
    state = await client.get(f"/internal/passes/{issued.pass_id}")
    assert state.json()["state"] == "active"


async def test_consumed_and_past_passes_get_the_expired_answer(
    client: httpx.AsyncClient, db: asyncpg.Connection, clock: FakeClock
) -> None:
    """After consumption, or once its day has ended (24:00 JST), the right password gets the 失効 answer."""
    first = await issue(client, db)
    second = await issue(client, db, applicant_email="hanako@example.jp")
    clock.at(DAY, hour=23, minute=59)
    r = await client.post(f"/internal/passes/{first.pass_id}/consume", json={"campaign_id": str(uuid.uuid4())})
    assert r.status_code == 200
    r = await client.post("/internal/login", json=login(first.user_id, first.password))
    assert r.status_code == 403
    assert r.json()["detail"] == EXPIRED
    assert (await client.get(f"/internal/passes/{first.pass_id}")).json()["state"] == "consumed"
    clock.at(DAY + dt.timedelta(days=1), hour=0, minute=0)  # the day has ended in Asia/Tokyo
    assert (await client.get(f"/internal/passes/{second.pass_id}")).json()["state"] == "expired"
    r = await client.post("/internal/login", json=login(second.user_id, second.password))
    assert r.status_code == 403
    assert r.json()["detail"] == EXPIRED
    listed = (await client.get("/internal/passes")).json()
    assert {p["pass_id"]: p["state"] for p in listed["items"]} == {first.pass_id: "consumed", second.pass_id: "expired"}
    # Someone without the password learns nothing about the pass's state.
    r = await client.post("/internal/login", json=login(second.user_id, "wrong-password"))
    assert r.json()["detail"] == GENERIC


async def test_failed_logins_slow_down_only_the_guessing_client(
    client: httpx.AsyncClient, db: asyncpg.Connection, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 18 #1: three failures from one client slow that client down on that ID (429 with Retry-After,
    a delay that doubles), while the right password from another client still logs in; a client guessing
    over many IDs is slowed down too; the spraying gauges count the failures."""
    issued = await issue(client, db)
    clock.at(DAY)
    caplog.set_level(logging.INFO)
    for _ in range(3):
        r = await client.post("/internal/login", json=login(issued.user_id, "guess-password", ip="10.9.9.9"))
        assert r.status_code == 401
    r = await client.post("/internal/login", json=login(issued.user_id, issued.password, ip="10.9.9.9"))
    assert r.status_code == 429
    assert "しばらくログインできません" in r.json()["detail"]
    first_wait = int(r.headers["retry-after"])
    assert 1 <= first_wait <= 30
    r = await client.post("/internal/login", json=login(issued.user_id, issued.password, ip="10.5.5.5"))
    assert r.status_code == 200  # the pass holder on their own PC is not locked out by the attacker
    # The first delay has passed (the attempts are moved back in time): one more guess, then a longer wait.
    await db.execute("UPDATE login_attempts SET at = at - make_interval(secs => $1)", float(first_wait + 1))
    r = await client.post("/internal/login", json=login(issued.user_id, "guess-password", ip="10.9.9.9"))
    assert r.status_code == 401
    r = await client.post("/internal/login", json=login(issued.user_id, "guess-password", ip="10.9.9.9"))
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > first_wait
    # Per client: failures spread over many IDs from one address.
    for n in range(6):
        r = await client.post("/internal/login", json=login(f"{n:06d}", "guess-password", ip="192.168.7.7"))
        assert r.status_code in (401, 429)
    r = await client.post("/internal/login", json=login("123456", "guess-password", ip="192.168.7.7"))
    assert r.status_code == 429
    metrics = (await client.get("/metrics")).text
    assert _gauge(metrics, "isseimail_pass_failed_logins_recent") >= 10
    assert _gauge(metrics, "isseimail_pass_failed_login_accounts_recent") >= 7
    failures = await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'login.failed'")
    assert failures >= 10
    assert any(r.getMessage() == "pass login failed" for r in caplog.records)
    logged = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert "guess-password" not in logged
    assert issued.password not in logged


def _gauge(metrics: str, name: str) -> float:
    line = next(line for line in metrics.splitlines() if line.startswith(name + " "))
    return float(line.split()[1])


async def test_bad_login_input_is_a_japanese_422(client: httpx.AsyncClient) -> None:
    """Non-numeric or short user IDs, a bad day, a missing password: 422 with a per-field Japanese message."""
    cases = [
        ({"user_id": "12345a"}, "user_id"),
        ({"user_id": "1' OR '1'='1"}, "user_id"),
        ({"user_id": "１２３４５６"}, "user_id"),  # full-width digits
        ({"use_date": "2026-02-30"}, "use_date"),
        ({"password": ""}, "password"),
        ({"password": "x" * 129}, "password"),
    ]
    for overrides, field in cases:
        body = {**login("123456", "some-password"), **overrides}
        r = await client.post("/internal/login", json=body)
        assert r.status_code == 422, (overrides, r.text)
        assert field in r.json()["errors"]
    r = await client.post("/internal/login", json={**login("123456", "pw"), "user_id": "12345a"})
    assert r.json()["errors"]["user_id"] == "ユーザーIDは6桁の数字で入力してください。"


async def test_admin_login_generic_failure_and_lockout(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    """The administrator logs in with e-mail (any case) and password; failures are generic, then locked."""
    r = await client.post("/internal/admin/login", json={"email": ADMIN_EMAIL.upper(), "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    assert r.json()["email"] == ADMIN_EMAIL
    for email in ("nobody@example.jp", ADMIN_EMAIL, ADMIN_EMAIL):
        r = await client.post("/internal/admin/login", json={"email": email, "password": "wrong password"})
        assert r.status_code == 401
        assert r.json()["detail"] == "メールアドレスまたはパスワードが正しくありません。"
    r = await client.post("/internal/admin/login", json={"email": ADMIN_EMAIL, "password": "wrong password"})
    assert r.status_code == 401  # third failure for this e-mail
    r = await client.post("/internal/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert r.status_code == 429  # this client is slowed down, even with the right password
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'admin.login.failed'") == 5


async def test_attack_on_the_admin_email_does_not_lock_the_administrator_out(client: httpx.AsyncClient) -> None:
    """Issue 18 #1: wrong passwords for the administrator's e-mail from other intranet addresses, however
    many, leave the administrator's own login working."""
    for n in range(12):
        attacker = {"email": ADMIN_EMAIL, "password": "wrong password", "client_ip": f"10.66.0.{n % 2 + 1}"}
        r = await client.post("/internal/admin/login", json=attacker)
        assert r.status_code in (401, 429)
    assert r.status_code == 429
    own = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "client_ip": "10.1.2.3"}
    r = await client.post("/internal/admin/login", json=own)
    assert r.status_code == 200, r.text
