"""Handlers of the dispatcher's events: failures reported to the sender, the completion mail."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from isseimail_notifier import completion, failures, report_texts, suppressions
from isseimail_notifier.failures import DigestPolicy
from isseimail_notifier.mail_queue import mail_domain, queue_mail
from isseimail_notifier.reasons import classify, counts_for_suppression, find_status, is_hard
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.db import Conn
from isseimail_shared.events import (
    CampaignAccepted,
    CampaignCompleted,
    CampaignPaused,
    DeliveriesSettled,
    DeliveryFailed,
    DeliverySucceeded,
    Envelope,
    SettledFailure,
)


def policy_of(settings: NotifierSettings) -> DigestPolicy:
    return DigestPolicy(
        window_seconds=settings.failure_digest_seconds,
        system_from=str(settings.system_from),
        csv_threshold=settings.completion_csv_threshold,
    )


def campaign_accepted(settings: NotifierSettings) -> Callable[[Conn, Envelope, CampaignAccepted], Awaitable[None]]:
    policy = policy_of(settings)

    async def handle(conn: Conn, envelope: Envelope, event: CampaignAccepted) -> None:
        await failures.remember_campaign(
            conn, event.campaign_id, str(event.sender_email), event.subject, event.sender_name
        )
        await failures.flush_campaign(conn, event.campaign_id, policy)  # bounces that arrived before it

    return handle


def delivery_succeeded(
    settings: NotifierSettings,
) -> Callable[[Conn, Envelope, DeliverySucceeded], Awaitable[None]]:
    """One delivered recipient per event: what dispatchers sent before deliveries.settled."""

    async def handle(conn: Conn, envelope: Envelope, event: DeliverySucceeded) -> None:
        await conn.execute(
            "INSERT INTO deliveries (campaign_id, delivery_id, recipient, row_number) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING",
            event.campaign_id,
            event.delivery_id,
            event.recipient.lower(),
            event.row_number,
        )

    return handle


def campaign_paused(settings: NotifierSettings) -> Callable[[Conn, Envelope, CampaignPaused], Awaitable[None]]:
    """The dispatcher stopped a campaign on too many hard failures: tell the sender, with the failures so far."""

    async def handle(conn: Conn, envelope: Envelope, event: CampaignPaused) -> None:
        await failures.remember_campaign(conn, event.campaign_id, str(event.sender_email), event.subject)
        rows = await conn.fetch(
            "SELECT * FROM failures WHERE campaign_id = $1 ORDER BY row_number NULLS LAST, id FOR UPDATE",
            event.campaign_id,
        )
        lines = [failures.line_of(r) for r in rows]
        cause = f"paused:{event.campaign_id}"
        attachment = None
        if len(lines) > settings.completion_csv_threshold:
            attachment = ("failures.csv", report_texts.failures_csv(lines))
        text = report_texts.paused(
            await failures.addressee(conn, event.campaign_id, str(event.sender_email)),
            event.campaign_id,
            event.subject,
            report_texts.PausedCounts(event.total, event.sent, event.failed, event.failure_rate),
            lines,
            settings.completion_csv_threshold,
        )
        await queue_mail(
            conn,
            kind="campaign.paused",
            cause=cause,
            recipient=str(event.sender_email).lower(),
            subject=text.subject,
            body=text.body,
            domain=mail_domain(str(settings.system_from)),
            attachment=attachment,
        )
        await failures.mark_campaign_reported(conn, event.campaign_id, cause)

    return handle


async def _record_failure(
    conn: Conn, settings: NotifierSettings, campaign_id: uuid.UUID, failure: DeliveryFailed | SettledFailure
) -> None:
    status = failure.enhanced_status or find_status(failure.diagnostic)
    reason = classify(status, failure.diagnostic, failure.smtp_code)
    # Temporary failures past the retry age are never hard, whatever their text says.
    permanent = (failure.smtp_code or 500) >= 500 and not (status or "5").startswith("4")
    hard = permanent and is_hard(reason)
    fresh = await failures.record(
        conn,
        campaign_id=campaign_id,
        delivery_id=failure.delivery_id,
        source="smtp",
        recipient=failure.recipient,
        row_number=failure.row_number,
        status=status,
        smtp_code=failure.smtp_code,
        reason=reason,
        hard=hard,
        diagnostic=failure.diagnostic,
    )
    if fresh and permanent and counts_for_suppression(reason):
        await suppressions.record_failure(
            conn,
            address=failure.recipient,
            reason=reason,
            hard=hard,
            campaign_id=campaign_id,
            soft_limit=settings.soft_bounce_limit,
        )


def delivery_failed(settings: NotifierSettings) -> Callable[[Conn, Envelope, DeliveryFailed], Awaitable[None]]:
    """One failure per event: what dispatchers sent before deliveries.settled (kept for events still queued)."""
    policy = policy_of(settings)

    async def handle(conn: Conn, envelope: Envelope, event: DeliveryFailed) -> None:
        await failures.remember_campaign(conn, event.campaign_id, str(event.sender_email), event.subject)
        await _record_failure(conn, settings, event.campaign_id, event)
        await failures.flush_campaign(conn, event.campaign_id, policy)

    return handle


def deliveries_settled(
    settings: NotifierSettings,
) -> Callable[[Conn, Envelope, DeliveriesSettled], Awaitable[None]]:
    """A group of outcomes: its delivered addresses as one row (for bounces), each failure recorded and reported."""
    policy = policy_of(settings)

    async def handle(conn: Conn, envelope: Envelope, event: DeliveriesSettled) -> None:
        if event.delivered_ids:
            await conn.execute(
                "INSERT INTO delivered_groups (campaign_id, ids, delivery_ids, recipients, row_numbers) "
                "VALUES ($1, int8range($2, $3, '[]'), $4, $5, $6)",
                event.campaign_id,
                min(event.delivered_ids),
                max(event.delivered_ids),
                event.delivered_ids,
                [r.lower() for r in event.delivered_to],
                event.delivered_rows,
            )
        if not event.failed:
            return
        await failures.remember_campaign(conn, event.campaign_id, str(event.sender_email), event.subject)
        for failure in event.failed:
            await _record_failure(conn, settings, event.campaign_id, failure)
        await failures.flush_campaign(conn, event.campaign_id, policy)

    return handle


def campaign_completed(settings: NotifierSettings) -> Callable[[Conn, Envelope, CampaignCompleted], Awaitable[None]]:
    async def handle(conn: Conn, envelope: Envelope, event: CampaignCompleted) -> None:
        await completion.complete_or_wait(conn, event, settings)

    return handle
