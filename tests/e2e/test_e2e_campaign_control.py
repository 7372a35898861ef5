"""The administrator pauses, resumes and cancels a campaign sent by two dispatcher workers.

Pause answers only once no worker holds a batch of the campaign: from then on no campaign mail arrives, the
progress says 一時停止 (paused); after resume every recipient gets the mail exactly once (nothing lost, nothing
twice). Cancel stops what is not yet sent and reports what was; the counts add up to the campaign's size and
match the mail captured. Every change needs the admin session and a reason.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import pytest
from tests.e2e.support import campaign_mails, cp932_csv, wait_until

from isseimail_testing.smtp import CaptureServer
from isseimail_testing.system import ApiClient, SystemProcesses, new_pass

COUNT = 240
# 4 domains at 300 a minute each: about 20 messages a second in all, so the campaign takes ~12 s.
pytestmark = [
    pytest.mark.timeout(360),
    pytest.mark.slow,
    pytest.mark.system(workers=2, env={"ISSEIMAIL_DOMAIN_PER_MINUTE": "300", "ISSEIMAIL_BATCH_SIZE": "20"}),
]


def rows(tag: str) -> list[tuple[str, str, str, str, str]]:
    return [(f"{tag}{i}@kaisha{i % 4}.example.jp", f"会社{i}", "", "", f"担当{i}") for i in range(COUNT)]


async def started_campaign(system: SystemProcesses, smtp: CaptureServer, tag: str) -> tuple[ApiClient, str, str]:
    applicant, _ = await new_pass(system, smtp, f"{tag}@corp.example.jp")
    checked = await applicant.wait_list(await applicant.upload_list(cp932_csv(rows(tag))))
    assert checked["status"] == "valid", checked
    subject = f"{tag} のご案内"
    campaign_id = await applicant.create_campaign(
        checked["list_id"], sender_email=f"{tag}@corp.example.jp", sender_name=tag, subject=subject, body="本文"
    )
    await applicant.send(campaign_id)
    return applicant, campaign_id, subject


def delivered(smtp: CaptureServer, subject: str) -> Counter[str]:
    return Counter(m.rcpt for m in campaign_mails(smtp, subject))


async def test_pause_stops_every_worker_and_resume_loses_nothing(
    system: SystemProcesses, smtp_server: CaptureServer
) -> None:
    applicant, campaign_id, subject = await started_campaign(system, smtp_server, "pause")
    async with ApiClient(system.gateway_url) as admin:
        url = f"/api/v1/admin/campaigns/{campaign_id}"
        refused = await admin.http.post(f"{url}/pause", json={"reason": "確認のため"})
        assert refused.status_code == 401  # no admin session
        await admin.admin_login(*system.admin)
        await wait_until(lambda: len(delivered(smtp_server, subject)) >= 20, timeout=120)
        no_reason = await admin.http.post(f"{url}/pause", json={"reason": ""})
        assert no_reason.status_code == 422
        paused = await admin.http.post(f"{url}/pause", json={"reason": "内容の確認のため"})
        assert paused.status_code == 200, paused.text
        assert paused.json()["status"] == "paused"
        assert paused.json()["in_flight"] == 0
        at_pause = sum(delivered(smtp_server, subject).values())
        assert at_pause < COUNT + 1, "the campaign finished before the pause: slow it down"
        await asyncio.sleep(3.0)  # several status-check periods of both workers
        assert sum(delivered(smtp_server, subject).values()) == at_pause
        progress = await applicant.progress(campaign_id)
        assert progress["status"] == "paused"
        assert progress["paused_by"] == "administrator"  # the applicant's page says who paused it
        again = await admin.http.post(f"{url}/pause", json={"reason": "二度目"})
        assert again.status_code == 200  # idempotent

        # Resumed from the console page, as an administrator does: the form with its CSRF token and a reason.
        page = await admin.http.get("/admin/campaigns")
        assert page.status_code == 200
        assert f'action="/admin/campaigns/{campaign_id}/resume"' in page.text
        assert f'action="/admin/campaigns/{campaign_id}/pause"' not in page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        empty = await admin.http.post(f"/admin/campaigns/{campaign_id}/resume", data={"csrf_token": csrf.group(1)})
        assert empty.status_code == 422
        assert "理由を入力してください" in empty.text
        resumed = await admin.http.post(
            f"/admin/campaigns/{campaign_id}/resume", data={"csrf_token": csrf.group(1), "reason": "確認済み"}
        )
        assert resumed.status_code == 303, resumed.text
        assert resumed.headers["location"] == "/admin/campaigns?done=resumed"
        await applicant.wait_completed(campaign_id, timeout=240)
        got = delivered(smtp_server, subject)
        expected = {f"pause{i}@kaisha{i % 4}.example.jp" for i in range(COUNT)} | {"pause@corp.example.jp"}
        assert set(got) == expected
        assert [rcpt for rcpt, n in got.items() if n > 1] == []
        late = await admin.http.post(f"{url}/cancel", json={"reason": "終わった後"})
        assert late.status_code == 409
        assert "中止できません" in late.json()["detail"]
    await applicant.close()


async def test_cancel_stops_what_is_not_sent_and_reports_what_was(
    system: SystemProcesses, smtp_server: CaptureServer
) -> None:
    applicant, campaign_id, subject = await started_campaign(system, smtp_server, "cancel")
    async with ApiClient(system.gateway_url) as admin:
        await admin.admin_login(*system.admin)
        await wait_until(lambda: len(delivered(smtp_server, subject)) >= 20, timeout=120)
        r = await admin.http.post(f"/api/v1/admin/campaigns/{campaign_id}/cancel", json={"reason": "誤送信の恐れ"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "cancelled"
        assert body["in_flight"] == 0
        await asyncio.sleep(3.0)
        got = delivered(smtp_server, subject)
        assert body["sent"] == sum(got.values())  # what it says was sent is what arrived
        assert body["cancelled"] > 0
        assert body["sent"] + body["failed"] + body["cancelled"] == COUNT + 1  # + the sender's own copy
        assert body["open"] == 0
        progress = await applicant.progress(campaign_id)
        assert progress["status"] == "cancelled"
        assert (progress["sent"], progress["cancelled"]) == (body["sent"], body["cancelled"])
        resume = await admin.http.post(f"/api/v1/admin/campaigns/{campaign_id}/resume", json={"reason": "x"})
        assert resume.status_code == 409
        for bad in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
            answer = await admin.http.post(f"/api/v1/admin/campaigns/{bad}/pause", json={"reason": "x"})
            assert answer.status_code == 404, (bad, answer.text)
    await applicant.close()


async def test_a_suppression_added_mid_campaign_stops_later_mail(
    system: SystemProcesses, smtp_server: CaptureServer
) -> None:
    """An address suppressed after 一斉送信 (here by the administrator, while the campaign is paused so the
    test knows it was not sent yet) gets no mail; it is reported as a failure with the reason "suppressed"
    and is not counted as a bounce."""
    applicant, campaign_id, subject = await started_campaign(system, smtp_server, "supp")
    async with ApiClient(system.gateway_url) as admin:
        await admin.admin_login(*system.admin)
        await wait_until(lambda: len(delivered(smtp_server, subject)) >= 10, timeout=120)
        url = f"/api/v1/admin/campaigns/{campaign_id}"
        assert (await admin.http.post(f"{url}/pause", json={"reason": "配信停止の確認"})).status_code == 200
        sent = delivered(smtp_server, subject)
        late = [
            f"supp{i}@kaisha{i % 4}.example.jp" for i in range(COUNT) if f"supp{i}@kaisha{i % 4}.example.jp" not in sent
        ]
        target = late[-1]
        added = await admin.http.post(
            "/api/v1/admin/suppressions", json={"address": target.upper(), "reason": "送信中に配信停止の申し出"}
        )
        assert added.status_code == 201, added.text
        assert (await admin.http.post(f"{url}/resume", json={"reason": "再開"})).status_code == 200
        done = await applicant.wait_completed(campaign_id, timeout=240)
        got = delivered(smtp_server, subject)
        assert target not in got
        assert len(got) == COUNT  # everyone else (and the sender's copy) got it once
        assert done["failed"] == 1
        failures = (await admin.http.get(f"{url}/failures")).json()
        assert [(f["recipient"], f["reason"]) for f in failures["items"]] == [(target, "suppressed")]
        listed = (await admin.http.get("/api/v1/admin/suppressions", params={"q": target})).json()
        assert [i["kind"] for i in listed["items"]] == ["manual"]  # not turned into a bounce
    await applicant.close()
