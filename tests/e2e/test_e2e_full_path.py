"""The applicant's whole path through the gateway's JSON API, every service a separate process.

apply → the administrator approves → the credentials mail → login → 1,000-row CP932 list → valid →
compose with 5 PDFs → preview → send → 1,001 mails (each with its own addressee block, the signature
and byte-identical attachments) → the completion mail with the right counts → the pass is spent.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from tests.e2e.support import Row, addressee, body_text, campaign_mails, cp932_csv, system_mails, wait_until

from isseimail_testing.pdfs import sample_pdf
from isseimail_testing.smtp import CaptureServer
from isseimail_testing.system import ApiClient, SystemProcesses, credentials_from_mail

pytestmark = [pytest.mark.timeout(420), pytest.mark.slow]

APPLICANT = "hanako.sato@corp.example.jp"
SUBJECT = "【ご案内】新製品発表会のお知らせ"
SENDER_NAME = "株式会社サンプル 営業本部 佐藤花子"
BODY = "いつもお世話になっております。\n新製品発表会のご案内をお送りします。\n\n日時: 12月3日 14時"
EXPIRED = "この1DayPassは失効しています。再度申請してください。"


def thousand_rows() -> list[Row]:
    """1,000 rows over 10 domains; CP932-only characters (髙, ①) prove the file was read as CP932."""
    rows: list[Row] = []
    for i in range(1, 1001):
        contact = "ご担当者各位" if i % 97 == 0 else f"髙橋{i}"
        rows.append(
            (
                f"user{i}@kaisha{i % 10}.example.jp",
                f"株式会社テスト{i}" if i % 7 else "",
                "営業部" if i % 3 else "",
                f"第{i % 5 + 1}課①" if i % 2 else "",
                contact,
            )
        )
    return rows


async def test_full_path_through_the_json_api(system: SystemProcesses, smtp_server: CaptureServer) -> None:
    """1,001 mails, each right for its row; one completion mail with 1,001 sent; the login is refused after."""
    started = time.monotonic()
    rows = thousand_rows()
    pdfs = [(f"資料{n}_発表会.pdf", sample_pdf(6_000 + n * 1_500, seed=n, title=f"doc {n}")) for n in range(1, 6)]

    async with ApiClient(system.gateway_url) as admin, ApiClient(system.gateway_url) as applicant:
        # apply → approve → credentials mail
        application_id = await applicant.apply(APPLICANT, applicant_name="佐藤 花子", department="営業本部")
        await admin.admin_login(*system.admin)
        approved = await admin.approve(application_id)
        credentials = await credentials_from_mail(smtp_server, APPLICANT)
        assert credentials.user_id == approved["user_id"]

        # login → upload → valid
        login = await applicant.login(credentials)
        assert login.status_code == 200, login.text
        list_id = await applicant.upload_list(cp932_csv(rows))
        checked = await applicant.wait_list(list_id)
        summary = (checked["status"], checked["encoding"], checked["rows"], checked["ok"])
        assert summary == ("valid", "cp932", 1000, 1000), checked
        assert checked["bad_rows"] == []

        # compose → preview
        campaign_id = await applicant.create_campaign(
            list_id, sender_email=APPLICANT, sender_name=SENDER_NAME, subject=SUBJECT, body=BODY, attachments=pdfs
        )
        preview = await applicant.preview(campaign_id)
        assert preview["subject"] == SUBJECT
        assert preview["text"].startswith(addressee(rows[0]) + "\n\n" + BODY)
        assert [(a["name"], a["size"]) for a in preview["attachments"]] == [(n, len(d)) for n, d in pdfs]

        # send → progress until completed
        pressed = time.monotonic()
        assert (await applicant.send(campaign_id))["status"] == "accepted"
        progress = await applicant.wait_completed(campaign_id, timeout=300)
        sent_seconds = time.monotonic() - pressed
        assert (progress["total"], progress["sent"], progress["failed"]) == (1001, 1001, 0), progress

        # every mail right for its row
        mails = await wait_until(lambda: (m := campaign_mails(smtp_server)) and len(m) >= 1001 and m, what="1,001")
        assert len(mails) == 1001
        by_rcpt = {m.rcpt: m for m in mails}
        assert len(by_rcpt) == 1001  # nobody got two
        signature = f"{SENDER_NAME}\n{APPLICANT}"
        for row in rows:
            mail = by_rcpt[row[0]]
            assert mail.message["To"] == row[0]
            assert mail.message["Subject"] == SUBJECT
            assert mail.text == f"{addressee(row)}\n\n{BODY}\n\n{signature}\n", row
            assert mail.attachments == pdfs, row
        copy = by_rcpt[APPLICANT]  # the sender's own copy
        assert copy.text.endswith(f"{BODY}\n\n{signature}\n")
        assert copy.attachments == pdfs
        assert len({m.mail_from for m in mails}) == 1001  # one VERP return path per message

        # exactly one completion mail, with the counts
        completions = await wait_until(lambda: system_mails(smtp_server, APPLICANT, "送信完了"), what="completion")
        text = body_text(completions[0])
        assert "送信先: 1001 件" in text
        assert "配信成功: 1001 件" in text
        assert "配信失敗: 0 件" in text
        assert "返送（バウンス）: 0 件" in text
        assert campaign_id in text

        # the pass is spent
        again = await ApiClient(system.gateway_url).login(credentials)
        assert again.status_code == 403, again.text
        assert again.json()["detail"] == EXPIRED

    assert len(system_mails(smtp_server, APPLICANT, "送信完了")) == 1
    assert Counter(m.rcpt for m in campaign_mails(smtp_server)).most_common(1)[0][1] == 1
    print(f"\nfull path: {time.monotonic() - started:.1f}s total, {sent_seconds:.1f}s from send to completed")
