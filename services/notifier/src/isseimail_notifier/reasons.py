"""Bounce reasons: sisimai's public taxonomy, classification from status, reply code and text, hard vs soft.

The diagnostic text is weighed against the status code: a code is often generic (5.0.0, 5.5.0) or plainly
wrong (5.1.1 for a full mailbox, a procmail error or a rate limit), so a *specific* text (quota, rate,
policy, mailer, network, ...) wins over the code; the code decides only when the text is generic ("rejected",
"mailbox unavailable") or says nothing. Hard means "will never succeed until the recipient side changes
something about the address": only non-existence of the mailbox or domain (and a moved address).
"""

from __future__ import annotations

import re
from typing import Final, Literal

REASONS: Final = (
    "authfailure",
    "badreputation",
    "blocked",
    "contenterror",
    "delivered",
    "exceedlimit",
    "expired",
    "failedstarttls",
    "feedback",
    "filtered",
    "hasmoved",
    "hostunknown",
    "mailboxfull",
    "mailererror",
    "mesgtoobig",
    "networkerror",
    "norelaying",
    "notaccept",
    "notcompliantrfc",
    "onhold",
    "policyviolation",
    "ratelimited",
    "rejected",
    "requireptr",
    "securityerror",
    "spamdetected",
    "speeding",
    "suspend",
    "syntaxerror",
    "systemerror",
    "systemfull",
    "toomanyconn",
    "userunknown",
    "virusdetected",
    "delayed",
    "vacation",
    "undefined",
)

# Hard: the mailbox or the domain does not exist (or has moved): sending again cannot succeed.
HARD_REASONS: Final = frozenset({"userunknown", "hostunknown", "hasmoved", "notaccept"})
# Only these suppress an address for every sender organisation (it takes no mail from anyone).
GLOBAL_SUPPRESSION: Final = frozenset({"userunknown", "hostunknown", "hasmoved", "notaccept"})
# The recipient (or their provider) refuses *this sender*: suppressed for the sender's organisation only,
# at once for the recipient's own filter, after repeats for policy blocks.
ORGANISATION_HARD: Final = frozenset({"filtered"})
ORGANISATION_COUNTED: Final = frozenset({"policyviolation", "rejected", "suspend", "mailboxfull"})
# Not failures at all.
NOT_FAILURES: Final = frozenset({"delayed", "vacation", "delivered", "feedback"})
SUCCESS_ACTIONS: Final = frozenset({"delivered", "relayed", "expanded", "deliverable"})

