"""Understand a feedback report (ARF, RFC 5965): a mailbox provider telling us a recipient marked our mail.

    multipart/report; report-type=feedback-report
      1. text/plain                 a human-readable note
      2. message/feedback-report    Feedback-Type, User-Agent, Version, Original-Mail-From, Original-Rcpt-To, ...
      3. message/rfc822             the original message (or text/rfc822-headers: its header only)

Pure and total like the bounce parser: any bytes give a `FeedbackReport`, never an exception, with
`is_report=False` and a `note` when the mail is not a readable report. Work is bounded (size, MIME depth,
part count, field lengths). The parser only reads; which delivery is meant is decided by the caller from
authenticated tags alone (our VERP envelope sender, our unsubscribe token), never from Original-Rcpt-To,
which anybody can write and many providers redact.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

MAX_PARSE_BYTES = 20 * 1024 * 1024
MAX_DEPTH = 5
MAX_PARTS = 100
MAX_FIELD = 500
MAX_REPEATED = 20

# RFC 5965 §7.3 and its extensions (RFC 6591 auth-failure, RFC 6650); anything else is counted as "other".
FEEDBACK_TYPES = ("abuse", "fraud", "virus", "other", "not-spam", "auth-failure")
# A recipient's complaint about our mail. "not-spam" says the opposite, and "auth-failure" is an
# authentication report about the domain, not a recipient's wish: neither suppresses anybody.
COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other"})

_ANGLE = re.compile(r"<([^<>\s]{1,320})>")


@dataclass(frozen=True)
class FeedbackReport:
    is_report: bool
    feedback_type: str | None = None  # lower-case, one of FEEDBACK_TYPES
    user_agent: str | None = None
    version: str | None = None
    original_mail_from: str | None = None
    original_rcpt_to: tuple[str, ...] = ()
    source_ip: str | None = None
    reported_domain: str | None = None
    arrival_date: str | None = None
    # from the original message's header, when the report carries it
    return_path: str | None = None
    list_unsubscribe: str | None = None
    message_id: str | None = None
    has_original: bool = False
    note: str | None = None

    @property
    def is_complaint(self) -> bool:
        return self.is_report and self.feedback_type in COMPLAINT_TYPES

    def envelope_senders(self) -> list[str]:
        """Where our VERP address may appear: the reported envelope sender, the original's Return-Path."""
        return [a for a in (self.original_mail_from, self.return_path) if a]


def not_a_report(note: str) -> FeedbackReport:
    return FeedbackReport(False, note=note)


def parse_arf(data: bytes) -> FeedbackReport:
    """What this mail says as a feedback report; never raises."""
    try:
        if len(data) > MAX_PARSE_BYTES:
            return not_a_report(f"message of {len(data)} bytes is larger than {MAX_PARSE_BYTES}")
        return _parse(data)
    except Exception as exc:
        return not_a_report(f"unparsable message ({exc.__class__.__name__})")


def _clean(value: object) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())[:MAX_FIELD]
    return text or None


def _address(value: object) -> str | None:
    """An address field as written ("<a@b>", "a@b", "<>"): the bare address, or None for an empty one."""
    text = _clean(value)
    if text is None:
        return None
    match = _ANGLE.search(text)
    bare = match.group(1) if match else text.strip("<> ")
    return bare if bare and " " not in bare else None


def _parts(msg: Message) -> list[Message]:
    """The message's parts in order, depth first, bounded in depth and count."""
    found: list[Message] = []
    stack: list[tuple[Message, int]] = [(msg, 0)]
    while stack and len(found) < MAX_PARTS:
        part, level = stack.pop()
        found.append(part)
        ctype = part.get_content_type()
        # the original message's own parts are not part of the report
        if level >= MAX_DEPTH or ctype in ("message/rfc822", "message/feedback-report"):
            continue
        payload = part.get_payload()
        if part.is_multipart() and isinstance(payload, list):
            stack.extend((p, level + 1) for p in reversed(payload) if isinstance(p, Message))
    return found


def _fields(part: Message) -> Message:
    """The header block of a message/feedback-report or text/rfc822-headers part, whichever way it was parsed."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    raw = part.get_payload(decode=True)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload or "")
    return HeaderParser(policy=email.policy.compat32).parsestr(text[:65536])


def _parse(data: bytes) -> FeedbackReport:
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    parts = _parts(msg)
    feedback = next((p for p in parts if p.get_content_type() == "message/feedback-report"), None)
    if feedback is None:
        if msg.get_content_type() == "multipart/report":
            return not_a_report(f"a report of type {_clean(msg.get_param('report-type')) or '?'}, not feedback")
        return not_a_report("no message/feedback-report part")
    fields = _fields(feedback)
    raw_type = (_clean(fields.get("Feedback-Type")) or "").lower()
    if not raw_type:
        return not_a_report("feedback report without a Feedback-Type")
    feedback_type = raw_type if raw_type in FEEDBACK_TYPES else "other"
    original = next(
        (p for p in parts if p.get_content_type() in ("message/rfc822", "text/rfc822-headers", "message/global")),
        None,
    )
    headers = _fields(original) if original is not None else Message()
    rcpts = [a for a in (_address(v) for v in (fields.get_all("Original-Rcpt-To") or [])[:MAX_REPEATED]) if a]
    return FeedbackReport(
        True,
        feedback_type=feedback_type,
        user_agent=_clean(fields.get("User-Agent")),
        version=_clean(fields.get("Version")),
        original_mail_from=_address(fields.get("Original-Mail-From")),
        original_rcpt_to=tuple(rcpts),
        source_ip=_clean(fields.get("Source-IP")),
        reported_domain=_clean(fields.get("Reported-Domain")),
        arrival_date=_clean(fields.get("Arrival-Date") or fields.get("Received-Date")),
        return_path=_address(headers.get("Return-Path")),
        list_unsubscribe=_clean(headers.get("List-Unsubscribe")),
        message_id=_clean(headers.get("Message-ID")),
        has_original=original is not None,
        note=None if raw_type in FEEDBACK_TYPES else f"unknown feedback type {raw_type[:40]!r} counted as other",
    )
