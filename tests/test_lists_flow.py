"""Recipient lists across services: the list-validator with the real notifier (suppression list), real DNS,
PostgreSQL and RabbitMQ; list.validated arrives on the broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import asyncpg
import pytest

from isseimail_list_validator.app import create_app as lv_app
from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_notifier.app import create_app as notifier_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_notifier.suppressions import record_failure
from isseimail_shared.messaging import EVENTS_EXCHANGE
from isseimail_testing.dns import DnsServer
from isseimail_testing.http import serving_service
from isseimail_testing.lists import acting, csv_bytes, upload, wait_done
from isseimail_testing.process import free_port, running_app


@pytest.fixture
async def notifier_url(make_settings: Callable[..., Any]) -> AsyncIterator[str]:
    settings = make_settings(NotifierSettings, bounce_listen_port=free_port())
    async with serving_service(notifier_app(settings)) as url:
        yield url


@pytest.fixture
async def validated_events(amqp_url: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
    """Every list.validated event published on this test's vhost."""
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue("", exclusive=True)
    await queue.bind(exchange, routing_key="list.validated")
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            await received.put(json.loads(message.body))

    await queue.consume(on_message)
    yield received
    await connection.close()


def _settings(make_settings: Callable[..., Any], dns: DnsServer, notifier: str) -> ListValidatorSettings:
    settings: ListValidatorSettings = make_settings(
        ListValidatorSettings,
        dns_nameservers=dns.nameserver,
        dns_timeout_seconds=0.5,
        notifier_url=notifier,
        result_flush_seconds=0.02,
    )
    return settings


async def test_one_bad_address_among_1000_is_refused_then_the_fixed_list_passes(
    make_settings: Callable[..., Any],
    dns_server: DnsServer,
    notifier_url: str,
    validated_events: asyncio.Queue[dict[str, Any]],
) -> None:
    """Exactly the bad row is reported with its reason; after fixing it the same list is valid."""
    domains = [f"firm{i}.co.jp" for i in range(50)]
    for d in domains:
        dns_server.zone(d, mx=[(10, f"mx.{d}")])
    rows = [(f"user{i}@{domains[i % 50]}", f"会社{i}", "営業部", "", f"担当{i}") for i in range(1000)]
    rows[499] = ("user499@firm-typo.co.jp", "会社499", "営業部", "", "担当499")  # Excel row 501
    async with running_app(lv_app(_settings(make_settings, dns_server, notifier_url))) as client:
        first = await upload(client, csv_bytes(rows))
        assert first.status_code == 202
        summary = await wait_done(client, first.json()["list_id"])
        assert (summary["status"], summary["rows"], summary["ok"], summary["invalid"]) == ("invalid", 1000, 999, 1)
        assert summary["bad_rows"] == [
            {
                "row": 501,
                "address": "user499@firm-typo.co.jp",
                "status": "invalid",
                "code": "domain_not_found",
                "message": "ドメインが存在しません。",
            }
        ]
        event = await asyncio.wait_for(validated_events.get(), 10)
        assert event["payload"] == {
            "list_id": first.json()["list_id"],
            "status": "invalid",
            "rows": 1000,
            "ok": 999,
            "invalid": 1,
            "unverified": 0,
        }

        rows[499] = ("user499@firm9.co.jp", "会社499", "営業部", "", "担当499")
        second = await upload(client, csv_bytes(rows))
        summary = await wait_done(client, second.json()["list_id"])
        assert (summary["status"], summary["ok"], summary["bad_rows"]) == ("valid", 1000, [])
        event = await asyncio.wait_for(validated_events.get(), 10)
        assert (event["payload"]["list_id"], event["payload"]["status"]) == (second.json()["list_id"], "valid")
        recipients = [
            json.loads(line)
            for line in (
                await client.get(f"/internal/lists/{second.json()['list_id']}/rows", headers=acting())
            ).text.splitlines()
        ]
    assert [r["row"] for r in recipients] == list(range(2, 1002))
    assert recipients[0] == {
        "row": 2,
        "email": "user0@firm0.co.jp",
        "company": "会社0",
        "department1": "営業部",
        "department2": "",
        "contact": "担当0",
    }
    # at most one MX query per domain per list, never one per row (c-ares may answer the second list from
    # its TTL-bound cache)
    assert all(1 <= dns_server.queries[(d, "MX")] <= 2 for d in domains)
    assert dns_server.queries[("firm-typo.co.jp", "MX")] == 1
    assert sum(dns_server.queries.values()) <= 2 * 50 + 1


async def test_suppressed_addresses_are_refused_with_that_reason(
    make_settings: Callable[..., Any], dns_server: DnsServer, notifier_url: str, database_url: str
) -> None:
    """An address on the notifier's suppression list is invalid with reason 'suppressed'; others are ok."""
    dns_server.zone("good.co.jp", mx=[(10, "mx.good.co.jp")])
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "notifier"})
    try:
        await record_failure(
            conn, address="bounced@good.co.jp", reason="5.1.1 user unknown", hard=True, campaign_id=None, soft_limit=3
        )
    finally:
        await conn.close()
    rows = [("Bounced@GOOD.co.jp", "", "", "", "各位"), ("fine@good.co.jp", "", "", "", "各位")]
    async with running_app(lv_app(_settings(make_settings, dns_server, notifier_url))) as client:
        response = await upload(client, csv_bytes(rows, header=False))
        summary = await wait_done(client, response.json()["list_id"])
    assert (summary["status"], summary["ok"], summary["invalid"]) == ("invalid", 1, 1)
    assert [(r["row"], r["code"]) for r in summary["bad_rows"]] == [(1, "suppressed")]
