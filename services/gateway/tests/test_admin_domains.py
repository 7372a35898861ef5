"""The administrator's sender-domain page and API over the real pass-service and composer, with DNS on
loopback and a stand-in dispatcher serving the DKIM key contract: findings, records, audited override."""

from __future__ import annotations

import contextlib
import html
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from isseimail_composer.app import create_app as composer_app
from isseimail_composer.settings import ComposerSettings
from isseimail_gateway.app import create_app
from isseimail_gateway.settings import GatewaySettings
from isseimail_pass.app import create_app as pass_app
from isseimail_pass.settings import PassSettings
from isseimail_testing.dns import DnsServer
from isseimail_testing.http import serving, serving_service
from isseimail_testing.process import free_port, running_app

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, admin_login, csrf_token

DOMAIN = "corp.example.jp"
BOUNCE = "bounce.corp.example.jp"


def dkim_peer(keys: dict[str, list[dict[str, Any]]]) -> FastAPI:
    app = FastAPI()

    @app.get("/internal/dkim/{domain}")
    async def dkim(domain: str) -> JSONResponse:
        return JSONResponse({"domain": domain, "keys": keys.get(domain, [])})

    return app


@pytest.fixture
async def gateway(make_settings: Callable[..., Any], dns_server: DnsServer) -> AsyncIterator[httpx.AsyncClient]:
    """corp.example.jp: good SPF and bounce MX, a DKIM key the dispatcher has but DNS does not, no DMARC."""
    public = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtest"
    keys = {
        DOMAIN: [
            {
                "selector": "s1",
                "algorithm": "rsa-sha256",
                "state": "active",
                "public_key": public,
                "txt_name": f"s1._domainkey.{DOMAIN}",
                "txt_value": f"v=DKIM1; k=rsa; p={public}",
            }
        ]
    }
    dns_server.zone(DOMAIN, txt=["v=spf1 ip4:192.0.2.10 -all"])
    dns_server.zone(BOUNCE, mx=[(10, "mail.corp.example.jp")], txt=["v=spf1 ip4:192.0.2.10 -all"])
    dns_server.zone("mail.corp.example.jp", a=["192.0.2.10"])
    pass_port = free_port()
    pass_settings = make_settings(PassSettings, admin_email=ADMIN_EMAIL, admin_password=ADMIN_PASSWORD)
    async with contextlib.AsyncExitStack() as stack:
        dispatcher_url = await stack.enter_async_context(serving(dkim_peer(keys)))
        composer_settings = make_settings(
            ComposerSettings,
            sender_domains=DOMAIN,
            dns_nameservers=dns_server.nameserver,
            dns_timeout_seconds=0.5,
            dispatcher_url=dispatcher_url,
            bounce_domain=BOUNCE,
            helo_name="mail.corp.example.jp",
            sending_ips="192.0.2.10",
        )
        composer_url = await stack.enter_async_context(serving_service(composer_app(composer_settings)))
        await stack.enter_async_context(serving_service(pass_app(pass_settings), port=pass_port))
        settings = make_settings(
            GatewaySettings,
            session_secret="admin-domains-secret",
            pass_url=f"http://127.0.0.1:{pass_port}",
            composer_url=composer_url,
        )
        yield await stack.enter_async_context(running_app(create_app(settings)))


