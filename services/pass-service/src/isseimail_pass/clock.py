"""Time as the pass-service sees it: an injectable clock, and "today" in ISSEIMAIL_TIMEZONE.

Tests pass their own clock to `create_app`; nothing patches datetime globally.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def today(clock: Clock, timezone: str) -> dt.date:
    """The calendar day in the service's time zone: a pass is valid from 00:00 to 24:00 there."""
    return clock().astimezone(ZoneInfo(timezone)).date()
