"""A campaign end to end inside the dispatcher: accepted event -> batches -> SMTP worker -> events."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from isseimail_shared.events import DeliveryBounced, DeliveryDelayed, envelope_for
from isseimail_shared.messaging import Broker
from isseimail_shared.unsubscribe import read_token, verify
from isseimail_shared.verp import parse_bounce_address
from isseimail_testing.smtp import CaptureServer

from .conftest import running_dispatcher

OWNER = {"X-Isseimail-Pass-Id": "1"}  # the pass of the campaigns accept_campaign announces


async def test_campaign_is_delivered_once_to_every_recipient(
    fast_settings: Any,
    smtp_server: CaptureServer,
    snapshot_peer: Any,
    watch: Any,
    make_recipients: Any,
    accept_campaign: Any,
    broker: Broker,
) -> None:
    """Every recipient plus the sender's copy gets one stamped message; campaign.completed comes once."""
    rows = make_recipients(30, "example.jp") + make_recipients(12, "other.jp", start=31)
    campaign_id = snapshot_peer.add(rows)
    settings = fast_settings(batch_size=10, public_url="https://mail.example.jp/")
    async with running_dispatcher(settings) as (api, worker):
        event_id = uuid.uuid4()
        await accept_campaign(campaign_id, len(rows), event_id)
        await accept_campaign(campaign_id, len(rows), event_id)  # redelivered event
        await accept_campaign(campaign_id, len(rows))  # a second event for the same campaign
        completed = await watch.wait_for("campaign.completed")
        progress = (await api.get(f"/internal/campaigns/{campaign_id}/progress", headers=OWNER)).json()
        metrics = (await worker.get("/metrics")).text
        # a bounce reported later by the notifier is counted, once, for that delivery
        succeeded = watch.delivered()[0]
        bounce = DeliveryBounced(
            campaign_id=campaign_id,
            delivery_id=succeeded.delivery_id,
            recipient=succeeded.recipient,
            status="5.1.1",
            reason="user unknown",
            hard=True,
            diagnostic="550 5.1.1 user unknown",
        )
        event = envelope_for(bounce)
        await broker.publish_event(event)
        await broker.publish_event(event)
        async with asyncio.timeout(10):
            url = f"/internal/campaigns/{campaign_id}/progress"
            while (await api.get(url, headers=OWNER)).json()["bounced"] != 1:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        # a delay notice for another delivery shows as 遅延中; one for the bounced delivery does not
        for delayed in watch.delivered()[:2]:
            await broker.publish_event(
                envelope_for(
                    DeliveryDelayed(
                        campaign_id=campaign_id,
                        delivery_id=delayed.delivery_id,
                        recipient=delayed.recipient,
                        status="4.4.1",
                    )
                )
            )
        async with asyncio.timeout(10):
            while (await api.get(url, headers=OWNER)).json()["delayed"] != 1:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    assert len(completed) == 1
    for name in (
        'isseimail_dispatch_messages_total{domain="other",outcome="sent",reply_class="2xx"}',
        "isseimail_dispatch_bytes_sent_total",
        "isseimail_dispatch_smtp_transaction_seconds_count",
    ):
        value = next(line for line in metrics.splitlines() if line.startswith(name + " "))
        assert float(value.split()[-1]) >= 43
    assert (completed[0].total, completed[0].sent, completed[0].failed) == (43, 43, 0)
    assert progress["status"] == "completed"
    assert (progress["total"], progress["sent"], progress["pending"]) == (43, 43, 0)
    messages = smtp_server.messages
    assert len(messages) == 43
    by_rcpt = {m.rcpt_tos[0]: m for m in messages}
    assert len(by_rcpt) == 43
    assert len(watch.delivered()) == 43
    rows_reported = {e.recipient: e.row_number for e in watch.delivered()}
    assert all(rows_reported[row.email] == row.row for row in rows)  # bounce reports can name the CSV row
    for row in rows:
        captured = by_rcpt[row.email]
        tag = parse_bounce_address(b"test-verp-secret", settings.bounce_domain, captured.mail_from)
        assert tag is not None
        assert tag.campaign_id == campaign_id
        msg = captured.message()
        assert msg["To"] == row.email
        mailto, url = msg["List-Unsubscribe"].split(", ")
        token = url.removeprefix("<https://mail.example.jp/unsubscribe/").removesuffix(">")
        assert mailto == f"<mailto:unsubscribe+{token}@{settings.bounce_domain}>"
        ref = read_token(token)  # names this delivery, for this recipient and the sender's organisation
        assert ref is not None
        assert (ref.campaign_id, ref.delivery_id) == (tag.campaign_id, tag.delivery_id)
        assert verify(b"test-verp-secret", ref, row.email, "corp.example.jp")
        assert not verify(b"test-verp-secret", ref, row.email, "other.example.jp")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        body = msg.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert f"担当 {row.row} 様" in text
        assert ".先頭のドット" in text  # dot-stuffing undone by the server, not lost
    assert "sender@corp.example.jp" in by_rcpt
