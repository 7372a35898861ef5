"""Bounce reasons: a fixed vocabulary, classification from status codes and text, hard vs soft, Japanese.

Classification order: a status code whose subject/detail is specific (5.1.1 no such user, 5.2.2 mailbox
full, ...) decides; otherwise the diagnostic text is matched against patterns (most specific first, the
generic "rejected" last); otherwise the status class; otherwise "undefined".
"""

from __future__ import annotations

import re
from typing import Final

REASONS: Final = (
    "userunknown",
    "mailboxfull",
    "hostunknown",
    "filtered",
    "rejected",
    "blocked",
    "spamdetected",
    "mesgtoolarge",
    "expired",
    "suspend",
    "systemerror",
    "networkerror",
    "policyviolation",
    "delayed",
    "vacation",
    "undefined",
)

# Hard: sending again cannot succeed until someone changes something at the recipient's side.
HARD_REASONS: Final = frozenset({"userunknown", "hostunknown", "filtered"})
# Soft reasons that say something about the address itself (not about us or the message): these count
# towards suppression after repeats. Blocks, spam verdicts and size limits concern the sender's side.
COUNTED_SOFT_REASONS: Final = frozenset({"mailboxfull", "suspend"})
# Not failures at all: a delay warning and an auto-reply.
NOT_FAILURES: Final = frozenset({"delayed", "vacation"})

JAPANESE: Final = {
    "userunknown": "宛先のメールアドレスが存在しません（ユーザー不明）。",
    "mailboxfull": "相手先のメールボックスの容量が一杯になっています。",
    "hostunknown": "宛先のドメインが存在しないか、メールを受け付けていません。",
    "filtered": "受信者側の受信設定（フィルタ）により受信を拒否されました。",
    "rejected": "相手先のメールサーバに受信を拒否されました。",
    "blocked": "送信元のメールサーバが相手先でブロックされています。",
    "spamdetected": "迷惑メールと判定されて受信を拒否されました。",
    "mesgtoolarge": "メールのサイズが大きすぎるため受信を拒否されました。",
    "expired": "一定時間内に配信できず、配信を断念しました。",
    "suspend": "宛先のメールアカウントが停止または休止されています。",
    "systemerror": "相手先のメールサーバでエラーが発生しました。",
    "networkerror": "相手先のメールサーバに接続できませんでした。",
    "policyviolation": "相手先のポリシーにより受信を拒否されました。",
    "delayed": "配信が遅れています（相手先で再送中です）。",
    "vacation": "自動応答メールです（配信エラーではありません）。",
    "undefined": "配信できませんでした（原因を特定できませんでした）。",
}

_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_REPLY = re.compile(r"(?<!\d)([45][0-5]\d)(?:[ -]|$)")

# Enhanced status (class-less "subject.detail") that names the reason by itself.
_BY_STATUS: Final = {
    "1.1": "userunknown",
    "1.2": "hostunknown",
    "1.3": "userunknown",
    "1.6": "userunknown",
    "2.1": "suspend",
    "2.2": "mailboxfull",
    "2.3": "mesgtoolarge",
    "3.4": "mesgtoolarge",
    "4.1": "networkerror",
    "4.2": "networkerror",
    "4.4": "hostunknown",
    "4.6": "networkerror",
    "4.7": "expired",
    "7.26": "policyviolation",
}
_BY_CLASS: Final = {"1": "userunknown", "2": "mailboxfull", "3": "systemerror", "4": "networkerror", "5": "systemerror"}

