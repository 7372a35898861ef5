"""The fleet-wide shaped rate per domain as a gauge, refreshed by the `serve` process from PostgreSQL.

Label set bounded: the preset and overridden domains, plus at most MOST_THROTTLED domains throttled within
RECENT_SECONDS; a domain that leaves that set loses its series.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from isseimail_dispatcher import limits, shaping_targets
from isseimail_dispatcher.adaptive import effective_per_minute
from isseimail_dispatcher.metrics import DOMAIN_RATE
from isseimail_dispatcher.settings import DispatcherSettings

log = logging.getLogger(__name__)

RECENT_SECONDS = 86_400.0
MOST_THROTTLED = 50


async def refresh(pool: asyncpg.Pool, settings: DispatcherSettings, shown: set[str]) -> set[str]:
    """Set the gauge for every domain to show; returns the domains shown now (pass it back next time)."""
    named = settings.shaping.named_domains()
    rows = await limits.throttle_states(pool, named, RECENT_SECONDS, MOST_THROTTLED)
    adapt = settings.adaptation()
    now_shown: set[str] = set()
    for domain in named:
        DOMAIN_RATE.labels(domain).set(settings.limit_for(domain).per_minute)
        now_shown.add(domain)
    for row in rows:
        ceiling = shaping_targets.ceiling(settings, row["domain"])  # a domain, or the relay (relay mode)
        rate = effective_per_minute(limits.state_of(row), ceiling, adapt, row["now"])
        DOMAIN_RATE.labels(row["domain"]).set(rate)
        now_shown.add(row["domain"])
    for gone in shown - now_shown:
        DOMAIN_RATE.remove(gone)
    return now_shown


async def run_rate_gauges(pool: asyncpg.Pool, settings: DispatcherSettings, interval: float) -> None:
    shown: set[str] = set()
    while True:
        try:
            shown = await refresh(pool, settings, shown)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("domain rate gauges not refreshed: %s", exc.__class__.__name__)
        await asyncio.sleep(interval)
