"""Applications: validation of hostile input, one decision each, exactly one pass per approval."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import httpx

from .conftest import DAY, admin_id, application, issue


async def test_application_is_stored_and_announced(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    """A valid application is stored pending, audited, and application.submitted is in the outbox."""
    r = await client.post("/internal/applications", json=application())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "pending"
    assert body["use_date"] == DAY.isoformat()
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE routing_key = 'application.submitted'") == 1
    assert await db.fetchval("SELECT action FROM audit_log WHERE subject = $1", str(body["application_id"])) == (
        "application.submitted"
    )


BAD_FIELDS: list[tuple[dict[str, object], str]] = [
    ({"use_date": "2026-11-30"}, "use_date"),  # yesterday for the clock
    ({"use_date": "2029-12-01"}, "use_date"),  # years ahead
    ({"use_date": "12/03/2026"}, "use_date"),
    ({"use_date": 1796000000}, "use_date"),  # a timestamp is not a day
    ({"applicant_name": "山田\r\nBcc: victim@example.com"}, "applicant_name"),
    ({"department": "総務部\n"}, "department"),
    ({"applicant_name": "x" * 101}, "applicant_name"),
    ({"applicant_name": "   "}, "applicant_name"),
    ({"applicant_email": "taro@example.jp\r\nBcc: x@example.com"}, "applicant_email"),
    ({"applicant_email": "not-an-address"}, "applicant_email"),
    ({"purpose": "a" * 1001}, "purpose"),
    ({"purpose": "bell\x07"}, "purpose"),
    ({"applicant_name": "\ue000外字"}, "applicant_name"),
    ({"unexpected": "field"}, "unexpected"),
]


async def test_bad_application_gets_japanese_422_and_changes_nothing(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    """Malformed, oversized or header-injecting fields are refused per field in Japanese; nothing is stored."""
    for overrides, field in BAD_FIELDS:
        r = await client.post("/internal/applications", json=application(**overrides))
        assert r.status_code == 422, (overrides, r.text)
        body = r.json()
        assert field in body["errors"], (overrides, body)
        assert any(ord(c) > 0x3000 for c in body["errors"][field])  # Japanese text
    assert await db.fetchval("SELECT count(*) FROM applications") == 0


async def test_malformed_json_and_missing_fields_are_422(client: httpx.AsyncClient) -> None:
    """A body that is not JSON, or misses fields, is a 422 with a Japanese message, not a 500."""
    r = await client.post("/internal/applications", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = await client.post("/internal/applications", json={})
    assert r.status_code == 422
    assert r.json()["errors"]["applicant_name"] == "必須項目です。"


async def test_sql_in_fields_is_stored_literally(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    """SQL in names and purpose is data: stored as typed, the tables intact."""
    evil = "'); DROP TABLE applications; --"
    r = await client.post("/internal/applications", json=application(applicant_name=evil, purpose=evil))
    assert r.status_code == 201
    assert await db.fetchval("SELECT applicant_name FROM applications") == evil


async def test_approval_issues_one_pass_and_replay_changes_nothing(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    """Approving issues a 6-digit user ID and pass.issued; a replayed or concurrent approval is a 409."""
    issued = await issue(client, db)
    assert len(issued.user_id) == 6
    assert issued.user_id.isdigit()
    assert len(issued.password) >= 10
    admin = await admin_id(client)
    replays = await asyncio.gather(
        *(
            client.post(f"/internal/applications/{issued.application_id}/approve", json={"admin_id": admin})
            for _ in range(5)
        )
    )
    assert {r.status_code for r in replays} == {409}
    assert replays[0].json()["detail"] == "この申請はすでに処理されています。"
    reject = await client.post(
        f"/internal/applications/{issued.application_id}/reject", json={"admin_id": admin, "reason": "重複"}
    )
    assert reject.status_code == 409
    assert await db.fetchval("SELECT count(*) FROM passes") == 1
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE routing_key = 'pass.issued'") == 1
    stored = await db.fetchval("SELECT password_hash FROM passes")
    assert stored.startswith("$argon2")
    assert issued.password not in stored
    # The plaintext exists only encrypted in the event: no API answer and no table holds it.
    listing = await client.get("/internal/applications")
    assert issued.password not in listing.text
    for row in await db.fetch("SELECT body FROM outbox"):
        assert issued.password not in bytes(row["body"]).decode()


async def test_concurrent_approvals_issue_exactly_one_pass(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    """Ten simultaneous approvals of one application: one 201, the rest 409, one pass."""
    r = await client.post("/internal/applications", json=application())
    application_id = r.json()["application_id"]
    admin = await admin_id(client)
    answers = await asyncio.gather(
        *(client.post(f"/internal/applications/{application_id}/approve", json={"admin_id": admin}) for _ in range(10))
    )
    assert sorted(r.status_code for r in answers) == [201] + [409] * 9
    assert await db.fetchval("SELECT count(*) FROM passes") == 1


async def test_rejection_with_reason_is_announced(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    """A rejection stores the reason and puts application.rejected (with the admin's e-mail) in the outbox."""
    r = await client.post("/internal/applications", json=application())
    application_id = r.json()["application_id"]
    admin = await admin_id(client)
    r = await client.post(
        f"/internal/applications/{application_id}/reject", json={"admin_id": admin, "reason": "利用目的が不明です。"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "rejected"
    body = json.loads(bytes(await db.fetchval("SELECT body FROM outbox WHERE routing_key = 'application.rejected'")))
    assert body["payload"]["reason"] == "利用目的が不明です。"
    assert body["payload"]["admin_email"] == "admin@example.jp"
    again = await client.post(f"/internal/applications/{application_id}/approve", json={"admin_id": admin})
    assert again.status_code == 409
    assert await db.fetchval("SELECT count(*) FROM passes") == 0


async def test_decisions_on_unknown_things_are_4xx(client: httpx.AsyncClient) -> None:
    """Unknown application, unknown administrator, non-numeric or huge ids: 4xx in Japanese."""
    admin = await admin_id(client)
    assert (await client.post("/internal/applications/999/approve", json={"admin_id": admin})).status_code == 404
    r = await client.post("/internal/applications", json=application())
    application_id = r.json()["application_id"]
    r = await client.post(f"/internal/applications/{application_id}/approve", json={"admin_id": 424242})
    assert r.status_code == 403
    assert (await client.post("/internal/applications/abc/approve", json={"admin_id": admin})).status_code == 422
    r = await client.post(f"/internal/applications/{10**30}/approve", json={"admin_id": admin})
    assert r.status_code == 422
    r = await client.post(f"/internal/applications/{application_id}/reject", json={"admin_id": admin, "reason": ""})
    assert r.status_code == 422


async def test_application_for_a_day_already_past_cannot_be_approved(
    client: httpx.AsyncClient, db: asyncpg.Connection, clock: object
) -> None:
    """An application whose day has passed before approval gets a 409 and no pass."""
    from .conftest import FakeClock

    assert isinstance(clock, FakeClock)
    r = await client.post("/internal/applications", json=application())
    application_id = r.json()["application_id"]
    admin = await admin_id(client)
    clock.at(DAY.replace(day=DAY.day + 1))
    r = await client.post(f"/internal/applications/{application_id}/approve", json={"admin_id": admin})
    assert r.status_code == 409
    assert r.json()["detail"] == "利用日が過ぎているため承認できません。"
    assert await db.fetchval("SELECT count(*) FROM passes") == 0
