"""Outcomes of one connection's messages, committed in groups: on count, on age, or before any wait.

The crash window: a message is sent, then its outcome waits here until the group commits. A SIGKILL
loses at most the group not yet committed plus the message on the wire, so at most `count` + 1 messages
per connection are sent again when the batch is taken up (their rows are still `sending`). Nothing is
lost: a row leaves `sending` only in the commit that records its outcome.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from isseimail_dispatcher.outcomes import Settled


class OutcomeGroup:
    def __init__(self, commit: Callable[[list[Settled]], Awaitable[object]], *, count: int, seconds: float) -> None:
        self._commit = commit
        self._count = count
        self._seconds = seconds
        self._items: list[Settled] = []
        self._first = 0.0  # monotonic time of the oldest outcome waiting

    def __len__(self) -> int:
        return len(self._items)

    async def add(self, item: Settled) -> None:
        """Keep the outcome; commit the group when it is full or its oldest outcome waited long enough."""
        if not self._items:
            self._first = time.monotonic()
        self._items.append(item)
        if len(self._items) >= self._count or time.monotonic() - self._first >= self._seconds:
            await self.flush()

    async def flush(self) -> None:
        """Commit what waits (before any wait, at the end of a batch, before handing it back)."""
        if not self._items:
            return
        await self._commit(self._items)
        self._items = []
