"""Get a logged-in 1DayPass session the way a user does, for tests of the steps after login.

The pass is applied for and approved over the pass-service's API; the one-time password is taken
from the pass.issued event in the pass-service's outbox (what the notifier would mail, decrypted with
the test key), then the session is opened through the gateway's `POST /api/v1/session`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import asyncpg
import httpx
from cryptography.fernet import Fernet

from isseimail_testing.fixtures import CREDENTIALS_KEY, INTERNAL_HEADERS


@dataclass(frozen=True)
class IssuedPass:
    pass_id: int
    user_id: str
    password: str
    use_date: dt.date


async def issue_pass(
    pass_url: str,
    database_url: str,
    *,
    admin: tuple[str, str],
    applicant_email: str,
    use_date: dt.date,
    applicant_name: str = "山田 太郎",
    department: str = "営業部",
    purpose: str = "新製品のご案内",
) -> IssuedPass:
    async with httpx.AsyncClient(base_url=pass_url, headers=INTERNAL_HEADERS) as ps:
        r = await ps.post("/internal/admin/login", json={"email": admin[0], "password": admin[1]})
        assert r.status_code == 200, r.text
        admin_id = r.json()["admin_id"]
        r = await ps.post(
            "/internal/applications",
            json={
                "applicant_name": applicant_name,
                "applicant_email": applicant_email,
                "department": department,
                "use_date": use_date.isoformat(),
                "purpose": purpose,
            },
        )
        assert r.status_code == 201, r.text
        r = await ps.post(f"/internal/applications/{r.json()['application_id']}/approve", json={"admin_id": admin_id})
        assert r.status_code == 201, r.text
        issued = r.json()
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "pass"})
    try:
        rows = await conn.fetch("SELECT body FROM outbox WHERE routing_key = 'pass.issued'")
    finally:
        await conn.close()
    payloads = [json.loads(bytes(row["body"]))["payload"] for row in rows]
    token = next(p["encrypted_password"] for p in payloads if p["pass_id"] == issued["pass_id"])
    password = Fernet(CREDENTIALS_KEY.encode()).decrypt(token.encode()).decode()
    return IssuedPass(issued["pass_id"], issued["user_id"], password, use_date)


async def gateway_login(client: httpx.AsyncClient, issued: IssuedPass) -> None:
    """Open the pass session on a gateway client (the client keeps the cookie)."""
    r = await client.post(
        "/api/v1/session",
        json={"user_id": issued.user_id, "password": issued.password, "use_date": issued.use_date.isoformat()},
    )
    assert r.status_code == 200, r.text
