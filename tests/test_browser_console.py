"""The administrator's console in a real browser (Debian's chromium) over the real pass-service and notifier:
login → a campaign's failures (paged table, the CSV download opened as CP932) → the suppression list (add
with a reason, search, remove with a reason). Each page is checked for its terms, script errors and CSP
violations and saved under var/screenshots/ (docs/screenshots/ with ISSEIMAIL_DOCS_SCREENSHOTS=1)."""

from __future__ import annotations

import contextlib
import csv
import io
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from isseimail_gateway.app import create_app
from isseimail_gateway.settings import GatewaySettings
from isseimail_notifier import failures
from isseimail_notifier.app import create_app as notifier_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_pass.app import create_app as pass_app
from isseimail_pass.settings import PassSettings
from isseimail_testing.browser import PageWatch, chromium, new_page, screenshot
from isseimail_testing.http import serving_service
from isseimail_testing.process import free_port

pytestmark = pytest.mark.timeout(180)

ADMIN_EMAIL = "admin@corp.example.jp"
ADMIN_PASSWORD = "admin-password-for-tests"
FAILED = [
    (
        "tanaka@example.co.jp",
        "smtp",
        550,
        "5.1.1",
        "userunknown",
        True,
        "550 5.1.1 <tanaka@example.co.jp>: User unknown",
    ),
    ("suzuki@example.co.jp", "bounce", None, "5.2.2", "mailboxfull", False, "552 5.2.2 Mailbox full"),
    ("=evil@example.co.jp", "smtp", 554, "5.7.1", "rejected", True, '=HYPERLINK("x") 554 rejected'),
]


@pytest.fixture
async def console(make_settings: Callable[..., Any], database_url: str) -> AsyncIterator[tuple[str, uuid.UUID]]:
    """The gateway on a real port in front of the pass-service and notifier; one campaign with failures."""
    pass_port, notifier_port = free_port(), free_port()
    settings = make_settings(
        GatewaySettings,
        session_secret="browser-console-secret",
        pass_url=f"http://127.0.0.1:{pass_port}",
        notifier_url=f"http://127.0.0.1:{notifier_port}",
    )
    campaign = uuid.uuid4()
    async with contextlib.AsyncExitStack() as stack:
        notifier = make_settings(NotifierSettings, bounce_listen_port=free_port())
        await stack.enter_async_context(serving_service(notifier_app(notifier), port=notifier_port))
        passes = make_settings(PassSettings, admin_email=ADMIN_EMAIL, admin_password=ADMIN_PASSWORD)
        await stack.enter_async_context(serving_service(pass_app(passes), port=pass_port))
        url = await stack.enter_async_context(serving_service(create_app(settings)))
        conn = await asyncpg.connect(database_url, server_settings={"search_path": "notifier"})
        try:
            for i, (rcpt, source, code, status, reason, hard, diag) in enumerate(FAILED):
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
        yield url, campaign


async def test_console_failures_csv_and_suppressions(console: tuple[str, uuid.UUID], tmp_path: Path) -> None:
    url, campaign = console
    watch = PageWatch()
    async with chromium() as browser:
        page = await new_page(browser, watch, accept_downloads=True)
        await page.goto(f"{url}/admin/login")
        await page.fill("#f-email", ADMIN_EMAIL)
        await page.fill("#f-password", ADMIN_PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{url}/admin")

        await page.goto(f"{url}/admin/campaigns/{campaign}/failures")
        text = await page.inner_text("main")
        for term in ("送信失敗・バウンス一覧", "全 3 件", "CSVをダウンロード", "送信時に拒否", "後からバウンス"):
            assert term in text, term
        for rcpt, *_ in FAILED:
            assert rcpt in text
        await watch.check(page)
        await screenshot(page, "console-failures", docs="console-failures")

        async with page.expect_download() as info:
            await page.click("text=CSVをダウンロード（Excel用・Shift_JIS）")
        download = await info.value
        saved = tmp_path / "failures.csv"
        await download.save_as(str(saved))
        rows = list(csv.reader(io.StringIO(saved.read_bytes().decode("cp932"), newline="")))
        assert [r[1] for r in rows[1:]] == ["tanaka@example.co.jp", "suzuki@example.co.jp", "'=evil@example.co.jp"]
        assert rows[3][6].startswith("'=HYPERLINK")

        await page.goto(f"{url}/admin/suppressions")
        await page.fill("#add-address", "stop@example.co.jp")
        await page.fill("#add-reason", "本人から電話で配信停止の依頼")
        await page.click("form[action='/admin/suppressions/add'] button[type=submit]")
        await page.wait_for_url(f"{url}/admin/suppressions?done=added")
        text = await page.inner_text("main")
        assert "登録しました" in text
        assert "管理者が登録：本人から電話で配信停止の依頼" in text
        await watch.check(page)
        await screenshot(page, "console-suppressions", docs="console-suppressions")

        await page.fill("#q", "stop@")
        await page.click("form[role=search] button[type=submit]")
        await page.wait_for_load_state()
        assert "「stop@」の検索結果：1 件" in await page.inner_text("main")
        page.on("dialog", lambda dialog: dialog.accept())
        await page.fill("#rm-1", "誤って登録したため")
        await page.click("form[action='/admin/suppressions/remove'] button[type=submit]")
        await page.wait_for_url(f"{url}/admin/suppressions?done=removed")
        text = await page.inner_text("main")
        assert "削除しました" in text
        assert "stop@example.co.jp" not in text
        await watch.check(page)
