"""System mail: queued in mail_log inside the causing transaction, sent by one loop, exactly once.

A mail is identified by (cause, kind, recipient), so a duplicate event queues nothing new. The sender
locks a row (FOR UPDATE SKIP LOCKED), sends it, and marks it sent in the same transaction; a crash
between the SMTP answer and the commit can repeat that one mail, with the same Message-ID.
"""

from __future__ import annotations

import logging
import uuid
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, localtime

import aiosmtplib
import asyncpg
from prometheus_client import Counter

from isseimail_notifier.secrets_box import CredentialsBox
from isseimail_shared.db import Conn, Wakeup
from isseimail_shared.settings import SmtpRelay

log = logging.getLogger(__name__)

SYSTEM_MAILS = Counter(
    "isseimail_notifier_system_mails_total", "System mail send attempts, by kind and outcome.", ["kind", "outcome"]
)

NOTIFY = "isseimail_notifier_mail"


async def queue_mail(
    conn: Conn,
    *,
    kind: str,
    cause: str,
    recipient: str,
    subject: str,
    body: str,
    domain: str,
    encrypted: bool = False,
    attachment: tuple[str, bytes] | None = None,
) -> bool:
    """Record a system mail to send; False if this cause already queued it for this recipient.

    `encrypted`: `body` is a CredentialsBox token, decrypted only by the sender at send time.
    `attachment`: (file name, CSV bytes) attached as text/csv.
    """
    message_id = f"<{uuid.uuid4().hex}.{kind}@{domain}>"
    inserted = await conn.fetchval(
        "INSERT INTO mail_log (kind, cause, recipient, subject, body, message_id, encrypted, "
        "attachment_name, attachment) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (cause, kind, recipient) DO NOTHING RETURNING true",
        kind,
        cause,
        recipient,
        subject,
        body,
        message_id,
        encrypted,
        attachment[0] if attachment else None,
        attachment[1] if attachment else None,
    )
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY)
    return bool(inserted)


def build_message(row: asyncpg.Record, sender: str, box: CredentialsBox | None = None) -> EmailMessage:
    if any(c in row["subject"] or c in row["recipient"] for c in "\r\n"):
        raise ValueError("line break in a header field")
    msg = EmailMessage()
    msg["From"] = Address("isseimail 一斉メール", addr_spec=sender)
    msg["To"] = row["recipient"]
    msg["Subject"] = row["subject"]
    msg["Date"] = format_datetime(localtime())
    msg["Message-ID"] = row["message_id"]
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to system mail
    body = row["body"]
    if row["encrypted"]:
        if box is None:
            raise ValueError("encrypted system mail but no credentials key")
        body = box.decrypt(body)
    msg.set_content(body, charset="utf-8")
    if row["attachment"] is not None:
        msg.add_attachment(
            bytes(row["attachment"]),
            maintype="text",
            subtype="csv",
            filename=row["attachment_name"] or "list.csv",
            params={"charset": "utf-8"},
        )
    return msg


class MailSender:
    def __init__(
        self,
        pool: asyncpg.Pool,
        relay: SmtpRelay,
        sender: str,
        retry_seconds: float,
        box: CredentialsBox | None = None,
        max_attempts: int = 40,
    ) -> None:
        self._max_attempts = max_attempts
        self._box = box
        self._pool = pool
        self._relay = relay
        self._sender = sender
        self._retry = retry_seconds

    async def send_due(self) -> int:
        sent = 0
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    "SELECT * FROM mail_log WHERE sent_at IS NULL AND next_try_at <= now() "
                    "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
                )
                if row is None:
                    return sent
                try:
                    await self._send(build_message(row, self._sender, self._box))
                except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
                    attempts = row["attempts"] + 1
                    give_up = attempts >= self._max_attempts
                    log.log(
                        logging.ERROR if give_up else logging.WARNING,
                        "system mail %d not sent (attempt %d%s): %s",
                        row["id"],
                        attempts,
                        ", giving up" if give_up else "",
                        exc.__class__.__name__,
                    )
                    # Exponential backoff capped at an hour; after the last attempt the row stays
                    # unsent with its error for an operator (next_try_at = infinity).
                    delay = min(self._retry * 2 ** min(attempts - 1, 20), 3600.0)
                    SYSTEM_MAILS.labels(row["kind"], "given_up" if give_up else "retry").inc()
                    await conn.execute(
                        "UPDATE mail_log SET attempts = $4, last_error = $2, next_try_at = CASE WHEN $5 "
                        "THEN 'infinity'::timestamptz ELSE now() + make_interval(secs => $3) END WHERE id = $1",
                        row["id"],
                        str(exc)[:500],
                        delay,
                        attempts,
                        give_up,
                    )
                    continue
                await conn.execute(
                    "UPDATE mail_log SET sent_at = now(), attempts = attempts + 1 WHERE id = $1", row["id"]
                )
                SYSTEM_MAILS.labels(row["kind"], "sent").inc()
                sent += 1

    async def _send(self, msg: EmailMessage) -> None:
        r = self._relay
        await aiosmtplib.send(
            msg,
            hostname=r.host,
            port=r.port,
            use_tls=r.security == "tls",
            start_tls=r.security == "starttls",
            username=r.username,
            password=r.password.get_secret_value() if r.password else None,
            timeout=30,
        )

    async def run(self) -> None:
        wakeup = Wakeup(self._pool, NOTIFY)
        try:
            while True:
                try:
                    await self.send_due()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("mail sender paused: %s", exc.__class__.__name__)
                await wakeup.wait(min(self._retry, 5.0))
        finally:
            await wakeup.close()


def mail_domain(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"
