"""Outcomes committed in groups: per connection a bound, per worker process one commit for all connections.

The crash window: a message is sent, then its outcome waits until a commit records it. Each connection
(`OutcomeGroup`) lets at most `count` of its outcomes wait uncommitted; the next one waits for the commit.
A SIGKILL therefore loses at most `count` outcomes plus the message on the wire per connection, and those
`count` + 1 messages are sent again when the batch is taken up (their rows are still `sending`). Nothing is
lost: a row leaves `sending` only in the commit that records its outcome.

The cost: one process-wide `OutcomeCommitter` takes what every connection settled since the last commit
and commits it in one transaction, as soon as a connection reaches its bound, a batch hands back or ends, or
the oldest outcome waited `seconds`. With dozens of connections per process, a commit carries hundreds of
outcomes instead of one connection's 20, while each connection's window stays 20.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable

from isseimail_dispatcher.outcomes import CampaignInfo, Settled

Pending = tuple[CampaignInfo, Settled]
COMMIT_AT = 2000  # outcomes waiting that start a commit at once, whoever waits: commits stay short under load


class OutcomeCommitter:
    """Commits the outcomes of every connection of a worker process together (group commit)."""

    def __init__(self, commit: Callable[[list[Pending]], Awaitable[object]], *, seconds: float) -> None:
        self._commit = commit
        self._seconds = seconds
        self._pending: list[Pending] = []
        self._first = 0.0  # monotonic time of the oldest pending outcome
        self._next: asyncio.Future[None] | None = None  # resolved by the commit that takes `_pending`
        self._in_flight: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()  # the first outcome arrived: start the clock
        self._hurry = asyncio.Event()  # someone waits: commit now
        self._task: asyncio.Task[None] | None = None

    def add(self, campaign: CampaignInfo, item: Settled) -> asyncio.Future[None]:
        """Queue an outcome; returns the future of the commit that will record it."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            self._first = time.monotonic()
            self._wake.set()
        self._pending.append((campaign, item))
        if len(self._pending) >= COMMIT_AT:
            self._hurry.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outcome-commits")
        return self._next

    def hurry(self) -> None:
        """Commit what is pending without waiting for the clock (someone waits for it)."""
        self._hurry.set()

    async def _run(self) -> None:
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            delay = self._first + self._seconds - time.monotonic()
            if delay > 0 and not self._hurry.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._hurry.wait()
            self._hurry.clear()
            items, done = self._pending, self._next
            assert done is not None
            self._pending, self._next, self._in_flight = [], None, done
            try:
                await self._commit(items)
            except Exception as exc:  # not the database going away (the commit waits that out): a defect
                done.set_exception(exc)
                done.exception()  # the waiting groups raise it; nobody waiting is no reason for a warning
            else:
                done.set_result(None)
            finally:
                self._in_flight = None

    async def close(self) -> None:
        """Commit what waits, then stop (after the batches ended: nothing is added any more)."""
        for future in (self._in_flight, self._next):
            if future is not None:
                self._hurry.set()
                with contextlib.suppress(Exception):
                    await asyncio.shield(future)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class OutcomeGroup:
    """One connection's outcomes not yet committed: at most `count`, then the connection waits for a commit."""

    def __init__(self, committer: OutcomeCommitter, campaign: CampaignInfo, *, count: int) -> None:
        self._committer = committer
        self._campaign = campaign
        self._count = count
        self._open: deque[tuple[asyncio.Future[None], int]] = deque()  # commits still to come, outcomes in each

    def uncommitted(self) -> int:
        """Outcomes of this connection not yet committed (raises the error of a commit that failed)."""
        while self._open and self._open[0][0].done():
            future, _ = self._open.popleft()
            future.result()
        return sum(n for _, n in self._open)

    async def add(self, item: Settled) -> None:
        """Queue the outcome; when `count` of this connection's outcomes wait, wait for their commit."""
        future = self._committer.add(self._campaign, item)
        if self._open and self._open[-1][0] is future:
            self._open[-1] = (future, self._open[-1][1] + 1)
        else:
            self._open.append((future, 1))
        if self.uncommitted() >= self._count:
            await self.flush()

    async def flush(self) -> None:
        """Wait until every outcome of this connection is committed (before any wait, at the end of a batch,
        before handing it back)."""
        if not self._open:
            return
        self._committer.hurry()
        while self._open:
            future, _ = self._open[0]
            await asyncio.shield(future)
            self._open.popleft()
