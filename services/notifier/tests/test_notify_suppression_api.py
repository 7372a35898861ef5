"""The suppression routes of docs/internal-api.md: check, list, audited delete, Japanese 4xx."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from isseimail_notifier.app import create_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_notifier.suppressions import record_failure
from isseimail_testing.process import running_app


async def test_hard_and_repeated_soft_failures_suppress(
    make_settings: Callable[..., Any], notifier_db: asyncpg.Connection
) -> None:
    """Non-existence suppresses for everyone at once; a full mailbox only for the sender organisation and only
    at the configured repeat; check ignores case."""
    campaign = uuid.uuid4()
    async with running_app(create_app(make_settings(NotifierSettings))) as client:
        hard = await record_failure(
            notifier_db, address="Gone@Example.JP", reason="userunknown", hard=True, campaign_id=campaign, soft_limit=3
        )
        assert hard.active
        for expected in (False, False, True):
            soft = await record_failure(
                notifier_db,
                address="full@example.jp",
                reason="mailboxfull",
                hard=False,
                campaign_id=None,
                soft_limit=3,
                organisation="corp.example",
            )
            assert soft.active is expected
        r = await client.post(
            "/internal/suppressions/check",
            json={
                "addresses": ["gone@example.jp", "GONE@example.jp", "full@example.jp", "ok@example.jp"],
                "organisation": "corp.example",
            },
        )
        assert r.status_code == 200
        assert r.json() == {
            "suppressed": {
                "gone@example.jp": "userunknown",
                "GONE@example.jp": "userunknown",
                "full@example.jp": "mailboxfull",
            }
        }
        # Another sender organisation (or none) may still mail the full mailbox.
        r = await client.post(
            "/internal/suppressions/check", json={"addresses": ["full@example.jp"], "organisation": "other.example"}
        )
        assert r.json() == {"suppressed": {}}
        page = (await client.get("/internal/suppressions", params={"q": "gone"})).json()
        assert page["total"] == 1
        assert page["items"][0]["address"] == "gone@example.jp"
        assert page["items"][0]["source_campaign"] == str(campaign)

        r = await client.request(
            "DELETE",
            "/internal/suppressions/GONE@example.jp",
            json={"reason": "本人確認済み", "actor": "admin@example.jp"},
        )
        assert r.status_code == 200
        r = await client.request(
            "DELETE", "/internal/suppressions/gone@example.jp", json={"reason": "再実行", "actor": "admin@example.jp"}
        )
        assert r.status_code == 404
        assert "配信停止リスト" in r.json()["detail"]
        checked = await client.post("/internal/suppressions/check", json={"addresses": ["gone@example.jp"]})
        assert checked.json() == {"suppressed": {}}
    audit = await notifier_db.fetch("SELECT address, action, reason, actor FROM suppression_audit")
    assert [tuple(r) for r in audit] == [("gone@example.jp", "delete", "本人確認済み", "admin@example.jp")]


async def test_bad_requests_get_japanese_422(make_settings: Callable[..., Any]) -> None:
    """Oversized, malformed and incomplete requests answer 422 with a Japanese message, never 500."""
    async with running_app(create_app(make_settings(NotifierSettings))) as client:
        too_many = await client.post("/internal/suppressions/check", json={"addresses": ["a@b.jp"] * 50_001})
        assert too_many.status_code == 422
        assert too_many.json()["detail"] == "入力内容に誤りがあります。"
        assert "addresses" in too_many.json()["errors"]
        garbage = await client.post(
            "/internal/suppressions/check", content=b"\xff{", headers={"content-type": "application/json"}
        )
        assert garbage.status_code == 400
        assert garbage.json()["detail"] == "リクエストの形式が正しくありません。"
        wrong_type = await client.post("/internal/suppressions/check", json={"addresses": "a@b.jp"})
        assert wrong_type.status_code == 422
        long_one = await client.post("/internal/suppressions/check", json={"addresses": ["x" * 400]})
        assert long_one.status_code == 422
        no_actor = await client.request("DELETE", "/internal/suppressions/a@b.jp", json={"reason": "x"})
        assert no_actor.status_code == 422
        assert no_actor.json()["errors"] == {"actor": "必須項目です。"}
        bad_limit = await client.get("/internal/suppressions", params={"limit": "-1"})
        assert bad_limit.status_code == 422
        ok = await client.post("/internal/suppressions/check", json={"addresses": []})
        assert ok.json() == {"suppressed": {}}


async def test_text_with_a_nul_is_refused_not_a_500(make_settings: Callable[..., Any]) -> None:
    """A NUL cannot be stored in PostgreSQL's text: 422 at the edge (search) and behind it (any other field)."""
    async with running_app(create_app(make_settings(NotifierSettings))) as client:
        for q in ("a\x00b", "\x1b[2J", "x\x7f"):
            search = await client.get("/internal/suppressions", params={"q": q})
            assert search.status_code == 422, (q, search.text)
            assert search.json()["errors"] == {"q": search.json()["errors"]["q"]}
        fine = await client.get("/internal/suppressions", params={"q": "例え@ば"})
        assert fine.status_code == 200
        # `reason` has no pattern: the NUL reaches the database, whose refusal is answered as bad input
        added = await client.post(
            "/internal/suppressions", json={"address": "nul@example.jp", "reason": "a\x00b", "actor": "admin"}
        )
        assert added.status_code == 422, added.text
        assert added.json() == {"detail": "使用できない文字（NUL などの制御文字）が含まれています。"}
        listed = await client.get("/internal/suppressions", params={"q": "nul@example.jp"})
        assert listed.json()["total"] == 0  # nothing half-stored


POLICY = [
    ("userunknown", True, True, True),
    ("hostunknown", True, True, True),
    ("filtered", False, False, True),
    ("policyviolation", False, False, False),
    ("blocked", False, False, False),
    ("spamdetected", False, False, False),
    ("ratelimited", False, False, False),
]


async def test_suppression_policy_per_reason(
    make_settings: Callable[..., Any], notifier_db: asyncpg.Connection
) -> None:
    """Only non-existence suppresses for every sender; a recipient's filter suppresses for the sender's
    organisation (found from the campaign) at once; one policy block, spam verdict or rate limit suppresses
    nothing."""
    campaign = uuid.uuid4()
    async with running_app(create_app(make_settings(NotifierSettings))):
        await notifier_db.execute(
            "INSERT INTO campaigns (campaign_id, sender_email, subject) VALUES ($1, $2, $3)",
            campaign,
            "soumu@Corp.Example",
            "お知らせ",
        )
        for reason, hard, everyone, organisation in POLICY:
            address = f"{reason}@docomo.ne.jp"
            await record_failure(
                notifier_db, address=address, reason=reason, hard=hard, campaign_id=campaign, soft_limit=3
            )
            rows = await notifier_db.fetch("SELECT scope FROM suppressions WHERE active AND address = $1", address)
            scopes = {row["scope"] for row in rows}
            assert ("*" in scopes) is everyone, reason
            assert ("corp.example" in scopes) is (organisation and not everyone), reason