# Reason -> (what happened, what the sender can do), in Japanese for the sender's failure report.
JAPANESE: Final = {
    "userunknown": (
        "宛先のメールアドレスが存在しません（ユーザー不明）。",
        "アドレスの綴りを確認し、正しいアドレスを送信先リストに記載してください。",
    ),
    "hostunknown": ("宛先のドメインが存在しません。", "@ 以降（ドメイン）の綴りを確認してください。"),
    "hasmoved": (
        "宛先のメールアドレスは移転し、使われなくなっています。",
        "受信者に新しいアドレスを確認してください。",
    ),
    "notaccept": ("宛先のドメインはメールを受け付けていません。", "受信者に別の連絡先アドレスを確認してください。"),
    "mailboxfull": (
        "相手先のメールボックスの容量が一杯になっています。",
        "時間をおいて再送するか、受信者に容量の整理を依頼してください。",
    ),
    "filtered": (
        "受信者の受信設定（指定受信・迷惑メールフィルタ）により受信を拒否されました。アドレス自体は存在します。",
        "受信者に、送信元ドメインからのメールを受信できるよう設定（ドメイン指定受信への追加）を依頼してください。",
    ),
    "rejected": (
        "相手先のメールサーバに送信元が拒否されました。",
        "受信者または相手先の管理者に、受信を許可するよう依頼してください。",
    ),
    "blocked": (
        "送信元のメールサーバが相手先でブロックされています。",
        "システム管理者にお知らせください（送信元サーバの評価・登録状況の確認が必要です）。",
    ),
    "badreputation": ("送信元サーバの評価が低いため受信を拒否されました。", "システム管理者にお知らせください。"),
    "requireptr": (
        "送信元サーバの逆引き（PTR）設定が不足しているとして拒否されました。",
        "システム管理者にお知らせください。",
    ),
    "authfailure": ("送信ドメイン認証（SPF・DKIM・DMARC）に失敗しました。", "システム管理者にお知らせください。"),
    "spamdetected": (
        "迷惑メールと判定されて受信を拒否されました。",
        "件名・本文の表現やリンク、添付ファイルを見直してください。",
    ),
    "virusdetected": (
        "ウイルスを含むと判定されて受信を拒否されました。",
        "添付ファイルを確認し、安全なファイルで送り直してください。",
    ),
    "contenterror": (
        "メールの内容（形式）が相手先に受け付けられませんでした。",
        "添付ファイルや本文の形式を見直してください。",
    ),
    "mesgtoobig": (
        "メールのサイズが大きすぎるため受信を拒否されました。",
        "添付ファイルを小さくするか、ファイルを外して送り直してください。",
    ),
    "exceedlimit": (
        "相手先の制限（サイズ・宛先数など）を超えたため受信を拒否されました。",
        "添付ファイルを小さくして送り直してください。",
    ),
    "policyviolation": (
        "相手先のポリシーにより受信を拒否されました。",
        "受信者に、相手先の組織で受信を許可してもらえるか確認してください。",
    ),
    "securityerror": ("相手先のセキュリティ要件を満たさないため拒否されました。", "システム管理者にお知らせください。"),
    "failedstarttls": ("暗号化通信（STARTTLS）を確立できませんでした。", "システム管理者にお知らせください。"),
    "norelaying": ("相手先のサーバが中継を拒否しました。", "アドレスの綴り（ドメイン）を確認してください。"),
    "expired": (
        "一定時間内に配信できず、配信を断念しました。",
        "時間をおいて再送してください。続く場合は受信者に連絡先を確認してください。",
    ),
    "suspend": (
        "宛先のメールアカウントが停止または休止されています。",
        "受信者に、アカウントが使われているか確認してください。",
    ),
    "systemerror": ("相手先のメールサーバでエラーが発生しました。", "時間をおいて再送してください。"),
    "systemfull": ("相手先のメールサーバの容量が不足しています。", "時間をおいて再送してください。"),
    "mailererror": (
        "相手先のメール配送プログラムでエラーが発生しました。",
        "時間をおいて再送し、続く場合は受信者に連絡してください。",
    ),
    "networkerror": ("相手先のメールサーバに接続できませんでした。", "時間をおいて再送してください。"),
    "ratelimited": (
        "短時間に多くのメールを送ったため、相手先で一時的に受信を制限されました。",
        "時間をおいて再送してください。",
    ),
    "speeding": (
        "送信の速度が速すぎるとして、相手先で一時的に受信を制限されました。",
        "時間をおいて再送してください。",
    ),
    "toomanyconn": ("相手先への接続が多すぎるため、一時的に受信を制限されました。", "時間をおいて再送してください。"),
    "syntaxerror": ("メールの送信手順に誤りがあるとして拒否されました。", "システム管理者にお知らせください。"),
    "notcompliantrfc": ("メールの形式が規格に沿っていないとして拒否されました。", "システム管理者にお知らせください。"),
    "onhold": ("配信が保留されています（原因を特定できませんでした）。", "しばらくお待ちください。"),
    "delayed": ("配信が遅れています（相手先で再送中です）。", "配信できなかった場合は、あらためてお知らせします。"),
    "vacation": ("自動応答メールです（配信エラーではありません）。", "対応は不要です。"),
    "delivered": ("配信されました。", "対応は不要です。"),
    "feedback": ("受信者から迷惑メールとして報告されました。", "この受信者への送信を控えてください。"),
    "undefined": ("配信できませんでした（原因を特定できませんでした）。", "相手先サーバからの応答をご確認ください。"),
}

