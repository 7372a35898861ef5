"""The complaint rate of each recent campaign, as a gauge for the alert (complaints / delivered).

Computed from the database, so every notifier replica reports the same value and a restart loses nothing
(the alert takes `max by (campaign)`). Only campaigns accepted within RECENT carry a series: complaints
come in within days of sending, and the label's values stay bounded by the campaigns of that window
(a handful a day here), while older campaigns' series are removed rather than left to pile up.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from prometheus_client import Gauge

log = logging.getLogger(__name__)

RECENT = "14 days"
REFRESH_SECONDS = 30.0

COMPLAINT_RATE = Gauge(
    "isseimail_campaign_complaint_rate",
    "Spam complaints (feedback reports naming a delivery, each delivery once) per delivered message, "
    "for campaigns accepted in the last 14 days.",
    ["campaign"],
)
CAMPAIGN_COMPLAINTS = Gauge(
    "isseimail_campaign_complaints",
    "Deliveries of a recent campaign that drew a spam complaint.",
    ["campaign"],
)

_SQL = f"""
SELECT c.campaign_id::text AS campaign,
       (SELECT count(*) FROM deliveries d WHERE d.campaign_id = c.campaign_id)
       + (SELECT coalesce(sum(cardinality(g.delivery_ids)), 0) FROM delivered_groups g
          WHERE g.campaign_id = c.campaign_id) AS delivered,
       (SELECT count(DISTINCT k.delivery_id) FROM complaints k
         WHERE k.campaign_id = c.campaign_id AND k.recipient IS NOT NULL) AS complaints
FROM campaigns c
WHERE c.accepted_at > now() - interval '{RECENT}'
"""


async def refresh(pool: asyncpg.Pool) -> dict[str, float]:
    """Set the gauges from the database; {campaign: rate} of the campaigns with a series."""
    rows = await pool.fetch(_SQL)
    rates: dict[str, float] = {}
    for row in rows:
        delivered, complaints = int(row["delivered"]), int(row["complaints"])
        rates[row["campaign"]] = complaints / delivered if delivered else 0.0
        COMPLAINT_RATE.labels(row["campaign"]).set(rates[row["campaign"]])
        CAMPAIGN_COMPLAINTS.labels(row["campaign"]).set(complaints)
    for gauge in (COMPLAINT_RATE, CAMPAIGN_COMPLAINTS):
        for labels in [s.labels for m in gauge.collect() for s in m.samples]:
            if labels.get("campaign") not in rates:
                gauge.remove(labels["campaign"])
    return rates


async def run(pool: asyncpg.Pool, interval: float = REFRESH_SECONDS) -> None:
    while True:
        try:
            await refresh(pool)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("complaint rates not refreshed: %s", exc.__class__.__name__)
        await asyncio.sleep(interval)
