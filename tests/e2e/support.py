"""Helpers of the end-to-end tests: CP932 lists, reading captured campaign mail, DSNs to the notifier."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx

from isseimail_testing.fixtures import INTERNAL_HEADERS
from isseimail_testing.smtp import CaptureServer

HEADER = ["メールアドレス", "会社名", "部署名1", "部署名2", "ご担当者名"]
Row = tuple[str, str, str, str, str]  # email, company, department1, department2, contact


def cp932_csv(rows: Sequence[Sequence[str]], header: bool = True) -> bytes:
    """What Excel writes: Shift_JIS (CP932), CRLF, a header row."""
    lines = [HEADER, *rows] if header else list(rows)
    return "".join(",".join(cells) + "\r\n" for cells in lines).encode("cp932")


def addressee(row: Row) -> str:
    """The addressee block the recipient of `row` must see (written out here, not taken from the code)."""
    _, company, dept1, dept2, contact = row
    lines = [v for v in (company, dept1, dept2) if v]
    if contact:
        lines.append(contact if contact.endswith(("様", "各位", "御中", "殿")) else f"{contact} 様")
    return "\n".join(lines)


@dataclass
class CampaignMail:
    """One captured campaign message, parsed."""

    rcpt: str
    mail_from: str  # the VERP return path
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        content: str = part.get_content()
        return content.replace("\r\n", "\n")

    @property
    def attachments(self) -> list[tuple[str | None, bytes]]:
        return [(p.get_filename(), p.get_payload(decode=True)) for p in self.message.iter_attachments()]


def campaign_mails(smtp: CaptureServer, subject: str | None = None) -> list[CampaignMail]:
    """Every captured campaign message (they carry X-Isseimail-Bounce; system mails do not)."""
    found = []
    for captured in smtp.messages:
        message = captured.message()
        if message["X-Isseimail-Bounce"] is None:
            continue
        if subject is not None and message["Subject"] != subject:
            continue
        assert len(captured.rcpt_tos) == 1, captured.rcpt_tos  # one recipient per message, never a shared envelope
        found.append(CampaignMail(captured.rcpt_tos[0], captured.mail_from, message))
    return found


def system_mails(smtp: CaptureServer, address: str, subject_part: str) -> list[EmailMessage]:
    """Mails the notifier sent to `address` whose subject contains `subject_part`."""
    out = []
    for captured in smtp.to(address):
        message = captured.message()
        if message["X-Isseimail-Bounce"] is None and subject_part in str(message["Subject"]):
            out.append(message)
    return out


def body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content: str = part.get_content()
    return content.replace("\r\n", "\n")


async def wait_until(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll a sync or async check until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met after {timeout}s")
        await asyncio.sleep(0.1)


def dsn(recipient: str, return_path: str, status: str = "5.1.1", diagnostic: str = "550 5.1.1 User unknown") -> bytes:
    """An RFC 3464 delivery status notification, as a remote MTA sends it after accepting the message."""
    boundary = "dsn-boundary-e2e"
    text = (
        "From: MAILER-DAEMON@mx.remote.example (Mail Delivery System)\r\n"
        f"To: {return_path}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"<{recipient}>: {diagnostic}\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.remote.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        "Action: failed\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        f"Return-Path: <{return_path}>\r\n"
        f"To: {recipient}\r\n\r\n"
        f"--{boundary}--\r\n"
    )
    return text.encode("ascii")


async def send_dsn(listener: tuple[str, int], return_path: str, recipient: str) -> int:
    """Deliver a DSN for `recipient` to the notifier's bounce listener (null sender); returns the SMTP code."""
    client = aiosmtplib.SMTP(hostname=listener[0], port=listener[1], timeout=30)
    await client.connect()
    try:
        await client.mail("")
        await client.rcpt(return_path)
        response = await client.data(dsn(recipient, return_path))
        return response.code
    finally:
        client.close()


async def suppressions(notifier_url: str, query: str = "") -> dict[str, str]:
    """The notifier's suppression list (address → reason)."""
    async with httpx.AsyncClient(base_url=notifier_url, headers=INTERNAL_HEADERS) as http:
        r = await http.get("/internal/suppressions", params={"q": query, "limit": 500})
        assert r.status_code == 200, r.text
        return {item["address"]: item["reason"] for item in r.json()["items"]}