_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
_REPLY = re.compile(r"(?<![\d.#\-])([245][0-5]\d)(?:[ -]|$)")

# Enhanced status "subject.detail" (RFC 3463) that names the reason by itself.
_BY_STATUS: Final = {
    "1.0": "userunknown",
    "1.1": "userunknown",
    "1.2": "hostunknown",
    "1.3": "syntaxerror",
    "1.4": "userunknown",
    "1.5": "userunknown",
    "1.6": "hasmoved",
    "1.7": "rejected",
    "1.8": "rejected",
    "1.10": "notaccept",
    "2.0": "filtered",
    "2.1": "filtered",
    "2.2": "mailboxfull",
    "2.3": "exceedlimit",
    "2.4": "systemerror",
    "3.1": "systemfull",
    "3.2": "systemerror",
    "3.3": "mesgtoobig",
    "3.4": "mesgtoobig",
    "3.5": "systemerror",
    "4.0": "networkerror",
    "4.1": "networkerror",
    "4.2": "networkerror",
    "4.3": "systemerror",
    "4.4": "hostunknown",
    "4.5": "systemerror",
    "4.6": "networkerror",
    "4.7": "expired",
    "5.0": "syntaxerror",
    "5.1": "syntaxerror",
    "5.2": "syntaxerror",
    "5.3": "exceedlimit",
    "5.4": "syntaxerror",
    "5.5": "syntaxerror",
    "6.0": "contenterror",
    "6.1": "contenterror",
    "6.2": "contenterror",
    "6.3": "contenterror",
    "6.4": "contenterror",
    "6.5": "contenterror",
    "7.0": "securityerror",
    "7.1": "rejected",
    "7.2": "rejected",
    "7.3": "securityerror",
    "7.4": "securityerror",
    "7.5": "securityerror",
    "7.6": "securityerror",
    "7.7": "securityerror",
    "7.8": "securityerror",
    "7.9": "securityerror",
    "7.10": "failedstarttls",
    "7.11": "failedstarttls",
    "7.13": "suspend",
    "7.14": "securityerror",
    "7.15": "securityerror",
    "7.20": "authfailure",
    "7.21": "authfailure",
    "7.22": "authfailure",
    "7.23": "authfailure",
    "7.24": "authfailure",
    "7.25": "requireptr",
    "7.26": "authfailure",
    "7.27": "notaccept",
}
# Statuses too generic to overrule a text: x.0.0 and the catch-all subjects.
_GENERIC_STATUS: Final = frozenset({"0.0", "1.0", "2.0", "3.0", "4.0", "5.0", "6.0", "7.0", "7.1", "2.1"})

