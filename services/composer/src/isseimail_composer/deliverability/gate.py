"""The send-time refusal: a configured sender domain whose DKIM or DMARC check is an error may not send,
unless an administrator has overridden it (audited in domain_overrides)."""

from __future__ import annotations

import logging
import re

import asyncpg

from isseimail_composer.deliverability import overrides
from isseimail_composer.deliverability.report import ReadinessChecker

log = logging.getLogger(__name__)

CHECK_NAMES = {"dkim": "DKIM", "dmarc": "DMARC"}
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_domain(raw: str) -> str | None:
    """A host name in lower-case A-labels, or None when it is not one."""
    name = raw.strip().rstrip(".").lower()
    try:
        name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        return None
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return None
    return name


class DomainGate:
    def __init__(self, checker: ReadinessChecker, pool: asyncpg.Pool, sender_domains: list[str]) -> None:
        self.checker = checker
        self.pool = pool
        self.sender_domains = set(sender_domains)

    async def refusal(self, sender_email: str) -> str | None:
        """The Japanese reason sending is refused, or None. Only configured sender domains are checked."""
        domain = normalize_domain(sender_email.rpartition("@")[2])
        if domain is None or domain not in self.sender_domains:
            return None
        report = await self.checker.report(domain)
        if not report.blocking:
            return None
        async with self.pool.acquire() as conn:
            override = await overrides.live(conn, domain)
        names = "・".join(CHECK_NAMES[c] for c in report.blocking)
        if override is not None:
            log.warning("sending from %s despite failing %s: overridden by %s", domain, names, override.created_by)
            return None
        return (
            f"差出人のドメイン {domain} の{names}の設定に問題があるため、送信できません"
            "（受信側で迷惑メールと判定され、会社のドメインの信用を損なうおそれがあります）。"
            "管理者にご連絡ください（管理画面の「送信ドメイン」で問題と公開すべきDNSレコードを確認できます）。"
        )
