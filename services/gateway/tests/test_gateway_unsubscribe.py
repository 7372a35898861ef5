"""One-click unsubscribe through the gateway: the one route open to the outside, token-checked, rate-limited."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from isseimail_gateway.app import create_app
from isseimail_gateway.intranet import is_public
from isseimail_gateway.settings import GatewaySettings
from isseimail_gateway.web.ratelimit import RateLimiter, client_key
from isseimail_notifier.app import create_app as notifier_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.events import CampaignAccepted, DeliverySucceeded, envelope_for
from isseimail_shared.messaging import Broker
from isseimail_shared.unsubscribe import make_token
from isseimail_testing.fixtures import INTERNAL_HEADERS
from isseimail_testing.http import serving_service
from isseimail_testing.process import free_port, running_app

SECRET = b"test-verp-secret"
ORG = "corp.example.jp"
PROXY = "10.0.0.1"
OUTSIDE = {"X-Forwarded-For": "203.0.113.7"}
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
async def outside(make_settings: Callable[..., Any]) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The gateway behind a trusted proxy (the client is what X-Forwarded-For says), a real notifier behind it."""
    notifier_port = free_port()
    settings = make_settings(
        GatewaySettings,
        session_secret="unsubscribe-secret",
        notifier_url=f"http://127.0.0.1:{notifier_port}",
        trusted_proxies=f"{PROXY}/32",
    )
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(
            serving_service(
                notifier_app(make_settings(NotifierSettings, bounce_listen_port=free_port())), notifier_port
            )
        )
        client = await stack.enter_async_context(running_app(create_app(settings), client_ip=PROXY))
        yield client, f"http://127.0.0.1:{notifier_port}"


async def _delivered(broker: Broker, database_url: str, recipients: dict[int, str]) -> uuid.UUID:
    """The notifier learns of a campaign and where its deliveries went, from real events."""
    campaign = uuid.uuid4()
    await broker.publish_event(
        envelope_for(
            CampaignAccepted(
                campaign_id=campaign,
                pass_id=1,
                recipient_count=len(recipients),
                sender_email=f"koho@{ORG}",
                subject="s",
            )
        )
    )
    for delivery_id, address in recipients.items():
        await broker.publish_event(
            envelope_for(
                DeliverySucceeded(campaign_id=campaign, delivery_id=delivery_id, recipient=address, smtp_code=250)
            )
        )
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "notifier"})
    try:
        for _ in range(600):
            if await conn.fetchval("SELECT count(*) FROM deliveries WHERE campaign_id = $1", campaign) == len(
                recipients
            ) and await conn.fetchval("SELECT 1 FROM campaigns WHERE campaign_id = $1", campaign):
                return campaign
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    raise TimeoutError("the notifier did not record the deliveries")


async def _suppressed(notifier_url: str, address: str, organisation: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=notifier_url, headers=INTERNAL_HEADERS) as client:
        r = await client.post(
            "/internal/suppressions/check", json={"addresses": [address], "organisation": organisation}
        )
        found: dict[str, str] = r.json()["suppressed"]
        return found


async def test_one_click_from_outside_suppresses_once(
    outside: tuple[httpx.AsyncClient, str], broker: Broker, database_url: str
) -> None:
    """GET shows a confirmation page (and changes nothing); POST unsubscribes; a replay is fine; nothing leaks."""
    gateway, notifier_url = outside
    campaign = await _delivered(broker, database_url, {7: "taro@example.co.jp"})
    token = make_token(SECRET, campaign, 7, "taro@example.co.jp", ORG)
    page = await gateway.get(f"/unsubscribe/{token}", headers=OUTSIDE)
    assert page.status_code == 200
    assert "配信を停止する" in page.text
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert "taro" not in page.text
    assert ORG not in page.text
    assert "set-cookie" not in page.headers
    assert "no-store" in page.headers["cache-control"]
    assert "form-action 'self'" in page.headers["content-security-policy"]
    assert await _suppressed(notifier_url, "taro@example.co.jp", ORG) == {}
    for _ in range(2):  # RFC 8058's POST, then a replay: both "done", one suppression
        done = await gateway.post(f"/unsubscribe/{token}", data=ONE_CLICK, headers=OUTSIDE)
        assert done.status_code == 200
        assert "配信停止しました" in done.text
        assert "taro" not in done.text
        assert "set-cookie" not in done.headers
    assert await _suppressed(notifier_url, "taro@example.co.jp", ORG) == {"taro@example.co.jp": "unsubscribed"}
    assert await _suppressed(notifier_url, "taro@example.co.jp", "other.example.jp") == {}
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "notifier"})
    try:
        assert await conn.fetchval("SELECT count(*) FROM suppressions") == 1
    finally:
        await conn.close()


