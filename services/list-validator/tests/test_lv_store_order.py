"""A large list's domains are checked while its rows are stored: it is never finished without its rows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from isseimail_list_validator import lists
from isseimail_list_validator.app import create_app
from isseimail_list_validator.lists import DomainOutcome
from isseimail_list_validator.rows import PreparedRow
from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_testing.process import running_app


@pytest.fixture
async def pool(lv_settings: Callable[..., ListValidatorSettings]) -> AsyncIterator[asyncpg.Pool]:
    """The database pool of a running list-validator (its workers and sweeper running too)."""
    app = create_app(lv_settings())
    async with running_app(app):
        yield app.state.runtime.pool


def _new() -> lists.NewList:
    return lists.NewList(uuid.uuid4(), 7, "123456", "x.csv", "utf-8", False, "block")


def _row(n: int, domain: str) -> PreparedRow:
    email = f"u{n}@{domain}"
    return PreparedRow(n, email, email, domain, "", "", "", "各位", "pending", "ok")


async def test_rows_stored_after_every_domain_answered_finish_the_list(
    pool: asyncpg.Pool,
) -> None:
    """All domains answered before the rows arrive: still validating; storing the rows finishes it right."""
    new = _new()
    await lists.open_list(pool, new, 3, ["a.jp", "b.jp"])
    finished = await lists.record_outcomes(
        pool, [DomainOutcome(new.list_id, "a.jp", "ok"), DomainOutcome(new.list_id, "b.jp", "domain_not_found")]
    )
    assert finished == []
    assert (await lists.summary(pool, new.list_id) or {})["status"] == "validating"
    assert await lists.store_rows(pool, new.list_id, [_row(1, "a.jp"), _row(2, "b.jp"), _row(3, "a.jp")])
    summary = await lists.summary(pool, new.list_id)
    assert summary is not None
    assert (summary["status"], summary["ok"], summary["invalid"], summary["rows"]) == ("invalid", 2, 1, 3)
    events = await pool.fetchval("SELECT count(*) FROM outbox WHERE routing_key = 'list.validated'")
    assert events == 1


async def test_rows_stored_first_leave_the_list_to_the_last_domain(
    pool: asyncpg.Pool,
) -> None:
    """Rows stored before the domains are answered: the last domain result finishes the list, once."""
    new = _new()
    await lists.open_list(pool, new, 1, ["a.jp"])
    assert not await lists.store_rows(pool, new.list_id, [_row(1, "a.jp")])
    assert await lists.record_outcomes(pool, [DomainOutcome(new.list_id, "a.jp", "ok")]) == [new.list_id]
    assert (await lists.summary(pool, new.list_id) or {})["status"] == "valid"


async def test_a_list_whose_rows_never_arrived_is_deleted_by_the_sweep(
    lv_settings: Callable[..., ListValidatorSettings],
) -> None:
    """An upload that died between the domains and the rows leaves nothing behind once it is old enough."""
    # The app's own sweeper must not claim these lists first (on a loaded machine its first pass can come after
    # the UPDATEs below): with a day as its threshold it leaves lists an hour old to this test's call.
    app = create_app(lv_settings(redispatch_after_seconds=86_400))
    async with running_app(app):
        pool = app.state.runtime.pool
        young, old = (lists.NewList(uuid.uuid4(), 7, "", "x.csv", "utf-8", False, "block") for _ in range(2))
        for new in (young, old):
            await lists.open_list(pool, new, 1, ["a.jp"])
        await pool.execute(
            "UPDATE lists SET dispatched_at = now() - interval '1 hour', created_at = now() - interval '1 hour'"
            " WHERE list_id = $1",
            old.list_id,
        )
        await pool.execute(
            "UPDATE lists SET dispatched_at = now() - interval '1 hour' WHERE list_id = $1", young.list_id
        )
        stale = await lists.stale_lists(pool, 60)
        assert stale == [(young.list_id, ["a.jp"])]  # still being uploaded, as far as anyone can tell
        assert await lists.summary(pool, old.list_id) is None
        assert await pool.fetchval("SELECT count(*) FROM list_domains WHERE list_id = $1", old.list_id) == 0


async def test_domains_registered_as_rows_arrive_are_counted_once(
    pool: asyncpg.Pool,
) -> None:
    """A streamed upload registers each batch's domains: only new ones come back (to be checked) and are
    counted; answers may come before the rows are in, and the rows still finish the list right."""
    new = _new()
    await lists.open_list(pool, new, 0, [])
    assert await lists.add_domains(pool, new.list_id, ["b.jp", "a.jp"]) == ["a.jp", "b.jp"]
    assert await lists.record_outcomes(pool, [DomainOutcome(new.list_id, "a.jp", "ok")]) == []
    assert await lists.add_domains(pool, new.list_id, ["a.jp", "c.jp", "b.jp"]) == ["c.jp"]
    assert await lists.add_domains(pool, new.list_id, []) == []
    head = await pool.fetchrow("SELECT domain_count, domains_pending FROM lists WHERE list_id = $1", new.list_id)
    assert (head["domain_count"], head["domains_pending"]) == (3, 3)  # b.jp, c.jp and the rows
    assert await lists.unanswered_domains(pool, new.list_id) == ["b.jp", "c.jp"]
    outcomes = [DomainOutcome(new.list_id, "b.jp", "ok"), DomainOutcome(new.list_id, "c.jp", "domain_not_found")]
    assert await lists.record_outcomes(pool, outcomes) == []
    async with lists.row_writer(pool, new.list_id) as writer:
        await writer.add([_row(1, "a.jp"), _row(2, "b.jp")])
        await writer.add([_row(3, "c.jp")])
    assert writer.finished
    summary = await lists.summary(pool, new.list_id)
    assert summary is not None
    assert (summary["status"], summary["rows"], summary["domains"], summary["ok"]) == ("invalid", 3, 3, 2)


async def test_rows_left_unstored_by_a_failed_write_leave_nothing(
    pool: asyncpg.Pool,
) -> None:
    """An error half-way through the rows rolls every batch back; the list is still open for the sweep."""
    new = _new()
    await lists.open_list(pool, new, 0, ["a.jp"])
    try:
        async with lists.row_writer(pool, new.list_id) as writer:
            await writer.add([_row(1, "a.jp")])
            raise RuntimeError("the upload broke")
    except RuntimeError:
        pass
    assert await pool.fetchval("SELECT count(*) FROM list_rows WHERE list_id = $1", new.list_id) == 0
    assert (await lists.summary(pool, new.list_id) or {})["status"] == "validating"
