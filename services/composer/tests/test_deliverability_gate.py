"""The send-time refusal and the audited override over the composer's HTTP API (real PostgreSQL, real DNS
on loopback, a stand-in dispatcher serving the DKIM key contract)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from isseimail_composer.app import create_app
from isseimail_composer.settings import ComposerSettings
from isseimail_testing.dns import DnsServer
from isseimail_testing.process import running_app

from .conftest import HEADERS, FakeLists, sample_rows
from .deliverability_support import DkimPeer, good_domain, readiness_values
from .test_composer_drafts import fields, post

ADMIN = {"actor": "admin@corp.example.jp", "reason": "DMARCは来週公開予定。今回の案内だけ送る。"}


@pytest.fixture
async def composer_dns(
    composer_settings: Callable[..., ComposerSettings], dns_server: DnsServer, dkim_peer: DkimPeer
) -> AsyncIterator[tuple[httpx.AsyncClient, DkimPeer]]:
    """The composer with two sender domains: good.example.jp (all fine) and bad.example.jp (no DMARC)."""
    good_domain(dns_server, dkim_peer)
    good_domain(dns_server, dkim_peer, "bad.example.jp")
    dns_server.zone("_dmarc.bad.example.jp", nxdomain=True)
    settings = composer_settings(
        sender_domains="good.example.jp,bad.example.jp", **readiness_values(dns_server, dkim_peer)
    )
    async with running_app(create_app(settings)) as client:
        yield client, dkim_peer


async def _draft(client: httpx.AsyncClient, fake_lists: FakeLists, sender: str) -> str:
    list_id = fake_lists.add(sample_rows(2))
    response = await post(client, fields(list_id, sender_email=sender))
    assert response.status_code == 201, response.text
    campaign_id: str = response.json()["campaign_id"]
    return campaign_id


async def _ready(client: httpx.AsyncClient, campaign_id: str) -> httpx.Response:
    return await client.post(f"/internal/campaigns/{campaign_id}/ready", headers=HEADERS)


async def test_failing_dmarc_refuses_until_overridden(
    composer_dns: tuple[httpx.AsyncClient, DkimPeer], fake_lists: FakeLists, database_url: str
) -> None:
    """No DMARC: the ready-check refuses with a Japanese reason on sender_email; an override lets it through,
    withdrawing it refuses again, and the audit trail keeps who, when and why for both."""
    client, _ = composer_dns
    good = await _draft(client, fake_lists, "taro@good.example.jp")
    first = await _ready(client, good)
    assert first.status_code == 200, first.text
    bad = await _draft(client, fake_lists, "taro@bad.example.jp")
    refused = await _ready(client, bad)
    assert refused.status_code == 422
    message = refused.json()["errors"]["sender_email"]
    assert "bad.example.jp" in message
    assert "DMARC" in message
    assert "送信できません" in message

    created = await client.post("/internal/domains/bad.example.jp/override", json=ADMIN)
    assert created.status_code == 201, created.text
    assert created.json()["created_by"] == ADMIN["actor"]
    again = await client.post("/internal/domains/bad.example.jp/override", json=ADMIN)
    assert again.status_code == 409
    assert (await _ready(client, bad)).status_code == 200

    report = (await client.get("/internal/domains/bad.example.jp/readiness")).json()
    assert report["blocking"] == ["dmarc"]
    assert report["override"]["reason"] == ADMIN["reason"]
    assert report["refused"] is False

    withdrawn = await client.request(
        "DELETE",
        "/internal/domains/bad.example.jp/override",
        json={"actor": "chief@corp.example.jp", "reason": "公開済み"},
    )
    assert withdrawn.status_code == 200
    gone = await client.request("DELETE", "/internal/domains/bad.example.jp/override", json=ADMIN)
    assert gone.status_code == 404
    assert (await _ready(client, bad)).status_code == 422

    conn = await asyncpg.connect(database_url, server_settings={"search_path": "composer"})
    try:
        rows = await conn.fetch("SELECT * FROM domain_overrides")
    finally:
        await conn.close()
    assert len(rows) == 1
    assert rows[0]["created_by"] == ADMIN["actor"]
    assert rows[0]["withdrawn_by"] == "chief@corp.example.jp"
    assert rows[0]["withdraw_reason"] == "公開済み"
    assert rows[0]["withdrawn_at"] >= rows[0]["created_at"]
    history = (await client.get("/internal/domains/bad.example.jp/readiness")).json()["override_history"]
    assert [h["withdrawn_by"] for h in history] == ["chief@corp.example.jp"]


async def test_fixing_dns_lifts_the_refusal(
    composer_dns: tuple[httpx.AsyncClient, DkimPeer], fake_lists: FakeLists, dns_server: DnsServer
) -> None:
    """Once DMARC is published, a fresh look clears the refusal (no override needed)."""
    client, _ = composer_dns
    bad = await _draft(client, fake_lists, "taro@bad.example.jp")
    assert (await _ready(client, bad)).status_code == 422
    dns_server.zone("_dmarc.bad.example.jp", txt=["v=DMARC1; p=quarantine; rua=mailto:r@bad.example.jp"])
    report = (await client.get("/internal/domains/bad.example.jp/readiness", params={"refresh": "true"})).json()
    assert report["blocking"] == []
    assert (await _ready(client, bad)).status_code == 200


async def test_domain_list_and_hostile_input(composer_dns: tuple[httpx.AsyncClient, DkimPeer]) -> None:
    """Every sender domain is listed; bad names, unknown domains and empty or oversized reasons are 4xx in Japanese."""
    client, _ = composer_dns
    listing = (await client.get("/internal/domains")).json()["domains"]
    assert [(d["domain"], d["refused"]) for d in listing] == [("bad.example.jp", True), ("good.example.jp", False)]
    assert all(d["findings"] for d in listing)
    cases: list[tuple[str, str, dict[str, Any] | None, int]] = [
        ("GET", "/internal/domains/..%2Fetc/readiness", None, 404),
        ("GET", "/internal/domains/a..b.jp/readiness", None, 422),
        ("GET", "/internal/domains/-a.jp/readiness", None, 422),
        ("GET", "/internal/domains/" + "a" * 300 + ".jp/readiness", None, 422),
        ("GET", "/internal/domains/<script>.jp/readiness", None, 422),
        ("POST", "/internal/domains/other.example.jp/override", ADMIN, 404),
        ("POST", "/internal/domains/bad.example.jp/override", {**ADMIN, "reason": "   "}, 422),
        ("POST", "/internal/domains/bad.example.jp/override", {**ADMIN, "reason": "x" * 501}, 422),
        ("POST", "/internal/domains/bad.example.jp/override", {"reason": "x"}, 422),
        ("POST", "/internal/domains/bad.example.jp/override", {**ADMIN, "extra": 1}, 422),
        ("DELETE", "/internal/domains/bad.example.jp/override", ADMIN, 404),
    ]
    for method, path, body, status in cases:
        response = await client.request(method, path, json=body)
        assert response.status_code == status, (path, body, response.text)
        assert not response.json()["detail"].isascii()
    unicode_name = await client.get("/internal/domains/例え.jp/readiness")
    assert unicode_name.status_code == 200
    assert unicode_name.json()["domain"] == "xn--r8jz45g.jp"
    assert unicode_name.json()["sender_domain"] is False
