"""Unsubscribes and complaints at the real listener and routes: suppressed per sender organisation, counted."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from isseimail_notifier import complaint_rates
from isseimail_notifier.app import create_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.events import CampaignAccepted, DeliverySucceeded
from isseimail_shared.unsubscribe import mailto_address, make_token
from isseimail_shared.verp import bounce_address
from isseimail_testing.process import running_app

from .conftest import listener_port, smtp_send, wait_until

FEEDBACK = Path(__file__).parent / "feedback"
SECRET = b"test-verp-secret"
DOMAIN = "bounce.isseimail.localhost"
ORG = "corp.example.jp"


# Unsubscribe mails and feedback reports come from a mailbox, not from the null sender of a DSN.
_send = functools.partial(smtp_send, mail_from="someone@example.org")


async def _campaign(publish: Any, db: asyncpg.Connection, deliveries: dict[int, str], sender: str) -> uuid.UUID:
    campaign = uuid.uuid4()
    await publish(
        CampaignAccepted(
            campaign_id=campaign, pass_id=1, recipient_count=len(deliveries), sender_email=sender, subject="ご案内"
        )
    )
    for delivery_id, address in deliveries.items():
        await publish(
            DeliverySucceeded(campaign_id=campaign, delivery_id=delivery_id, recipient=address, smtp_code=250)
        )

    async def known() -> bool:
        count = await db.fetchval("SELECT count(*) FROM deliveries WHERE campaign_id = $1", campaign)
        return count == len(deliveries) and bool(
            await db.fetchval("SELECT 1 FROM campaigns WHERE campaign_id = $1", campaign)
        )

    await wait_until(known)
    return campaign


async def _check(client: httpx.AsyncClient, addresses: list[str], organisation: str | None) -> dict[str, str]:
    body: dict[str, Any] = {"addresses": addresses}
    if organisation:
        body["organisation"] = organisation
    response = await client.post("/internal/suppressions/check", json=body)
    assert response.status_code == 200
    suppressed: dict[str, str] = response.json()["suppressed"]
    return suppressed


async def test_mailto_unsubscribe_suppresses_for_the_sender_organisation_only(
    make_settings: Callable[..., Any], publish: Any, notifier_db: asyncpg.Connection
) -> None:
    """A valid unsubscribe mailto is taken (replays too, one row); forged, foreign-org and unknown ones get 550."""
    app = create_app(make_settings(NotifierSettings))
    before = [
        _sample("isseimail_notifier_unsubscribes_total", channel="mailto", outcome=o)
        for o in ("suppressed", "repeated")
    ]
    async with running_app(app) as client:
        campaign = await _campaign(
            publish, notifier_db, {5: "Taro@Example.co.jp", 6: "hanako@example.co.jp"}, f"koho@{ORG}"
        )
        token = make_token(SECRET, campaign, 5, "taro@example.co.jp", ORG)
        port = listener_port(app)
        for _ in range(2):  # a replayed request: still 250, still one row
            code, _ = await _send(port, mailto_address(token, DOMAIN).upper(), b"Subject: unsubscribe\r\n\r\n")
            assert code == 250
        foreign = make_token(SECRET, campaign, 6, "hanako@example.co.jp", "other.example.jp")  # another org's token
        forged = make_token(b"not-our-key", campaign, 6, "hanako@example.co.jp", ORG)
        unknown = make_token(SECRET, campaign, 99, "x@example.co.jp", ORG)
        tampered = token[:-2] + ("aa" if token[-2:] != "aa" else "ba")
        for bad in (foreign, forged, unknown, tampered, "x" * 52, "a" * 400):
            with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
                await _send(port, f"unsubscribe+{bad}@{DOMAIN}", b"Subject: unsubscribe\r\n\r\n")
            assert refused.value.code == 550
        assert await _check(client, ["TARO@example.co.jp", "hanako@example.co.jp"], ORG) == {
            "TARO@example.co.jp": "unsubscribed"
        }
        assert await _check(client, ["taro@example.co.jp"], "other.example.jp") == {}
        assert await _check(client, ["taro@example.co.jp"], None) == {}  # not a bounce: not for every sender
        metrics = (await client.get("/metrics")).text
    rows = await notifier_db.fetch("SELECT address, scope, kind, source_campaign FROM suppressions")
    assert [tuple(r) for r in rows] == [("taro@example.co.jp", ORG, "unsubscribed", campaign)]
    assert 'isseimail_notifier_unsubscribes_total{channel="mailto",outcome="suppressed"}' in metrics
    after = [
        _sample("isseimail_notifier_unsubscribes_total", channel="mailto", outcome=o)
        for o in ("suppressed", "repeated")
    ]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1]


async def test_one_click_route_is_token_checked_and_idempotent(
    make_settings: Callable[..., Any], publish: Any, notifier_db: asyncpg.Connection
) -> None:
    """The gateway's internal route: 200 for a valid token (twice, one row), 404 for any other, nothing leaked."""
    async with running_app(create_app(make_settings(NotifierSettings))) as client:
        campaign = await _campaign(publish, notifier_db, {1: "a@example.co.jp"}, f"koho@{ORG}")
        token = make_token(SECRET, campaign, 1, "a@example.co.jp", ORG)
        assert (await client.get(f"/internal/unsubscribes/{token}")).json() == {"valid": True}
        assert await notifier_db.fetchval("SELECT count(*) FROM suppressions") == 0  # looking is not unsubscribing
        for _ in range(2):
            r = await client.post(f"/internal/unsubscribes/{token}", json={"channel": "one-click"})
            assert r.status_code == 200
            assert r.json() == {"unsubscribed": True}
        for bad in (make_token(SECRET, campaign, 1, "a@example.co.jp", "evil.example"), "z" * 52, "garbage"):
            for response in (
                await client.get(f"/internal/unsubscribes/{bad}"),
                await client.post(f"/internal/unsubscribes/{bad}", json={}),
            ):
                assert response.status_code == 404
                assert response.json() == {"detail": "この配信停止のリンクは無効です。"}
        assert (await client.get("/internal/unsubscribes/" + "a" * 101)).status_code == 422
    assert await notifier_db.fetchval("SELECT count(*) FROM suppressions WHERE kind = 'unsubscribed'") == 1


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


