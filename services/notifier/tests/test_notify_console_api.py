"""The administrator's console at the notifier (through the gateway): a campaign's failures paged, and
suppressions added by hand with a reason (audited), hostile input refused with a Japanese 4xx."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from isseimail_notifier import failures, reasons, report_texts
from isseimail_notifier.app import create_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.events import SUPPRESSED_AT_SEND
from isseimail_testing.process import running_app


async def test_failures_are_paged_in_order_with_reasons(
    make_settings: Callable[..., Any], notifier_db: asyncpg.Connection
) -> None:
    async with running_app(create_app(make_settings(NotifierSettings))) as client:
        campaign, other = uuid.uuid4(), uuid.uuid4()
        for i in range(7):
            await failures.record(
                notifier_db,
                campaign_id=campaign,
                delivery_id=i + 1,
                source="smtp" if i % 2 else "bounce",
                recipient=f"User{i}@Example.JP",
                row_number=i + 2,
                status="5.1.1",
                smtp_code=550,
                reason="userunknown",
                hard=True,
                diagnostic=f"550 5.1.1 no such user {i}",
            )
        await failures.record(
            notifier_db,
            campaign_id=other,
            delivery_id=1,
            source="smtp",
            recipient="else@example.jp",
            row_number=2,
            status=None,
            smtp_code=None,
            reason="mailboxfull",
            hard=False,
            diagnostic="",
        )
        first = (await client.get(f"/internal/campaigns/{campaign}/failures", params={"limit": 5})).json()
        rest = (await client.get(f"/internal/campaigns/{campaign}/failures", params={"limit": 5, "offset": 5})).json()
        assert first["total"] == rest["total"] == 7
        got = [item["recipient"] for item in first["items"] + rest["items"]]
        assert got == [f"user{i}@example.jp" for i in range(7)]
        item = first["items"][0]
        assert (item["row_number"], item["source"], item["smtp_code"], item["hard"]) == (2, "bounce", 550, True)
        assert item["reason"] == "userunknown"
        assert item["reason_text"]
        assert item["reason_text"] != "userunknown"
        none = (await client.get(f"/internal/campaigns/{uuid.uuid4()}/failures")).json()
        assert none == {"total": 0, "items": []}
        for bad in ("not-a-uuid", "x" * 400):
            assert (await client.get(f"/internal/campaigns/{bad}/failures")).status_code == 422
        too_big = await client.get(f"/internal/campaigns/{campaign}/failures", params={"limit": 100_000})
        assert too_big.status_code == 422


async def test_manual_suppression_is_added_once_audited_and_checked(
    make_settings: Callable[..., Any], notifier_db: asyncpg.Connection
) -> None:
    async with running_app(create_app(make_settings(NotifierSettings))) as client:
        body = {"address": "Stop@Example.JP", "reason": "本人から電話で依頼", "actor": "admin@corp.example.jp"}
        r = await client.post("/internal/suppressions", json=body)
        assert r.status_code == 201, r.text
        assert r.json() == {"added": "stop@example.jp", "scope": "*"}
        again = await client.post("/internal/suppressions", json=body)
        assert again.status_code == 409
        assert "既に" in again.json()["detail"]
        checked = await client.post("/internal/suppressions/check", json={"addresses": ["stop@example.jp"]})
        assert checked.json() == {"suppressed": {"stop@example.jp": "本人から電話で依頼"}}
        listed = (await client.get("/internal/suppressions", params={"q": "stop"})).json()
        assert [(i["address"], i["kind"]) for i in listed["items"]] == [("stop@example.jp", "manual")]
        for hostile in (
            {**body, "address": "no-at-sign"},
            {**body, "address": "a@b\r\nBcc: x@y.jp"},
            {**body, "reason": ""},
            {**body, "reason": "x" * 501},
            {**body, "scope": "bad scope"},
            {**body, "extra": 1},
            {"address": "a@b.jp"},
        ):
            refused = await client.post("/internal/suppressions", json=hostile)
            assert refused.status_code == 422, hostile
            assert refused.json()["detail"] == "入力内容に誤りがあります。"
    audit = await notifier_db.fetch("SELECT address, action, reason, actor, scope FROM suppression_audit")
    assert [tuple(r) for r in audit] == [("stop@example.jp", "add", "本人から電話で依頼", "admin@corp.example.jp", "*")]


def test_a_recipient_skipped_at_send_time_is_suppressed_not_a_bounce() -> None:
    """The dispatcher's SUPPRESSED_AT_SEND diagnostic reads as 'suppressed' with its own Japanese text, and
    never counts towards suppressing the address again (it is no reply of the recipient's server)."""
    reason = reasons.classify(None, SUPPRESSED_AT_SEND, None)
    assert reason == "suppressed"
    assert reason in reasons.REASONS
    assert not reasons.counts_for_suppression(reason)
    assert not reasons.is_hard(reason)
    assert "配信停止" in reasons.japanese(reason)
    assert reasons.classify("5.1.1", "550 5.1.1 user unknown", 550) != "suppressed"


def test_completion_mail_tells_the_sender_of_unsubscribes_and_complaints() -> None:
    now = dt.datetime.now(dt.UTC)
    campaign = uuid.uuid4()

    def body(unsubscribed: int, complained: int) -> str:
        c = report_texts.Completion(campaign, "ご案内", now, now, 10, 10, 0, 0, unsubscribed, complained)
        return report_texts.completion("山田", c, [], 50, "Asia/Tokyo").body

    assert "配信停止の申し出" not in body(0, 0)
    told = body(3, 1)
    assert "配信停止の申し出: 3 件" in told
    assert "迷惑メールの報告: 1 件" in told
