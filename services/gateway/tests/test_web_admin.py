"""The administrator's pages and the application form over the real pass-service and notifier."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from isseimail_notifier.suppressions import record_failure
from isseimail_testing.smtp import CaptureServer

from .conftest import ADMIN_EMAIL, admin_login, csrf_token

HOSTILE = "<script>alert(1)</script>"


def today() -> str:
    return dt.datetime.now(ZoneInfo("Asia/Tokyo")).date().isoformat()


@pytest.fixture
def gateway(admin_gateway: httpx.AsyncClient) -> httpx.AsyncClient:
    return admin_gateway  # conftest.py: the gateway before a real pass-service and notifier


async def apply(client: httpx.AsyncClient, name: str, email: str) -> httpx.Response:
    page = await client.get("/apply")
    return await client.post(
        "/apply",
        data={
            "csrf_token": csrf_token(page),
            "applicant_name": name,
            "applicant_email": email,
            "department": "営業部",
            "use_date": today(),
            "purpose": f"目的 {HOSTILE}",
        },
    )


async def test_admin_pages_need_the_admin_login_and_a_wrong_password_is_refused(
    gateway: httpx.AsyncClient,
) -> None:
    """Without the admin cookie every admin page shows the login (401); a wrong password re-shows it in Japanese."""
    for path in ("/admin", "/admin/passes", "/admin/campaigns", "/admin/suppressions"):
        response = await gateway.get(path)
        assert response.status_code == 401, path
        assert "管理者ログイン" in response.text
    page = await gateway.get("/admin/login")
    response = await gateway.post(
        "/admin/login", data={"csrf_token": csrf_token(page), "email": ADMIN_EMAIL, "password": "wrong"}
    )
    assert response.status_code == 401
    assert 'role="alert"' in response.text
    assert f'value="{ADMIN_EMAIL}"' in response.text
    assert "wrong" not in response.text


async def test_application_rejected_with_reason_user_data_escaped(
    gateway: httpx.AsyncClient, smtp_server: CaptureServer
) -> None:
    """A hostile name is shown as text on the receipt and the admin page; rejecting mails the reason once."""
    receipt = await apply(gateway, HOSTILE, "taro@corp.example.jp")
    assert receipt.status_code == 200, receipt.text
    assert HOSTILE not in receipt.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in receipt.text
    await admin_login(gateway)
    listing = await gateway.get("/admin")
    assert "承認待ち（1 件）" in listing.text
    assert HOSTILE not in listing.text
    application_id = re.search(r"/admin/applications/(\d+)/reject", listing.text)
    assert application_id
    reject_url = f"/admin/applications/{application_id.group(1)}/reject"
    empty = await gateway.post(reject_url, data={"csrf_token": csrf_token(listing), "reason": "  "})
    assert empty.status_code == 422
    assert "理由を入力してください" in empty.text
    done = await gateway.post(reject_url, data={"csrf_token": csrf_token(listing), "reason": "利用目的が不明です"})
    assert done.status_code == 303
    after = await gateway.get(done.headers["location"])
    assert "承認待ち（0 件）" in after.text
    assert "却下" in after.text
    mails = await smtp_server.wait_for(1, rcpt="taro@corp.example.jp")
    assert "利用目的が不明です" in mails[0].message().get_content()
    replay = await gateway.post(
        f"/admin/applications/{application_id.group(1)}/approve", data={"csrf_token": csrf_token(after)}
    )
    assert 400 <= replay.status_code < 500
    assert "text/html" in replay.headers["content-type"]


async def test_approval_lists_the_pass_as_unused(gateway: httpx.AsyncClient, smtp_server: CaptureServer) -> None:
    """After approval the passes page shows the new user ID with the state 未使用."""
    await apply(gateway, "山田 太郎", "yamada@corp.example.jp")
    await admin_login(gateway)
    listing = await gateway.get("/admin")
    application_id = re.search(r"/admin/applications/(\d+)/approve", listing.text)
    assert application_id
    approved = await gateway.post(
        f"/admin/applications/{application_id.group(1)}/approve", data={"csrf_token": csrf_token(listing)}
    )
    assert approved.status_code == 303
    mail = (await smtp_server.wait_for(1, rcpt="yamada@corp.example.jp"))[0].message().get_content()
    user_id = re.search(r"ユーザーID は \[(\d{6})\] です。", mail)
    assert user_id
    passes = await gateway.get("/admin/passes")
    assert passes.status_code == 200
    assert user_id.group(1) in passes.text
    assert "未使用" in passes.text


async def test_suppression_search_and_audited_removal(gateway: httpx.AsyncClient, database_url: str) -> None:
    """The admin finds a suppressed address, removes it with a reason, and the removal is audited with who."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "notifier"})
    try:
        await record_failure(
            conn,
            address="gone@bounce.example.jp",
            reason="550 5.1.1 user unknown",
            hard=True,
            campaign_id=None,
            soft_limit=3,
        )
        await record_failure(
            conn, address="other@example.jp", reason="550 5.1.1", hard=True, campaign_id=None, soft_limit=3
        )
        await admin_login(gateway)
        found = await gateway.get("/admin/suppressions", params={"q": "bounce.example"})
        assert found.status_code == 200
        assert "gone@bounce.example.jp" in found.text
        assert "other@example.jp" not in found.text
        no_reason = await gateway.post(
            "/admin/suppressions/remove",
            data={"csrf_token": csrf_token(found), "address": "gone@bounce.example.jp", "reason": ""},
        )
        assert no_reason.status_code == 422
        removed = await gateway.post(
            "/admin/suppressions/remove",
            data={"csrf_token": csrf_token(found), "address": "gone@bounce.example.jp", "reason": "宛先の復旧を確認"},
        )
        assert removed.status_code == 303
        audit = await conn.fetchrow(
            "SELECT reason, actor FROM suppression_audit WHERE address = $1", "gone@bounce.example.jp"
        )
        assert audit is not None
        assert (audit["reason"], audit["actor"]) == ("宛先の復旧を確認", ADMIN_EMAIL)
        after = await gateway.get("/admin/suppressions")
        assert "gone@bounce.example.jp" not in after.text
        assert "other@example.jp" in after.text
    finally:
        await conn.close()
