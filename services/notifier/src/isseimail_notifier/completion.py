"""The completion mail: sent once every failure the dispatcher counted is known here, or after a short wait.

campaign.completed and the campaign's last delivery.failed events are handled concurrently, so the
completion can be processed first. It then waits in pending_completions; the digest loop sends it when
the missing failures have arrived or `completion_wait_seconds` have passed, whichever comes first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from isseimail_notifier import delays, failures, report_texts
from isseimail_notifier.mail_queue import mail_domain, queue_mail
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.db import Conn
from isseimail_shared.events import CampaignCompleted


async def complete_or_wait(conn: Conn, event: CampaignCompleted, settings: NotifierSettings) -> bool:
    """Queue the completion mail now if all counted failures are known; True when it was queued."""
    await failures.remember_campaign(conn, event.campaign_id, str(event.sender_email), event.subject)
    known = await conn.fetchval(
        "SELECT count(*) FROM failures WHERE campaign_id = $1 AND source = 'smtp'", event.campaign_id
    )
    if known < event.failed:
        await conn.execute(
            "INSERT INTO pending_completions (campaign_id, event) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            event.campaign_id,
            event.model_dump_json(),
        )
        return False
    await send_completion(conn, event, settings)
    return True


async def send_completion(conn: Conn, event: CampaignCompleted, settings: NotifierSettings) -> None:
    rows = await conn.fetch(
        "SELECT * FROM failures WHERE campaign_id = $1 ORDER BY row_number NULLS LAST, id FOR UPDATE",
        event.campaign_id,
    )
    bounced = len({r["delivery_id"] for r in rows if r["source"] == "bounce"})
    lines = [failures.line_of(r) for r in rows]
    cause = f"completed:{event.campaign_id}"
    attachment = None
    if len(lines) > settings.completion_csv_threshold:
        attachment = ("failures.csv", report_texts.failures_csv(lines))
    wishes = {
        r["kind"]: r["n"]
        for r in await conn.fetch(
            "SELECT kind, count(DISTINCT address) AS n FROM suppressions WHERE source_campaign = $1 "
            "AND kind IN ('unsubscribed', 'complained') GROUP BY kind",
            event.campaign_id,
        )
    }
    completion = report_texts.Completion(
        campaign_id=event.campaign_id,
        subject=event.subject,
        started_at=event.started_at,
        finished_at=event.finished_at,
        total=event.total,
        sent=event.sent,
        failed=event.failed,
        bounced=bounced,
        unsubscribed=int(wishes.get("unsubscribed", 0)),
        complained=int(wishes.get("complained", 0)),
    )
    text = report_texts.completion(
        await failures.addressee(conn, event.campaign_id, str(event.sender_email)),
        completion,
        lines,
        settings.completion_csv_threshold,
        settings.timezone,
        await delays.pending(conn, event.campaign_id),
    )
    await queue_mail(
        conn,
        kind="campaign.completed",
        cause=cause,
        recipient=str(event.sender_email).lower(),
        subject=text.subject,
        body=text.body,
        domain=mail_domain(str(settings.system_from)),
        attachment=attachment,
    )
    # What the completion mail lists needs no separate digest any more.
    await failures.mark_campaign_reported(conn, event.campaign_id, cause)
    await conn.execute("UPDATE pending_completions SET done_at = now() WHERE campaign_id = $1", event.campaign_id)


def flush_pending(settings: NotifierSettings) -> Callable[[asyncpg.Pool], Awaitable[int]]:
    """The digest loop's job: send waiting completion mails that are now complete or have waited long enough."""

    async def flush(pool: asyncpg.Pool) -> int:
        sent = 0
        while True:
            async with pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    "SELECT p.campaign_id, p.event FROM pending_completions p WHERE p.done_at IS NULL AND ("
                    " p.created_at <= now() - make_interval(secs => $1)"
                    " OR (SELECT count(*) FROM failures f WHERE f.campaign_id = p.campaign_id AND f.source = 'smtp')"
                    "    >= ((p.event::jsonb) ->> 'failed')::int"
                    ") ORDER BY p.created_at LIMIT 1 FOR UPDATE SKIP LOCKED",
                    settings.completion_wait_seconds,
                )
                if row is None:
                    return sent
                await send_completion(conn, CampaignCompleted.model_validate_json(row["event"]), settings)
                sent += 1

    return flush
