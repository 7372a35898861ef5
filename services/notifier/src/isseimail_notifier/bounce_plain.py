"""Reading non-standard (plain-text) bounces: where the report ends and the returned message begins, which
address failed, and the server's own words.

The failed recipient is only ever an address the report names in a recipient position (`<a@b>:`, an address
alone on its line, `RCPT TO:<a@b>`, `Recipient address: a@b`, ...) or one the returned message's headers
addressed: never a provider's support address in a footer, a Message-ID, or an unqualified `user@host`.
"""

from __future__ import annotations

import re

MAX_DIAGNOSTIC = 1000

ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\-\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9\-.]{0,251}[A-Za-z0-9])?", re.ASCII
)
DAEMON = re.compile(
    r"mailer-daemon|post_?master|mail delivery|\bmailer\b|delivery[- ]subsystem|double-bounce|mail ?administrator|"
    r"mail ?system|^smtp$|^bounces?$|^no-?reply$",
    re.I,
)
# The detection patterns below are lower case and meant for lower-cased text: several times faster than re.I.
# Phrases the common MTAs open their bounces with (body), when sender and subject are not telling.
BODY_BOUNCE = re.compile(
    r"this is the mail system at host|the original message was received at|created automatically by mail delivery|"
    r"this is the qmail-send program|wasn't able to deliver your message|delivery has failed to these recipients|"
    r"did not reach (?:some or all of )?the intended recipients?|could not be delivered to (?:one or more|"
    r"the following)|"
    r"delivery to the following recipients? failed|unable to deliver (?:your )?message|message (?:was )?not delivered|"
    r"was not delivered to|your message (?:couldn't|could not|cannot|can't|wasn't) be(?:en)? delivered|"
    r"permanent (?:fatal )?errors?|undeliverable|delivery (?:status notification|failed|failure)|"
    r"the following (?:addresses|recipients?) (?:had|failed|did not)|returned to sender|mailer-daemon|"
    r"error message below|message could not be delivered|could not deliver|failed to deliver|"
    r"配信できませんでした|送信できませんでした|届きませんでした|宛先不明",
)
DELAY_TEXT = re.compile(
    r"will (?:continue|keep) (?:trying|to try|retrying|attempting)|will be retried|will retry|(?:still|"
    r"keep) (?:being )?"
    r"retr(?:y|ied|ying)|this is (?:a|only a) warning|warning message only|do not need to resend|"
    r"delivery attempts will "
    r"continue|has been delayed|is delayed|delivery (?:is )?delayed|not yet been delivered|temporarily deferred|"
    r"no action is required|will attempt (?:re)?delivery|再送を(?:試みます|続けます)|遅延",
)
FINAL_TEXT = re.compile(
    r"gave up|giving up|not going to try again|delivery has failed|failed to these recipients|couldn'?t be delivered|"
    r"wasn'?t delivered|will not (?:be )?retr|permanent(?:ly)?|has been (?:returned|rejected)|delayed for too long|"
    r"could not be delivered|retry time(?:out)? (?:not )?exceeded|failed permanently|no further attempts|"
    r"unable to deliver|undeliverable",
)
# A report that a message *was* delivered (relayed, expanded): a success notice, not a failure.
SUCCESS_TEXT = re.compile(
    r"(?:was|were|has been|have been) (?:successfully )?(?:delivered|relayed)|successfully delivered|"
    r"delivery (?:to the following recipients? )?(?:succeeded|was successful|completed)|delivered to (?:the )?"
    r"(?:following|destination|recipient'?s? (?:mailbox|server))|配信(?:されました|が完了しました)"
)
FAILURE_TEXT = re.compile(
    r"(?<![\d.])[45]\d\d(?![\d.])|(?<![\d.])[45]\.\d{1,3}\.\d{1,3}|fail|could ?n[o']t|cannot|can't|unable|not "
    r"(?:be )?delivered|undeliver|reject|refused|denied|error|unknown|no such|does not exist|over quota|expired|"
    r"できません|エラー|拒否"
)
CHALLENGE = re.compile(
    r"please (?:confirm|verify)|confirm (?:your|that you)|verification (?:required|request|needed)|sender verification|"
    r"(?:verify|confirm) (?:your )?(?:e-?mail|address|identity|message)|challenge|whitelist|awaiting (?:your )?"
    r"(?:verification|confirmation|approval)|held for (?:approval|verification)|spam ?arrest|boxbe|mailblocks|"
    r"i'?m protected by|before (?:your|the) message (?:is|can be) delivered|送信者(?:の)?確認",
)
AUTO_REPLY_SUBJECT = re.compile(
    r"^(?:auto(?:matic)?[ -]?(?:reply|response|antwort|réponse)|out of (?:the )?office|vacation|away from|"
    r"i am (?:away|out)|absence|abwesenheit|自動(?:応答|返信)|不在)|^auto:|\(auto[- ]?reply\)|autoreply|out of office",
)
ORIGINAL_SPLIT = re.compile(
    r"^[ \t>]*[-=_*]{2,}[^\n]{0,20}(?:original (?:message|mail)|copy of (?:the|your)? ?message|returned message|"
    r"message "
    r"headers? follows?|below this line|undelivered message|original headers|headers of the original|元のメッセージ|"
    r"元のメール|原文|以下.{0,8}メール)|^[ \t]*(?:original message follows|original message headers|"
    r"-+ ?message header follows|\*\* ?Original message|the original message (?:headers? )?(?:is|are|was) "
    r"(?:included|attached|as follows)|Original mail as follows|message details:$|your message reads|"
    r"Message details:)|^Content-Type: message/rfc822",
    re.I | re.M,
)
# An address in a recipient position: its line starts with it, it follows a recipient keyword, or a
# sendmail/exchange/exim suffix follows it.
_RECIPIENT_LINE = re.compile(
    r"^[ \t>]*(?:[-*]\s*)?[<\"]?(?P<a>" + ADDRESS.pattern + r")[>\"]?(?:[ \t]*$|[ \t]*[:.(]|\.\.\.|[ \t]+on[ \t]|"
    r"[ \t]+\(|[ \t]+-|[ \t]+<|[ \t]+\[|:?[ \t]+(?:host|mailbox|user|delivery|SMTP|said|unknown|error|\d{3}\b))",
    re.M | re.ASCII,
)
_RECIPIENT_KEYWORD = re.compile(
    r"(?:RCPT TO:?\s*|Recipient(?:'s)? ?(?:address)?\s*[:=]\s*|Original[- ]Recipient:\s*(?:rfc822;\s*)?|"
    r"Final[- ]Recipient:\s*(?:rfc822;\s*)?|Failed (?:recipient|address)e?s?:\s*|Invalid recipient:\s*|"
    r"unknown user:?\s*|User |mailbox |address(?:ee)?:?\s+|宛先:?\s*|To:\s*|for\s+|deliver(?:ed|y)? to\s+|"
    r"sent to\s+|recipient\s+|could not be delivered to:?\s*)[<\"']?(?P<a>" + ADDRESS.pattern + r")",
    re.I | re.ASCII,
)
_RECIPIENT_KEYWORD_LOWER = re.compile(
    r"(?:rcpt to:?\s*|recipient(?:'s)? ?(?:address)?\s*[:=]\s*|original[- ]recipient:\s*(?:rfc822;\s*)?|"
    r"final[- ]recipient:\s*(?:rfc822;\s*)?|failed (?:recipient|address)e?s?:\s*|invalid recipient:\s*|"
    r"unknown user:?\s*|user |mailbox |address(?:ee)?:?\s+|宛先:?\s*|to:\s*|for\s+|deliver(?:ed|y)? to\s+|"
    r"sent to\s+|recipient\s+|could not be delivered to:?\s*)[<\"']?(?P<a>" + ADDRESS.pattern + r")",
    re.ASCII,
)
_NOT_RECIPIENT_CONTEXT = re.compile(
    r"(?:message-id|in-reply-to|references|return-path|from|sender|reply-to|envelope-from|mail from|"
    r"contact|support|helpdesk|help desk|questions|abuse|write to|e-?mail us|send (?:an )?e-?mail to|visit|"
    r"administrator at|postmaster at|report this|id=)[^\n]{0,40}$",
    re.I,
)
_IDLIKE = re.compile(r"^(?=.*\d)(?=.*[a-f])[0-9a-f.$\-_=]{16,}$|javamail", re.I)
_DIAG_LINE = re.compile(r"(?<![\d.])[45]\d\d[ -]|(?<![\d.])[45]\.\d{1,3}\.\d{1,3}(?![\d.])|#[45]\.\d")