COMPLAINT_OUTCOMES = [
    ("abuse", "counted"),
    ("abuse", "repeated"),
    ("abuse", "unidentified"),
    ("not-spam", "not_complaint"),
    ("none", "unparsed"),
]


def _complaint_counts() -> list[float]:
    return [_sample("isseimail_notifier_complaints_total", feedback_type=t, outcome=o) for t, o in COMPLAINT_OUTCOMES]


def _report(name: str, return_path: str = "", list_unsubscribe: str = "") -> bytes:
    raw = (FEEDBACK / name).read_bytes()
    return raw.replace(b"@@RETURN_PATH@@", return_path.encode()).replace(
        b"@@LIST_UNSUBSCRIBE@@", list_unsubscribe.encode()
    )


async def test_feedback_reports_suppress_and_count_per_campaign(
    make_settings: Callable[..., Any], publish: Any, notifier_db: asyncpg.Connection
) -> None:
    """ARF reports to fbl@ (by VERP or by token) and to a VERP address suppress the delivery's own address for
    the campaign's organisation, once per delivery; the rate gauge follows; not-spam and foreign reports do not."""
    app = create_app(make_settings(NotifierSettings))
    recipients = {n: f"user{n}@example.co.jp" for n in range(1, 11)}
    before = _complaint_counts()
    async with running_app(app) as client:
        campaign = await _campaign(publish, notifier_db, recipients, f"koho@{ORG}")
        port = listener_port(app)
        fbl = f"fbl@{DOMAIN}"
        by_verp = _report("provider-headers-only.eml", return_path=bounce_address(SECRET, DOMAIN, campaign, 1))
        token = make_token(SECRET, campaign, 2, recipients[2], ORG)
        by_token = _report(
            "provider-headers-only.eml",
            return_path="someone-else@example.net",
            list_unsubscribe=f"<mailto:{mailto_address(token, DOMAIN)}>, <https://mail.example.jp/unsubscribe/{token}>",
        )
        to_verp = _report("rfc5965-b1-simple.eml")  # sent to the envelope sender: the RCPT names the delivery
        assert (await _send(port, fbl, by_verp))[0] == 250
        assert (await _send(port, fbl, by_verp))[0] == 250  # the same report twice counts once
        assert (await _send(port, fbl, by_token))[0] == 250
        assert (await _send(port, bounce_address(SECRET, DOMAIN, campaign, 3), to_verp))[0] == 250
        # reports that name nothing of ours, say "not spam", or cannot be read: stored, no suppression
        assert (await _send(port, fbl, _report("rfc5965-b2-optional-fields.eml")))[0] == 250
        assert (await _send(port, fbl, _report("not-spam.eml")))[0] == 250
        for broken in ("malformed-no-feedback-type.eml", "malformed-truncated.eml", "plain-complaint-letter.eml"):
            assert (await _send(port, fbl, _report(broken)))[0] == 250
        forged_verp = _report(
            "provider-headers-only.eml", return_path=bounce_address(b"wrong-key", DOMAIN, campaign, 4)
        )
        assert (await _send(port, fbl, forged_verp))[0] == 250
        with pytest.raises(aiosmtplib.SMTPRecipientRefused):
            await _send(port, f"abuse@{DOMAIN}", by_verp)
        suppressed = await _check(client, list(recipients.values()), ORG)
        rates = await complaint_rates.refresh(app.state.runtime.pool)
        metrics = (await client.get("/metrics")).text
    assert suppressed == {recipients[1]: "complained", recipients[2]: "complained", recipients[3]: "complained"}
    assert rates[str(campaign)] == pytest.approx(3 / 10)
    assert f'isseimail_campaign_complaint_rate{{campaign="{campaign}"}} 0.3' in metrics
    assert f'isseimail_campaign_complaints{{campaign="{campaign}"}} 3.0' in metrics
    assert 'isseimail_notifier_complaints_total{feedback_type="abuse",outcome="counted"}' in metrics
    after = _complaint_counts()
    assert [a - b for a, b in zip(after, before, strict=True)] == [3, 1, 2, 1, 3]
    stored = await notifier_db.fetch("SELECT parsed, length(raw) > 0 AS kept FROM complaints")
    assert len(stored) == 10  # every accepted message is kept, readable or not
    assert all(r["kept"] for r in stored)
    assert sum(not r["parsed"] for r in stored) == 3


