"""The bounce SMTP listener (aiosmtpd): bounces, unsubscribe requests and feedback reports; stores, then 250.

Accepted recipients on ISSEIMAIL_BOUNCE_DOMAIN:
- an authenticated VERP address (`b-...`): a bounce, or a feedback report (ARF) some providers send to the
  envelope sender of the mail complained about;
- `unsubscribe+<token>@`: the List-Unsubscribe mailto: of a campaign mail; the token is checked at RCPT
  (unknown or forged: 550) and the mail itself is the request (RFC 2369), whatever it says;
- `fbl@`: the address an operator registers with mailbox providers' feedback loops; only feedback reports
  are expected there, and any message is stored (unreadable ones too) but acts only through our own tags.
Anything else is refused (550), more recipients than allowed 452, messages over ISSEIMAIL_BOUNCE_MAX_BYTES
552 (by aiosmtpd). A storage failure answers 451 so the remote MTA retries: nothing is acknowledged that is
not stored.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from aiosmtpd.smtp import SMTP, Envelope, Session
from prometheus_client import Counter

from isseimail_notifier import complaints, unsubscribes
from isseimail_notifier.arf_parser import parse_arf
from isseimail_notifier.bounce_parser import parse_bounce
from isseimail_notifier.bounce_store import store_bounce
from isseimail_notifier.failures import DigestPolicy
from isseimail_notifier.reasons import counts_for_suppression
from isseimail_shared.unsubscribe import token_of_address
from isseimail_shared.verp import VerpTag, parse_bounce_address

log = logging.getLogger(__name__)

FBL_LOCAL_PART = "fbl"
DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)

BOUNCES_RECEIVED = Counter(
    "isseimail_notifier_bounces_total", "Messages seen by the bounce listener, by outcome.", ["outcome"]
)
BOUNCED_RECIPIENTS = Counter(
    "isseimail_notifier_bounced_recipients_total",
    "Deliveries reported bounced (first report of each), by hard/soft and reason.",
    ["service", "kind", "reason"],
)


class BounceHandler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        secret: bytes,
        domain: str,
        max_recipients: int,
        policy: DigestPolicy,
        soft_limit: int,
    ) -> None:
        self._pool = pool
        self._secret = secret
        self._domain = domain
        self._max_recipients = max_recipients
        self._policy = policy
        self._soft_limit = soft_limit
        self._tags = complaints.Tags(secret, domain)

    def _is_fbl(self, address: str) -> bool:
        local, _, domain = address.strip().strip("<>").rpartition("@")
        return local.lower() == FBL_LOCAL_PART and domain.lower() == self._domain.lower()

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self._max_recipients:
            BOUNCES_RECEIVED.labels("too_many_recipients").inc()
            return "452 4.5.3 Too many recipients"
        token = token_of_address(address, self._domain)
        if token is not None:
            try:
                async with self._pool.acquire() as conn:
                    target = await unsubscribes.resolve(conn, self._secret, token)
            except DB_ERRORS as exc:
                log.warning("unsubscribe not checked, asking the sender to retry: %s", exc.__class__.__name__)
                return "451 4.3.0 Temporary failure, please retry"
            if target is None:
                unsubscribes.UNSUBSCRIBES.labels("mailto", "refused").inc()
                return "550 5.1.1 No such unsubscribe address"
        elif not self._is_fbl(address) and parse_bounce_address(self._secret, self._domain, address) is None:
            BOUNCES_RECEIVED.labels("unknown_recipient").inc()
            return "550 5.1.1 No such bounce address"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        data = envelope.original_content or b""
        if not data and isinstance(envelope.content, bytes):
            data = envelope.content
        raw = bytes(data)
        mail_from = str(envelope.mail_from or "")
        tokens = {rcpt: token_of_address(rcpt, self._domain) for rcpt in envelope.rcpt_tos}
        # Parsed once for every recipient: a message to several of our addresses is one message.
        report = await asyncio.to_thread(parse_arf, raw) if None in tokens.values() else None
        try:
            for rcpt, token in tokens.items():
                if token is not None:
                    await unsubscribes.unsubscribe(self._pool, self._secret, token, "mailto")
                    continue
                assert report is not None
                tag = parse_bounce_address(self._secret, self._domain, rcpt)
                if report.is_report or tag is None:  # fbl@ keeps whatever it gets
                    await complaints.store_complaint(
                        self._pool, self._tags, mail_from=mail_from, rcpt=rcpt, data=raw, report=report, rcpt_tag=tag
                    )
                    BOUNCES_RECEIVED.labels("feedback_report" if report.is_report else "not_feedback_report").inc()
                    continue
                await self._bounce(tag, mail_from, rcpt, raw)
        except DB_ERRORS as exc:
            log.warning("message not stored, asking the sender to retry: %s", exc.__class__.__name__)
            BOUNCES_RECEIVED.labels("store_failed").inc()
            return "451 4.3.0 Temporary failure, please retry"
        return "250 2.0.0 Stored"

    async def _bounce(self, tag: VerpTag, mail_from: str, rcpt: str, data: bytes) -> None:
        result = await asyncio.to_thread(parse_bounce, data)
        new = await store_bounce(
            self._pool,
            tag=tag,
            mail_from=mail_from,
            rcpt=rcpt,
            data=data,
            result=result,
            policy=self._policy,
            soft_limit=self._soft_limit,
        )
        if new and result.is_bounce and counts_for_suppression(result.reason):
            kind = "hard" if result.hard else "soft"
            BOUNCED_RECIPIENTS.labels("notifier", kind, result.reason).inc()
        BOUNCES_RECEIVED.labels("bounce" if result.is_bounce else "not_bounce").inc()


class BounceListener:
    def __init__(self, handler: BounceHandler, host: str, port: int, max_bytes: int) -> None:
        self._handler = handler
        self._host = host
        self.port = port
        self._max_bytes = max_bytes
        self._server: asyncio.base_events.Server | None = None

    def _factory(self) -> SMTP:
        kwargs: dict[str, Any] = {
            "hostname": "isseimail-bounce",
            "data_size_limit": self._max_bytes,
            "enable_SMTPUTF8": True,
            "decode_data": False,
            "ident": "isseimail bounce listener",
            "timeout": 60,
        }
        return SMTP(self._handler, **kwargs)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._factory, self._host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("bounce listener on %s:%d", self._host, self.port)

    def is_serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
