"""Compose and send across the real services: gateway → composer / list-validator / pass-service, and
pass.consumed over RabbitMQ freezing the campaign in the composer (real PostgreSQL, RabbitMQ, DNS)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.flow_support import ADMIN, DAY, NOW, list_validator_settings, upload_valid_list

from isseimail_composer.app import create_app as composer_app
from isseimail_composer.settings import ComposerSettings
from isseimail_gateway.app import create_app as gateway_app
from isseimail_gateway.settings import GatewaySettings
from isseimail_list_validator.app import create_app as lv_app
from isseimail_pass.app import create_app as pass_app
from isseimail_pass.settings import PassSettings
from isseimail_shared.mailmerge import CampaignTemplate, Recipient
from isseimail_testing.dns import DnsServer
from isseimail_testing.fixtures import INTERNAL_HEADERS, INTERNAL_TOKEN
from isseimail_testing.http import serving_service
from isseimail_testing.lists import csv_bytes
from isseimail_testing.passes import gateway_login, issue_pass
from isseimail_testing.pdfs import sample_pdf
from isseimail_testing.process import free_port, running_app

EXPIRED = "この1DayPassは失効しています。再度申請してください。"
PDF = sample_pdf(25_600, title="compose flow")
ROWS = [
    ("hanako@good.co.jp", "株式会社グッド", "営業部", "第一課", "佐藤花子"),
    ("all@good.co.jp", "グッド商事", "", "", "各位"),
    ("team@good.co.jp", "", "総務部", "", "皆様"),
    ("ichiro@good.co.jp", "", "", "", "鈴木一郎"),
    ("jiro@good.co.jp", "株式会社グッド", "", "経理課", "田中次郎"),
]


@dataclass
class Stack:
    gateway: Callable[[], Any]
    pass_url: str
    composer_url: str
    database_url: str


@pytest.fixture
async def stack(
    make_settings: Callable[..., Any], dns_server: DnsServer, database_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[Stack]:
    """pass-service, list-validator and composer on real ports; a gateway in front of them.
    Parametrised indirectly with {"clamd": True}, the composer scans attachments with the session's clamd."""
    scanning = getattr(request, "param", {}).get("clamd", False)
    composer_extra = {"clamd_url": request.getfixturevalue("clamd_server").tcp_url} if scanning else {}
    dns_server.zone("good.co.jp", mx=[(10, "mx.good.co.jp")])
    pass_settings = make_settings(PassSettings, admin_email=ADMIN[0], admin_password=ADMIN[1])
    lv_settings = list_validator_settings(make_settings, dns_server)
    async with (
        serving_service(pass_app(pass_settings, clock=lambda: NOW)) as pass_url,
        serving_service(lv_app(lv_settings)) as lv_url,
        serving_service(
            composer_app(make_settings(ComposerSettings, list_validator_url=lv_url, **composer_extra))
        ) as composer_url,
    ):
        dead = f"http://127.0.0.1:{free_port()}"

        def gateway() -> Any:
            settings = GatewaySettings(
                internal_tokens=INTERNAL_TOKEN,
                session_secret="compose-test-secret",
                pass_url=pass_url,
                list_validator_url=lv_url,
                composer_url=composer_url,
                dispatcher_url=dead,
                notifier_url=dead,
            )
            return running_app(gateway_app(settings))

        yield Stack(gateway, pass_url, composer_url, database_url)


async def login(stack: Stack, client: httpx.AsyncClient, applicant: str) -> int:
    """Apply, approve and log in through the gateway; returns the pass id (the client keeps the cookie)."""
    issued = await issue_pass(stack.pass_url, stack.database_url, admin=ADMIN, applicant_email=applicant, use_date=DAY)
    await gateway_login(client, issued)
    return issued.pass_id


def form(list_id: str, **overrides: str) -> dict[str, str]:
    values = {
        "list_id": list_id,
        "sender_email": "taro@example.co.jp",
        "sender_name": "株式会社サンプル 営業部 山田太郎",
        "subject": "【ご案内】新製品発表会のお知らせ",
        "body": "いつもお世話になっております。\r\n新製品発表会のご案内をお送りします。",
        "charset": "utf-8",
    }
    values.update(overrides)
    return values


async def wait_snapshot(composer_url: str, campaign_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=composer_url, headers=INTERNAL_HEADERS) as client:
        for _ in range(1200):
            r = await client.get(f"/internal/campaigns/{campaign_id}/snapshot")
            if r.status_code == 200:
                return [json.loads(line) for line in r.text.splitlines()]
            await asyncio.sleep(0.05)
    raise TimeoutError(campaign_id)


