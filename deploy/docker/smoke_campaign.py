"""The compose smoke test's driver, run inside the stack (make compose-smoke starts it from the gateway image,
which has httpx): every service ready, every Prometheus target up, then one real campaign through the
gateway's JSON API (apply → approve → login → CSV upload → compose with a PDF → 一斉送信) and the mails checked
at the stack's SMTP catcher; then the internet-facing proxy passes /unsubscribe/ and nothing else.
Standard library and httpx only; prints what it checked and exits non-zero on the first failure."""

from __future__ import annotations

import base64
import datetime as dt
import email
import re
import sys
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx

GATEWAY = "http://gateway:8080"
PROXY = "http://unsubscribe-proxy:8080"
CATCHER = "http://mailpit:8025/api/messages"
PROMETHEUS = "http://prometheus:9090"
READY = {
    "gateway": "http://gateway:8080",
    "pass-service": "http://pass-service:8081",
    "list-validator": "http://list-validator:8082",
    "composer": "http://composer:8083",
    "dispatcher": "http://dispatcher:8084",
    "dispatcher-worker": "http://dispatcher-worker:8086",
    "notifier": "http://notifier:8085",
}
ADMIN = ("admin@example.jp", "dev-only-admin-password")  # docker-compose.yml's development defaults
APPLICANT = "hanako.sato@corp.example.jp"
SUBJECT = "【ご案内】コンテナでの一斉メール確認"
BODY = "いつもお世話になっております。\nコンテナ環境からの一斉メールです。"
SENDER_NAME = "株式会社サンプル 営業本部 佐藤花子"
ROWS = [(f"user{i}@kaisha{i % 3}.example.jp", f"株式会社テスト{i}", "営業部", "", f"髙橋{i}") for i in range(1, 21)]
T = TypeVar("T")


def say(text: str) -> None:
    print(f"smoke: {text}", flush=True)


def wait(check: Callable[[], T | None], what: str, timeout: float = 240.0) -> T:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            value, last = None, exc
        if value:
            return value
        time.sleep(1)
    raise TimeoutError(f"{what}: not met after {timeout:.0f} s (last: {last})")


def expect(response: httpx.Response, status: int, what: str) -> Any:
    if response.status_code != status:
        raise AssertionError(f"{what}: {response.status_code} {response.text[:1000]}")
    return response.json() if response.content else None


def all_ready() -> bool:
    return all(httpx.get(f"{url}/readyz", timeout=5).status_code == 200 for url in READY.values())


