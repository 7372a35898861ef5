"""GET /api/v1/campaigns/{id}: progress read from the real dispatcher for the logged-in pass, also after
sending consumed the pass; other passes' campaigns are not found; errors are Japanese, never a 500."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from isseimail_composer.app import create_app as composer_app
from isseimail_composer.settings import ComposerSettings
from isseimail_dispatcher.app import create_app as dispatcher_app
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_gateway.app import create_app as gateway_app
from isseimail_gateway.settings import GatewaySettings
from isseimail_pass.app import create_app as pass_app
from isseimail_pass.settings import PassSettings
from isseimail_testing.fixtures import INTERNAL_HEADERS, INTERNAL_TOKEN
from isseimail_testing.http import serving_service
from isseimail_testing.passes import gateway_login, issue_pass
from isseimail_testing.process import free_port, running_app

DAY = dt.date(2026, 12, 3)
NOW = dt.datetime(2026, 12, 3, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
ADMIN = ("admin@example.jp", "admin-password-long-enough")


class Stack:
    def __init__(self, client: httpx.AsyncClient, pass_url: str, database_url: str) -> None:
        self.client = client
        self.pass_url = pass_url
        self.database_url = database_url
        self.pass_id = 0

    async def login(self) -> None:
        issued = await issue_pass(
            self.pass_url, self.database_url, admin=ADMIN, applicant_email="taro@example.co.jp", use_date=DAY
        )
        self.pass_id = issued.pass_id
        await gateway_login(self.client, issued)

    async def consume(self, campaign_id: uuid.UUID) -> None:
        async with httpx.AsyncClient(base_url=self.pass_url, headers=INTERNAL_HEADERS) as ps:
            r = await ps.post(f"/internal/passes/{self.pass_id}/consume", json={"campaign_id": str(campaign_id)})
            assert r.status_code == 200, r.text

    async def campaign(self, pass_id: int, states: dict[str, int], status: str = "dispatching") -> uuid.UUID:
        """A campaign as the dispatcher records it, with deliveries in the given states."""
        campaign_id = uuid.uuid4()
        conn = await asyncpg.connect(self.database_url, server_settings={"search_path": "dispatcher"})
        try:
            total = sum(states.values())
            await conn.execute(
                "INSERT INTO campaigns (campaign_id, pass_id, sender_email, subject, template, total, status,"
                " started_at) VALUES ($1, $2, 'taro@example.co.jp', '件名', '{}', $3, $4, now())",
                campaign_id,
                pass_id,
                total,
                status,
            )
            batch = await conn.fetchval(
                "INSERT INTO batches (campaign_id, domain) VALUES ($1, 'example.jp') RETURNING id", campaign_id
            )
            row = 0
            for state, count in states.items():
                for _ in range(count):
                    row += 1
                    await conn.execute(
                        "INSERT INTO deliveries (campaign_id, row_number, email, domain, recipient, batch_id, state,"
                        " bounced, delayed) VALUES ($1, $2, $3, 'example.jp', '{}', $4, $5, $6, $7)",
                        campaign_id,
                        row,
                        f"u{row}@example.jp",
                        batch,
                        state,
                        state == "sent" and row == 1,
                        state == "sent" and row in (1, 2),  # row 1 bounced after its delay notice: not 遅延中
                    )
            # The dispatcher keeps these as it writes outcomes: counters on the campaign row, and a retry time
            # on each recipient waiting for one (progress reads only those).
            await conn.execute(
                "UPDATE deliveries SET next_attempt_at = now() + interval '1 minute' "
                "WHERE campaign_id = $1 AND state = 'retrying'",
                campaign_id,
            )
            await conn.execute(
                "UPDATE campaigns c SET sent = k.sent, failed = k.failed, bounced = k.bounced, delayed = k.delayed "
                "FROM (SELECT count(*) FILTER (WHERE state = 'sent') AS sent, "
                "count(*) FILTER (WHERE state = 'failed') AS failed, count(*) FILTER (WHERE bounced) AS bounced, "
                "count(*) FILTER (WHERE delayed AND NOT bounced) AS delayed FROM deliveries "
                "WHERE campaign_id = $1) k WHERE c.campaign_id = $1",
                campaign_id,
            )
        finally:
            await conn.close()
        return campaign_id


@pytest.fixture
async def stack(make_settings: Callable[..., Any], database_url: str) -> AsyncIterator[Stack]:
    """Gateway in front of the real pass-service, composer and dispatcher on real loopback ports."""
    pass_settings = make_settings(PassSettings, admin_email=ADMIN[0], admin_password=ADMIN[1])
    dead = f"http://127.0.0.1:{free_port()}"
    async with (
        serving_service(pass_app(pass_settings, clock=lambda: NOW)) as pass_url,
        serving_service(composer_app(make_settings(ComposerSettings, list_validator_url=dead))) as composer_url,
        serving_service(dispatcher_app(make_settings(DispatcherSettings, composer_url=composer_url))) as disp_url,
    ):
        settings = GatewaySettings(
            internal_tokens=INTERNAL_TOKEN,
            session_secret="progress-test-secret",
            pass_url=pass_url,
            list_validator_url=dead,
            composer_url=composer_url,
            dispatcher_url=disp_url,
            notifier_url=dead,
        )
        async with running_app(gateway_app(settings)) as client:
            yield Stack(client, pass_url, database_url)


async def test_progress_for_own_campaign_after_the_pass_is_consumed(stack: Stack) -> None:
    """After sending consumed the pass, the owner still reads status and counts; nobody else does."""
    anonymous = await stack.client.get(f"/api/v1/campaigns/{uuid.uuid4()}")
    assert anonymous.status_code == 401
    assert anonymous.json()["detail"] == "ログインしてください。"
    await stack.login()
    mine = await stack.campaign(stack.pass_id, {"sent": 5, "retrying": 2, "failed": 1, "pending": 3})
    other = await stack.campaign(stack.pass_id + 1000, {"sent": 1})
    await stack.consume(mine)
    r = await stack.client.get(f"/api/v1/campaigns/{mine}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "dispatching"
    assert {k: body[k] for k in ("total", "sent", "retrying", "failed", "bounced", "pending", "delayed")} == {
        "total": 11,
        "sent": 5,
        "retrying": 2,
        "failed": 1,
        "bounced": 1,
        "pending": 3,
        "delayed": 1,
    }
    assert body["started_at"] is not None
    # another pass's campaign, an unknown one, and ids that are not UUIDs: 404 in Japanese, never a 500
    for hidden in (other, uuid.uuid4(), "nope", "1' OR '1'='1", "%00", "a" * 300):
        r = await stack.client.get(f"/api/v1/campaigns/{hidden}")
        assert r.status_code == 404
        assert r.json()["detail"] == "指定された一斉メールが見つかりません。"


async def test_estimate_for_own_campaign_from_the_dispatchers_pacing(stack: Stack) -> None:
    """The sending-time estimate reaches the owner (after the pass is consumed) as the dispatcher computes it
    (11 recipients at example.jp at the default 600/min: 1.1 s); other passes' campaigns and bad ids are 404."""
    assert (await stack.client.get(f"/api/v1/campaigns/{uuid.uuid4()}/estimate")).status_code == 401
    await stack.login()
    mine = await stack.campaign(stack.pass_id, {"sent": 5, "pending": 6})
    other = await stack.campaign(stack.pass_id + 1000, {"sent": 1})
    await stack.consume(mine)
    r = await stack.client.get(f"/api/v1/campaigns/{mine}/estimate")
    assert r.status_code == 200, r.text
    body = r.json()
    assert "pass_id" not in body
    assert (body["recipients"], body["domains"]) == (11, 1)
    assert body["slowest"] == {"domain": "example.jp", "recipients": 11, "per_minute": 600.0}
    assert abs(body["seconds"] - 11 / 600 * 60) < 1e-6
    for hidden in (other, uuid.uuid4(), "nope", "a" * 300):
        r = await stack.client.get(f"/api/v1/campaigns/{hidden}/estimate")
        assert r.status_code == 404
        assert r.json()["detail"] == "指定された一斉メールが見つかりません。"
