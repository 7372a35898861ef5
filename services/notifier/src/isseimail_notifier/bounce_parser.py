"""Understand a returned mail: RFC 3464 delivery status notifications and the common non-standard bounces.

Pure (bytes in, result out) and total: any input gives a `BounceResult`, never an exception. A mail that
is not a bounce (an auto-reply, a delay warning, a read receipt, anything else) comes back with
`is_bounce=False` and a `note` saying why. Work is bounded: message size, MIME depth and part count,
number of recipient blocks and scanned text are all capped, so hostile input costs little.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.header
import email.policy
import quopri
import re
from dataclasses import asdict, dataclass, field
from email.message import Message
from typing import Any

from isseimail_notifier.reasons import classify, find_reply_code, find_status, is_hard

MAX_PARSE_BYTES = 20 * 1024 * 1024
MAX_DEPTH = 5
MAX_PARTS = 200
MAX_BLOCKS = 1000
MAX_TEXT = 64 * 1024
MAX_DIAGNOSTIC = 1000
MAX_RECIPIENTS_KEPT = 100

_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\-\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9\-.]{0,251}[A-Za-z0-9])?")
_DAEMON = re.compile(r"mailer-daemon|postmaster|mail delivery|mailer|delivery[- ]subsystem|double-bounce", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|returned mail|delivery (?:status notification|failure|failed|has failed)|"
    r"mail delivery failed|failure notice|could not be delivered|non[- ]?delivery|delivery problem|"
    r"配信(?:不能|エラー|失敗)|送信(?:エラー|失敗)|届きませんでした|不達|エラーメール",
    re.I,
)
_DELAY_SUBJECT = re.compile(
    r"delayed mail|delivery (?:status notification )?\(delay\)|warning: could not send|still being retried|"
    r"delivery delayed|遅延",
    re.I,
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^(?:auto(?:matic)?[ -]?(?:reply|response)|out of (?:the )?office|vacation|away from|自動(?:応答|返信)|不在)|"
    r"^auto:",
    re.I,
)


@dataclass(frozen=True)
class BounceResult:
    is_bounce: bool
    recipient: str | None
    status: str | None
    reason: str
    hard: bool
    diagnostic: str
    note: str | None = None
    recipients: tuple[str, ...] = field(default_factory=tuple)

    def as_json(self, file: str | None = None) -> dict[str, Any]:
        data = asdict(self)
        data["recipients"] = list(self.recipients)
        return {"file": file, **data} if file is not None else data


def not_a_bounce(note: str, reason: str = "undefined") -> BounceResult:
    return BounceResult(False, None, None, reason, False, "", note)


def parse_bounce(data: bytes) -> BounceResult:
    """What this mail says about a failed delivery; never raises."""
    try:
        if len(data) > MAX_PARSE_BYTES:
            return not_a_bounce(f"message of {len(data)} bytes is larger than {MAX_PARSE_BYTES}")
        return _parse(data)
    except Exception as exc:
        return not_a_bounce(f"unparsable message ({exc.__class__.__name__})")


# --- message structure -----------------------------------------------------------------------------


def _header(msg: Message, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    try:
        parts = email.header.decode_header(str(value))
        text = "".join(p.decode(_codec(c), "replace") if isinstance(p, bytes) else p for p, c in parts)
    except Exception:
        text = str(value)
    return " ".join(text.split())[:1000]


def _codec(charset: str | None) -> str:
    import codecs

    name = (charset or "utf-8").strip().lower()
    if name in ("unknown-8bit", "x-unknown", ""):
        return "utf-8"
    try:
        codecs.lookup(name)
    except LookupError:
        return "utf-8"
    return name


def _walk(msg: Message, depth: int = 0, budget: list[int] | None = None) -> list[tuple[Message, int, bool]]:
    """(part, depth, inside an attached original message) for the leaves and containers, bounded."""
    budget = budget if budget is not None else [MAX_PARTS]
    out: list[tuple[Message, int, bool]] = []
    stack: list[tuple[Message, int, bool]] = [(msg, depth, False)]
    while stack and budget[0] > 0:
        part, level, original = stack.pop(0)
        budget[0] -= 1
        out.append((part, level, original))
        if level >= MAX_DEPTH:
            continue
        ctype = part.get_content_type()
        if ctype == "message/delivery-status" or ctype == "message/global-delivery-status":
            continue
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                is_original = original or ctype in ("message/rfc822", "message/global")
                stack.extend((p, level + 1, is_original) for p in payload if isinstance(p, Message))
    return out


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw[:MAX_TEXT] if isinstance(raw, str) else ""
    return payload[: MAX_TEXT * 4].decode(_codec(part.get_content_charset()), "replace")[:MAX_TEXT]


# --- RFC 3464 ---------------------------------------------------------------------------------------


def _status_blocks(part: Message) -> list[dict[str, str]]:
    """The header-like field groups of a message/delivery-status part, lower-cased names."""
    payload = part.get_payload()
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if isinstance(payload, list):
        texts = [m.as_string() if isinstance(m, Message) else str(m) for m in payload[: MAX_BLOCKS + 1]]
        text = "\n\n".join(texts)
        if encoding in ("base64", "quoted-printable"):
            # The parser split the encoded text into "blocks"; decode what it saw as one body.
            text = _decode_transfer(text, encoding)
    else:
        text = _text_of(part) if not isinstance(payload, str) else payload
        if part.get("Content-Transfer-Encoding", "").lower() in ("base64", "quoted-printable"):
            text = _text_of(part)
    blocks: list[dict[str, str]] = []
    for chunk in re.split(r"\r?\n\s*\r?\n", text[: MAX_TEXT * 16]):
        fields: dict[str, str] = {}
        name = None
        for line in chunk.splitlines():
            if line[:1] in (" ", "\t") and name:
                fields[name] += " " + line.strip()
                continue
            key, sep, value = line.partition(":")
            if sep and key.strip() and " " not in key.strip():
                name = key.strip().lower()
                fields.setdefault(name, value.strip())
        if fields:
            blocks.append(fields)
        if len(blocks) > MAX_BLOCKS:
            break
    return blocks


def _decode_transfer(text: str, encoding: str) -> str:

    raw = text.encode("ascii", "replace")
    try:
        decoded = (
            base64.b64decode(b"".join(raw.split()), validate=False)
            if encoding == "base64"
            else quopri.decodestring(raw)
        )
    except (binascii.Error, ValueError):
        return text
    return decoded[: MAX_TEXT * 16].decode("utf-8", "replace")


def _strip_type(value: str) -> str:
    """'rfc822; user@example.jp' -> 'user@example.jp'; 'smtp; 550 ...' -> '550 ...'."""
    kind, sep, rest = value.partition(";")
    return rest.strip().strip("<>") if sep and " " not in kind.strip() else value.strip().strip("<>")


def _from_dsn(part: Message) -> BounceResult:
    blocks = _status_blocks(part)
    recipients = [b for b in blocks[1:] or blocks if "final-recipient" in b or "original-recipient" in b]
    if not recipients:
        return not_a_bounce("delivery status notification without any recipient")
    failed = [b for b in recipients if _action(b) == "failed"]
    delayed = [b for b in recipients if _action(b) == "delayed"]
    chosen = failed[0] if failed else delayed[0] if delayed else recipients[0]
    action = _action(chosen)
    recipient = _address(_strip_type(chosen.get("final-recipient") or chosen.get("original-recipient", "")))
    diagnostic = _strip_type(chosen.get("diagnostic-code", ""))[:MAX_DIAGNOSTIC]
    status = find_status(chosen.get("status", "")) or find_status(diagnostic)
    note = f"{len(recipients)} recipients in the report; the first failed one is used" if len(recipients) > 1 else None
    if action in ("delivered", "relayed", "expanded"):
        return BounceResult(False, recipient, status, "undefined", False, diagnostic, f"success notice ({action})")
    if action == "delayed":
        return BounceResult(False, recipient, status, "delayed", False, diagnostic, "delay warning, not a failure")
    if recipient is None:
        return not_a_bounce("delivery status notification without a usable recipient address")
    reason = classify(status, diagnostic, find_reply_code(diagnostic))
    if reason == "undefined" and status is None and not diagnostic:
        reason = "undefined"
    all_failed = tuple(
        a for b in failed[:MAX_RECIPIENTS_KEPT] if (a := _address(_strip_type(b.get("final-recipient", ""))))
    )
    return BounceResult(True, recipient, status, reason, is_hard(reason), diagnostic, note, all_failed or (recipient,))


def _action(block: dict[str, str]) -> str:
    action = block.get("action", "").strip().lower().split(" ")[0]
    if action:
        return action
    status = find_status(block.get("status", ""))
    if status is None:
        return "failed"
    return "failed" if status.startswith("5") else "delayed" if status.startswith("4") else "delivered"


def _address(text: str) -> str | None:
    match = _ADDRESS.search(text)
    return match[0].strip('"').lower() if match else None


# --- non-standard bounces --------------------------------------------------------------------------


def _parse(data: bytes) -> BounceResult:
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    subject = _header(msg, "Subject")
    sender = _header(msg, "From")
    auto = _header(msg, "Auto-Submitted").lower()
    parts = _walk(msg)

    if msg.get_content_type() == "multipart/report":
        report_type = str(msg.get_param("report-type", "") or "").lower()
        if report_type == "disposition-notification":
            return not_a_bounce("read receipt (message disposition notification)")
    for part, _depth, original in parts:
        if original:
            continue
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            return _from_dsn(part)

    failed_header = _header(msg, "X-Failed-Recipients")
    looks_bounce = bool(
        failed_header or _DAEMON.search(sender) or _BOUNCE_SUBJECT.search(subject) or _DELAY_SUBJECT.search(subject)
    )
    if not looks_bounce:
        # Checked after the bounce signs: MTAs mark their bounces Auto-Submitted: auto-replied too.
        if (
            auto.startswith("auto-replied")
            or msg.get("X-Autoreply") is not None
            or msg.get("X-Autorespond") is not None
            or _header(msg, "Precedence").lower() == "auto_reply"
            or _AUTO_REPLY_SUBJECT.search(subject)
        ):
            return not_a_bounce("automatic reply (vacation or out-of-office)", reason="vacation")
        return not_a_bounce("not a delivery status notification")

    text = _body_text(parts)
    own = {a.lower() for a in _ADDRESS.findall(sender + " " + _header(msg, "To"))}
    if _DELAY_SUBJECT.search(subject):
        return BounceResult(
            False,
            _first_recipient(text, own),
            find_status(text),
            "delayed",
            False,
            _diagnostic(text, 0),
            "delay warning, not a failure",
        )
    recipient = _address(failed_header) if failed_header else None
    position = 0
    if recipient is None:
        recipient, position = _find_recipient(text, own)
    else:
        position = max(text.lower().find(recipient), 0)
    if recipient is None:
        recipient = _original_recipient(parts)
        if recipient is None:
            return not_a_bounce("bounce without any recipient address")
    diagnostic = _diagnostic(text, position)
    status = find_status(diagnostic) or find_status(text[position:])
    reason = classify(status, diagnostic or text[position : position + 2000], find_reply_code(diagnostic))
    if reason == "undefined":
        reason = classify(status, text[:MAX_TEXT])
    return BounceResult(
        True, recipient, status, reason, is_hard(reason), diagnostic, "non-standard bounce", (recipient,)
    )


def _body_text(parts: list[tuple[Message, int, bool]]) -> str:
    plain = [p for p, _d, original in parts if not original and p.get_content_type() == "text/plain"]
    if plain:
        return "\n".join(_text_of(p) for p in plain[:3])[:MAX_TEXT]
    html = [p for p, _d, original in parts if not original and p.get_content_type() == "text/html"]
    if html:
        text = re.sub(r"<[^>]{0,2000}>", " ", _text_of(html[0]))
        return re.sub(r"&(?:lt|gt|nbsp|amp);", " ", text)[:MAX_TEXT]
    return ""


def _find_recipient(text: str, own: set[str]) -> tuple[str | None, int]:
    for match in _ADDRESS.finditer(text):
        address = match[0].strip('"').lower()
        local = address.partition("@")[0]
        if address in own or _DAEMON.search(local) or local in ("root", "nobody"):
            continue
        return address, match.start()
    return None, 0


def _first_recipient(text: str, own: set[str]) -> str | None:
    return _find_recipient(text, own)[0]


def _original_recipient(parts: list[tuple[Message, int, bool]]) -> str | None:
    for part, _d, original in parts:
        if original and part.get("To"):
            return _address(_header(part, "To"))
        if part.get_content_type() == "text/rfc822-headers":
            headers = email.message_from_string(_text_of(part), policy=email.policy.compat32)
            if headers.get("To"):
                return _address(_header(headers, "To"))
    return None


_DIAG_LINE = re.compile(r"(?<!\d)[45]\d\d[ -]|(?<![\d.])[45]\.\d{1,3}\.\d{1,3}(?![\d.])|#[45]\.\d")


def _diagnostic(text: str, position: int) -> str:
    """The server's own words: the reply line(s) after the recipient, or the recipient's paragraph."""
    position = text.rfind("\n", 0, position) + 1  # from the start of the recipient's line
    lines = text[position : position + 8000].splitlines()
    for index, line in enumerate(lines[:80]):
        if _DIAG_LINE.search(line):
            picked = [line.strip()]
            for follow in lines[index + 1 : index + 4]:
                if not follow.strip() or _ADDRESS.match(follow.strip().strip("<>")):
                    break
                if follow.startswith((" ", "\t")) or _DIAG_LINE.match(follow.strip()):
                    picked.append(follow.strip())
            return " ".join(picked)[:MAX_DIAGNOSTIC]
    paragraph: list[str] = []
    for line in lines[:12]:
        if not line.strip() and paragraph:
            break
        if line.strip():
            paragraph.append(line.strip())
    if len(paragraph) <= 1:
        # The address stands alone (carrier style): the explanation is the paragraph before it.
        before = [p.strip() for p in re.split(r"\n\s*\n", text[max(0, position - 2000) : position]) if p.strip()]
        if before:
            paragraph = [" ".join(before[-1].split()), *paragraph]
    return " ".join(paragraph)[:MAX_DIAGNOSTIC]
