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
from dataclasses import asdict, dataclass, field, replace
from email.message import Message
from functools import cached_property
from typing import Any

from isseimail_notifier import bounce_plain as plain
from isseimail_notifier.bounce_ses import ses_verdict
from isseimail_notifier.reasons import (
    SUCCESS_ACTIONS,
    better_status,
    classify,
    derived_status,
    find_reply_code,
    find_status,
    is_hard,
)

MAX_PARSE_BYTES = 20 * 1024 * 1024
MAX_DEPTH = 5
MAX_PARTS = 200
MAX_BLOCKS = 1000
MAX_TEXT = 64 * 1024
MAX_DIAGNOSTIC = 1000
MAX_RECIPIENTS_KEPT = 100

_ADDRESS = plain.ADDRESS
_DAEMON = plain.DAEMON
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|returned mail|delivery (?:status notification|failure|failed|has failed|problem)|"
    r"mail delivery failed|failure notice|could not be delivered|non[- ]?delivery|delivery problem|"
    r"mail (?:system error|error)|returned to sender|rejected|not delivered|delivery error|"
    r"unzustellbar|nicht zustellbar|non remis|non distribu|échec de (?:la )?remise|no se (?:puede|pudo) entregar|"
    r"non recapitabil|mensagem não entregue|"
    r"配信(?:不能|エラー|失敗)|送信(?:エラー|失敗)|届きませんでした|不達|エラーメール|返送",
)
_DELAY_SUBJECT = re.compile(
    r"delayed mail|delivery (?:status notification )?\(delay\)|warning: could not send|still being retried|"
    r"delivery delayed|delayed:|delay(?:ed)? notification|遅延",
)
# Japanese mobile carriers: their "user unknown" after DATA is the recipient's own domain filter (指定受信).
_CARRIERS = re.compile(
    r"(?:^|\.)(?:docomo\.ne\.jp|ezweb\.ne\.jp|au\.com|ido\.ne\.jp|softbank\.ne\.jp|i\.softbank\.jp|"
    r"[a-z]\.vodafone\.ne\.jp|disney\.ne\.jp|pdx\.ne\.jp|willcom\.com|emnet\.ne\.jp|ymobile\.ne\.jp|"
    r"y-mobile\.ne\.jp|rakuten\.jp|uqmobile\.jp)$",
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
    action: str = ""

    def as_json(self, file: str | None = None) -> dict[str, Any]:
        data = asdict(self)
        data["recipients"] = list(self.recipients)
        return {"file": file, **data} if file is not None else data


def not_a_bounce(note: str, reason: str = "undefined", action: str = "") -> BounceResult:
    return BounceResult(False, None, None, reason, False, "", note, (), action)


def parse_bounce(data: bytes) -> BounceResult:
    """What this mail says about a failed delivery; never raises."""
    try:
        if len(data) > MAX_PARSE_BYTES:
            return not_a_bounce(f"message of {len(data)} bytes is larger than {MAX_PARSE_BYTES}")
        result = _parse(data)
    except Exception as exc:
        return not_a_bounce(f"unparsable message ({exc.__class__.__name__})")
    if result.is_bounce and result.reason != "filtered" and _SPASIGN.search(data[: data.find(b"\n\n") % 65536]):
        # au's filter marks the mail it refused (X-SPASIGN: NG): the recipient's own setting, not the address.
        result = replace(result, reason="filtered", hard=False)
    return result


_SPASIGN = re.compile(rb"^X-SPASIGN:[ \t]*NG", re.I | re.M)


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


Parts = list[tuple[Message, str, bool]]


def _walk(msg: Message) -> Parts:
    """(part, its content type, inside an attached original message) for leaves and containers, bounded."""
    budget = MAX_PARTS
    out: Parts = []
    stack: list[tuple[Message, int, bool]] = [(msg, 0, False)]
    while stack and budget > 0:
        part, level, original = stack.pop(0)
        budget -= 1
        ctype = part.get_content_type()
        out.append((part, ctype, original))
        if level >= MAX_DEPTH or ctype in ("message/delivery-status", "message/global-delivery-status"):
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
        if encoding in ("base64", "quoted-printable"):
            # The parser split the encoded text into "blocks"; decode what it saw as one body.
            texts = [m.as_string() if isinstance(m, Message) else str(m) for m in payload[: MAX_BLOCKS + 1]]
            text = _decode_transfer("\n\n".join(texts), encoding)
        else:
            text = "\n\n".join(_fields_text(m) for m in payload[: MAX_BLOCKS + 1])
    else:
        text = _text_of(part) if not isinstance(payload, str) else payload
        if part.get("Content-Transfer-Encoding", "").lower() in ("base64", "quoted-printable"):
            text = _text_of(part)
    return _blocks_of(text)


def _blocks_of(text: str) -> list[dict[str, str]]:
    """Blank-line separated groups of "Name: value" fields (continuation lines folded in)."""
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


def _fields_text(block: Message | object) -> str:
    """A parsed field group back as text, without the cost of the generator (as_string)."""
    if not isinstance(block, Message):
        return str(block)
    text = "\n".join(f"{name}: {value}" for name, value in block.items())
    body = block.get_payload()
    return text + "\n\n" + body if isinstance(body, str) and body.strip() else text


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


def _address(text: str) -> str | None:
    for match in _ADDRESS.finditer(text):
        address = plain.clean(match[0])
        if plain.qualified(address):
            return address
    return None


def _action(block: dict[str, str]) -> str:
    action = block.get("action", "").strip().lower().split(" ")[0].strip(";,.")
    if action:
        return action
    status = find_status(block.get("status", ""))
    if status is None:
        return "failed"
    return "failed" if status.startswith("5") else "delayed" if status.startswith("4") else "delivered"


def _block_recipient(block: dict[str, str], addressed: list[str]) -> str | None:
    for name in ("final-recipient", "original-recipient", "x-actual-recipient"):
        address = _address(_strip_type(block.get(name, "")))
        if address:
            return address
    return addressed[0] if len(addressed) == 1 else None


def _is_success(action: str, status: str | None) -> bool:
    return action in SUCCESS_ACTIONS or (status or "").startswith("2")


def _from_dsn(part: Message | str, body: _Body | str) -> BounceResult | None:
    """The RFC 3464 report (a delivery-status part, or its fields pasted in a text part); None when it names
    no recipient (the human-readable text is read instead)."""
    blocks = _status_blocks(part) if isinstance(part, Message) else _blocks_of(part)
    listed = [b for b in blocks[1:] or blocks if "final-recipient" in b or "original-recipient" in b]
    if not listed:
        listed = [b for b in blocks if "action" in b and "status" in b]
    if not listed:
        return None
    judged = []
    for block in listed:
        action = _action(block)
        diagnostic = _strip_type(block.get("diagnostic-code", ""))[:MAX_DIAGNOSTIC]
        status = better_status(find_status(block.get("status", "")), diagnostic)
        if block.get("diagnostic-code", "").lower().startswith("x-unix"):
            diagnostic = block["diagnostic-code"][:MAX_DIAGNOSTIC]  # a local mailer's exit code: keep its kind
        judged.append((block, action, status, diagnostic))
    failed = [j for j in judged if not _is_success(j[1], j[2]) and j[1] not in ("delayed",)]
    delayed = [j for j in judged if j[1] == "delayed" and not (j[2] or "").startswith("2")]
    block, action, status, diagnostic = failed[0] if failed else delayed[0] if delayed else judged[0]
    recipient = _block_recipient(block, [])
    if recipient is None and isinstance(body, _Body):
        recipient = _block_recipient(block, body.addressed)
    note = f"{len(listed)} recipients in the report; the first failed one is used" if len(listed) > 1 else None
    if _is_success(action, status):
        return BounceResult(
            False, recipient, status, "delivered", False, diagnostic, f"success notice ({action})", (), action
        )
    if action == "delayed":
        return BounceResult(
            False, recipient, status, "delayed", False, diagnostic, "delay warning, not a failure", (), "delayed"
        )
    if recipient is None:
        return None
    if not diagnostic:
        # Some MTAs leave Diagnostic-Code out: the human-readable part explains the recipient.
        human = body.report if isinstance(body, _Body) else body
        diagnostic = plain.diagnostic(human, max(human.lower().find(recipient), 0))
        status = better_status(status, diagnostic)
    reason = _reason(status, diagnostic, recipient, body)
    if (status or "").startswith("4") and reason in ("systemerror", "onhold", "undefined"):
        reason = "expired"  # a temporary failure the MTA finally gave up on: it expired in its queue
    status = status or derived_status(reason, find_reply_code(diagnostic))
    all_failed = tuple(a for j in failed[:MAX_RECIPIENTS_KEPT] if (a := _block_recipient(j[0], [])))
    return BounceResult(
        True, recipient, status, reason, is_hard(reason, status), diagnostic, note, all_failed or (recipient,), "failed"
    )


def _reason(status: str | None, diagnostic: str, recipient: str, body: _Body | str) -> str:
    """The reason, the text around the recipient read only when the diagnostic leaves it open."""
    reason = classify(status, diagnostic, find_reply_code(diagnostic))
    domain = recipient.rpartition("@")[2]
    carrier = bool(_CARRIERS.search(domain))
    if reason not in ("undefined", "onhold", "userunknown", "rejected") or (reason == "rejected" and not carrier):
        return reason
    context = body.report if isinstance(body, _Body) else body
    if reason in ("undefined", "onhold") and context:
        reason = classify(status, context[:4000], find_reply_code(diagnostic))
        if reason in ("vacation",):
            reason = "undefined"
    if carrier and reason in ("userunknown", "rejected", "undefined", "onhold"):
        window = diagnostic + "\n" + context[:4000]
        if plain.after_data(window) or re.search(r"指定受信|受信拒否|拒否設定|filter", window, re.I):
            return "filtered"
    elif reason == "userunknown" and not (status or "").endswith(".1.1"):
        # "User unknown" only after the message was sent (DATA): the mailbox was accepted at RCPT, so it
        # exists and a filter refused this message.
        position = context.lower().find(recipient)
        local = plain.diagnostic(context, position) if position >= 0 else ""
        if plain.after_data(diagnostic + "\n" + local):
            return "filtered"
    return reason


# --- the message -----------------------------------------------------------------------------------


class _Body:
    """The report's text and the returned message's recipients, read only when a verdict needs them."""

    def __init__(self, parts: Parts) -> None:
        self._parts = parts

    @cached_property
    def text(self) -> str:
        return _body_text(self._parts)

    @cached_property
    def _split(self) -> tuple[str, str]:
        return plain.split_original(self.text)

    @property
    def report(self) -> str:
        return self._split[0]

    @cached_property
    def addressed(self) -> list[str]:
        return _original_headers(self._parts, self._split[1])


def _original_headers(parts: Parts, tail: str) -> list[str]:
    """Who the returned message was addressed to (its To/Cc), from an attached copy or the quoted text."""
    for part, ctype, original in parts:
        if original and (part.get("To") or part.get("Cc")):
            found = [plain.clean(a) for a in _ADDRESS.findall(_header(part, "To") + " " + _header(part, "Cc"))]
            return [a for a in found if plain.qualified(a)]
        if ctype == "text/rfc822-headers":
            found = plain.header_recipients(_text_of(part))
            if found:
                return found
    return plain.header_recipients(tail) if tail else []


_AUTO_REPLY_HEADERS = frozenset(
    {
        "x-autoreply",
        "x-autorespond",
        "x-autogenerated",
        "x-autoreply-from",
        "x-mail-autoreply",
        "x-vacation",
        "x-auto-reply",
    }
)


def _is_auto_reply(msg: Message, names: set[str], subject: str, auto: str) -> bool:
    return (
        auto.startswith("auto-replied")
        or not names.isdisjoint(_AUTO_REPLY_HEADERS)
        or ("x-auto-response-suppress" in names and bool(plain.AUTO_REPLY_SUBJECT.search(subject.lower())))
        or ("precedence" in names and _header(msg, "Precedence").lower() == "auto_reply")
        or bool(plain.AUTO_REPLY_SUBJECT.search(subject.lower()))
    )


def _parse(data: bytes) -> BounceResult:
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    names = {name.lower() for name in msg.keys()}  # noqa: SIM118  # one pass; Message.get scans every header each time
    subject = _header(msg, "Subject")
    sender = _header(msg, "From")
    auto = _header(msg, "Auto-Submitted").lower() if "auto-submitted" in names else ""
    parts = _walk(msg)

    if parts[0][1] == "multipart/report":
        report_type = str(msg.get_param("report-type", "") or "").lower()
        if report_type == "disposition-notification":
            return not_a_bounce("read receipt (message disposition notification)")
        if report_type == "feedback-report":
            return not_a_bounce("feedback report (ARF), not a bounce", "feedback")
    if any(ctype == "message/feedback-report" for _p, ctype, o in parts if not o):
        return not_a_bounce("feedback report (ARF), not a bounce", "feedback")

    body = _Body(parts)
    for part, ctype, original in parts:
        if original:
            continue
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            result = _from_dsn(part, body)
            if result is not None:
                return result
            break

    text = body.text
    report, addressed = body.report, body.addressed
    ses = ses_verdict(text) if "notificationType" in text or "eventType" in text else None
    if ses is not None:
        is_bounce, recipient, status, reason, action, diag, recipients = ses
        note = "Amazon SES notification"
        return BounceResult(
            is_bounce, recipient, status, reason, is_bounce and is_hard(reason, status), diag, note, recipients, action
        )

    failed_header = _header(msg, "X-Failed-Recipients") if "x-failed-recipients" in names else ""
    daemon = bool(_DAEMON.search(sender))
    low_subject, low_report = subject.lower(), report[:8000].lower()
    # A person's reply to or forward of a bounce ("Re: Undeliverable: ...") is not a bounce.
    reply = bool(_REPLY_SUBJECT.match(low_subject)) and not daemon
    subject_sign = not reply and bool(_BOUNCE_SUBJECT.search(low_subject) or _DELAY_SUBJECT.search(low_subject))
    daemon_sign = daemon and bool(plain.BODY_BOUNCE.search(low_report) or _DIAG_OR_TRANSCRIPT.search(low_report))
    signs = bool(failed_header or subject_sign or daemon_sign)
    if not signs and (plain.CHALLENGE.search(low_subject) or "x-boxbe-challenge" in names or "x-spamarrest" in names):
        return not_a_bounce("challenge-response (sender verification request), not a bounce")
    if (
        _is_auto_reply(msg, names, subject, auto)
        and not failed_header
        and not (daemon and plain.BODY_BOUNCE.search(low_report))
        and not (subject_sign and _DIAG_OR_TRANSCRIPT.search(low_report))  # MTAs mark bounces auto-replied too
    ):
        return not_a_bounce("automatic reply (vacation or out-of-office)", reason="vacation")
    fml = "x-mlserver" in names or "x-ml-name" in names
    body_signs = plain.BODY_BOUNCE.search(low_report[:4000]) and _DIAG_OR_TRANSCRIPT.search(low_report)
    if not signs and not fml and not body_signs:
        return not_a_bounce("not a delivery status notification")
    if plain.CHALLENGE.search(low_subject) and not failed_header and not _BOUNCE_SUBJECT.search(low_subject):
        return not_a_bounce("challenge-response (sender verification request), not a bounce")

    if plain.SUCCESS_TEXT.search(low_report[:6000]) and not plain.FAILURE_TEXT.search(low_report[:6000]):
        return not_a_bounce("success notice (delivered), not a failure", "delivered", "delivered")
    pasted = _PASTED_DSN.search(report)
    if pasted is not None:  # DSN fields sent as text/plain (some gateways and old Exchange)
        result = _from_dsn(report[pasted.start() :], report[: pasted.start()])
        if result is not None:
            return result
    own = {plain.clean(a) for a in _ADDRESS.findall(sender + " " + _header(msg, "To"))}
    if fml:
        return _fml(report, addressed, msg)
    if _DELAY_SUBJECT.search(low_subject) or plain.is_delay(low_report, low_subject):
        recipient, position = plain.find_recipient(report, own, addressed)
        diag = plain.diagnostic(report, position)
        return BounceResult(
            False, recipient, find_status(diag), "delayed", False, diag, "delay warning, not a failure", (), "delayed"
        )
    recipient = None
    position = -1
    if failed_header:
        recipient = _address(failed_header)
        position = report.lower().find(recipient) if recipient else -1
    if recipient is None:
        recipient, position = plain.find_recipient(report, own, addressed)
    if recipient is None:
        return not_a_bounce("bounce without any recipient address")
    diag = plain.diagnostic(report, position if position >= 0 else 0)
    status = better_status(find_status(diag), "") or find_status(report[max(position, 0) :][:4000])
    if status and status.startswith("2"):
        if not re.search(r"(?<![\d.])[45]\d\d(?![\d.])|[45]\.\d{1,3}\.\d{1,3}", report[:8000]):
            return BounceResult(False, recipient, status, "delivered", False, diag, "success notice", (), "delivered")
        status = find_status(re.sub(r"(?<![\d.])2\.\d{1,3}\.\d{1,3}", " ", report[max(position, 0) :][:4000]))
    code = find_reply_code(diag)
    reason = _reason(status, diag, recipient, report)
    status = status or derived_status(reason, code)
    return BounceResult(
        True, recipient, status, reason, is_hard(reason, status), diag, "non-standard bounce", (recipient,), "failed"
    )


_REPLY_SUBJECT = re.compile(r"^\s*(?:re|fwd?|aw|wg|tr|rv|sv|vs|antw|返信|転送)\s*[:：]")
_PASTED_DSN = re.compile(r"^(?:Reporting-MTA|Final-Recipient|Original-Recipient):[ \t]*\S", re.I | re.M)
_DIAG_OR_TRANSCRIPT = re.compile(
    r"(?<![\d.])[45]\d\d[ -]|[45]\.\d{1,3}\.\d{1,3}|user unknown|no such|does not exist|"
    r"mailbox|quota|rejected|refused|存在|拒否",
)


def _fml(report: str, addressed: list[str], msg: Message) -> BounceResult:
    """An fml mailing-list error: the list refused the message (not a member, not allowed, ...)."""
    if not re.search(
        r"not member|members? only|not (?:allowed|permitted)|reject|denied|error|fail|cannot|"
        r"can't|could not|メンバー|拒否|エラー",
        report[:6000],
        re.I,
    ):
        return not_a_bounce("mailing-list notice, not a bounce")
    recipient = addressed[0] if addressed else _address(_header(msg, "From"))
    if recipient is None:
        return not_a_bounce("bounce without any recipient address")
    diag = " ".join(report[:MAX_DIAGNOSTIC].split())
    reason = classify(None, diag)
    if reason in ("undefined", "onhold", "policyviolation", "contenterror", "systemerror"):
        member = re.search(r"member|not (?:allowed|permitted)|reject|denied", report, re.I)
        reason = "rejected" if member else "systemerror"
    return BounceResult(
        True,
        recipient,
        derived_status(reason, None),
        reason,
        False,
        diag,
        "mailing-list (fml) error",
        (recipient,),
        "failed",
    )


def _body_text(parts: Parts) -> str:
    plain_parts = [p for p, ctype, original in parts if not original and ctype == "text/plain"]
    if plain_parts:
        return "\n".join(_text_of(p) for p in plain_parts[:3])[:MAX_TEXT]
    html = [p for p, ctype, original in parts if not original and ctype == "text/html"]
    if html:
        text = re.sub(r"<br\s*/?>|</p>|</tr>|</div>", "\n", _text_of(html[0]), flags=re.I)
        text = re.sub(r"<[^>]{0,2000}>", " ", text)
        return re.sub(r"&(?:lt|gt|nbsp|amp|quot);", " ", text)[:MAX_TEXT]
    bodies = [p for p, ctype, original in parts if not original and not p.is_multipart()]
    if bodies and bodies[0].get_content_maintype() in ("text", "application"):
        return _text_of(bodies[0])[:MAX_TEXT]
    return ""