# (reason, pattern, strong). A strong text overrules any status; a weak one only a generic or absent one.
_RAW_PATTERNS: Final = (
    ("vacation", r"out of (?:the )?office|on vacation|auto(?:matic)?[- ]?reply", False),
    (
        "mailboxfull",
        r"mailbox (?:is |was )?(?:full|over)|over ?quota|quota (?:exceeded|full|violation)|exceeded (?:storage|"
        r"(?:the |his |her |their )?quota)|exceeds? (?:the )?(?:recipient'?s? )?(?:storage|quota|mailbox)|insufficient "
        r"(?:disk |system )?(?:space|storage)|mailbox size limit|disk quota|mail ?box (?:has )?exceeded|"
        r"user has (?:exceeded|too many messages)|account is full|is over (?:its|the) (?:storage|quota)|"
        r"not enough (?:storage|space)|out of storage|mailfolder is full|no space left|"
        r"容量(?:が|を)?(?:一杯|いっぱい|超過|オーバー)|容量制限|容量不足",
        True,
    ),
    (
        "mailererror",
        r"procmail|maildrop|command (?:died|failed|output)|x-unix; ?\d|unknown mailer error|mailer error|"
        r"pipe to \|?/|local delivery failed|exit (?:code|status) \d|deferred: local mailer",
        True,
    ),
    (
        "ratelimited",
        r"too many (?:recipients|messages|mails|emails) (?:this|per|in|from)|rate limit|ratelimit|rate of (?:incoming|"
        r"unsolicited)|receiving mail at a rate|try again slower|sending (?:too fast|at a rate)|throttl|"
        r"exceeded (?:the )?(?:sending|message|maximum) (?:limit|rate)|connection rate|too many (?:connections|"
        r"sessions)"
        r"|message (?:submission )?rate|hourly (?:limit|sending)|daily (?:sending )?(?:limit|quota)",
        True,
    ),
    (
        "virusdetected",
        r"virus|malware|infected|trojan|ウイルス",
        True,
    ),
    (
        "mesgtoobig",
        r"message (?:size )?(?:is )?too (?:large|big)|message (?:size )?exceeds|size (?:limit )?exceed|"
        r"exceeds? (?:the )?"
        r"(?:maximum|fixed|message) (?:message )?size|message length exceeds|larger than (?:the )?(?:maximum|allowed)|"
        r"size limit|message is larger|メール(?:の)?サイズ",
        True,
    ),
    # BIGLOBE and similar Japanese ISPs: the recipient's own filter, worded as an unknown user.
    ("filtered", r"mail delivery failed\.\.\. user unknown|user refuses to receive|user reject|message filtered", True),
    (
        "rejected",
        r"sender address rejected|sender domain|domain of sender|sender verify failed|unverified sender|"
        r"bad sender|sender (?:address )?(?:is )?(?:invalid|not allowed|unknown)|mail from.{0,40}rejected|"
        r"envelope sender|your (?:e-?mail )?address (?:has been )?(?:blocked|rejected)",
        True,
    ),
    (
        "hostunknown",
        r"null mx|all relevant mx records point to non-existent hosts|host (?:or domain name )?not found|"
        r"host unknown|domain (?:name )?(?:not found|does not exist|"
        r"doesn'?t exist|unknown|is not valid)|unrouteable (?:mail )?(?:address|domain)|no mx|nxdomain|unknown (?:host|"
        r"domain)|name or service not known|domain has no|no such domain|no (?:valid )?(?:mx|a) record|"
        r"dns (?:error|lookup failed)|no route found to domain|could not be resolved|recipient domain|unable to route|"
        r"ドメイン(?:が)?(?:存在しません|見つかりません)",
        True,
    ),
    (
        "hasmoved",
        r"has moved|address (?:has )?changed|no longer (?:valid|in use|available|with)|moved to",
        True,
    ),
    (
        "userunknown",
        r"user unknown|unknown user|recipient address rejected: access denied|"
        r"(?:ユーザ|ユーザー|アカウント|アドレス|メールボックス)(?:が|は)(?:存在しません|見つかりません|ありません)|"
        r"not listed in (?:the )?(?:domino )?directory|not listed in public name|"
        r"unknown recipient|no such (?:user|mailbox|recipient|account|address|person)|"
        r"user(?:name)? (?:not found|does not exist|doesn'?t exist|not listed)|recipient(?: address)? (?:not found|"
        r"unknown|does not exist|doesn'?t exist|is not (?:valid|known))|recipnotfound|mailbox (?:not found|"
        r"does not exist|"
        r"doesn'?t exist|unknown|not present)|address (?:could ?n[o']t be found|not found|unknown|does not exist|"
        r"doesn'?t exist)|email account that you tried to reach does not exist|invalid (?:recipient|mailbox|address|"
        r"user)|unknown (?:local|mailbox|address|account)|no mailbox|not a (?:valid|registered|known) (?:user|"
        r"recipient|mailbox|address)|not a registered|account (?:does not|doesn'?t) exist|no such local user|"
        r"this user doesn'?t have a|"
        r"is not a valid (?:mailbox|recipient|user)|undeliverable address|unknown or illegal alias|"
        r"address rejected: user|user not exist|addressee unknown|bad (?:recipient|destination mailbox)|"
        r"destin(?:ation|taion) (?:address|mailbox) (?:is )?(?:invalid|unknown)|not our customer|"
        r"宛先(?:の)?(?:メール)?アドレスが(?:存在しません|見つかりません)|存在しない(?:ユーザ|アドレス)",
        True,
    ),
    (
        "suspend",
        r"(?<!temporarily )(?<!temporary )suspended|account (?:has been )?(?:disabled|inactive|locked|expired|"
        r"deactivated|frozen|blocked)|mailbox (?:disabled|inactive|is disabled|is inactive)|temporarily limited|"
        r"inactive (?:user|account|"
        r"mailbox)|(?:user|account) (?:is )?(?:disabled|deactivated)|停止|休止",
        True,
    ),
    (
        "spamdetected",
        r"spam(?!haus|cop| ?trap)|junk mail|bulk mail|unsolicited|content rejected|message content|"
        r"迷惑メール",
        True,
    ),
    (
        "filtered",
        r"filter(?:ed)?(?! out)|refused by (?:the )?recipient|recipient (?:has )?(?:refused|rejected|blocked|"
        r"denied)|not accepting mail from|sender (?:address )?(?:is )?(?:blocked|denied) by (?:the )?recipient|"
        r"受信拒否|指定受信|拒否設定",
        True,
    ),
    (
        "requireptr",
        r"reverse dns|ptr record|no ptr|reverse lookup|rdns|reverse (?:hostname|mapping)|does not resolve to",
        True,
    ),
    (
        "authfailure",
        r"dmarc|\bspf\b|dkim|sender policy framework|authentication (?:failed|failure|check)|"
        r"not authenticated|unauthenticated",
        True,
    ),
    (
        "blocked",
        r"block(?:ed| ?list)|black ?list|\brbl\b|\bdnsbl\b|spamhaus|spamcop|client host (?:\[[^\]]*\] )?rejected|"
        r"access denied|listed (?:at|on|in|by)|your ip|ip address (?:\S+ )?(?:is )?(?:not allowed|banned|rejected)|"
        r"banned|connection (?:rejected|refused) (?:by|from)|service unavailable;? client|not allowed to send",
        True,
    ),
    (
        "badreputation",
        r"reputation|sender score|senderscore",
        True,
    ),
    (
        "norelaying",
        r"relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited|not allowed)|smtp relay error|unable to relay|"
        r"not permitted to "
        r"relay|we do not relay|no relaying|relay not permitted|open relay|is not a gateway",
        True,
    ),
    (
        "securityerror",
        r"authentication required|not authori[sz]ed|security policy|starttls|tls required|must issue a starttls|"
        r"encryption required",
        True,
    ),
    (
        "expired",
        r"retry time(?:out)? (?:not )?exceeded|message expired|delivery (?:time )?expired|"
        r"could not be delivered within|"
        r"gave up|giving up|not delivered within|retry time not reached|have been failing for a long time|"
        r"too long in (?:the )?queue|queue (?:file )?(?:lifetime|too long)|"
        r"timed? out.*queue|"
        r"has been delayed for too long|message timed out|delivery time(?:d)? ?out|expired after|"
        r"retry timeout|maximum (?:time|retry)|undeliverable for \d|unable to deliver.*for \d+ days|"
        r"(?:could|can) not (?:be )?deliver(?:ed)? (?:for|in) \d+",
        True,
    ),
    (
        "systemfull",
        r"system (?:is )?full|insufficient system|disk full|out of disk|file system full|mail system full",
        True,
    ),
    (
        "networkerror",
        r"connection (?:refused|timed out|reset|lost|closed)|network (?:is )?unreachable|no route to host|"
        r"mail loop|loops back|too many hops|hop count|routing loop|host unreachable|lost connection|"
        r"could not connect|did not accept our requests to connect|unable to connect|connect to .* failed|"
        r"dns temporary|temporary dns|"
        r"timed out while|conversation with .* timed out",
        True,
    ),
    (
        "exceedlimit",
        r"exceeds? (?:the )?(?:recipient|allowed) limit|too many recipients",
        True,
    ),
    (
        "notcompliantrfc",
        r"rfc ?5322|rfc ?2822|not (?:rfc|standards?)[- ]compliant|duplicate (?:header|message-id)|"
        r"multiple (?:from|date|subject) headers|malformed (?:header|message)",
        True,
    ),
    (
        "syntaxerror",
        r"syntax error|command unrecognized|command not (?:recognized|implemented)|bad sequence of commands",
        True,
    ),
    (
        "policyviolation",
        r"polic(?:y|ies)|prohibited|not allowed|acceptable use|violat",
        True,
    ),
    (
        "contenterror",
        r"content (?:error|type)|header (?:error|too long)|invalid (?:header|mime)|mime",
        False,
    ),
    (
        "systemerror",
        r"system error|internal (?:server )?error|local error|temporary (?:local )?(?:failure|problem|error)|"
        r"resources? (?:temporarily )?unavailable|try (?:again )?later|service (?:not )?(?:available|unavailable)|"
        r"server (?:error|busy)|temporarily (?:unavailable|deferred)",
        False,
    ),
    ("userunknown", r"mailbox unavailable|unavailable mailbox|recipient rejected|invalid", False),
    ("rejected", r"reject|refused|denied|not accepted|拒否", False),
)
# Patterns are lower case and matched against lower-cased text: several times faster than re.IGNORECASE.
_PATTERNS: Final = tuple((reason, re.compile(p), strong) for reason, p, strong in _RAW_PATTERNS)

