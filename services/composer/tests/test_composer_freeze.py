"""Freezing on pass.consumed over the real broker: one snapshot, one campaign.accepted, streamed NDJSON rows."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest

from isseimail_shared.events import PassConsumed, envelope_for
from isseimail_shared.mailmerge import CampaignTemplate, Recipient
from isseimail_shared.messaging import EVENTS_EXCHANGE, Broker

from .conftest import HEADERS, PASS_ID, USER_ID, FakeLists, sample_rows
from .pdfs import padded_pdf

PDF = padded_pdf(16_400)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "composer"})
    yield conn
    await conn.close()


async def accepted_queue(broker: Broker) -> aio_pika.abc.AbstractQueue:
    channel = await broker.connection.channel()
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(EVENTS_EXCHANGE, routing_key="campaign.accepted")
    return queue


async def consume(
    broker: Broker, campaign_id: str, *, pass_id: int = PASS_ID, event_id: uuid.UUID | None = None
) -> uuid.UUID:
    envelope = envelope_for(
        PassConsumed(pass_id=pass_id, campaign_id=uuid.UUID(campaign_id), user_id=USER_ID), event_id=event_id
    )
    await broker.publish_event(envelope)
    return envelope.event_id


async def create_draft(composer: httpx.AsyncClient, list_id: uuid.UUID, files: list[tuple[str, bytes]]) -> str:
    data = {
        "list_id": str(list_id),
        "sender_email": "taro@example.co.jp",
        "sender_name": "株式会社サンプル 山田太郎",
        "subject": "【ご案内】新製品発表会",
        "body": "いつもお世話になっております。\n発表会のご案内です。",
        "charset": "iso-2022-jp",
    }
    multipart = [("attachments", (n, d, "application/pdf")) for n, d in files]
    response = await composer.post("/internal/campaigns", data=data, files=multipart, headers=HEADERS)
    assert response.status_code == 201, response.text
    campaign_id: str = response.json()["campaign_id"]
    return campaign_id


async def read_snapshot(composer: httpx.AsyncClient, campaign_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    response = await composer.get(f"/internal/campaigns/{campaign_id}/snapshot")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    return lines[0], lines[1:]


async def test_freeze_once_publish_accepted_and_stamp_eml(
    composer: httpx.AsyncClient, fake_lists: FakeLists, broker: Broker, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """pass.consumed freezes the draft once: one campaign.accepted, rows read once, stamped .eml files parse cleanly."""
    rows = sample_rows(5)
    rows[2]["contact"] = "皆様"
    rows[3].update(company="", department1="", department2="")
    list_id = fake_lists.add(rows)
    files = [("発表会のご案内（詳細）.pdf", PDF), ("申込書.pdf", padded_pdf(800, seed=1))]
    campaign_id = await create_draft(composer, list_id, files)
    observed = await accepted_queue(broker)

    first = await consume(broker, campaign_id)
    await consume(broker, campaign_id, event_id=first)  # the same event redelivered
    await consume(broker, campaign_id)  # a second pass.consumed for the same campaign

    async def all_processed() -> bool:
        return await db.fetchval("SELECT count(*) FROM processed_events") == 2

    await eventually(all_processed)
    received: list[bytes] = []

    async def accepted_published() -> bool:  # the outbox relay publishes after the commit
        message = await observed.get(fail=False)
        if message is not None:
            received.append(message.body)
        return bool(received)

    await eventually(accepted_published)
    accepted = json.loads(received[0])
    assert accepted["type"] == "campaign.accepted"
    assert accepted["payload"]["campaign_id"] == campaign_id
    assert accepted["payload"]["recipient_count"] == 6
    assert accepted["payload"]["pass_id"] == PASS_ID
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE routing_key = 'campaign.accepted'") == 1
    assert fake_lists.row_requests == 1

    header, lines = await read_snapshot(composer, campaign_id)
    assert header["campaign"] == {
        "campaign_id": campaign_id,
        "sender_email": "taro@example.co.jp",
        "sender_name": "株式会社サンプル 山田太郎",
        "subject": "【ご案内】新製品発表会",
        "recipient_count": 6,
    }
    assert [line["row"] for line in lines] == [1, 2, 3, 4, 5, 0]
    assert lines[:5] == rows
    assert lines[-1]["email"] == "taro@example.co.jp"

    template = CampaignTemplate.model_validate(header["template"])
    blocks = {
        1: "株式会社テスト\n営業部\n第一課\n佐藤花子 様",
        2: "サンプル商事\n各位",
        3: "会社3\n皆様",
        4: "担当4 様",
        5: "会社5\n担当5 様",
        0: "株式会社サンプル 山田太郎 様",
    }
    for line in lines:
        recipient = Recipient.model_validate(line)
        raw = template.stamp(recipient, message_id=f"{recipient.row}@test", bounce_address=f"b-{recipient.row}@b.test")
        path = tmp_path / f"row{recipient.row}.eml"
        path.write_bytes(raw)
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert not parsed.defects
        assert parsed["To"] == recipient.email
        assert parsed["From"].addresses[0].display_name == "株式会社サンプル 山田太郎"
        assert parsed["Subject"] == "【ご案内】新製品発表会"
        text = next(parsed.iter_parts()).get_content().replace("\r\n", "\n")
        assert text == (
            f"{blocks[recipient.row]}\n\nいつもお世話になっております。\n発表会のご案内です。\n\n"
            "株式会社サンプル 山田太郎\ntaro@example.co.jp\n"
        )
        assert [(p.get_filename(), p.get_content()) for p in parsed.iter_attachments()] == files

    # frozen means frozen: the draft API refuses changes, the database refuses edits of the snapshot
    url = f"/internal/campaigns/{campaign_id}"
    assert (await composer.delete(url, headers=HEADERS)).status_code == 409
    assert (await composer.put(url, data={"subject": "x"}, headers=HEADERS)).status_code == 409
    assert (await composer.post(f"{url}/ready", headers=HEADERS)).status_code == 409
    with pytest.raises(asyncpg.RaiseError, match="immutable"):
        await db.execute("UPDATE snapshot_rows SET email = 'evil@example.com'")
    with pytest.raises(asyncpg.RaiseError, match="frozen"):
        await db.execute("UPDATE campaigns SET subject = 'changed'")


async def test_wrong_pass_or_unknown_campaign_freezes_nothing(
    composer: httpx.AsyncClient, fake_lists: FakeLists, broker: Broker, db: asyncpg.Connection
) -> None:
    """pass.consumed of another pass, or for an unknown campaign, is acked and changes nothing."""
    campaign_id = await create_draft(composer, fake_lists.add(sample_rows(2)), [])
    await consume(broker, campaign_id, pass_id=PASS_ID + 1)
    await consume(broker, str(uuid.uuid4()))

    async def both_processed() -> bool:
        return await db.fetchval("SELECT count(*) FROM processed_events") == 2

    await eventually(both_processed)
    assert await db.fetchval("SELECT state FROM campaigns WHERE id = $1", uuid.UUID(campaign_id)) == "draft"
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0
    assert (await composer.get(f"/internal/campaigns/{campaign_id}/snapshot")).status_code == 404


async def test_fifty_thousand_rows_stream_in_one_response(
    composer: httpx.AsyncClient, fake_lists: FakeLists, broker: Broker, db: asyncpg.Connection
) -> None:
    """A 50,000-row list is frozen from one rows request and served as one streamed NDJSON response."""
    list_id = fake_lists.add(sample_rows(50_000))
    campaign_id = await create_draft(composer, list_id, [("a.pdf", PDF)])
    await consume(broker, campaign_id)

    async def frozen() -> bool:
        return await db.fetchval("SELECT state FROM campaigns WHERE id = $1", uuid.UUID(campaign_id)) == "frozen"

    await eventually(frozen, timeout=120)
    count = 0
    last: dict[str, Any] = {}
    async with composer.stream("GET", f"/internal/campaigns/{campaign_id}/snapshot") as response:
        async for line in response.aiter_lines():
            if line:
                count += 1
                last = json.loads(line)
    assert count == 1 + 50_000 + 1
    assert last["row"] == 0
    assert fake_lists.row_requests == 1
