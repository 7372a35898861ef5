"""Storing a feedback report (a spam complaint) and its consequence, in one transaction, before the 250.

Which delivery a report is about is decided only from authenticated tags: the VERP address the report was
sent to, our VERP envelope sender inside the report (Original-Mail-From, the original's Return-Path), or the
unsubscribe token in the original's List-Unsubscribe. The delivery's own address (from deliveries.settled)
is suppressed for the campaign's sender organisation, never an address the report merely names. A report
that cannot be read, or names nothing of ours, is stored all the same (an operator may look), and counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import asyncpg
from prometheus_client import Counter

from isseimail_notifier import suppressions, unsubscribes
from isseimail_notifier.arf_parser import FEEDBACK_TYPES, FeedbackReport
from isseimail_notifier.unsubscribes import Target
from isseimail_shared.db import Conn
from isseimail_shared.unsubscribe import TOKEN_PATTERN, organisation_of, token_of_address
from isseimail_shared.verp import VerpTag, parse_bounce_address

COMPLAINTS = Counter(
    "isseimail_notifier_complaints_total",
    "Feedback reports received, by feedback type and outcome (counted, repeated, unidentified, "
    "not_complaint, unparsed).",
    ["feedback_type", "outcome"],
)
OUTCOMES = ("counted", "repeated", "unidentified", "not_complaint", "unparsed")
for _type in (*FEEDBACK_TYPES, "none"):
    for _outcome in OUTCOMES:
        COMPLAINTS.labels(_type, _outcome)

_URL_TOKEN = re.compile(rf"/unsubscribe/({TOKEN_PATTERN})(?![a-z2-7])", re.I)


@dataclass(frozen=True)
class Tags:
    secret: bytes
    bounce_domain: str


async def _delivery(conn: Conn, tag: VerpTag) -> Target | None:
    row = await conn.fetchrow(
        "SELECT d.recipient, c.sender_email FROM delivered_to($1, $2) d JOIN campaigns c ON c.campaign_id = $1",
        tag.campaign_id,
        tag.delivery_id,
    )
    if row is None:
        return None
    return Target(tag.campaign_id, tag.delivery_id, row["recipient"], organisation_of(row["sender_email"]))


def _tokens(list_unsubscribe: str | None, bounce_domain: str) -> list[str]:
    if not list_unsubscribe:
        return []
    found = [m.group(1).lower() for m in _URL_TOKEN.finditer(list_unsubscribe)]
    for uri in re.findall(r"mailto:([^>,\s?]+)", list_unsubscribe, re.I):
        token = token_of_address(uri, bounce_domain)
        if token:
            found.append(token)
    return found[:4]


async def identify(conn: Conn, tags: Tags, report: FeedbackReport, rcpt_tag: VerpTag | None) -> Target | None:
    """The delivery the report is about, from our authenticated tags only; None when none names one we know."""
    verp = [rcpt_tag] if rcpt_tag else []
    verp += [
        t for t in (parse_bounce_address(tags.secret, tags.bounce_domain, a) for a in report.envelope_senders()) if t
    ]
    for tag in verp:
        target = await _delivery(conn, tag)
        if target is not None:
            return target
    for token in _tokens(report.list_unsubscribe, tags.bounce_domain):
        target = await unsubscribes.resolve(conn, tags.secret, token)
        if target is not None:
            return target
    return None


async def store_complaint(
    pool: asyncpg.Pool,
    tags: Tags,
    *,
    mail_from: str,
    rcpt: str,
    data: bytes,
    report: FeedbackReport,
    rcpt_tag: VerpTag | None,
) -> str:
    """Record one received report; the outcome (see OUTCOMES)."""
    async with pool.acquire() as conn, conn.transaction():
        target = await identify(conn, tags, report, rcpt_tag) if report.is_report else None
        if not report.is_report:
            outcome = "unparsed"
        elif not report.is_complaint:
            outcome = "not_complaint"
        elif target is None:
            outcome = "unidentified"
        else:
            seen = await conn.fetchval(
                "SELECT 1 FROM complaints WHERE campaign_id = $1 AND delivery_id = $2 AND recipient IS NOT NULL",
                target.campaign_id,
                target.delivery_id,
            )
            outcome = "repeated" if seen else "counted"
        counted = outcome in ("counted", "repeated") and target is not None
        await conn.execute(
            "INSERT INTO complaints (mail_from, rcpt, size, raw, parsed, feedback_type, user_agent, campaign_id, "
            "delivery_id, recipient, organisation, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            mail_from[:500],
            rcpt[:500],
            len(data),
            data,
            report.is_report,
            report.feedback_type,
            report.user_agent,
            target.campaign_id if target else (rcpt_tag.campaign_id if rcpt_tag else None),
            target.delivery_id if target else (rcpt_tag.delivery_id if rcpt_tag else None),
            target.recipient if counted and target else None,
            target.organisation if target else None,
            report.note or (None if target or not report.is_report else "no authenticated tag of a known delivery"),
        )
        if counted and target is not None:
            await suppressions.record_wish(
                conn,
                address=target.recipient,
                organisation=target.organisation,
                kind="complained",
                campaign_id=target.campaign_id,
            )
    COMPLAINTS.labels(report.feedback_type or "none", outcome).inc()
    return outcome