# A reason without a status gets the one RFC 3463 gives it (the class from the reply code when known).
_STATUS_OF: Final = {
    "userunknown": "5.1.1",
    "hostunknown": "5.1.2",
    "hasmoved": "5.1.6",
    "notaccept": "5.1.10",
    "mailboxfull": "5.2.2",
    "filtered": "5.2.0",
    "suspend": "5.2.1",
    "exceedlimit": "5.2.3",
    "mesgtoobig": "5.3.4",
    "systemfull": "5.3.1",
    "systemerror": "5.3.0",
    "networkerror": "5.4.0",
    "expired": "5.4.7",
    "mailererror": "5.3.0",
    "syntaxerror": "5.5.2",
    "contenterror": "5.6.0",
    "rejected": "5.7.1",
    "blocked": "5.7.1",
    "spamdetected": "5.7.1",
    "virusdetected": "5.7.1",
    "policyviolation": "5.7.1",
    "securityerror": "5.7.0",
    "authfailure": "5.7.26",
    "requireptr": "5.7.25",
    "badreputation": "5.7.1",
    "norelaying": "5.7.1",
    "failedstarttls": "5.7.10",
    "ratelimited": "4.7.0",
    "speeding": "4.7.0",
    "toomanyconn": "4.3.2",
    "notcompliantrfc": "5.6.0",
}
# Reasons that are temporary by nature: their derived status is class 4 even after a 5xx.
_TEMPORARY: Final = frozenset({"ratelimited", "speeding", "toomanyconn"})


