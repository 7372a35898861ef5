"""Sending from a sender domain that fails DKIM or DMARC, across the real services: the dispatcher makes the
DKIM key, the composer compares it with DNS (loopback), the gateway refuses the send (the pass is kept) until
an administrator overrides it through the admin API, and the override is audited."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from tests.flow_support import ADMIN, DAY, NOW, list_validator_settings, upload_valid_list

from isseimail_composer.app import create_app as composer_app
from isseimail_composer.settings import ComposerSettings
from isseimail_dispatcher.app import create_app as dispatcher_app
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_gateway.app import create_app as gateway_app
from isseimail_gateway.settings import GatewaySettings
from isseimail_list_validator.app import create_app as lv_app
from isseimail_pass.app import create_app as pass_app
from isseimail_pass.settings import PassSettings
from isseimail_testing.dns import DnsServer
from isseimail_testing.fixtures import INTERNAL_HEADERS, INTERNAL_TOKEN
from isseimail_testing.http import serving_service
from isseimail_testing.passes import gateway_login, issue_pass
from isseimail_testing.process import free_port, running_app

DOMAIN = "sender.example.jp"
BOUNCE = "bounce.sender.example.jp"
KEY_SECRET = "x3uLq0tOQ3bH2b8m3dX4d5pXw1hZb0v3b9mU8kq7n6Y="  # a Fernet key for tests only


@dataclass
class Stack:
    gateway: Callable[[], Any]
    pass_url: str
    dispatcher_url: str
    database_url: str


@pytest.fixture
async def stack(make_settings: Callable[..., Any], dns_server: DnsServer, database_url: str) -> AsyncIterator[Stack]:
    """pass-service, list-validator, composer and dispatcher on real ports; sender.example.jp has SPF and a bounce
    MX but neither a DKIM record nor DMARC yet."""
    dns_server.zone("good.co.jp", mx=[(10, "mx.good.co.jp")])
    dns_server.zone(DOMAIN, txt=["v=spf1 ip4:192.0.2.10 -all"])
    dns_server.zone(BOUNCE, mx=[(10, "mail.sender.example.jp")], txt=["v=spf1 ip4:192.0.2.10 -all"])
    dns_server.zone("mail.sender.example.jp", a=["192.0.2.10"])
    lv_settings = list_validator_settings(make_settings, dns_server)
    shared: dict[str, Any] = {"dns_nameservers": dns_server.nameserver, "bounce_domain": BOUNCE}
    async with contextlib.AsyncExitStack() as s:
        pass_url = await s.enter_async_context(
            serving_service(
                pass_app(make_settings(PassSettings, admin_email=ADMIN[0], admin_password=ADMIN[1]), clock=lambda: NOW)
            )
        )
        lv_url = await s.enter_async_context(serving_service(lv_app(lv_settings)))
        composer_port = free_port()
        dispatcher_settings = make_settings(
            DispatcherSettings,
            dkim_key_secret=KEY_SECRET,
            composer_url=f"http://127.0.0.1:{composer_port}",
            **shared,
        )
        dispatcher_url = await s.enter_async_context(serving_service(dispatcher_app(dispatcher_settings)))
        composer_settings = make_settings(
            ComposerSettings,
            list_validator_url=lv_url,
            sender_domains=DOMAIN,
            dispatcher_url=dispatcher_url,
            dns_timeout_seconds=0.5,
            helo_name="mail.sender.example.jp",
            sending_ips="192.0.2.10",
            **shared,
        )
        composer_url = await s.enter_async_context(serving_service(composer_app(composer_settings), port=composer_port))

        def gateway() -> Any:
            settings = GatewaySettings(
                internal_tokens=INTERNAL_TOKEN,
                session_secret="domain-readiness-secret",
                pass_url=pass_url,
                list_validator_url=lv_url,
                composer_url=composer_url,
                dispatcher_url=dispatcher_url,
                notifier_url=f"http://127.0.0.1:{free_port()}",
            )
            return running_app(gateway_app(settings))

        yield Stack(gateway, pass_url, dispatcher_url, database_url)


async def test_send_refused_for_failing_dkim_and_dmarc_until_overridden(stack: Stack, dns_server: DnsServer) -> None:
    """The DKIM key from the real dispatcher is checked against DNS; with DKIM fixed but DMARC missing the send is
    refused with a Japanese reason and the pass is kept; the administrator's override lets the same pass send."""
    async with httpx.AsyncClient(base_url=stack.dispatcher_url, headers=INTERNAL_HEADERS) as dispatcher:
        made = await dispatcher.post(f"/internal/dkim/{DOMAIN}/keys", json={"algorithm": "rsa"})
        assert made.status_code == 201, made.text
        key = made.json()["key"]

    async with stack.gateway() as admin, stack.gateway() as user:
        r = await admin.post("/api/v1/admin/session", json={"email": ADMIN[0], "password": ADMIN[1]})
        assert r.status_code == 200
        report = (await admin.get(f"/api/v1/admin/domains/{DOMAIN}")).json()
        dkim = [f for f in report["findings"] if f["check"] == "dkim"]
        assert dkim[0]["status"] == "error"
        assert f"isseimail-dispatcher dkim rotate {DOMAIN}" in dkim[0]["message"]
        assert dkim[0]["records"] == [{"name": key["txt_name"], "type": "TXT", "value": key["txt_value"]}]

        # The operator publishes the record and rotates: DKIM is now fine, DMARC still missing.
        dns_server.zone(key["txt_name"], txt=[key["txt_value"]])
        async with httpx.AsyncClient(base_url=stack.dispatcher_url, headers=INTERNAL_HEADERS) as dispatcher:
            rotated = await dispatcher.post(f"/internal/dkim/{DOMAIN}/rotate")
            assert rotated.status_code == 200, rotated.text
        report = (await admin.get(f"/api/v1/admin/domains/{DOMAIN}", params={"refresh": "true"})).json()
        assert [f["status"] for f in report["findings"] if f["check"] == "dkim"] == ["ok"]
        assert report["blocking"] == ["dmarc"]

        issued = await issue_pass(
            stack.pass_url, stack.database_url, admin=ADMIN, applicant_email="taro@example.co.jp", use_date=DAY
        )
        await gateway_login(user, issued)
        list_id = await upload_valid_list(user, [("hanako@good.co.jp", "", "", "", "各位")])
        form = {
            "list_id": list_id,
            "sender_email": f"taro@{DOMAIN}",
            "sender_name": "山田太郎",
            "subject": "ご案内",
            "body": "いつもお世話になっております。",
            "charset": "utf-8",
        }
        created = await user.post("/api/v1/campaigns", data=form)
        assert created.status_code == 201, created.text
        campaign_id = created.json()["campaign_id"]
        refused = await user.post(f"/api/v1/campaigns/{campaign_id}/send")
        assert refused.status_code == 422, refused.text
        assert "DMARC" in refused.json()["errors"]["sender_email"]

        overridden = await admin.post(
            f"/api/v1/admin/domains/{DOMAIN}/override", json={"reason": "DMARCは本日中に公開予定"}
        )
        assert overridden.status_code == 201, overridden.text
        sent = await user.post(f"/api/v1/campaigns/{campaign_id}/send")
        assert sent.status_code == 202, sent.text

    conn = await asyncpg.connect(stack.database_url, server_settings={"search_path": "composer"})
    try:
        audit = await conn.fetchrow(
            "SELECT created_by, reason, withdrawn_at FROM domain_overrides WHERE domain = $1", DOMAIN
        )
    finally:
        await conn.close()
    assert audit is not None
    assert audit["created_by"] == ADMIN[0]
    assert audit["reason"] == "DMARCは本日中に公開予定"
    assert audit["withdrawn_at"] is None
