"""The whole product in a real browser against the real services (PostgreSQL, RabbitMQ, SMTP, DNS).

Applicant: the rules page → application → the administrator approves in the admin pages → the credential
mail (read from the capture server) gives the password and links the rules → login → CSV selection and
check → compose (attachments 必須, the error summary) → confirm → 一斉送信 → acceptance page with live
progress, the sending-time estimate, and 閉じる back to the start. Also: the bad-CSV path and the compose
form's per-field errors. Each page is checked for the operating manual's terms, JS errors and CSP
violations, and saved as a screenshot under var/screenshots/ (with ISSEIMAIL_DOCS_SCREENSHOTS=1 the README's
shots are refreshed in docs/screenshots/).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from isseimail_testing.browser import PageWatch, chromium, new_page, screenshot
from isseimail_testing.dns import DnsServer
from isseimail_testing.pdfs import sample_pdf
from isseimail_testing.smtp import CaptureServer
from isseimail_testing.system import SystemProcesses

pytestmark = pytest.mark.timeout(180)

ADMIN_EMAIL = "admin@corp.example.jp"
ADMIN_PASSWORD = "admin-password-for-tests"
APPLICANT_EMAIL = "hanako.sato@corp.example.jp"
USER_ID = re.compile(r"ユーザーID は \[(\d{6})\] です。")
PASSWORD = re.compile(r"パスワード は \[([^\]\s]+)\] です。")
MAX_LIST_BYTES = 256 * 1024  # small, so that the oversized-file case is cheap
PDF = sample_pdf(2_000, title="browser flow")


@dataclass
class System:
    url: str
    smtp: CaptureServer
    dns: DnsServer


@pytest.fixture
async def system(
    database_url: str, amqp_url: str, smtp_server: CaptureServer, dns_server: DnsServer, tmp_path: Path
) -> AsyncIterator[System]:
    """All six services and a dispatcher worker as separate processes (the e2e harness), sharing this
    test's database, vhost, SMTP capture server and DNS server."""
    dns_server.zone("corp.example.jp", mx=[(10, "mx.corp.example.jp")])
    dns_server.zone("example.co.jp", mx=[(10, "mx.example.co.jp")])
    dns_server.zone("slow.example.jp", mx=[(10, "mx.slow.example.jp")], delay=1.0)
    dns_server.zone("a-only.example.jp", a=["192.0.2.10"])
    dns_server.zone("nullmx.example.jp", null_mx=True)
    processes = SystemProcesses(
        database_url=database_url,
        amqp_url=amqp_url,
        smtp_relay=("127.0.0.1", smtp_server.port),
        dns_nameserver=dns_server.nameserver,
        log_dir=tmp_path / "logs",
        # attachments (必須) as the manual has them: the production default, which the harness turns off
        env={"ISSEIMAIL_LIST_MAX_BYTES": str(MAX_LIST_BYTES), "ISSEIMAIL_ATTACHMENTS_REQUIRED": "true"},
        admin=(ADMIN_EMAIL, ADMIN_PASSWORD),
    )
    async with processes:
        yield System(url=processes.gateway_url, smtp=smtp_server, dns=dns_server)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as b:
        yield b


def today() -> str:
    return dt.datetime.now(ZoneInfo("Asia/Tokyo")).date().isoformat()


async def manual_terms(page: Any, *terms: str) -> None:
    """The page shows each of the operating manual's terms, and its footer links the rules page."""
    text = await page.inner_text("body")
    missing = [t for t in terms if t not in text]
    assert not missing, f"{page.url} lacks {missing}; the page says: {text}"
    assert await page.locator("footer a[href='/rules']").count() == 1, page.url


def accept_confirmations(page: Any, watch: PageWatch, seen: list[str]) -> None:
    """Our own confirm() dialogs are accepted; any other dialog (an alert from injected script) is an error."""

    async def handle(dialog: Any) -> None:
        if dialog.type == "confirm":
            seen.append(dialog.message)
            await dialog.accept()
        else:
            watch.errors.append(f"unexpected {dialog.type} dialog: {dialog.message}")
            await dialog.dismiss()

    page.on("dialog", handle)


async def wait_for_text(page: Any, text: str, shot: str, timeout: float = 30_000) -> None:
    """Wait for a text; on timeout keep a screenshot of what the page showed instead, and say it."""
    try:
        await page.wait_for_selector(f"text={text}", timeout=timeout)
    except Exception:
        await screenshot(page, f"{shot}-FAILED")
        raise AssertionError(f"{text!r} not shown; the page says: {await page.inner_text('main')}") from None


