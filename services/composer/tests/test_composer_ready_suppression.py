"""The ready-check refuses a list with addresses unsubscribed from or complained about the sender's organisation."""

from __future__ import annotations

import uuid

import httpx

from .conftest import HEADERS, FakeLists, sample_rows

FORM = {
    "sender_name": "株式会社サンプル 山田太郎",
    "subject": "新製品のご案内",
    "body": "いつもお世話になっております。",
    "charset": "utf-8",
}


async def _draft(client: httpx.AsyncClient, list_id: uuid.UUID, sender: str) -> str:
    response = await client.post(
        "/internal/campaigns", data={**FORM, "list_id": str(list_id), "sender_email": sender}, headers=HEADERS
    )
    assert response.status_code == 201, response.text
    campaign_id: str = response.json()["campaign_id"]
    return campaign_id


def _refused(row: int, address: str, message: str) -> dict[str, object]:
    return {"row": row, "address": address, "status": "invalid", "code": "unsubscribed", "message": message}


async def test_rows_suppressed_for_the_from_domain_block_sending(
    composer: httpx.AsyncClient, fake_lists: FakeLists
) -> None:
    """Rows the From domain may not mail are named with their reason; another From domain is not affected."""
    list_id = fake_lists.add(sample_rows(3))
    fake_lists.suppressed[(list_id, "example.co.jp")] = [
        _refused(2, "all@example.net", "配信停止の申し出があったアドレスです。"),
        _refused(3, "user3@example.org", "迷惑メールの報告があったアドレスです。"),
    ]
    blocked = await _draft(composer, list_id, "Taro@Example.co.jp")
    response = await composer.post(f"/internal/campaigns/{blocked}/ready", headers=HEADERS)
    assert response.status_code == 422
    message = response.json()["errors"]["list_id"]
    assert "送信元ドメイン example.co.jp" in message
    assert "2行目 all@example.net（配信停止の申し出があったアドレスです。）" in message
    assert "3行目 user3@example.org（迷惑メールの報告があったアドレスです。）" in message
    other = await _draft(composer, list_id, "info@other.example.jp")
    assert (await composer.post(f"/internal/campaigns/{other}/ready", headers=HEADERS)).status_code == 200


async def test_many_refused_rows_are_summarised(composer: httpx.AsyncClient, fake_lists: FakeLists) -> None:
    """Beyond the first few rows the message says how many more, so it stays short."""
    list_id = fake_lists.add(sample_rows(20))
    fake_lists.suppressed[(list_id, "example.co.jp")] = [
        _refused(n, f"user{n}@example.org", "配信停止の申し出があったアドレスです。") for n in range(3, 21)
    ]
    campaign = await _draft(composer, list_id, "taro@example.co.jp")
    response = await composer.post(f"/internal/campaigns/{campaign}/ready", headers=HEADERS)
    assert response.status_code == 422
    assert "ほか13件" in response.json()["errors"]["list_id"]


async def test_unreadable_suppression_list_is_a_503_not_a_pass(
    composer: httpx.AsyncClient, fake_lists: FakeLists
) -> None:
    """When the list-validator cannot say, the campaign is not ready (503), never silently sent."""
    list_id = fake_lists.add(sample_rows(2))
    fake_lists.suppressed[(list_id, "example.co.jp")] = "down"
    campaign = await _draft(composer, list_id, "taro@example.co.jp")
    response = await composer.post(f"/internal/campaigns/{campaign}/ready", headers=HEADERS)
    assert response.status_code == 503
