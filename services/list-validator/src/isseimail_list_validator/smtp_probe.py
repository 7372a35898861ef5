"""Optional SMTP probe (off by default): EHLO, MAIL FROM:<>, RCPT TO, QUIT at the domain's MX; never DATA.

A random local part is tried first: a domain that accepts it accepts anything ("catch-all"), so its
addresses can only be "exist (catch-all)". 550 / 5.1.1 means the mailbox does not exist; 4xx and
connection trouble leave the address unverified. Connections per domain are limited per process.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections import defaultdict

import aiosmtplib
import asyncpg

from isseimail_list_validator.domain_check import DomainChecker, DomainResult
from isseimail_list_validator.lists import pending_rows_for_domain
from isseimail_list_validator.settings import ListValidatorSettings

RCPTS_PER_TRANSACTION = 50


def classify(code: int, text: str) -> str:
    if 200 <= code < 300:
        return "ok"
    if code in (550, 551, 553) or "5.1.1" in text or "5.1.10" in text:
        return "mailbox_not_found"
    return "smtp_unverified"


class SmtpProber:
    def __init__(self, pool: asyncpg.Pool, dns: DomainChecker, settings: ListValidatorSettings) -> None:
        self._pool = pool
        self._dns = dns
        self._port = settings.smtp_probe_port
        self._timeout = settings.smtp_probe_timeout_seconds
        self._helo = settings.smtp_probe_helo
        self._per_domain = settings.smtp_probe_connections_per_domain
        self._limits: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(self._per_domain))

    async def __call__(self, list_id: uuid.UUID, domain: str, result: DomainResult) -> list[tuple[int, str]]:
        rows = await pending_rows_for_domain(self._pool, list_id, domain)
        if not rows:
            return []
        for host in result.mx[:3]:
            ips = await self._dns.addresses(host)
            if not ips:
                continue
            try:
                async with self._limits[domain]:
                    return await self._probe(ips[0], domain, rows)
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                continue
        return [(row, "smtp_unverified") for row, _ in rows]

    @staticmethod
    async def _rcpt(client: aiosmtplib.SMTP, address: str) -> str:
        try:
            response = await client.rcpt(address)
        except aiosmtplib.SMTPRecipientRefused as exc:
            return classify(exc.code, exc.message)
        return classify(response.code, response.message)

    async def _probe(self, ip: str, domain: str, rows: list[tuple[int, str]]) -> list[tuple[int, str]]:
        client = aiosmtplib.SMTP(hostname=ip, port=self._port, timeout=self._timeout, start_tls=False)
        await client.connect()
        try:
            await client.ehlo(hostname=self._helo)
            await client.mail("")
            canary = await self._rcpt(client, f"isseimail-probe-{secrets.token_hex(8)}@{domain}")
            if canary == "ok":
                return [(row, "ok_catch_all") for row, _ in rows]
            out: list[tuple[int, str]] = []
            for index, (row, email) in enumerate(rows, 1):
                out.append((row, await self._rcpt(client, email)))
                if index % RCPTS_PER_TRANSACTION == 0:
                    await client.rset()
                    await client.mail("")
            return out
        finally:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()
