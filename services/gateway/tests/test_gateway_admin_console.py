"""The administrator's console API over the real pass-service and notifier: a campaign's failures paged and
as a CSV that Excel opens (CP932, formula cells neutralised), the suppression list searched, added to and
removed from with reasons (audited by the notifier), hostile input refused, never a 500."""

from __future__ import annotations

import csv
import io
import uuid

import asyncpg
import httpx
import pytest

from isseimail_notifier import failures

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD

FORMULA = '=HYPERLINK("http://evil.example")'


@pytest.fixture
def gateway(admin_gateway: httpx.AsyncClient) -> httpx.AsyncClient:
    return admin_gateway  # conftest.py: the gateway before a real pass-service and notifier


async def login(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/admin/session", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text


async def record_failures(database_url: str, campaign: uuid.UUID) -> None:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "notifier"})
    try:
        rows = [
            ("tanaka@example.jp", "smtp", 550, "5.1.1", "userunknown", True, "550 5.1.1 ユーザー不明"),
            ("suzuki@example.jp", "bounce", None, "5.2.2", "mailboxfull", False, f"{FORMULA} mailbox full"),
            ("-sato@example.jp", "smtp", 554, None, "rejected", True, "@SUM(A1) 554 rejected"),
        ]
        for i, (rcpt, source, code, status, reason, hard, diag) in enumerate(rows):
            await failures.record(
                conn,
                campaign_id=campaign,
                delivery_id=i + 1,
                source=source,
                recipient=rcpt,
                row_number=i + 2,
                status=status,
                smtp_code=code,
                reason=reason,
                hard=hard,
                diagnostic=diag,
            )
    finally:
        await conn.close()


async def test_failures_paged_and_csv_opens_as_cp932_with_the_right_rows(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    campaign = uuid.uuid4()
    assert (await gateway.get(f"/api/v1/admin/campaigns/{campaign}/failures")).status_code == 401
    assert (await gateway.get(f"/api/v1/admin/campaigns/{campaign}/failures.csv")).status_code == 401
    await login(gateway)
    await record_failures(database_url, campaign)

    page = (await gateway.get(f"/api/v1/admin/campaigns/{campaign}/failures", params={"limit": 2})).json()
    assert page["total"] == 3
    assert len(page["items"]) == 2
    assert [i["recipient"] for i in page["items"]] == ["tanaka@example.jp", "suzuki@example.jp"]
    rest = (await gateway.get(f"/api/v1/admin/campaigns/{campaign}/failures?limit=2&offset=2")).json()
    assert [i["recipient"] for i in rest["items"]] == ["-sato@example.jp"]

    r = await gateway.get(f"/api/v1/admin/campaigns/{campaign}/failures.csv")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=Shift_JIS"
    assert "attachment" in r.headers["content-disposition"]
    assert not r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("cp932"), newline="")))
    assert rows[0][:3] == ["CSVの行", "メールアドレス", "理由"]
    assert [row[:2] for row in rows[1:]] == [
        ["2", "tanaka@example.jp"],
        ["3", "suzuki@example.jp"],
        ["4", "'-sato@example.jp"],
    ]
    assert rows[1][4] == "送信時に拒否"
    assert rows[2][4] == "後からバウンス"
    assert rows[1][6] == "550 5.1.1 ユーザー不明"
    assert rows[2][6].startswith("'=HYPERLINK")
    assert rows[3][6].startswith("'@SUM")
    for row in rows:
        for cell in row:
            assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), row
    assert b"\r\n" in r.content

    utf8 = await gateway.get(f"/api/v1/admin/campaigns/{campaign}/failures.csv?encoding=utf-8")
    assert utf8.content.startswith(b"\xef\xbb\xbf")
    assert utf8.content[3:].decode("utf-8") == r.content.decode("cp932")

    empty = await gateway.get(f"/api/v1/admin/campaigns/{uuid.uuid4()}/failures.csv")
    assert empty.content.decode("cp932").count("\r\n") == 1  # the header only
    for bad in ("not-a-uuid", "%0d%0aX", "1" * 80):
        for suffix in ("failures", "failures.csv"):
            answer = await gateway.get(f"/api/v1/admin/campaigns/{bad}/{suffix}")
            assert answer.status_code == 404, (bad, suffix)
            assert answer.json()["detail"] == "一斉メールが見つかりません。"
    assert (await gateway.get(f"/api/v1/admin/campaigns/{campaign}/failures?limit=100000")).status_code == 422
    assert (await gateway.get(f"/api/v1/admin/campaigns/{campaign}/failures.csv?encoding=latin1")).status_code == 422