async def test_api_needs_admin_and_audits_the_override(gateway: httpx.AsyncClient) -> None:
    """Without the admin cookie: 401. With it: the report lists DKIM and DMARC errors with their records; the
    override is made and withdrawn in the administrator's name, and bad input is a Japanese 4xx."""
    for method, path in (
        ("GET", "/api/v1/admin/domains"),
        ("GET", f"/api/v1/admin/domains/{DOMAIN}"),
        ("POST", f"/api/v1/admin/domains/{DOMAIN}/override"),
        ("DELETE", f"/api/v1/admin/domains/{DOMAIN}/override"),
    ):
        response = await gateway.request(method, path, json={"reason": "x"})
        assert response.status_code == 401, path
    r = await gateway.post("/api/v1/admin/session", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    listing = (await gateway.get("/api/v1/admin/domains")).json()["domains"]
    assert [d["domain"] for d in listing] == [DOMAIN]
    report = listing[0]
    assert report["refused"] is True
    assert report["blocking"] == ["dkim", "dmarc"]
    records = {(r["name"], r["type"]) for f in report["findings"] for r in f["records"]}
    assert (f"s1._domainkey.{DOMAIN}", "TXT") in records
    assert (f"_dmarc.{DOMAIN}", "TXT") in records

    empty = await gateway.post(f"/api/v1/admin/domains/{DOMAIN}/override", json={"reason": "  "})
    assert empty.status_code == 422
    assert empty.json()["detail"] == "理由を入力してください。"
    long = await gateway.post(f"/api/v1/admin/domains/{DOMAIN}/override", json={"reason": "x" * 501})
    assert long.status_code == 422
    other = await gateway.post("/api/v1/admin/domains/other.example.jp/override", json={"reason": "x"})
    assert other.status_code == 404
    assert "送信ドメイン" in other.json()["detail"]
    bad = await gateway.get("/api/v1/admin/domains/" + "a" * 254)
    assert bad.status_code == 422

    made = await gateway.post(f"/api/v1/admin/domains/{DOMAIN}/override", json={"reason": "DNS公開待ち"})
    assert made.status_code == 201, made.text
    assert made.json()["created_by"] == ADMIN_EMAIL
    report = (await gateway.get(f"/api/v1/admin/domains/{DOMAIN}")).json()
    assert report["refused"] is False
    assert report["override"]["created_by"] == ADMIN_EMAIL
    gone = await gateway.request("DELETE", f"/api/v1/admin/domains/{DOMAIN}/override", json={"reason": "公開完了"})
    assert gone.status_code == 200
    report = (await gateway.get(f"/api/v1/admin/domains/{DOMAIN}", params={"refresh": "true"})).json()
    assert report["refused"] is True
    assert report["override_history"][0]["withdrawn_by"] == ADMIN_EMAIL
    assert report["override_history"][0]["withdraw_reason"] == "公開完了"


async def test_page_shows_findings_records_and_override_forms(gateway: httpx.AsyncClient) -> None:
    """The page lists every finding with the exact record to publish; the override form (CSRF-checked) sets and
    withdraws the exception, and the page says who allowed it and why."""
    assert (await gateway.get("/admin/domains")).status_code == 401
    await admin_login(gateway)
    page = await gateway.get("/admin/domains")
    assert page.status_code == 200
    assert 'href="/admin/domains" aria-current="page"' in page.text
    text = html.unescape(page.text)
    assert "一斉送信は拒否されています" in text
    assert f"s1._domainkey.{DOMAIN}" in text
    assert "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtest" in text
    assert f"_dmarc.{DOMAIN}" in text
    assert f"v=DMARC1; p=none; adkim=r; aspf=r; rua=mailto:dmarc-reports@{DOMAIN}" in text
    assert "SPFは正しく設定されています" in text

    url = f"/admin/domains/{DOMAIN}/override"
    forged = await gateway.post(url, data={"reason": "CSRFなし"})
    assert forged.status_code == 403
    empty = await gateway.post(url, data={"csrf_token": csrf_token(page), "reason": " "})
    assert empty.status_code == 422
    assert "理由を入力してください" in empty.text
    hostile = "<script>alert(1)</script>"
    made = await gateway.post(url, data={"csrf_token": csrf_token(page), "reason": f"来週公開 {hostile}"})
    assert made.status_code == 303
    assert made.headers["location"] == "/admin/domains?done=overridden"
    page = await gateway.get("/admin/domains?done=overridden")
    assert "例外により送信を許可中" in page.text
    assert ADMIN_EMAIL in page.text
    assert hostile not in page.text
    assert "&lt;script&gt;" in page.text
    assert "例外を取り消す" in page.text
    again = await gateway.post(url, data={"csrf_token": csrf_token(page), "reason": "二重"})
    assert again.status_code == 409
    withdrawn = await gateway.post(
        f"/admin/domains/{DOMAIN}/withdraw", data={"csrf_token": csrf_token(page), "reason": "公開しました"}
    )
    assert withdrawn.status_code == 303
    page = await gateway.get("/admin/domains?refresh=1")
    assert "一斉送信は拒否されています" in page.text
    assert "例外の履歴（1 件）" in page.text