async def test_multipart_one_click_as_in_rfc_8058(
    outside: tuple[httpx.AsyncClient, str], broker: Broker, database_url: str
) -> None:
    """The body of RFC 8058's example (multipart/form-data) is understood; other bodies are refused with 400."""
    gateway, notifier_url = outside
    campaign = await _delivered(broker, database_url, {1: "a@example.co.jp"})
    token = make_token(SECRET, campaign, 1, "a@example.co.jp", ORG)
    refused = [
        await gateway.post(f"/unsubscribe/{token}", headers=OUTSIDE),
        await gateway.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "Yes"}, headers=OUTSIDE),
        await gateway.post(f"/unsubscribe/{token}", content=b"x" * 10_000, headers=OUTSIDE),
    ]
    assert [r.status_code for r in refused] == [400, 400, 413]
    assert all("リクエストの形式" in r.text for r in refused)
    assert await _suppressed(notifier_url, "a@example.co.jp", ORG) == {}
    body = (
        b"---FormBoundaryjWmhtjORrn\r\n"
        b'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        b"One-Click\r\n"
        b"---FormBoundaryjWmhtjORrn--\r\n"
    )
    r = await gateway.post(
        f"/unsubscribe/{token}",
        content=body,
        headers={**OUTSIDE, "Content-Type": "multipart/form-data; boundary=-FormBoundaryjWmhtjORrn"},
    )
    assert r.status_code == 200
    assert await _suppressed(notifier_url, "a@example.co.jp", ORG) == {"a@example.co.jp": "unsubscribed"}


async def test_forged_foreign_and_garbage_tokens(
    outside: tuple[httpx.AsyncClient, str], broker: Broker, database_url: str
) -> None:
    """Forged, other-org and unknown tokens are one 404 page; malformed ones and every other path are 403 outside."""
    gateway, notifier_url = outside
    campaign = await _delivered(broker, database_url, {1: "b@example.co.jp"})
    invalid = [
        make_token(b"not-our-key", campaign, 1, "b@example.co.jp", ORG),
        make_token(SECRET, campaign, 1, "b@example.co.jp", "other.example.jp"),
        make_token(SECRET, campaign, 2, "b@example.co.jp", ORG),
        make_token(SECRET, uuid.uuid4(), 1, "b@example.co.jp", ORG),
    ]
    pages = set()
    for token in invalid:
        for response in (
            await gateway.get(f"/unsubscribe/{token}", headers=OUTSIDE),
            await gateway.post(f"/unsubscribe/{token}", data=ONE_CLICK, headers=OUTSIDE),
        ):
            assert response.status_code == 404
            pages.add(response.text)
    assert len(pages) == 1  # one page for every invalid token: it tells nothing about which part was wrong
    assert await _suppressed(notifier_url, "b@example.co.jp", ORG) == {}
    good = make_token(SECRET, campaign, 1, "b@example.co.jp", ORG)
    for path in (
        "/unsubscribe/" + "a" * 51,
        "/unsubscribe/" + "a" * 53,
        "/unsubscribe/" + "a" * 5000,
        "/unsubscribe/" + good.upper(),
        "/unsubscribe/" + good + "/",
        "/unsubscribe/" + good + "/x",
        "/unsubscribe/../api/v1/passes",
        "/unsubscribe/",
        "/",
        "/login",
        "/static/style.css",
        "/api/v1/openapi.json",
        "/admin",
    ):
        r = await gateway.get(path, headers=OUTSIDE)
        assert r.status_code == 403, path
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        assert (await gateway.request(method, f"/unsubscribe/{good}", headers=OUTSIDE)).status_code == 403
    inside = await gateway.get("/unsubscribe/" + "a" * 51, headers={"X-Forwarded-For": "10.1.2.3"})
    assert inside.status_code == 404  # the route answers a malformed token from inside with the invalid page
    assert "このリンクは無効です" in inside.text


async def test_rate_limited_per_client(outside: tuple[httpx.AsyncClient, str]) -> None:
    """A client past 10 requests a minute gets 429 with Retry-After; another client is unaffected."""
    gateway, _ = outside
    token = make_token(SECRET, uuid.uuid4(), 1, "c@example.co.jp", ORG)
    codes = [(await gateway.get(f"/unsubscribe/{token}", headers=OUTSIDE)).status_code for _ in range(11)]
    assert codes == [404] * 10 + [429]
    limited = await gateway.post(f"/unsubscribe/{token}", data=ONE_CLICK, headers=OUTSIDE)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "しばらくしてから" in limited.text
    other = await gateway.get(f"/unsubscribe/{token}", headers={"X-Forwarded-For": "198.51.100.9"})
    assert other.status_code == 404


def test_rate_limiter_refills_and_forgets() -> None:
    """Tokens come back at the configured rate; the table stays within its bound; IPv6 /64s share a bucket."""
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, max_clients=3, clock=lambda: now[0])
    assert [limiter.allow("192.0.2.1")[0] for _ in range(3)] == [True, True, False]
    now[0] += 1.0
    assert limiter.allow("192.0.2.1")[0]
    for n in range(10):
        limiter.allow(f"192.0.2.{n + 10}")
    assert len(limiter._buckets) == 3
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff") == "2001:db8::/64"


def test_public_exception_is_exact() -> None:
    """Only GET and POST of /unsubscribe/<52 base32 characters> are public."""
    token = "a" * 52
    assert is_public("GET", f"/unsubscribe/{token}")
    assert is_public("POST", f"/unsubscribe/{token}")
    assert not is_public("PUT", f"/unsubscribe/{token}")
    assert not is_public("GET", f"/unsubscribe/{token}\n")
    assert not is_public("GET", f"/x/unsubscribe/{token}")
    assert not is_public("GET", f"/unsubscribe/{token[:-1]}1")