_SEPARATOR = re.compile(r"^[-=_*#~]{5,}")


def split_original(text: str) -> tuple[str, str]:
    """(the report, the returned message or its headers) of a plain-text bounce."""
    match = ORIGINAL_SPLIT.search(text)
    if match is None or match.start() < 20:
        return text, ""
    return text[: match.start()], text[match.start() :]


def qualified(address: str) -> bool:
    local, _, domain = address.rpartition("@")
    return bool(local) and "." in domain and not domain.endswith(".") and not domain.startswith(".")


def clean(address: str) -> str:
    return address.strip().strip("\"'<>.").lower()


def usable(address: str, own: set[str], before: str) -> bool:
    local = address.partition("@")[0]
    if not qualified(address) or address in own:
        return False
    if DAEMON.search(local) or local in ("root", "nobody", "support", "help", "abuse", "noreply", "info"):
        return False
    if _IDLIKE.search(local):
        return False
    return not _NOT_RECIPIENT_CONTEXT.search(before)


def header_recipients(text: str) -> list[str]:
    """Addresses of To:/Cc: lines in a block of returned headers, in order."""
    found: list[str] = []
    for match in re.finditer(
        r"^[ \t]*(?:To|Cc|Delivered-To|X-Original-To|RCPT TO):[ \t]*(.*(?:\n[ \t]+.*)*)", text[:20000], re.I | re.M
    ):
        for address in ADDRESS.findall(match[1]):
            address = clean(address)
            if qualified(address) and address not in found:
                found.append(address)
    return found


