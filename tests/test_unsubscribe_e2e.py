"""Issue 11's unsubscribe and complaint paths across real services: a campaign goes out through the dispatcher
to a real SMTP capture server; its List-Unsubscribe mailto is sent to the notifier's real listener, its
one-click URL is POSTed through the gateway from outside the intranet, a feedback report about a third
recipient arrives at fbl@; afterwards the list validator and the composer's ready-check refuse those three
for the sender's organisation, with the reason, and the complaint rate shows in the notifier's metrics."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import httpx

from isseimail_composer.app import create_app as composer_app
from isseimail_composer.settings import ComposerSettings
from isseimail_dispatcher.app import create_app as dispatcher_app
from isseimail_dispatcher.app import create_worker_app
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_gateway.app import create_app as gateway_app
from isseimail_gateway.settings import GatewaySettings
from isseimail_list_validator.app import create_app as lv_app
from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_notifier import complaint_rates
from isseimail_notifier.app import create_app as notifier_app
from isseimail_notifier.bounce_listener import BounceListener
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.app import runtime_of
from isseimail_shared.events import CampaignAccepted, envelope_for
from isseimail_shared.messaging import Broker
from isseimail_testing.dns import DnsServer
from isseimail_testing.fixtures import INTERNAL_HEADERS
from isseimail_testing.http import serving_service
from isseimail_testing.process import running_app
from isseimail_testing.smtp import CaptureServer
from isseimail_testing.snapshot import SENDER, SnapshotPeer, make_recipients

FEEDBACK = Path(__file__).resolve().parent.parent / "services" / "notifier" / "tests" / "feedback"
ORG = SENDER.rpartition("@")[2]
PUBLIC = "https://mail.example.jp"
PASS = {"X-Isseimail-Pass-Id": "77", "X-Isseimail-User-Id": "123456"}


async def smtp_send(port: int, mail_from: str, rcpt: str, data: bytes) -> int:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
    await client.connect()
    try:
        await client.mail(mail_from)
        await client.rcpt(rcpt)
        return (await client.data(data)).code
    finally:
        client.close()


async def wait_value(conn: asyncpg.Connection, sql: str, expected: object, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await conn.fetchval(sql) != expected:
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(sql)
        await asyncio.sleep(0.1)


def unsubscribe_uris(message: Message) -> tuple[str, str]:
    mailto, url = (u.strip().strip("<>") for u in str(message["List-Unsubscribe"]).split(","))
    return mailto.removeprefix("mailto:"), url


async def upload_list(lv_url: str, emails: list[str]) -> str:
    lines = ["メールアドレス,会社名,部署名1,部署名2,ご担当者名", *(f"{e},株式会社テスト,,,各位" for e in emails)]
    async with httpx.AsyncClient(base_url=lv_url, timeout=30, headers=INTERNAL_HEADERS) as client:
        r = await client.post("/internal/lists", content="\r\n".join(lines).encode("utf-8"), headers=PASS)
        assert r.status_code == 202, r.text
        list_id: str = r.json()["list_id"]
        for _ in range(1200):
            body = (await client.get(f"/internal/lists/{list_id}", headers=PASS)).json()
            if body["status"] != "validating":
                assert body["status"] == "valid", body
                return list_id
            await asyncio.sleep(0.05)
    raise TimeoutError(list_id)


async def test_unsubscribes_and_complaints_suppress_the_next_list(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    snapshot_peer: SnapshotPeer,
    broker: Broker,
    database_url: str,
    dns_server: DnsServer,
) -> None:
    """mailto, one-click and an ARF report each suppress their recipient for the sender's organisation."""
    dns_server.zone("example.jp", mx=[(10, "mx.example.jp")])
    dispatcher = make_settings(DispatcherSettings, composer_url=snapshot_peer.url, public_url=PUBLIC)
    notifier = notifier_app(make_settings(NotifierSettings, bounce_listen_port=0))
    db = await asyncpg.connect(database_url, server_settings={"search_path": "notifier"})
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(db.close)
        notifier_url = await stack.enter_async_context(serving_service(notifier))
        await stack.enter_async_context(running_app(dispatcher_app(dispatcher)))
        await stack.enter_async_context(running_app(create_worker_app(dispatcher)))
        lv_settings = make_settings(
            ListValidatorSettings,
            dns_nameservers=dns_server.nameserver,
            dns_timeout_seconds=0.5,
            result_flush_seconds=0.02,
            notifier_url=notifier_url,
        )
        lv_url = await stack.enter_async_context(serving_service(lv_app(lv_settings)))
        composer_url = await stack.enter_async_context(
            serving_service(composer_app(make_settings(ComposerSettings, list_validator_url=lv_url)))
        )
        gateway = await stack.enter_async_context(
            running_app(
                gateway_app(make_settings(GatewaySettings, notifier_url=notifier_url, trusted_proxies="10.0.0.1/32")),
                client_ip="10.0.0.1",
            )
        )

        # 1. a campaign of five goes out (six deliveries with the sender's copy)
        campaign_id = snapshot_peer.add(make_recipients(5), subject="新製品のご案内")
        await broker.publish_event(
            envelope_for(
                CampaignAccepted(
                    campaign_id=campaign_id, pass_id=1, recipient_count=5, sender_email=SENDER, subject="新製品のご案内"
                )
            )
        )
        await wait_value(
            db, "SELECT coalesce(sum(cardinality(delivery_ids)), 0) FROM delivered_groups", 6
        )  # and the sender
        captured = {m.rcpt_tos[0]: m for m in smtp_server.messages}
        listener = runtime_of(notifier).registry.get(BounceListener)

        # 2. user2 uses the mailto: (a mail client sends an empty mail to it)
        mailto, _ = unsubscribe_uris(captured["user2@example.jp"].message())
        assert mailto.startswith("unsubscribe+")
        body = b"From: user2@example.jp\r\nSubject: unsubscribe\r\n\r\n"
        assert await smtp_send(listener.port, "user2@example.jp", mailto, body) == 250

        # 3. user3's mailbox provider POSTs the one-click URL from outside the intranet
        _, url = unsubscribe_uris(captured["user3@example.jp"].message())
        assert url.startswith(f"{PUBLIC}/unsubscribe/")
        path = url.removeprefix(PUBLIC)
        outside = {"X-Forwarded-For": "203.0.113.50"}
        done = await gateway.post(path, data={"List-Unsubscribe": "One-Click"}, headers=outside)
        assert done.status_code == 200
        assert "配信停止しました" in done.text
        replay = await gateway.post(path, data={"List-Unsubscribe": "One-Click"}, headers=outside)
        assert replay.status_code == 200
        assert (await gateway.get("/", headers=outside)).status_code == 403
        assert (await gateway.post("/api/v1/lists", headers=outside)).status_code == 403

        # 4. user4's provider sends a feedback report (the original's header, our VERP and token in it)
        user4 = captured["user4@example.jp"]
        report = (
            (FEEDBACK / "provider-headers-only.eml")
            .read_bytes()
            .replace(b"@@RETURN_PATH@@", user4.mail_from.encode())
            .replace(b"@@LIST_UNSUBSCRIBE@@", str(user4.message()["List-Unsubscribe"]).encode())
        )
        assert await smtp_send(listener.port, "fbl@fbl.mail.example", f"fbl@{dispatcher.bounce_domain}", report) == 250

        # 5. the next list with those addresses: the list validator names them with the reason ...
        list_id = await upload_list(lv_url, [f"user{i}@example.jp" for i in range(1, 6)])
        async with httpx.AsyncClient(base_url=lv_url, headers=INTERNAL_HEADERS) as client:
            refused = (
                await client.get(f"/internal/lists/{list_id}/suppressed", params={"organisation": ORG}, headers=PASS)
            ).json()
            other_org = (
                await client.get(
                    f"/internal/lists/{list_id}/suppressed", params={"organisation": "other.example.jp"}, headers=PASS
                )
            ).json()
        # ... and the composer's ready-check refuses to send it from the same organisation
        async with httpx.AsyncClient(base_url=composer_url, timeout=30, headers=INTERNAL_HEADERS) as client:
            form = {
                "list_id": list_id,
                "sender_email": SENDER,
                "sender_name": "送信 太郎",
                "subject": "二通目のご案内",
                "body": "いつもお世話になっております。",
                "charset": "utf-8",
            }
            draft = await client.post("/internal/campaigns", data=form, headers=PASS)
            assert draft.status_code == 201, draft.text
            ready = await client.post(f"/internal/campaigns/{draft.json()['campaign_id']}/ready", headers=PASS)
        rates = await complaint_rates.refresh(notifier.state.runtime.pool)
        async with httpx.AsyncClient(base_url=notifier_url, headers=INTERNAL_HEADERS) as client:
            metrics = (await client.get("/metrics")).text

    assert [(r["row"], r["code"]) for r in refused["rows"]] == [
        (3, "unsubscribed"),
        (4, "unsubscribed"),
        (5, "complained"),
    ]
    assert refused["rows"][0]["message"].startswith("配信停止の申し出があったアドレスです")
    assert refused["rows"][2]["message"].startswith("迷惑メールの報告があったアドレスです")
    assert other_org["rows"] == []  # another sender organisation may still mail them
    assert ready.status_code == 422
    message = ready.json()["errors"]["list_id"]
    assert re.search(r"3行目 user2@example\.jp（配信停止の申し出", message)
    assert re.search(r"5行目 user4@example\.jp（迷惑メールの報告", message)
    assert rates[str(campaign_id)] == 1 / 6
    assert f'isseimail_campaign_complaint_rate{{campaign="{campaign_id}"}}' in metrics