async def test_compose_preview_send_once_and_freeze(stack: Stack, tmp_path: Path) -> None:
    """Bad input is 422 by field; preview shows row 1's view; send is 202 once, then 409 失効; the snapshot freezes."""
    async with stack.gateway() as client:
        assert (await client.post("/api/v1/campaigns", data=form("x"))).status_code == 401
        await login(stack, client, "taro@example.co.jp")
        list_id = await upload_valid_list(client, ROWS)

        bad = await client.post(
            "/api/v1/campaigns",
            data=form(list_id, sender_name="山田\r\nBcc: x@evil.example", body="外字\ue000"),
            files=[("attachments", ("偽物.pdf", b"GIF89a", "application/pdf"))],
        )
        assert bad.status_code == 422
        assert set(bad.json()["errors"]) == {"sender_name", "body", "attachments"}

        files = [("attachments", ("発表会のご案内.pdf", PDF, "application/pdf"))]
        created = await client.post("/api/v1/campaigns", data=form(list_id), files=files)
        assert created.status_code == 201, created.text
        campaign_id = created.json()["campaign_id"]

        preview = (await client.get(f"/api/v1/campaigns/{campaign_id}/preview")).json()
        assert preview["from"] == "株式会社サンプル 営業部 山田太郎 <taro@example.co.jp>"
        assert preview["subject"] == "【ご案内】新製品発表会のお知らせ"
        assert preview["text"].startswith(
            "株式会社グッド\n営業部\n第一課\n佐藤花子 様\n\nいつもお世話になっております。"
        )
        assert preview["text"].endswith("株式会社サンプル 営業部 山田太郎\ntaro@example.co.jp\n")
        assert preview["attachments"] == [{"name": "発表会のご案内.pdf", "size": len(PDF)}]

        sent = await client.post(f"/api/v1/campaigns/{campaign_id}/send")
        assert sent.status_code == 202, sent.text
        assert sent.json()["status"] == "accepted"
        again = await client.post(f"/api/v1/campaigns/{campaign_id}/send")
        assert again.status_code == 409
        assert again.json()["detail"] == EXPIRED

    lines = await wait_snapshot(stack.composer_url, campaign_id)
    assert lines[0]["campaign"]["recipient_count"] == 6
    assert [line["row"] for line in lines[1:]] == [2, 3, 4, 5, 6, 0]  # CSV line numbers (header is line 1)
    template = CampaignTemplate.model_validate(lines[0]["template"])
    expected_blocks = ["株式会社グッド\n営業部\n第一課\n佐藤花子 様", "グッド商事\n各位", "総務部\n皆様", "鈴木一郎 様"]
    for line, block in zip(lines[1:5], expected_blocks, strict=True):
        recipient = Recipient.model_validate(line)
        path = tmp_path / f"{recipient.row}.eml"
        path.write_bytes(template.stamp(recipient, message_id=f"{recipient.row}@t", bounce_address="b@b.test"))
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert message["To"] == recipient.email
        assert next(message.iter_parts()).get_content().replace("\r\n", "\n").startswith(block + "\n\n")
        assert [(p.get_filename(), p.get_content()) for p in message.iter_attachments()] == [
            ("発表会のご案内.pdf", PDF)
        ]


async def test_send_refused_until_ready_and_pass_kept(stack: Stack) -> None:
    """A draft whose list is not valid is refused with 422 on list_id, and the pass stays usable."""
    async with stack.gateway() as client:
        await login(stack, client, "hanako@example.co.jp")
        r = await client.post(
            "/api/v1/lists",
            files={"file": ("宛先.csv", csv_bytes([("nobody@missing.example", "", "", "", "各位")]), "text/csv")},
        )
        list_id = r.json()["list_id"]
        for _ in range(1200):  # up to a minute on a loaded machine
            if (await client.get(f"/api/v1/lists/{list_id}")).json()["status"] != "validating":
                break
            await asyncio.sleep(0.05)
        created = await client.post("/api/v1/campaigns", data=form(list_id))
        assert created.status_code == 201, created.text
        campaign_id = created.json()["campaign_id"]
        refused = await client.post(f"/api/v1/campaigns/{campaign_id}/send")
        assert refused.status_code == 422
        assert "list_id" in refused.json()["errors"]
        # the pass was not consumed: the session still works and the draft can be reset
        assert (await client.delete(f"/api/v1/campaigns/{campaign_id}")).status_code == 200
        assert (await client.get(f"/api/v1/campaigns/{campaign_id}/preview")).status_code == 404


async def test_two_simultaneous_sends_one_accepted(stack: Stack) -> None:
    """Two 一斉送信 clicks at once: exactly one 202, the other 409 with the 失効 message."""
    async with stack.gateway() as client:
        await login(stack, client, "jiro@example.co.jp")
        list_id = await upload_valid_list(client, ROWS[:2])
        created = await client.post("/api/v1/campaigns", data=form(list_id))
        campaign_id = created.json()["campaign_id"]
        results = await asyncio.gather(*(client.post(f"/api/v1/campaigns/{campaign_id}/send") for _ in range(2)))
        assert sorted(r.status_code for r in results) == [202, 409]
        assert next(r for r in results if r.status_code == 409).json()["detail"] == EXPIRED
    lines = await wait_snapshot(stack.composer_url, campaign_id)
    assert lines[0]["campaign"]["recipient_count"] == 3
