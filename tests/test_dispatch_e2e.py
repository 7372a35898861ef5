"""A 1,000-recipient campaign through the real services: list-validator (CSV + DNS), composer (draft,
freeze on pass.consumed, snapshot), dispatcher (serve + SMTP worker) and notifier, with the real broker,
database, DNS and SMTP servers. The capture server ends with 1,001 campaign messages, each addressed
and stamped for its recipient, and campaign.completed is published once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from isseimail_composer.app import create_app as composer_app
from isseimail_composer.settings import ComposerSettings
from isseimail_dispatcher.app import create_app as dispatcher_app
from isseimail_dispatcher.app import create_worker_app
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_list_validator.app import create_app as lists_app
from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_notifier.app import create_app as notifier_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.events import PassConsumed, envelope_for
from isseimail_shared.messaging import Broker
from isseimail_shared.verp import parse_bounce_address
from isseimail_testing.dns import DnsServer
from isseimail_testing.fixtures import INTERNAL_HEADERS
from isseimail_testing.http import serving_service
from isseimail_testing.lists import csv_bytes, upload, wait_done
from isseimail_testing.pdfs import sample_pdf
from isseimail_testing.process import running_app
from isseimail_testing.smtp import CaptureServer
from isseimail_testing.watch import watching

pytestmark = pytest.mark.timeout(300)  # six services and 1,001 messages on a shared 2-core machine

PASS_ID = 41
HEADERS = {"X-Isseimail-Pass-Id": str(PASS_ID), "X-Isseimail-User-Id": "123456"}
SENDER = "taro@example.co.jp"
COUNT = 1000
PDF = sample_pdf(65_536, title="dispatch e2e")


async def test_thousand_recipients_through_the_real_services(
    make_settings: Callable[..., Any], smtp_server: CaptureServer, dns_server: DnsServer, amqp_url: str
) -> None:
    """1,000 rows + the sender's copy: 1,001 stamped messages, one campaign.completed, the report to the sender."""
    domains = [f"kaisha{i}.example.jp" for i in range(5)]
    for domain in [*domains, "example.co.jp"]:
        dns_server.zone(domain, mx=[(10, f"mx.{domain}")])
    rows = [
        (f"user{i}@{domains[i % 5]}", f"会社{i}", "営業部", "", "各位" if i % 100 == 0 else f"担当{i}")
        for i in range(1, COUNT + 1)
    ]
    broker = Broker(amqp_url, name="e2e-test")
    await broker.connect()
    dispatch = {"batch_size": 100, "worker_prefetch": 8, "domain_per_minute": 1_000_000, "scheduler_seconds": 0.2}
    try:
        async with (
            serving_service(notifier_app(make_settings(NotifierSettings))) as notifier_url,
            serving_service(
                lists_app(
                    make_settings(
                        ListValidatorSettings,
                        dns_nameservers=dns_server.nameserver,
                        notifier_url=notifier_url,
                        result_flush_seconds=0.02,
                    )
                )
            ) as lists_url,
            serving_service(composer_app(make_settings(ComposerSettings, list_validator_url=lists_url))) as comp_url,
            running_app(dispatcher_app(make_settings(DispatcherSettings, composer_url=comp_url, **dispatch))) as api,
            running_app(create_worker_app(make_settings(DispatcherSettings, **dispatch))),
            httpx.AsyncClient(base_url=lists_url, timeout=30, headers=INTERNAL_HEADERS) as lists,
            httpx.AsyncClient(base_url=comp_url, timeout=30, headers=INTERNAL_HEADERS) as composer,
            watching(broker, ["campaign.*", "deliveries.settled"]) as watch,
        ):
            uploaded = await upload(lists, csv_bytes(rows), pass_id=PASS_ID)
            assert uploaded.status_code == 202, uploaded.text
            list_id = uploaded.json()["list_id"]
            summary = await wait_done(lists, list_id, timeout=60, pass_id=PASS_ID)
            assert summary["status"] == "valid", summary
            draft = await composer.post(
                "/internal/campaigns",
                data={
                    "list_id": list_id,
                    "sender_email": SENDER,
                    "sender_name": "株式会社サンプル 山田太郎",
                    "subject": "【ご案内】新製品発表会",
                    "body": "いつもお世話になっております。\n発表会のご案内です。",
                    "charset": "iso-2022-jp",
                },
                files=[("attachments", ("ご案内.pdf", PDF, "application/pdf"))],
                headers=HEADERS,
            )
            assert draft.status_code == 201, draft.text
            campaign_id = uuid.UUID(draft.json()["campaign_id"])
            ready = await composer.post(f"/internal/campaigns/{campaign_id}/ready", headers=HEADERS)
            assert ready.status_code == 200, ready.text
            consumed = PassConsumed(pass_id=PASS_ID, campaign_id=campaign_id, user_id="123456")
            await broker.publish_event(envelope_for(consumed))
            completed = await watch.wait_for("campaign.completed", timeout=120)
            progress = (
                await api.get(
                    f"/internal/campaigns/{campaign_id}/progress", headers={"X-Isseimail-Pass-Id": str(PASS_ID)}
                )
            ).json()
            await smtp_server.wait_for(1, rcpt=SENDER)
            await asyncio.sleep(0.5)  # a duplicate, if there were one, would arrive now
    finally:
        await broker.close()

    assert len(completed) == 1
    assert (completed[0].total, completed[0].sent, completed[0].failed) == (COUNT + 1, COUNT + 1, 0)
    assert (progress["status"], progress["sent"], progress["pass_id"]) == ("completed", COUNT + 1, PASS_ID)
    assert not watch.failed()
    assert len(watch.delivered()) == len({m.rcpt_tos[0] for m in smtp_server.messages if m.mail_from.startswith("b-")})
    campaign_mail = [m for m in smtp_server.messages if m.mail_from.startswith("b-")]
    assert len(campaign_mail) == COUNT + 1
    by_rcpt = {m.rcpt_tos[0]: m for m in campaign_mail}
    assert set(by_rcpt) == {r[0] for r in rows} | {SENDER}
    for i in (1, 2, 100, 577, COUNT):
        email, company, _, _, contact = rows[i - 1]
        captured = by_rcpt[email]
        tag = parse_bounce_address(b"test-verp-secret", "bounce.isseimail.localhost", captured.mail_from)
        assert tag is not None
        assert tag.campaign_id == campaign_id
        msg = captured.message()
        assert msg["To"] == email
        assert msg["Subject"] == "【ご案内】新製品発表会"
        text = msg.get_body(("plain",))
        assert text is not None
        content = text.get_content().replace("\r\n", "\n")
        expected = contact if contact == "各位" else f"{contact} 様"
        assert content.startswith(f"{company}\n営業部\n{expected}\n")
        assert "発表会のご案内です。" in content
        attachments = list(msg.iter_attachments())
        assert len(attachments) == 1
        assert attachments[0].get_content() == PDF
    ids = {by_rcpt[r[0]].message()["Message-ID"] for r in rows}
    assert len(ids) == COUNT  # one Message-ID per recipient