async def mail_with_subject(system: System, address: str, needle: str, timeout: float = 60) -> Any:
    """The first mail to `address` whose subject contains `needle`, waiting for it to arrive."""
    deadline = time.monotonic() + timeout
    while True:
        for captured in system.smtp.to(address):
            if needle in str(captured.message()["Subject"]):
                return captured.message()
        if time.monotonic() > deadline:
            raise AssertionError(f"no mail to {address} with {needle!r} in its subject")
        await asyncio.sleep(0.1)


async def credentials_from_mail(system: System, address: str) -> tuple[str, str]:
    mails = await system.smtp.wait_for(1, rcpt=address, timeout=30)
    text = mails[-1].message().get_content()
    user_id, password = USER_ID.search(text), PASSWORD.search(text)
    assert user_id, text
    assert password, text
    return user_id.group(1), password.group(1)


async def issue_pass_via_api(system: System, name: str, email: str) -> tuple[str, str]:
    """A pass for today, applied for and approved over the JSON API (the browser part is elsewhere)."""
    async with httpx.AsyncClient(base_url=system.url) as http:
        applied = await http.post(
            "/api/v1/applications",
            json={
                "applicant_name": name,
                "applicant_email": email,
                "department": "営業部",
                "use_date": today(),
                "purpose": "テスト送信",
            },
        )
        assert applied.status_code == 201, applied.text
        login = await http.post("/api/v1/admin/session", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text
        approved = await http.post(f"/api/v1/admin/applications/{applied.json()['application_id']}/approve")
        assert approved.status_code == 201, approved.text
    return await credentials_from_mail(system, email)


async def login(page: Any, system: System, user_id: str, password: str, shot: str | None = None) -> None:
    await page.goto(system.url + "/login")
    await page.fill("#f-user_id", user_id)
    await page.fill("#f-password", password)
    assert await page.input_value("#f-use_date") == today()
    if shot:
        await screenshot(page, shot)
    await page.click("main button[type=submit]")
    await page.wait_for_url("**/lists/new")


async def upload(page: Any, csv: bytes) -> None:
    await page.set_input_files("#f-file", files=[{"name": "送信先.csv", "mimeType": "text/csv", "buffer": csv}])
    await page.click("main button[type=submit]")


def cp932_csv(rows: list[list[str]]) -> bytes:
    """What Excel writes: Shift_JIS (CP932), CRLF, a header row."""
    lines = [["メールアドレス", "会社名", "部署名1", "部署名2", "ご担当者名"], *rows]
    return "".join(",".join(cells) + "\r\n" for cells in lines).encode("cp932")


async def test_whole_applicant_path_in_the_browser(system: System, browser: Any) -> None:
    """From the application form to the completion page: every step works, escapes user data, logs no error."""
    watch = PageWatch()
    seen: list[str] = []
    applicant = await new_page(browser, watch, viewport={"width": 1100, "height": 900})
    accept_confirmations(applicant, watch, seen)

    # the rules, from the top page's link: what one day means, one 一斉送信, no reissue, the spam warning
    await applicant.goto(system.url + "/")
    await applicant.click("main a[href='/rules']")
    await manual_terms(
        applicant,
        "★1DayPassについて",
        "★ルール",
        "日本時間（Asia/Tokyo）0時00分から23時59分59秒まで",
        "一斉送信できるのは1回だけ",
        "失効",
        "再発行は不可",
        "スパム（迷惑メール）判定を受けると、一時的にドメイン",
        "復旧に数日",
        "ユーザーIDとパスワードは取り扱いに注意",
        "ご利用方法",
    )
    await screenshot(applicant, "rules", docs="rules")
    await watch.check(applicant)

    # 1. application
    await applicant.goto(system.url + "/apply")
    await manual_terms(applicant, "1DayPass申請", "（例 山田 太郎）", "1DayPassについて・ルール")
    await applicant.fill("#f-applicant_name", "佐藤 花子")
    await applicant.fill("#f-applicant_email", APPLICANT_EMAIL)
    await applicant.fill("#f-department", "営業本部 第一営業部")
    await applicant.fill("#f-purpose", "展示会ご来場のお礼メールの送信")
    assert await applicant.input_value("#f-use_date") == today()
    await screenshot(applicant, "step1-application")
    await applicant.click("main button[type=submit]")
    await applicant.wait_for_selector("text=申請を受け付けました。")
    await screenshot(applicant, "step1-receipt")
    await watch.check(applicant)

    # the administrator approves it in the admin pages
    admin = await new_page(browser, watch, viewport={"width": 1100, "height": 800})
    accept_confirmations(admin, watch, seen)
    await admin.goto(system.url + "/admin")
    assert "管理者ログイン" in await admin.inner_text("h1")
    await admin.fill("#f-email", ADMIN_EMAIL)
    await admin.fill("#f-password", ADMIN_PASSWORD)
    await admin.click("main button[type=submit]")
    await admin.wait_for_selector("text=承認待ち（1 件）")
    await screenshot(admin, "admin-applications")
    await admin.click("main .application button:has-text('承認')")
    await admin.wait_for_selector("text=承認しました。")
    assert any("佐藤 花子" in message for message in seen)
    await watch.check(admin)

    # 2. login with the credentials from the mail, which links the rules page
    user_id, password = await credentials_from_mail(system, APPLICANT_EMAIL)
    credential_mail = system.smtp.to(APPLICANT_EMAIL)[-1].message().get_content()
    assert f"{system.url}/rules" in credential_mail
    await login(applicant, system, user_id, password, shot="step2-login")

    # 3. CSV selection (the manual's ④); 4. checking (one slow domain keeps the progress page up); 5. result
    await manual_terms(applicant, "一斉メール送信先CSVファイル選択", "サンプルCSVファイル")
    assert await applicant.inner_text("main button[type=submit]") == "確認画面へ"
    await screenshot(applicant, "step3-csv", docs="csv-select")
    csv = cp932_csv(
        [
            ["yamada@example.co.jp", "株式会社<b>サンプル</b>", "営業本部", "第一営業部", "<script>alert(1)</script>"],
            ["tanaka@slow.example.jp", "テスト商事株式会社", "総務部", "", "田中 一郎"],
            ["info@a-only.example.jp", "一般社団法人テスト協会", "", "", "各位"],
        ]
    )
    await upload(applicant, csv)
    await applicant.wait_for_selector("#list-progress", timeout=10_000)
    await screenshot(applicant, "step4-checking")
    await wait_for_text(applicant, "送信先のメールアドレスが正常であることを確認しました。", "step5-result")
    await manual_terms(applicant, "一斉メール送信先確認結果", "入力画面へ")
    assert await applicant.inner_text("[data-field=encoding]") == "Shift_JIS (CP932)"  # as the API says it
    await screenshot(applicant, "step5-result", docs="list-result")
    await watch.check(applicant)

    # 6. compose (the manual's ⑥): two headed groups, examples, usage link, virus caution, reset note
    await applicant.click("main a:has-text('入力画面へ')")
    await applicant.wait_for_selector("#compose-form")
    await manual_terms(
        applicant,
        "一斉メール発行画面",
        "【一斉メール送信者情報】",
        "【一斉メール】",
        "（例 taro.yamada@example.co.jp）",
        "（例 新製品発表会のご案内）",
        "ウイルス",
        "「入力欄をリセット」を押すと",
    )
    assert await applicant.locator("main a[href='/rules#usage']:has-text('ご利用方法')").count() == 1
    assert "必須" in await applicant.inner_text("#compose-form fieldset:has(#f-attachments) legend")
    await screenshot(applicant, "step6-compose-empty", docs="compose")
    unlabeled = await applicant.evaluate(
        """Array.from(document.querySelectorAll('input:not([type=hidden]), textarea'))
             .filter(el => !el.labels || el.labels.length === 0).map(el => el.id || el.name)"""
    )
    assert unlabeled == []
    await applicant.fill("#f-sender_email", APPLICANT_EMAIL)
    await applicant.fill("#f-sender_name", "株式会社コーポ 営業本部 佐藤 花子")
    await applicant.fill("#f-subject", "展示会ご来場のお礼")
    body = "先日は弊社ブースにお立ち寄りいただき、誠にありがとうございました。\n資料を添付いたします。"
    await applicant.fill("#f-body", body)
    assert await applicant.inner_text("#f-body-count .counter__n") == str(len(body))
    # without an attachment: the summary at the top names the item and links to it; choosing a file clears it
    await applicant.click("main button:has-text('確認画面へ')")
    await applicant.wait_for_selector("#error-summary")
    summary = await applicant.inner_text("#error-summary")
    assert "次の項目を確認してください。" in summary
    assert "添付ファイル：添付ファイル（PDF）を1つ以上選択してください。" in summary
    assert await applicant.get_attribute("#error-summary li a", "href") == "#f-attachments"
    assert await applicant.input_value("#f-subject") == "展示会ご来場のお礼"  # what was typed is kept
    await screenshot(applicant, "step6-error-summary", docs="compose-errors")
    await applicant.set_input_files(
        "#f-attachments", files=[{"name": "ご案内資料.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    assert (await applicant.inner_text("#f-attachments-error")).strip() == ""
    assert await applicant.locator("#error-summary li").count() == 0
    await screenshot(applicant, "step6-compose")
    await applicant.click("main button:has-text('確認画面へ')")

    # 7. confirmation: the first recipient's view, user data shown as text
    await applicant.wait_for_selector(".mail__body")
    mail_text = await applicant.inner_text(".mail__body")
    assert "<script>alert(1)</script> 様" in mail_text
    assert "株式会社<b>サンプル</b>" in mail_text
    assert "展示会ご来場のお礼" in await applicant.inner_text(".mail__subject")
    assert "ご案内資料.pdf" in await applicant.inner_text(".mail__attachments")
    await manual_terms(applicant, "一斉メール確認画面", "一斉送信")
    await screenshot(applicant, "step7-confirm", docs="confirm")
    await watch.check(applicant)

    # 戻る: the form comes back filled from the saved draft; changing the subject keeps the attachment
    await applicant.click("main a:has-text('戻る')")
    await applicant.wait_for_selector("#compose-form")
    assert await applicant.input_value("#f-sender_name") == "株式会社コーポ 営業本部 佐藤 花子"
    assert await applicant.input_value("#f-body") == body
    assert "ご案内資料.pdf" in await applicant.inner_text(".saved-files")
    await applicant.fill("#f-subject", "【ご案内】展示会ご来場のお礼")
    await applicant.click("main button:has-text('確認画面へ')")
    await applicant.wait_for_selector(".mail__body")
    assert await applicant.inner_text(".mail__subject") == "【ご案内】展示会ご来場のお礼"
    assert "ご案内資料.pdf" in await applicant.inner_text(".mail__attachments")

    # 8. 一斉送信 (confirmed once more), then live progress until completion
    await applicant.click("main button:has-text('一斉送信')")
    await applicant.wait_for_selector("text=一斉メールの送信処理を受け付けました。")
    assert any("失効" in message for message in seen)
    await manual_terms(
        applicant, "一斉メール送信処理受付完了", "半日程度かかる場合があります", "送信時間の目安", "閉じる"
    )
    # four recipients at 600/min per domain: well under a minute, with the pace named
    await applicant.wait_for_selector("[data-field=estimate]:has-text('1分以内')", timeout=30_000)
    assert "毎分 600 件" in await applicant.inner_text("[data-field=estimate_detail]")
    await wait_for_text(applicant, "送信処理が完了しました。", "step8-progress", timeout=60_000)
    assert await applicant.inner_text("[data-field=sent]") == "4"  # three recipients and the sender's copy
    await screenshot(applicant, "step8-accepted", docs="accepted")
    await watch.check(applicant)

    # 閉じる ends the session and returns to the start
    await applicant.click("main button:has-text('閉じる')")
    await applicant.wait_for_url(system.url + "/")
    await applicant.goto(system.url + "/lists/new")
    assert "一斉メールログイン" in await applicant.inner_text("h1")

    for address in ("yamada@example.co.jp", "tanaka@slow.example.jp", "info@a-only.example.jp"):
        assert len(system.smtp.to(address)) == 1, address
    # the completion mail greets the sender by the 送信者名称 given at compose (the sender's own copy came too)
    completion = await mail_with_subject(system, APPLICANT_EMAIL, "送信完了")
    body_part = completion.get_body(preferencelist=("plain",))
    assert body_part is not None
    assert body_part.get_content().splitlines()[0] == "株式会社コーポ 営業本部 佐藤 花子 様"

    # the administrator sees the campaign with its progress, and the pass as used
    await admin.goto(system.url + "/admin/campaigns")
    assert "【ご案内】展示会ご来場のお礼" in await admin.inner_text("main table")
    await screenshot(admin, "admin-campaigns")
    await admin.goto(system.url + "/admin/passes")
    assert "使用済み" in await admin.inner_text("main table")
    await watch.check(admin)

    # the pass is spent: logging in again gets the 失効 message
    await applicant.goto(system.url + "/login")
    await applicant.fill("#f-user_id", user_id)
    await applicant.fill("#f-password", password)
    await applicant.click("main button[type=submit]")
    await applicant.wait_for_selector("#error-summary")
    assert "失効" in await applicant.inner_text("#error-summary")
    await watch.check(applicant)


async def test_bad_csv_then_fixed_then_compose_errors(system: System, browser: Any) -> None:
    """Bad rows stop the flow at step 5 with row, address and reason; the fixed CSV passes; errors show per field."""
    user_id, password = await issue_pass_via_api(system, "鈴木 次郎", "jiro@corp.example.jp")
    watch = PageWatch()
    page = await new_page(browser, watch)
    await login(page, system, user_id, password)
    csv = cp932_csv(
        [
            ["ok@example.co.jp", "株式会社A", "", "", "皆様"],
            ["nobody@gone.example.jp", "株式会社B", "", "", "山本 様"],
            ["x@nullmx.example.jp", "株式会社C", "", "", "<img src=x onerror=alert(1)>"],
        ]
    )
    await upload(page, csv)
    await page.wait_for_selector("text=送信できないメールアドレスがあります", timeout=30_000)
    rows = await page.eval_on_selector_all("main table tbody tr", "trs => trs.map(tr => tr.innerText)")
    assert len(rows) == 2, rows
    assert rows[0].startswith("3\tnobody@gone.example.jp"), rows  # row numbers as Excel shows them
    assert rows[1].startswith("4\tx@nullmx.example.jp"), rows
    await screenshot(page, "step5-bad-rows")
    errors_csv = await page.get_attribute("a:has-text('エラー一覧')", "href")
    async with httpx.AsyncClient(base_url=system.url, cookies=await _cookies(page)) as http:
        download = await http.get(str(errors_csv))
    assert download.status_code == 200
    assert "nobody@gone.example.jp" in download.content.decode("utf-8-sig", errors="replace")
    await page.click("text=CSVファイルを選び直す")
    await page.wait_for_url("**/lists/new")

    # the page states the validator's configured limit; a file over it is refused with a Japanese message
    assert "256KB" in await page.inner_text("#f-file-hint")
    oversized = cp932_csv([[f"user{i}@example.co.jp", "株式会社A", "", "", "各位"] for i in range(9000)])
    assert len(oversized) > MAX_LIST_BYTES
    await upload(page, oversized)
    await page.wait_for_selector("#error-summary")
    assert "大きすぎます" in await page.inner_text("#f-file-error")
    await screenshot(page, "step3-too-large")
    await watch.check(page)

    # the fixed file passes, and the compose form (on a phone-sized screen) shows each field's own error
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(system.url + "/lists/new")
    await upload(page, cp932_csv([["ok@example.co.jp", "株式会社A", "", "", "皆様"]]))
    await page.click("main a:has-text('入力画面へ')", timeout=30_000)
    await page.fill("#f-sender_email", "not-an-address")
    await page.fill("#f-sender_name", "名" * 51)
    await page.fill("#f-subject", "")
    await page.fill("#f-body", "外字\ue000を含む本文")
    assert "is-over" in (await page.get_attribute("#f-sender_name-count", "class") or "")
    await page.set_input_files(
        "#f-attachments", files=[{"name": "偽物.pdf", "mimeType": "application/pdf", "buffer": b"not a pdf"}]
    )
    await page.click("main button:has-text('確認画面へ')")
    await page.wait_for_selector("#error-summary")
    assert await page.get_attribute("#error-summary", "role") == "alert"
    for name in ("sender_email", "sender_name", "subject", "body", "attachments"):
        message = (await page.inner_text(f"#f-{name}-error")).strip()
        assert message, f"no error shown for {name}"
    assert "U+E000" in await page.inner_text("#f-body-error")  # the position and the character are named
    assert await page.get_attribute("#f-sender_name", "aria-invalid") == "true"
    assert await page.input_value("#f-sender_name") == "名" * 51  # what the user typed is kept
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling on a phone
    await screenshot(page, "step6-errors-narrow")
    # the summary names each item and links to its field; changing a field clears its error and its line only
    links = await page.eval_on_selector_all("#error-summary li a", "as => as.map(a => a.getAttribute('href'))")
    assert set(links) >= {"#f-sender_email", "#f-sender_name", "#f-subject", "#f-body", "#f-attachments"}
    assert "送信者名称：" in await page.inner_text("#error-summary")
    await page.fill("#f-sender_name", "株式会社A 営業部")
    assert (await page.inner_text("#f-sender_name-error")).strip() == ""
    assert await page.get_attribute("#f-sender_name", "aria-invalid") is None
    assert await page.locator("#error-summary [data-error-for='f-sender_name']").count() == 0
    assert (await page.inner_text("#f-subject-error")).strip() != ""  # untouched fields keep theirs
    assert await page.locator("#error-summary [data-error-for='f-subject']").count() == 1

    seen: list[str] = []
    accept_confirmations(page, watch, seen)
    await page.click("main button:has-text('入力欄をリセット')")
    await page.wait_for_selector("#compose-form")
    assert seen
    assert await page.input_value("#f-sender_name") == ""
    await watch.check(page)


async def _cookies(page: Any) -> dict[str, str]:
    return {c["name"]: c["value"] for c in await page.context.cookies()}
