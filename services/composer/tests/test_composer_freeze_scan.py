"""Attachments are checked again at freeze (pass.consumed), over the real broker and a real clamd."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from isseimail_composer.app import create_app
from isseimail_composer.settings import ComposerSettings
from isseimail_shared.messaging import Broker
from isseimail_testing.clamd import ClamdServer
from isseimail_testing.process import running_app

from .conftest import FakeLists, sample_rows
from .test_composer_freeze import accepted_queue, consume, create_draft, db, eventually  # noqa: F401 - fixture
from .test_composer_virus_scan import CLEAN, eicar_pdf

pytestmark = pytest.mark.timeout(180)


async def state_of(conn: asyncpg.Connection, campaign_id: str) -> tuple[str, str | None]:
    row = await conn.fetchrow("SELECT state, failure FROM campaigns WHERE id = $1", uuid.UUID(campaign_id))
    assert row is not None
    return row["state"], row["failure"]


async def test_a_virus_found_at_freeze_fails_the_campaign(
    composer_settings: Callable[..., ComposerSettings],
    clamd_server: ClamdServer,
    fake_lists: FakeLists,
    broker: Broker,
    db: asyncpg.Connection,  # noqa: F811 - the fixture imported above
) -> None:
    """Stored while scanning was off, infected at freeze: the campaign fails, campaign.accepted never goes out."""
    list_id = fake_lists.add(sample_rows(2))
    async with running_app(create_app(composer_settings())) as client:
        campaign_id = await create_draft(client, list_id, [("ご案内.pdf", eicar_pdf(compress=True))])
    observed = await accepted_queue(broker)
    async with running_app(create_app(composer_settings(clamd_url=clamd_server.tcp_url))):
        await consume(broker, campaign_id)

        async def failed() -> bool:
            return (await state_of(db, campaign_id))[0] == "failed"

        await eventually(failed)
    state, failure = await state_of(db, campaign_id)
    assert state == "failed"
    assert failure is not None
    assert "ご案内.pdf: infected" in failure
    assert await observed.get(fail=False, timeout=1) is None
    assert await db.fetchval("SELECT count(*) FROM snapshots") == 0


async def test_clamd_down_at_freeze_retries_until_it_can_scan(
    composer_settings: Callable[..., ComposerSettings],
    fake_lists: FakeLists,
    broker: Broker,
    db: asyncpg.Connection,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    """clamd stopped when the pass is consumed: nothing is frozen unscanned; once clamd is back, it freezes."""
    server = ClamdServer(tmp_path / "clamd")
    server.start()
    list_id = fake_lists.add(sample_rows(2))
    settings = composer_settings(clamd_url=server.tcp_url, clamd_timeout_seconds=2, delivery_limit=50)
    async with running_app(create_app(settings)) as client:
        campaign_id = await create_draft(client, list_id, [("資料.pdf", CLEAN)])
        observed = await accepted_queue(broker)
        server.stop()
        await consume(broker, campaign_id)
        await asyncio.sleep(3)  # several attempts while clamd is down
        assert await state_of(db, campaign_id) == ("draft", None)
        assert await db.fetchval("SELECT count(*) FROM snapshots") == 0
        server.start()
        try:

            async def frozen() -> bool:
                return (await state_of(db, campaign_id))[0] == "frozen"

            await eventually(frozen)
        finally:
            server.stop()
    message = await observed.get(timeout=30)
    assert message.routing_key == "campaign.accepted"