async def test_complaint_upgrades_an_unsubscribe_and_bounces_stay_global(
    make_settings: Callable[..., Any], publish: Any, notifier_db: asyncpg.Connection
) -> None:
    """An address both unsubscribed and complained about answers 'complained'; another org only sees bounces."""
    app = create_app(make_settings(NotifierSettings))
    async with running_app(app) as client:
        campaign = await _campaign(publish, notifier_db, {1: "both@example.co.jp"}, f"koho@{ORG}")
        token = make_token(SECRET, campaign, 1, "both@example.co.jp", ORG)
        assert (await client.post(f"/internal/unsubscribes/{token}", json={})).status_code == 200
        report = _report("provider-headers-only.eml", return_path=bounce_address(SECRET, DOMAIN, campaign, 1))
        assert (await _send(listener_port(app), f"fbl@{DOMAIN}", report))[0] == 250
        await notifier_db.execute(
            "INSERT INTO suppressions (address, reason, hard, active) VALUES ('both@example.co.jp', 'userunknown', "
            "true, true)"
        )
        mine = await _check(client, ["both@example.co.jp"], ORG)
        theirs = await _check(client, ["both@example.co.jp"], "other.example.jp")
        page = (await client.get("/internal/suppressions", params={"q": "both"})).json()
        deleted = await client.request(
            "DELETE",
            "/internal/suppressions/both@example.co.jp",
            json={"reason": "本人の申し出", "actor": "admin@example.jp", "scope": ORG},
        )
        left = await _check(client, ["both@example.co.jp"], ORG)
    assert mine == {"both@example.co.jp": "complained"}
    assert theirs == {"both@example.co.jp": "userunknown"}
    assert page["total"] == 2
    assert {(i["scope"], i["kind"]) for i in page["items"]} == {(ORG, "complained"), ("*", "bounced")}
    assert deleted.status_code == 200
    assert left == {"both@example.co.jp": "userunknown"}
    audit = await notifier_db.fetch("SELECT scope FROM suppression_audit")
    assert [r["scope"] for r in audit] == [ORG]


async def test_check_refuses_a_malformed_organisation(make_settings: Callable[..., Any]) -> None:
    """An organisation that is not a domain name is a 422 in Japanese, not a query."""
    async with running_app(create_app(make_settings(NotifierSettings))) as client:
        r = await client.post(
            "/internal/suppressions/check", json={"addresses": ["a@b.jp"], "organisation": "x' OR 1=1"}
        )
        assert r.status_code == 422
        assert "organisation" in r.json()["errors"]
