"""Two applicants with two passes send two campaigns at the same moment (two dispatcher workers).

Some addresses are on both lists. Every captured message belongs to exactly one campaign and is right for
it: To, subject, sender, the addressee block from that campaign's own row, its attachments, its VERP
return path; each campaign reaches exactly its recipients once, and each sender gets one completion mail.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import pytest
from tests.e2e.support import Row, addressee, body_text, campaign_mails, cp932_csv, system_mails, wait_until

from isseimail_shared.verp import parse_bounce_address
from isseimail_testing.pdfs import sample_pdf
from isseimail_testing.smtp import CaptureServer
from isseimail_testing.system import VERP_SECRET, ApiClient, SystemProcesses, new_pass

pytestmark = [pytest.mark.timeout(360), pytest.mark.slow, pytest.mark.system(workers=2)]

COUNT = 300
SHARED = range(1, 51)  # user1..user50 are on both lists, with different company names


@dataclass
class Campaign:
    sender: str
    sender_name: str
    subject: str
    body: str
    rows: list[Row]
    pdfs: list[tuple[str, bytes]]
    api: ApiClient | None = None
    campaign_id: str = ""


def plan(tag: str, offset: int, seed: int) -> list[Row]:
    shared = [(f"user{i}@kaisha{i % 10}.example.jp", f"{tag}商事{i}", f"{tag}部", "", f"共通{i}") for i in SHARED]
    own = [
        (f"{tag.lower()}{i}@kaisha{i % 10}.example.jp", f"{tag}工業{i}", "", f"{tag}課", f"担当{i}")
        for i in range(offset, offset + COUNT - len(shared))
    ]
    rows = shared + own
    random.Random(seed).shuffle(rows)  # a different order per list
    return rows


async def prepare(system: SystemProcesses, smtp: CaptureServer, c: Campaign) -> None:
    c.api, _ = await new_pass(system, smtp, c.sender)
    checked = await c.api.wait_list(await c.api.upload_list(cp932_csv(c.rows)))
    assert checked["status"] == "valid", checked
    c.campaign_id = await c.api.create_campaign(
        checked["list_id"],
        sender_email=c.sender,
        sender_name=c.sender_name,
        subject=c.subject,
        body=c.body,
        attachments=c.pdfs,
    )


async def test_two_campaigns_at_once_never_cross(system: SystemProcesses, smtp_server: CaptureServer) -> None:
    started = time.monotonic()
    a = Campaign(
        "alpha@corp.example.jp",
        "アルファ社 営業部",
        "アルファ社からのご案内",
        "アルファの本文です。",
        plan("A", 1000, 1),
        [("alpha.pdf", sample_pdf(5000, seed=11, title="alpha"))],
    )
    b = Campaign(
        "beta@example.co.jp",
        "ベータ社 総務部",
        "ベータ社からのお知らせ",
        "ベータの本文です。\n二行目。",
        plan("B", 2000, 2),
        [("beta-1.pdf", sample_pdf(4000, seed=21, title="b1")), ("beta-2.pdf", sample_pdf(3000, seed=22))],
    )
    await asyncio.gather(prepare(system, smtp_server, a), prepare(system, smtp_server, b))
    assert a.api is not None
    assert b.api is not None
    try:
        await asyncio.gather(a.api.send(a.campaign_id), b.api.send(b.campaign_id))  # the same moment
        done = await asyncio.gather(a.api.wait_completed(a.campaign_id), b.api.wait_completed(b.campaign_id))
    finally:
        await a.api.close()
        await b.api.close()
    for progress in done:
        assert (progress["total"], progress["sent"], progress["failed"]) == (COUNT + 1, COUNT + 1, 0), progress

    mails = await wait_until(
        lambda: m if len(m := campaign_mails(smtp_server)) >= 2 * (COUNT + 1) else None, what="all mails"
    )
    assert len(mails) == 2 * (COUNT + 1)
    by_subject = {c.subject: c for c in (a, b)}
    seen: dict[str, Counter[str]] = {a.subject: Counter(), b.subject: Counter()}
    for mail in mails:
        c = by_subject[mail.message["Subject"]]  # KeyError = a message of neither campaign
        seen[c.subject][mail.rcpt] += 1
        assert mail.message["To"] == mail.rcpt
        assert c.sender in mail.message["From"]
        tag = parse_bounce_address(VERP_SECRET.encode(), "bounce.isseimail.localhost", mail.mail_from)
        assert tag is not None
        assert tag.campaign_id == uuid.UUID(c.campaign_id)
        assert mail.attachments == c.pdfs
        signature = f"{c.sender_name}\n{c.sender}"
        if mail.rcpt == c.sender:
            assert mail.text.endswith(f"{c.body}\n\n{signature}\n")
            continue
        row = next(r for r in c.rows if r[0] == mail.rcpt)  # only this campaign's row may be in it
        assert mail.text == f"{addressee(row)}\n\n{c.body}\n\n{signature}\n", (c.subject, row)
    for c in (a, b):
        expected = Counter({r[0]: 1 for r in c.rows} | {c.sender: 1})
        assert seen[c.subject] == expected

    for c, other in ((a, b), (b, a)):
        completions = await wait_until(lambda c=c: system_mails(smtp_server, c.sender, "送信完了"), what="completion")
        assert len(completions) == 1
        text = body_text(completions[0])
        assert c.campaign_id in text
        assert other.campaign_id not in text
        assert f"送信先: {COUNT + 1} 件" in text
        assert f"配信成功: {COUNT + 1} 件" in text
    print(f"\ntwo campaigns: {time.monotonic() - started:.1f}s")
