"""The bounce SMTP listener (aiosmtpd): accepts mail to valid VERP addresses only, stores, then answers 250.

Refuses any recipient that is not an authenticated VERP address of ISSEIMAIL_BOUNCE_DOMAIN (550), more
recipients than allowed (452), and messages over ISSEIMAIL_BOUNCE_MAX_BYTES (552, by aiosmtpd). A
storage failure answers 451 so the remote MTA retries: nothing is acknowledged that is not stored.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from aiosmtpd.smtp import SMTP, Envelope, Session
from prometheus_client import Counter

from isseimail_notifier.bounce_parser import parse_bounce
from isseimail_notifier.bounce_store import store_bounce
from isseimail_notifier.failures import DigestPolicy
from isseimail_notifier.reasons import counts_for_suppression
from isseimail_shared.verp import VerpTag, parse_bounce_address

log = logging.getLogger(__name__)

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

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self._max_recipients:
            BOUNCES_RECEIVED.labels("too_many_recipients").inc()
            return "452 4.5.3 Too many recipients"
        if parse_bounce_address(self._secret, self._domain, address) is None:
            BOUNCES_RECEIVED.labels("unknown_recipient").inc()
            return "550 5.1.1 No such bounce address"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        data = envelope.original_content or b""
        if not data and isinstance(envelope.content, bytes):
            data = envelope.content
        result = await asyncio.to_thread(parse_bounce, bytes(data))
        tags: list[tuple[str, VerpTag]] = []
        for rcpt in envelope.rcpt_tos:
            tag = parse_bounce_address(self._secret, self._domain, rcpt)
            if tag is not None:
                tags.append((rcpt, tag))
        try:
            for rcpt, tag in tags:
                new = await store_bounce(
                    self._pool,
                    tag=tag,
                    mail_from=str(envelope.mail_from or ""),
                    rcpt=rcpt,
                    data=bytes(data),
                    result=result,
                    policy=self._policy,
                    soft_limit=self._soft_limit,
                )
                if new and result.is_bounce and counts_for_suppression(result.reason):
                    kind = "hard" if result.hard else "soft"
                    BOUNCED_RECIPIENTS.labels("notifier", kind, result.reason).inc()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("bounce not stored, asking the sender to retry: %s", exc.__class__.__name__)
            BOUNCES_RECEIVED.labels("store_failed").inc()
            return "451 4.3.0 Temporary failure, please retry"
        BOUNCES_RECEIVED.labels("bounce" if result.is_bounce else "not_bounce").inc()
        return "250 2.0.0 Bounce stored"


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
