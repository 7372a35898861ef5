"""The sender's reports (failure digests, the completion mail, the paused notice) and the failures CSV.

The mails' words are templates in templates/mail/; here are the values they need and the CSV, which is
data for Excel rather than a text.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from isseimail_notifier.delays import DelayLine
from isseimail_notifier.mail_texts import MailText, error_code, one_line, render, source_label
from isseimail_notifier.reasons import japanese

INLINE_DIGEST_LIMIT = 200


@dataclass(frozen=True)
class FailureLine:
    recipient: str
    row_number: int | None
    source: str  # "smtp" (refused while sending) or "bounce" (returned later)
    reason: str
    status: str | None
    smtp_code: int | None
    diagnostic: str


@dataclass(frozen=True)
class Completion:
    campaign_id: uuid.UUID
    subject: str
    started_at: dt.datetime
    finished_at: dt.datetime
    total: int
    sent: int
    failed: int
    bounced: int
    unsubscribed: int = 0  # recipients of this campaign who asked to stop (so far)
    complained: int = 0  # recipients of this campaign who reported it as spam (so far)


@dataclass(frozen=True)
class PausedCounts:
    total: int
    sent: int
    failed: int
    rate: float  # failed / attempted, 0..1


def failure_report(
    sender: str,
    campaign_id: uuid.UUID,
    campaign_subject: str,
    lines: Sequence[FailureLine],
    window_minutes: float,
) -> MailText:
    """The digest of failures not yet reported: up to INLINE_DIGEST_LIMIT inline, all in the CSV beyond."""
    return render(
        "failures.txt",
        sender=sender,
        campaign_id=campaign_id,
        campaign_subject=campaign_subject,
        lines=lines,
        inline_limit=INLINE_DIGEST_LIMIT,
        window_minutes=window_minutes,
    )


def completion(
    sender: str,
    c: Completion,
    lines: Sequence[FailureLine],
    inline_limit: int,
    timezone: str,
    delayed: Sequence[DelayLine] = (),
) -> MailText:
    return render(
        "completion.txt", sender=sender, c=c, lines=lines, inline_limit=inline_limit, timezone=timezone, delayed=delayed
    )


def paused(
    sender: str,
    campaign_id: uuid.UUID,
    campaign_subject: str,
    counts: PausedCounts,
    lines: Sequence[FailureLine],
    inline_limit: int,
) -> MailText:
    return render(
        "paused.txt",
        sender=sender,
        campaign_id=campaign_id,
        campaign_subject=campaign_subject,
        counts=counts,
        lines=lines,
        inline_limit=inline_limit,
    )


CSV_HEADER = ("CSVの行", "メールアドレス", "理由", "理由コード", "検出", "エラーコード", "相手先サーバからの応答")


def _cell(value: object) -> object:
    """No spreadsheet formulas from remote text (CSV injection): such cells start with a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def failures_csv(lines: Sequence[FailureLine]) -> bytes:
    """UTF-8 with BOM and CRLF: what Excel opens without garbling Japanese."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for line in lines:
        writer.writerow(
            _cell(v)
            for v in [
                line.row_number or "",
                line.recipient,
                japanese(line.reason),
                line.reason,
                source_label(line),
                error_code(line),
                one_line(line.diagnostic, 1000),
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")
