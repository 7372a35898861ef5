"""What a service holds while it runs (clients, checkers, writers), registered and looked up by type.

A start hook registers each part with how to close it and, if it can be unready, a readiness ping:
`runtime.registry.register(ListsClient, client, close=client.close)`; consumers take it with
`runtime.registry.get(ListsClient)`, routes with `Annotated[ListsClient, Depends(held(ListsClient))]`
(`isseimail_shared.app`). The runtime's stop closes the parts in reverse order of registration (a part may
use the ones registered before it) and /readyz runs the pings. A test swaps a part by registering another
under the same type.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Close = Callable[[], Awaitable[object] | object]
Ping = Callable[[], Awaitable[bool] | bool]


class Registry:
    def __init__(self) -> None:
        self._parts: dict[type[object], object] = {}
        self._closes: list[tuple[str, Close]] = []
        self._pings: dict[str, Ping] = {}

    def register(self, kind: type[T], value: T, *, close: Close | None = None, ping: Ping | None = None) -> T:
        """Hold `value` as the service's `kind`; a later registration of the same kind replaces it for
        lookups (both closes still run)."""
        self._parts[kind] = value
        name = check_name(kind)
        if close is not None:
            self._closes.append((name, close))
        if ping is not None:
            self._pings[name] = ping
        return value

    def find(self, kind: type[T]) -> T | None:
        """The part registered as `kind`, or None when the service holds none (an optional part)."""
        value = self._parts.get(kind)
        if value is None:
            return None
        if not isinstance(value, kind):  # register() takes only a T; this narrows without a cast
            raise TypeError(f"{type(value).__name__} registered as {kind.__name__}")
        return value

    def get(self, kind: type[T]) -> T:
        value = self.find(kind)
        if value is None:
            raise LookupError(f"no {kind.__name__} registered (not started, or the start failed before it)")
        return value

    def pings(self) -> list[tuple[str, Ping]]:
        return list(self._pings.items())

    async def close(self) -> None:
        """Run every close, newest first; one that fails is logged and the others still run."""
        closes, self._closes = self._closes, []
        self._pings.clear()
        for name, close in reversed(closes):
            try:
                result = close()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("closing %s failed", name)


def check_name(kind: type[object]) -> str:
    """The name a part's readiness check and log lines carry: BounceListener -> bounce_listener."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind.__name__).lower()