def targets_up() -> list[dict[str, Any]] | None:
    active = httpx.get(f"{PROMETHEUS}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    components = {t["labels"].get("component") for t in active}
    if set(READY) <= components and all(t["health"] == "up" for t in active):
        return active
    return None


def caught() -> list[tuple[dict[str, Any], EmailMessage]]:
    out = []
    for item in httpx.get(CATCHER, timeout=10).json():
        message = email.message_from_bytes(base64.b64decode(item["data"]), policy=policy.default)
        assert isinstance(message, EmailMessage)
        out.append((item, message))
    return out


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def sample_pdf() -> bytes:
    """A small well-formed one-page PDF with an exact cross-reference table (what the composer accepts)."""
    content = b"BT /F1 24 Tf 72 720 Td (isseimail smoke) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def credentials() -> tuple[str, str] | None:
    for item, message in reversed(caught()):
        if APPLICANT in item["rcpt_tos"] and message["X-Isseimail-Bounce"] is None:
            text = text_of(message)
            user_id = re.search(r"ユーザーID は \[(\d{6})\] です。", text)
            password = re.search(r"パスワード は \[([^\]\s]+)\] です。", text)
            if user_id and password:
                return user_id.group(1), password.group(1)
    return None


def campaign() -> str:
    today = dt.datetime.now(ZoneInfo("Asia/Tokyo")).date().isoformat()
    pdf = ("資料_ご案内.pdf", sample_pdf())
    # The JSON API refuses state changes without the custom header a browser cannot send cross-site (CSRF).
    csrf = {"X-Isseimail-CSRF": "1"}
    with (
        httpx.Client(base_url=GATEWAY, timeout=60, headers=csrf) as applicant,
        httpx.Client(base_url=GATEWAY, timeout=60, headers=csrf) as admin,
    ):
        application = {
            "applicant_name": "佐藤 花子",
            "applicant_email": APPLICANT,
            "department": "営業本部",
            "use_date": today,
            "purpose": "コンテナ環境の確認",
        }
        applied = expect(applicant.post("/api/v1/applications", json=application), 201, "apply")
        application_id = applied["application_id"]
        expect(admin.post("/api/v1/admin/session", json={"email": ADMIN[0], "password": ADMIN[1]}), 200, "admin login")
        expect(admin.post(f"/api/v1/admin/applications/{application_id}/approve"), 201, "approve")
        user_id, password = wait(credentials, "credentials mail", timeout=120)
        say(f"applied, approved, credentials mail for user {user_id} caught")
        login = {"user_id": user_id, "password": password, "use_date": today}
        expect(applicant.post("/api/v1/session", json=login), 200, "login")

        header = "メールアドレス,会社名,部署名1,部署名2,ご担当者名\r\n"
        csv = (header + "".join(",".join(row) + "\r\n" for row in ROWS)).encode("cp932")
        files = {"file": ("送信先.csv", csv, "text/csv")}
        list_id = expect(applicant.post("/api/v1/lists", files=files), 202, "upload")["list_id"]

        def validated() -> dict[str, Any] | None:
            body: dict[str, Any] = expect(applicant.get(f"/api/v1/lists/{list_id}"), 200, "list status")
            return None if body["status"] == "validating" else body

        checked = wait(validated, "list validated", timeout=180)
        assert (checked["status"], checked["rows"], checked["ok"]) == ("valid", len(ROWS), len(ROWS)), checked
        say(f"list of {len(ROWS)} rows uploaded and valid")

        form = {
            "list_id": list_id,
            "sender_email": APPLICANT,
            "sender_name": SENDER_NAME,
            "subject": SUBJECT,
            "body": BODY,
            "charset": "utf-8",
        }
        created = applicant.post(
            "/api/v1/campaigns", data=form, files=[("attachments", (pdf[0], pdf[1], "application/pdf"))]
        )
        campaign_id: str = expect(created, 201, "compose")["campaign_id"]
        assert expect(applicant.post(f"/api/v1/campaigns/{campaign_id}/send"), 202, "send")["status"] == "accepted"
        say(f"campaign {campaign_id} composed with a PDF (scanned by clamd) and sent")

        def completed() -> dict[str, Any] | None:
            body: dict[str, Any] = expect(applicant.get(f"/api/v1/campaigns/{campaign_id}"), 200, "progress")
            return body if body.get("status") == "completed" else None

        progress = wait(completed, "campaign completed", timeout=300)
        total = len(ROWS) + 1  # the sender's own copy
        assert (progress["total"], progress["sent"], progress["failed"]) == (total, total, 0), progress
    return campaign_id


def check_mails(campaign_id: str) -> str:
    def campaign_mails() -> dict[str, EmailMessage] | None:
        found = {item["rcpt_tos"][0]: m for item, m in caught() if m["X-Isseimail-Bounce"] is not None}
        return found if len(found) >= len(ROWS) + 1 else None

    mails = wait(campaign_mails, "campaign mails at the catcher", timeout=120)
    for address, company, *_ in ROWS:
        message = mails[address]
        assert message["Subject"] == SUBJECT, message["Subject"]
        assert company in text_of(message), address
        assert BODY in text_of(message), address
        attachments = [(p.get_filename(), p.get_payload(decode=True)) for p in message.iter_attachments()]
        assert attachments == [("資料_ご案内.pdf", sample_pdf())], address
    assert BODY in text_of(mails[APPLICANT]), "the sender's copy"
    say(f"{len(ROWS)} campaign mails and the sender's copy caught, each with its addressee and the PDF")

    def completion() -> EmailMessage | None:
        for item, message in caught():
            if APPLICANT in item["rcpt_tos"] and "送信完了" in str(message["Subject"]):
                return message
        return None

    text = text_of(wait(completion, "completion mail", timeout=120))
    assert f"配信成功: {len(ROWS) + 1} 件" in text, text
    assert campaign_id in text, text
    say("completion mail caught with the counts")
    unsubscribe = str(mails[ROWS[0][0]]["List-Unsubscribe"])
    path = re.search(r"(/unsubscribe/[a-z2-7]{52})>", unsubscribe)
    assert path, unsubscribe
    return path.group(1)


def check_proxy(unsubscribe_path: str) -> None:
    """The internet-facing proxy: the unsubscribe page of a real mail answers; nothing else gets through."""
    page = httpx.get(PROXY + unsubscribe_path, timeout=10)
    assert page.status_code == 200, (page.status_code, page.text[:300])
    assert "配信停止" in page.text, page.text[:300]
    for path in ("/", "/login", "/api/v1/applications", "/admin", "/metrics", "/unsubscribe/x", "/unsubscribe/"):
        status = httpx.get(PROXY + path, timeout=10).status_code
        assert status == 404, (path, status)
    assert httpx.request("DELETE", PROXY + unsubscribe_path, timeout=10).status_code == 403
    say("unsubscribe proxy: the mail's unsubscribe page answers, every other path is 404")


def main() -> int:
    started = time.monotonic()
    wait(all_ready, "every service's /readyz is 200")
    say("every service answers /readyz 200")
    active = wait(targets_up, "every Prometheus target up", timeout=120)
    say(f"Prometheus: {len(active)} targets, all up")
    campaign_id = campaign()
    check_proxy(check_mails(campaign_id))
    say(f"passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