async def test_csv_falls_back_to_utf8_with_bom_when_cp932_lacks_a_character(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    campaign = uuid.uuid4()
    await login(gateway)
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "notifier"})
    try:
        await failures.record(
            conn,
            campaign_id=campaign,
            delivery_id=1,
            source="bounce",
            recipient="x@example.jp",
            row_number=2,
            status="5.1.1",
            smtp_code=None,
            reason="userunknown",
            hard=True,
            diagnostic="unknown user 🙂 𠮷野家",
        )
    finally:
        await conn.close()
    r = await gateway.get(f"/api/v1/admin/campaigns/{campaign}/failures.csv")
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.content.startswith(b"\xef\xbb\xbf")
    assert "𠮷野家" in r.content.decode("utf-8-sig")


async def test_suppressions_search_add_remove_with_reasons(gateway: httpx.AsyncClient, database_url: str) -> None:
    assert (await gateway.get("/api/v1/admin/suppressions")).status_code == 401
    assert (
        await gateway.post("/api/v1/admin/suppressions", json={"address": "a@b.jp", "reason": "x"})
    ).status_code == 401
    await login(gateway)
    added = await gateway.post(
        "/api/v1/admin/suppressions", json={"address": "Stop@Example.JP", "reason": "本人の依頼"}
    )
    assert added.status_code == 201, added.text
    again = await gateway.post("/api/v1/admin/suppressions", json={"address": "stop@example.jp", "reason": "再度"})
    assert again.status_code == 409
    assert "既に" in again.json()["detail"]
    found = (await gateway.get("/api/v1/admin/suppressions", params={"q": "stop"})).json()
    assert found["total"] == 1
    assert found["items"][0]["kind"] == "manual"
    assert found["items"][0]["reason"] == "本人の依頼"
    for hostile in (
        {"address": "no-at", "reason": "x"},
        {"address": "a@b.jp", "reason": ""},
        {"address": "a@b.jp"},
        {"address": "a@b.jp", "reason": "x", "actor": "someone-else"},
        {"address": "a\r\n@b.jp", "reason": "x"},
    ):
        r = await gateway.post("/api/v1/admin/suppressions", json=hostile)
        assert r.status_code == 422, (hostile, r.text)
        assert "detail" in r.json()
    # a NUL or another control character in the search: 422 (it once reached PostgreSQL: 500, relayed as 503)
    for q in ("stop\x00", "\x1b", "\x00"):
        r = await gateway.get("/api/v1/admin/suppressions", params={"q": q})
        assert r.status_code == 422, (q, r.text)
        assert "q" in r.json()["errors"]
    nul_reason = await gateway.post("/api/v1/admin/suppressions", json={"address": "n@b.jp", "reason": "a\x00"})
    assert nul_reason.status_code == 422, nul_reason.text
    no_reason = await gateway.request("DELETE", "/api/v1/admin/suppressions/stop@example.jp", json={"reason": ""})
    assert no_reason.status_code == 422
    removed = await gateway.request("DELETE", "/api/v1/admin/suppressions/STOP@example.jp", json={"reason": "誤登録"})
    assert removed.status_code == 200, removed.text
    gone = await gateway.request("DELETE", "/api/v1/admin/suppressions/stop@example.jp", json={"reason": "誤登録"})
    assert gone.status_code == 404
    assert (await gateway.get("/api/v1/admin/suppressions", params={"q": "stop"})).json()["total"] == 0
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "notifier"})
    try:
        audit = await conn.fetch("SELECT address, action, reason, actor FROM suppression_audit ORDER BY id")
    finally:
        await conn.close()
    assert [tuple(a) for a in audit] == [
        ("stop@example.jp", "add", "本人の依頼", ADMIN_EMAIL),
        ("stop@example.jp", "delete", "誤登録", ADMIN_EMAIL),
    ]