_PATTERNS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = tuple(
    (reason, re.compile(pattern, re.IGNORECASE))
    for reason, pattern in (
        (
            "mailboxfull",
            r"mailbox (?:is )?full|over ?quota|quota (?:exceeded|full)|exceeded (?:storage|quota)|insufficient"
            r" (?:system )?storage|mailbox size limit|disk quota|容量(?:が|を)?(?:一杯|超過|オーバー)|容量制限",
        ),
        (
            "mesgtoolarge",
            r"message (?:size )?(?:is )?too (?:large|big)|size (?:limit )?exceed|exceeds? (?:the )?(?:maximum|size)"
            r"|message size|メール(?:の)?サイズ",
        ),
        (
            "hostunknown",
            r"null mx|host (?:or domain name )?not found|domain (?:not found|does not exist)|unrouteable address|no mx|"
            r"nxdomain|unknown (?:host|domain)|name or service not known|domain has no|no such domain|"
            r"ドメイン(?:が)?(?:存在しません|見つかりません)",
        ),
        (
            "userunknown",
            r"user unknown|unknown user|no such (?:user|mailbox|recipient)|user(?:name)? not found|recipient not"
            r" found|recipnotfound|mailbox (?:unavailable|not found|does not exist)|does not exist|doesn'?t exist"
            r"|address (?:could ?n[o']t be found|not found|rejected: user)|invalid (?:recipient|mailbox|address)"
            r"|unknown (?:local|recipient|mailbox)|no mailbox|not a (?:valid|registered)"
            r"|account (?:does not|doesn'?t) exist"
            r"|宛先(?:の)?(?:メール)?アドレスが(?:存在しません|見つかりません)|存在しない(?:ユーザ|アドレス)",
        ),
        (
            "suspend",
            r"(?<!temporarily )suspend|account (?:has been )?(?:disabled|inactive|locked|expired)|"
            r"mailbox (?:disabled|inactive)|inactive (?:user|account)|停止|休止",
        ),
        (
            "spamdetected",
            r"spam(?!haus|cop)|junk mail|bulk mail|unsolicited|迷惑メール",
        ),
        (
            "blocked",
            r"block(?:ed|list)|black ?list|\brbl\b|spamhaus|client host (?:\[[^\]]*\] )?rejected|poor reputation"
            r"|reverse dns|ptr record|access denied|listed (?:at|on|in)",
        ),
        (
            "filtered",
            r"filter(?:ed)?|refused by (?:the )?recipient|recipient (?:has )?(?:refused|rejected|blocked)|"
            r"受信拒否|指定受信|拒否設定",
        ),
        (
            "expired",
            r"retry time(?:out)? (?:not )?exceeded|message expired|delivery (?:time )?expired|could not be delivered"
            r" within|gave up|giving up|too (?:long|many) (?:in|retries)|timed? out.*queue|queue.*too long",
        ),
        (
            "networkerror",
            r"connection (?:refused|timed out|reset|lost)|network (?:is )?unreachable|no route to host|"
            r"mail loop|loops back|too many hops|hop count|timed out",
        ),
        (
            "policyviolation",
            r"policy|dmarc|\bspf\b|dkim|not authori[sz]ed|authentication required|relay (?:access )?denied|relaying"
            r" denied",
        ),
        (
            "systemerror",
            r"system error|internal (?:server )?error|local error|temporary (?:local )?(?:failure|problem)|"
            r"resources? (?:temporarily )?unavailable|try again later|service (?:not )?(?:available|unavailable)",
        ),
        ("rejected", r"reject|refused|denied|not accepted|拒否"),
    )
)


def find_status(text: str) -> str | None:
    """The first RFC 3463 enhanced status code in the text ("5.1.1"), or None."""
    match = _STATUS.search(text)
    return f"{match[1]}.{int(match[2])}.{int(match[3])}" if match else None


def find_reply_code(text: str) -> int | None:
    match = _REPLY.search(text)
    return int(match[1]) if match else None


def classify(status: str | None, text: str, smtp_code: int | None = None) -> str:
    """One reason from the vocabulary for a failure with this status, reply code and diagnostic text."""
    subject_detail = None
    if status:
        parts = status.split(".")
        if len(parts) == 3:
            subject_detail = f"{parts[1]}.{parts[2]}"
    if subject_detail in _BY_STATUS:
        return _BY_STATUS[subject_detail]
    for reason, pattern in _PATTERNS:
        if pattern.search(text):
            return reason
    if subject_detail is not None:
        if subject_detail == "7.1":
            return "rejected"
        klass = subject_detail.split(".")[0]
        if klass == "7":
            return "policyviolation"
        if klass in _BY_CLASS and subject_detail != f"{klass}.0":
            return _BY_CLASS[klass]
    if smtp_code == 552:
        return "mailboxfull"
    if smtp_code in (550, 551, 553) and not text.strip():
        return "rejected"
    return "undefined"


def is_hard(reason: str) -> bool:
    return reason in HARD_REASONS


def counts_for_suppression(reason: str) -> bool:
    return reason in HARD_REASONS or reason in COUNTED_SOFT_REASONS


def japanese(reason: str) -> str:
    return JAPANESE.get(reason, JAPANESE["undefined"])
