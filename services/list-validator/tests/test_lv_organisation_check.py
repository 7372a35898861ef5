"""The per-organisation check the composer's ready-check asks: rows refused with the reason, by CSV row."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from isseimail_list_validator import lists
from isseimail_list_validator.app import create_app
from isseimail_list_validator.rows import PreparedRow
from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_testing.http import serving
from isseimail_testing.lists import acting
from isseimail_testing.process import running_app


def _row(n: int, email: str) -> PreparedRow:
    return PreparedRow(n, email.upper(), email, email.rpartition("@")[2], "", "", "", "各位", "pending", "ok")


def _notifier(asked: list[dict[str, Any]]) -> FastAPI:
    """A stand-in for the notifier's check route (docs/internal-api.md), answering for corp.example.jp."""
    app = FastAPI()
    answers = {"corp.example.jp": {"u2@a.jp": "unsubscribed", "u3@a.jp": "complained"}}

    @app.post("/internal/suppressions/check")
    async def check(body: dict[str, Any]) -> dict[str, Any]:
        asked.append(body)
        known = {"u4@a.jp": "userunknown", **answers.get(body.get("organisation") or "", {})}
        return {"suppressed": {a: known[a.lower()] for a in body["addresses"] if a.lower() in known}}

    return app


async def _stored_list(pool: Any) -> uuid.UUID:
    new = lists.NewList(uuid.uuid4(), 7, "123456", "x.csv", "utf-8", False, "block")
    await lists.open_list(pool, new, 5, ["a.jp"])
    await lists.store_rows(pool, new.list_id, [_row(n, f"u{n}@a.jp") for n in range(1, 6)])
    await lists.record_outcomes(pool, [lists.DomainOutcome(new.list_id, "a.jp", "ok")])
    return new.list_id


async def test_rows_suppressed_for_the_organisation_are_named_with_their_reason(
    lv_settings: Callable[..., ListValidatorSettings],
) -> None:
    """Unsubscribed and complained rows come back for their organisation (and bounces for all), in Japanese."""
    asked: list[dict[str, Any]] = []
    async with serving(_notifier(asked)) as notifier_url:
        app = create_app(lv_settings(notifier_url=notifier_url))
        async with running_app(app) as client:
            list_id = await _stored_list(app.state.runtime.pool)
            mine = await client.get(
                f"/internal/lists/{list_id}/suppressed",
                params={"organisation": "Corp.Example.JP"},
                headers={"X-Isseimail-Pass-Id": "7"},
            )
            other = await client.get(
                f"/internal/lists/{list_id}/suppressed", params={"organisation": "other.jp"}, headers=acting(7)
            )
            foreign_pass = await client.get(
                f"/internal/lists/{list_id}/suppressed",
                params={"organisation": "corp.example.jp"},
                headers={"X-Isseimail-Pass-Id": "8"},
            )
            bad = await client.get(
                f"/internal/lists/{list_id}/suppressed", params={"organisation": "x' OR 1=1"}, headers=acting(7)
            )
            missing = await client.get(f"/internal/lists/{list_id}/suppressed", headers=acting(7))
            anonymous = await client.get(f"/internal/lists/{list_id}/suppressed", params={"organisation": "a.jp"})
    assert mine.status_code == 200
    body = mine.json()
    assert (body["organisation"], body["total"]) == ("corp.example.jp", 3)
    assert [(r["row"], r["address"], r["code"]) for r in body["rows"]] == [
        (2, "U2@A.JP", "unsubscribed"),
        (3, "U3@A.JP", "complained"),
        (4, "U4@A.JP", "suppressed"),
    ]
    assert body["rows"][0]["message"].startswith("配信停止の申し出があったアドレスです")
    assert body["rows"][1]["message"].startswith("迷惑メールの報告があったアドレスです")
    assert asked[0]["organisation"] == "corp.example.jp"
    assert [(r["row"], r["code"]) for r in other.json()["rows"]] == [(4, "suppressed")]
    assert foreign_pass.status_code == 404
    assert bad.status_code == 422
    assert missing.status_code == 422
    assert anonymous.status_code == 422  # no acting pass: nobody's list


async def test_unreachable_notifier_is_a_japanese_503(lv_settings: Callable[..., ListValidatorSettings]) -> None:
    """When the suppression list cannot be read the answer says so; it never claims the rows are fine."""
    app = create_app(lv_settings())
    async with running_app(app) as client:
        list_id = await _stored_list(app.state.runtime.pool)
        r = await client.get(
            f"/internal/lists/{list_id}/suppressed", params={"organisation": "corp.example.jp"}, headers=acting(7)
        )
        unknown = await client.get(
            f"/internal/lists/{uuid.uuid4()}/suppressed", params={"organisation": "a.jp"}, headers=acting(7)
        )
    assert r.status_code == 503
    assert "配信停止リスト" in r.json()["detail"]
    assert unknown.status_code == 404


async def test_allow_policy_lets_an_unreadable_suppression_list_through(
    lv_settings: Callable[..., ListValidatorSettings],
) -> None:
    """Under ISSEIMAIL_UNVERIFIED_POLICY=allow the list's own policy holds here too: no rows, marked unverified."""
    app = create_app(lv_settings())
    async with running_app(app) as client:
        pool = app.state.runtime.pool
        new = lists.NewList(uuid.uuid4(), 7, "123456", "x.csv", "utf-8", False, "allow")
        await lists.open_list(pool, new, 1, ["a.jp"])
        await lists.store_rows(pool, new.list_id, [_row(1, "u1@a.jp")])
        r = await client.get(
            f"/internal/lists/{new.list_id}/suppressed", params={"organisation": "corp.example.jp"}, headers=acting(7)
        )
    assert r.status_code == 200
    assert (r.json()["total"], r.json()["unverified"]) == (0, True)