def find_status(text: str) -> str | None:
    """The most telling RFC 3463 status in the text: the first specific one, else the first ("5.1.1")."""
    first = None
    for match in _STATUS.finditer(text[:20000]):
        status = f"{match[1]}.{int(match[2])}.{int(match[3])}"
        if first is None:
            first = status
        if not status.endswith(".0.0") and match[1] != "2":
            return status
    return first


def find_reply_code(text: str) -> int | None:
    match = _REPLY.search(text[:20000])
    return int(match[1]) if match else None


def better_status(status: str | None, text: str) -> str | None:
    """A generic x.0.0 (or missing) status replaced by a specific failure status the text carries."""
    found = find_status(text)
    if found is None or found.startswith("2"):
        return status
    if status is None:
        return found
    if status.endswith(".0.0") and not found.endswith(".0.0") and found[0] in "45":
        return found if found[0] == status[0] or (status[0] == "5" and found[0] == "5") else status
    return status


def text_reason(text: str) -> tuple[str, bool] | None:
    """The reason a diagnostic text names, with whether the text is specific enough to overrule a code."""
    text = text.lower()
    for reason, pattern, strong in _PATTERNS:
        if pattern.search(text):
            return reason, strong
    return None


def classify(status: str | None, text: str, smtp_code: int | None = None) -> str:
    """One reason from the taxonomy for a failure with this status, reply code and diagnostic text."""
    text = text[:4000]
    subject_detail = None
    if status:
        parts = status.split(".")
        if len(parts) == 3:
            subject_detail = f"{parts[1]}.{parts[2]}"
    by_text = text_reason(text) if text.strip() else None
    by_status = _BY_STATUS.get(subject_detail or "")
    if by_text is not None:
        reason, strong = by_text
        if reason == "vacation":
            by_text = None
        elif strong or by_status is None or subject_detail in _GENERIC_STATUS:
            if reason == "userunknown" and by_status == "hostunknown":
                return by_status  # the code names the domain: "user unknown" texts are often boilerplate
            return reason
    if by_status is not None and subject_detail not in ("0.0",):
        if subject_detail in ("7.1",) and status and status.startswith("4"):
            return "blocked"
        return by_status
    if by_text is not None:
        return by_text[0]
    if smtp_code == 552:
        return "mailboxfull"
    if smtp_code in (421, 450, 451, 452) and not text.strip():
        return "systemerror"
    if smtp_code in (550, 551, 553, 554) and not text.strip():
        return "rejected"
    return "onhold" if status and status.startswith("4") else "undefined"