def find_recipient(report: str, own: set[str], addressed: list[str]) -> tuple[str | None, int]:
    """The failed recipient in the report and where it stands; `addressed` are the original's recipients."""
    positioned: list[tuple[int, str]] = []
    head = report[:32000]
    lowered = head.lower()
    keyword, keyword_text = (
        (_RECIPIENT_KEYWORD_LOWER, lowered) if len(lowered) == len(head) else (_RECIPIENT_KEYWORD, head)
    )
    for pattern, text in ((_RECIPIENT_LINE, head), (keyword, keyword_text)):
        for match in pattern.finditer(text):
            address = clean(match["a"])
            line_start = report.rfind("\n", 0, match.start("a")) + 1
            if usable(address, own, report[line_start : match.start("a")]):
                positioned.append((match.start("a"), address))
    positioned.sort()
    if addressed:
        for position, address in positioned:
            if address in addressed:
                return address, position
        loose = _loose(report, own)
        for position, address in loose:
            if address in addressed:
                return address, position
    if positioned:
        return positioned[0][1], positioned[0][0]
    if addressed:
        return addressed[0], -1
    loose = _loose(report, own)
    return (loose[0][1], loose[0][0]) if loose else (None, -1)


def _loose(report: str, own: set[str]) -> list[tuple[int, str]]:
    out = []
    for match in ADDRESS.finditer(report[:32000]):
        address = clean(match[0])
        line_start = report.rfind("\n", 0, match.start()) + 1
        if usable(address, own, report[line_start : match.start()]):
            out.append((match.start(), address))
    return out


def diagnostic(text: str, position: int) -> str:
    """The server's own words: the reply line(s) after the recipient, or the recipient's paragraph."""
    if position < 0:
        position = 0
    position = text.rfind("\n", 0, position) + 1  # from the start of the recipient's line
    lines = text[position : position + 8000].splitlines()
    for index, line in enumerate(lines[:60]):
        if _DIAG_LINE.search(line):
            picked = [line.strip()]
            for follow in lines[index + 1 : index + 5]:
                stripped = follow.strip()
                if not stripped or _RECIPIENT_LINE.match(stripped):
                    break
                if follow.startswith((" ", "\t")) or _DIAG_LINE.match(stripped) or stripped[:1].islower():
                    picked.append(stripped)
            return " ".join(picked)[:MAX_DIAGNOSTIC]
    paragraph: list[str] = []
    window = lines[:14]
    for index, line in enumerate(window):
        stripped = line.strip()
        if _SEPARATOR.match(stripped):
            break
        if not stripped and paragraph and not paragraph[-1].endswith(":"):
            following = next((rest.strip() for rest in window[index + 1 :] if rest.strip()), "")
            if len(paragraph) > 1 or not (following.endswith(":") and len(following) < 30):
                break  # the paragraph ends, unless a label ("because:") introduces the explanation
        if stripped:
            paragraph.append(stripped)
    if len(paragraph) <= 1:
        # The address stands alone (carrier style): the explanation is the paragraph before it.
        before = [p.strip() for p in re.split(r"\n\s*\n", text[max(0, position - 2000) : position]) if p.strip()]
        if before:
            paragraph = [" ".join(before[-1].split()), *paragraph]
    return " ".join(paragraph)[:MAX_DIAGNOSTIC]


def is_delay(report: str, subject: str) -> bool:
    """A warning that delivery is still being tried (not the final failure); lower-cased arguments."""
    window = subject + "\n" + report[:6000]
    return bool(DELAY_TEXT.search(window)) and not FINAL_TEXT.search(report[:6000])


_AFTER_DATA = re.compile(
    r"(?:in reply to|after|at|during) (?:the )?(?:end of )?data(?: command)?|end of data command|>>> data|data command"
)


def after_data(text: str) -> bool:
    """The refusal came after the message was sent (DATA), so the mailbox itself was accepted."""
    return bool(_AFTER_DATA.search(text.lower()))
