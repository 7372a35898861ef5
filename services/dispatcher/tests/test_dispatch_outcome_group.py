"""Group commit of outcomes (pure logic): the bound per connection, one commit for many connections, the clock.

The commit here is a recording function, not a database: what is asserted is which outcomes each commit
carries and when a connection has to wait. The database side of a commit is test_dispatch_counters.py.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isseimail_dispatcher.outcome_group import COMMIT_AT, OutcomeCommitter, OutcomeGroup, Pending
from isseimail_dispatcher.outcomes import CampaignInfo, Outcome, Settled

CAMPAIGN = CampaignInfo(uuid.uuid4(), "sender@corp.example.jp", "件名")
OTHER = CampaignInfo(uuid.uuid4(), "sender@corp.example.jp", "別件")


def item(n: int) -> Settled:
    return Settled(n, f"u{n}@example.jp", n, "sent", Outcome(250, None, "ok"), 0, None)


class Recorder:
    """Keeps every commit's outcomes; `gate` holds a commit open while a test looks at the waiting side."""

    def __init__(self) -> None:
        self.commits: list[list[Pending]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, pending: list[Pending]) -> None:
        await self.gate.wait()
        self.commits.append(list(pending))

    def committed(self) -> list[int]:
        return [s.delivery_id for commit in self.commits for _, s in commit]


async def test_one_commit_carries_every_connections_outcomes() -> None:
    """Ten connections with 19 outcomes each wait; the 20th of one of them commits all 191 in one transaction."""
    record = Recorder()
    committer = OutcomeCommitter(record, seconds=60)
    groups = [OutcomeGroup(committer, CAMPAIGN, count=20) for _ in range(10)]
    for g, group in enumerate(groups):
        for n in range(19):
            await group.add(item(g * 100 + n))
    await asyncio.sleep(0.01)
    assert record.commits == []  # nobody reached the bound, the clock (60 s) has not run out
    await groups[3].add(item(399))
    assert len(record.commits) == 1
    assert len(record.commits[0]) == 191
    assert all(group.uncommitted() == 0 for group in groups)
    await committer.close()


async def test_a_connection_waits_at_its_bound_while_a_commit_is_slow() -> None:
    """With the commit held open, a connection's 20th outcome does not return: at most 20 wait uncommitted."""
    record = Recorder()
    committer = OutcomeCommitter(record, seconds=60)
    group = OutcomeGroup(committer, CAMPAIGN, count=20)
    record.gate.clear()
    for n in range(19):
        await group.add(item(n))
    twentieth = asyncio.create_task(group.add(item(19)))
    await asyncio.sleep(0.05)
    assert not twentieth.done()
    assert group.uncommitted() == 20
    record.gate.set()
    await asyncio.wait_for(twentieth, 1)
    assert record.committed() == list(range(20))
    assert group.uncommitted() == 0
    await committer.close()


async def test_outcomes_added_during_a_commit_go_in_the_next() -> None:
    """A connection keeps sending while the previous commit runs; the next commit takes what came meanwhile."""
    record = Recorder()
    committer = OutcomeCommitter(record, seconds=60)
    a, b = OutcomeGroup(committer, CAMPAIGN, count=5), OutcomeGroup(committer, OTHER, count=5)
    record.gate.clear()
    for n in range(4):
        await a.add(item(n))
    first = asyncio.create_task(a.add(item(4)))  # a's bound: the commit of 0-4 starts and is held
    await asyncio.sleep(0.01)
    for n in range(10, 13):
        await b.add(item(n))  # b is not at its bound: it goes on
    assert b.uncommitted() == 3
    record.gate.set()
    await asyncio.wait_for(first, 1)
    await b.flush()
    assert [[s.delivery_id for _, s in c] for c in record.commits] == [[0, 1, 2, 3, 4], [10, 11, 12]]
    assert {c.subject for c, _ in record.commits[1]} == {"別件"}
    await committer.close()


async def test_the_clock_commits_what_nobody_waits_for() -> None:
    """An outcome waits at most `seconds` for its commit, even when no connection reaches its bound."""
    record = Recorder()
    committer = OutcomeCommitter(record, seconds=0.05)
    group = OutcomeGroup(committer, CAMPAIGN, count=20)
    await group.add(item(1))
    await asyncio.sleep(0.01)
    assert record.commits == []
    async with asyncio.timeout(5):  # 0.05 s on a quiet machine; a loaded one may take longer
        while not record.commits:  # noqa: ASYNC110 - the committer's own clock is what is tested
            await asyncio.sleep(0.01)
    assert record.committed() == [1]
    assert group.uncommitted() == 0
    await committer.close()


async def test_a_failed_commit_raises_in_the_connections_whose_outcomes_it_held() -> None:
    """A commit that fails (a defect, not an outage) is not taken for done: the connection's flush raises."""
    calls = 0

    async def commit(pending: list[Pending]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("defect")

    committer = OutcomeCommitter(commit, seconds=60)
    group = OutcomeGroup(committer, CAMPAIGN, count=20)
    await group.add(item(1))
    with pytest.raises(RuntimeError, match="defect"):
        await group.flush()
    later = OutcomeGroup(committer, CAMPAIGN, count=20)
    await later.add(item(2))
    await later.flush()  # the committer goes on
    assert calls == 2
    await committer.close()


async def test_many_waiting_outcomes_start_a_commit_without_anyone_waiting() -> None:
    """However high the per-connection bound, COMMIT_AT outcomes waiting start a commit: transactions stay short."""
    record = Recorder()
    committer = OutcomeCommitter(record, seconds=60)
    groups = [OutcomeGroup(committer, CAMPAIGN, count=1000) for _ in range(4)]
    for n in range(COMMIT_AT - 1):
        await groups[n % 4].add(item(n))
    await asyncio.sleep(0.01)
    assert record.commits == []
    await groups[0].add(item(COMMIT_AT))
    await asyncio.sleep(0.01)
    assert [len(c) for c in record.commits] == [COMMIT_AT]
    await committer.close()


async def test_close_commits_what_waits() -> None:
    """At shutdown, outcomes still pending are committed before the committer stops."""
    record = Recorder()
    committer = OutcomeCommitter(record, seconds=60)
    group = OutcomeGroup(committer, CAMPAIGN, count=20)
    for n in range(7):
        await group.add(item(n))
    await committer.close()
    assert record.committed() == list(range(7))


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=30),
    st.lists(st.tuples(st.integers(min_value=0, max_value=5), st.booleans()), min_size=1, max_size=200),
)
def test_every_outcome_committed_once_and_never_more_than_count_waiting(
    count: int, steps: list[tuple[int, bool]]
) -> None:
    """Any interleaving of six connections' outcomes and flushes: each outcome is committed exactly once, in
    order per connection, and no connection ever holds more than `count` uncommitted."""

    async def run() -> None:
        record = Recorder()
        committer = OutcomeCommitter(record, seconds=60)
        groups = [OutcomeGroup(committer, CAMPAIGN, count=count) for _ in range(6)]
        sent: list[list[int]] = [[] for _ in groups]
        for n, (g, flush) in enumerate(steps):
            await groups[g].add(item(n))
            sent[g].append(n)
            assert groups[g].uncommitted() < count  # at the bound, add waited for the commit
            if flush:
                await groups[g].flush()
                assert groups[g].uncommitted() == 0
        await committer.close()
        committed = record.committed()
        assert sorted(committed) == list(range(len(steps)))
        for mine in sent:
            assert [n for n in committed if n in set(mine)] == mine

    asyncio.run(run())