def derived_status(reason: str, reply_code: int | None, temporary: bool = False) -> str | None:
    """The status RFC 3463 gives a reason, when the bounce carries none; class 4 for a 4xx or temporary one."""
    status = _STATUS_OF.get(reason)
    if status is None:
        return None
    if reason in _TEMPORARY or temporary or (reply_code is not None and 400 <= reply_code < 500):
        if reason in HARD_REASONS:
            return status
        return "4" + status[1:]
    return status


def is_hard(reason: str, status: str | None = None) -> bool:
    """Hard per sisimai's rule: non-existence always; a refused domain or an unexplained failure when permanent."""
    if reason in ("notaccept", "onhold", "undefined"):
        return (status is None and reason == "notaccept") or bool(status and status.startswith("5"))
    return reason in HARD_REASONS


def suppression_scope(reason: str) -> Literal["global", "organisation", "organisation-counted", "none"]:
    """Who the failure suppresses the address for: everyone, the sender's organisation (at once or after
    repeats), or nobody."""
    if reason in GLOBAL_SUPPRESSION:
        return "global"
    if reason in ORGANISATION_HARD:
        return "organisation"
    if reason in ORGANISATION_COUNTED:
        return "organisation-counted"
    return "none"


def counts_for_suppression(reason: str) -> bool:
    return suppression_scope(reason) != "none"


def japanese(reason: str) -> str:
    return JAPANESE.get(reason, JAPANESE["undefined"])[0]


def japanese_advice(reason: str) -> str:
    return JAPANESE.get(reason, JAPANESE["undefined"])[1]
