"""3% of recipients refused with 550 5.1.1 while sending, 2% bouncing later with DSNs to their VERP address.

The completion mail and the failure mails give the counts, the suppression list holds all of them, and the
next list that contains one of them is refused at that row with the suppression reason.
"""

from __future__ import annotations

import re
import time

import pytest
from tests.e2e.support import (
    body_text,
    campaign_mails,
    cp932_csv,
    send_dsn,
    suppressions,
    system_mails,
    wait_until,
)

from isseimail_testing.pdfs import sample_pdf
from isseimail_testing.smtp import CaptureServer
from isseimail_testing.system import ApiClient, SystemProcesses, new_pass

pytestmark = [
    pytest.mark.timeout(360),
    pytest.mark.slow,
    # Failure reports gathered for a second, not ten minutes, so the test sees them.
    pytest.mark.system(env={"ISSEIMAIL_FAILURE_DIGEST_SECONDS": "1"}),
]

SENDER = "koho@corp.example.jp"
COUNT = 400
REFUSED = [i for i in range(1, COUNT + 1) if i % 33 == 0]  # 12 = 3%
BOUNCED = [i for i in range(1, COUNT + 1) if i % 50 == 25]  # 8 = 2%
HOLD = COUNT  # answered 451 until the DSNs are in, so the campaign completes after them


def address(i: int) -> str:
    return f"user{i}@kaisha{i % 10}.example.jp"


async def test_refusals_and_later_bounces_are_reported_and_suppressed(
    system: SystemProcesses, smtp_server: CaptureServer
) -> None:
    started = time.monotonic()
    assert not set(REFUSED) & set(BOUNCED)
    assert HOLD not in REFUSED + BOUNCED
    for i in REFUSED:
        smtp_server.handler.fail_recipient(address(i), 550, f"5.1.1 <{address(i)}>: User unknown")
    smtp_server.handler.fail_recipient(address(HOLD), 451, "4.3.0 Try again later")
    rows = [(address(i), f"会社{i}", "", "", f"担当{i}") for i in range(1, COUNT + 1)]

    applicant, _ = await new_pass(system, smtp_server, SENDER)
    async with applicant:
        list_id = await applicant.upload_list(cp932_csv(rows))
        assert (await applicant.wait_list(list_id))["status"] == "valid"
        campaign_id = await applicant.create_campaign(
            list_id,
            sender_email=SENDER,
            sender_name="広報部",
            subject="年末のご挨拶",
            body="本年もお世話になりました。",
            attachments=[("ご挨拶.pdf", sample_pdf(3000))],
        )
        await applicant.send(campaign_id)

        # everyone but the refused and the held one is delivered (the sender's copy included)
        delivered = COUNT - len(REFUSED) - 1 + 1
        mails = await wait_until(
            lambda: (m := campaign_mails(smtp_server)) and len(m) >= delivered and m, timeout=120, what="deliveries"
        )
        by_rcpt = {m.rcpt: m for m in mails}
        for i in BOUNCED:  # the remote MTA accepted them, then sends a DSN to the message's VERP return path
            assert await send_dsn(system.bounce_listener, by_rcpt[address(i)].mail_from, address(i)) == 250

        suppressed_expected = {address(i) for i in REFUSED + BOUNCED}
        listed = await wait_until(lambda: _all_listed(system, suppressed_expected), timeout=60, what="suppression list")
        assert all(listed[a] == "userunknown" for a in suppressed_expected), listed
        progress = await wait_until(
            lambda: _progress_has(applicant, campaign_id, failed=len(REFUSED), bounced=len(BOUNCED)),
            timeout=60,
            what="bounces counted",
        )
        assert progress["status"] != "completed", progress
        assert progress["total"] - progress["sent"] - progress["failed"] == 1, progress  # only the held one

        # while the campaign is held open, the failure reports (1 s digests) name every refused and bounced
        # recipient exactly once; anything not yet reported would go into the completion mail instead
        reports = await wait_until(
            lambda: r if len(r := _reported(smtp_server)) >= len(suppressed_expected) else None,
            timeout=60,
            what="failure reports",
        )
        assert sorted(reports) == sorted(suppressed_expected)
        report_texts = [body_text(m) for m in system_mails(smtp_server, SENDER, "配信エラー")]
        assert sum(t.count("検出: 送信時に相手先サーバが拒否") for t in report_texts) == len(REFUSED)
        assert sum(t.count("検出: 送信後に返送（バウンス）") for t in report_texts) == len(BOUNCED)
        for message in system_mails(smtp_server, SENDER, "配信エラー"):
            named = len(RECIPIENT_LINE.findall(body_text(message)))
            assert (f"（{named} 件）" in str(message["Subject"])) == (named > 1), message["Subject"]

        smtp_server.handler.clear_recipient(address(HOLD))
        # its retry delay doubled while it was held (from ISSEIMAIL_RETRY_BASE_SECONDS=0.2), hence the margin
        final = await applicant.wait_completed(campaign_id, timeout=180)
        counts = (final["total"], final["sent"], final["failed"], final["bounced"])
        # a bounced message was delivered to the next hop first: it counts as sent, and as bounced
        assert counts == (COUNT + 1, COUNT + 1 - len(REFUSED), len(REFUSED), len(BOUNCED)), final

    completions = await wait_until(lambda: system_mails(smtp_server, SENDER, "送信完了"), what="completion mail")
    text = body_text(completions[0])
    assert f"送信先: {COUNT + 1} 件" in text
    assert f"配信成功: {COUNT + 1 - len(REFUSED)} 件" in text
    assert f"配信失敗: {len(REFUSED)} 件" in text
    assert f"返送（バウンス）: {len(BOUNCED)} 件" in text
    for i in REFUSED + BOUNCED:  # listed inline with its CSV row (header = row 1)
        assert f"- {address(i)}（CSVの行: {i + 1} 行目）" in text, i

    assert len(system_mails(smtp_server, SENDER, "送信完了")) == 1
    assert sorted(_reported(smtp_server)) == sorted(suppressed_expected)  # no report after the completion mail

    # the next list with one refused and one bounced address is refused at those rows
    applicant, _ = await new_pass(system, smtp_server, "koho2@corp.example.jp")
    async with applicant:
        again = [rows[0], (address(REFUSED[0]), "", "", "", "各位"), rows[1], (address(BOUNCED[0]), "", "", "", "各位")]
        refused = await applicant.wait_list(await applicant.upload_list(cp932_csv(again)))
        assert refused["status"] == "invalid"
        assert {r["row"]: r["code"] for r in refused["bad_rows"]} == {3: "suppressed", 5: "suppressed"}
        assert "配信停止リスト" in refused["bad_rows"][0]["message"]
    print(f"\nbounces: {time.monotonic() - started:.1f}s")


async def _all_listed(system: SystemProcesses, expected: set[str]) -> dict[str, str] | None:
    listed = await suppressions(system.url("notifier"))
    return listed if expected <= set(listed) else None


async def _progress_has(applicant: ApiClient, campaign_id: str, **counts: int) -> dict[str, object] | None:
    body = await applicant.progress(campaign_id)
    return body if all(body[k] == v for k, v in counts.items()) else None


RECIPIENT_LINE = re.compile(r"^送信先: (\S+)$", re.MULTILINE)


def _reported(smtp: CaptureServer) -> list[str]:
    """Every recipient named in the failure reports (one per report block)."""
    found: list[str] = []
    for message in system_mails(smtp, SENDER, "配信エラー"):
        found.extend(RECIPIENT_LINE.findall(body_text(message)))
    return found
