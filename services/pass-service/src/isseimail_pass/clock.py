"""Time as the pass-service sees it: an injectable clock, and "today" in ISSEIMAIL_TIMEZONE.

Tests pass their own clock to `create_app`; nothing patches datetime globally.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class RouteClock:
    """The clock the routes read, registered by `create_app` (a part is looked up by its class)."""

    now: Clock = system_clock


def today(clock: Clock, timezone: str) -> dt.date:
    """The calendar day in the service's time zone: a pass is valid from 00:00 to 24:00 there."""
    return clock().astimezone(ZoneInfo(timezone)).date()
