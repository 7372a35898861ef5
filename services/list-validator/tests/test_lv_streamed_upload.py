"""An upload stored a batch at a time: duplicates and suppressions across batches, refusals half-way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI

from isseimail_list_validator import organisation_check
from isseimail_list_validator import upload as upload_module
from isseimail_list_validator.app import create_app
from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_testing.dns import DnsServer
from isseimail_testing.http import serving
from isseimail_testing.lists import acting, csv_bytes, upload, wait_done
from isseimail_testing.process import running_app


def _notifier(asked: list[list[str]], suppressed: set[str]) -> FastAPI:
    """A stand-in for the notifier's check route (docs/internal-api.md)."""
    app = FastAPI()

    @app.post("/internal/suppressions/check")
    async def check(body: dict[str, Any]) -> dict[str, Any]:
        asked.append(body["addresses"])
        return {"suppressed": {a: "userunknown" for a in body["addresses"] if a.lower() in suppressed}}

    return app


async def _counts(database_url: str) -> tuple[int, int, int]:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM list_validator.lists) AS lists,"
            " (SELECT count(*) FROM list_validator.list_rows) AS rows,"
            " (SELECT count(*) FROM list_validator.list_domains) AS domains"
        )
        assert row is not None
        return row["lists"], row["rows"], row["domains"]
    finally:
        await conn.close()


async def test_duplicates_and_suppressions_are_found_across_batches(
    lv_settings: Callable[..., ListValidatorSettings], dns_server: DnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of 4 rows: a duplicate three batches after its first row is reported with that row, a
    suppressed address and its later duplicate keep their reasons, each batch asks the suppression list."""
    monkeypatch.setattr(upload_module, "BATCH_ROWS", 4)
    for domain in ("a.jp", "b.jp", "c.jp"):
        dns_server.zone(domain, mx=[(10, f"mx.{domain}")])
    rows = [(f"u{n}@{'abc'[n % 3]}.jp", "", "", "", "各位") for n in range(1, 16)]
    rows[13] = ("U2@B.jp", "", "", "", "各位")  # row 15 (after the header): not a duplicate (local part case)
    rows[14] = ("u2@C.JP", "", "", "", "各位")  # row 16: a duplicate of row 3 (u2@c.jp), two batches later
    rows.append(("u4@B.JP", "", "", "", "各位"))  # row 17: a duplicate of row 5, which is suppressed
    asked: list[list[str]] = []
    async with serving(_notifier(asked, {"u4@b.jp"})) as notifier_url:
        app = create_app(lv_settings(notifier_url=notifier_url))
        async with running_app(app) as client:
            response = await upload(client, csv_bytes(rows))
            assert response.status_code == 202, response.text
            accepted = response.json()
            assert (accepted["rows"], accepted["domains"], accepted["has_header"]) == (16, 3, True)
            summary = await wait_done(client, accepted["list_id"])
            errors = (await client.get(f"/internal/lists/{accepted['list_id']}/errors", headers=acting())).text
    bad = {r["row"]: (r["code"], r["message"]) for r in summary["bad_rows"]}
    assert bad == {
        5: ("suppressed", "以前の送信で配信できなかったため、配信停止リストに登録されているアドレスです。"),
        16: ("duplicate", "同じメールアドレスが3行目にあります。"),
        17: ("duplicate", "同じメールアドレスが5行目にあります。"),
    }
    assert (summary["rows"], summary["ok"], summary["invalid"]) == (16, 13, 3)
    assert errors.count("\n") == 3
    assert len(asked) == 4  # one request per batch, never the whole list
    assert all(len(a) <= 4 for a in asked)


async def test_an_unreachable_suppression_list_is_asked_once(
    lv_settings: Callable[..., ListValidatorSettings], dns_server: DnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The notifier down: the first batch finds out (one timeout), every later row is unverifiable at once."""
    monkeypatch.setattr(upload_module, "BATCH_ROWS", 3)
    dns_server.zone("a.jp", mx=[(10, "mx.a.jp")])
    rows = [(f"u{n}@a.jp", "", "", "", "各位") for n in range(10)]
    async with running_app(create_app(lv_settings(unverified_policy="allow"))) as client:
        accepted = (await upload(client, csv_bytes(rows, header=False))).json()
        summary = await wait_done(client, accepted["list_id"])
    assert (summary["status"], summary["unverified"]) == ("valid", 10)
    assert {r["code"] for r in summary["bad_rows"]} == {"suppression_unavailable"}


@pytest.mark.parametrize(
    ("tail", "code", "message"),
    [
        (b"u99@a.jp,,,,x\r\n" * 2, "too_many_rows", "送信先が多すぎます（最大20件）。"),
        (b'u99@a.jp,"' + b"x\r\n" * 600_000, "malformed", "21行目付近のCSVの形式が正しくありません"),
        (b"u99@a.jp" + b",x" * 60 + b"\r\n", "too_many_columns", "21行目の列が多すぎます（最大50列）。"),
    ],
)
async def test_a_file_refused_after_batches_were_stored_leaves_nothing(
    lv_settings: Callable[..., ListValidatorSettings],
    dns_server: DnsServer,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tail: bytes,
    code: str,
    message: str,
) -> None:
    """Too many rows, an unclosed quote, too many columns, found after 20 rows in 5 batches were COPYed and
    their domains published: a 422 in Japanese and no list, row or domain left."""
    monkeypatch.setattr(upload_module, "BATCH_ROWS", 4)
    dns_server.zone("a.jp", mx=[(10, "mx.a.jp")])
    data = b"".join(b"u%d@a.jp,,,,x\r\n" % n for n in range(20)) + tail
    settings = lv_settings(list_max_rows=20, list_max_bytes=16 * 1024 * 1024)
    async with running_app(create_app(settings)) as client:
        response = await upload(client, data)
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["code"], body["detail"][: len(message)]) == (code, message)
    assert await _counts(database_url) == (0, 0, 0)


async def test_the_ready_check_asks_a_chunk_at_a_time_and_keeps_the_first_rows(
    lv_settings: Callable[..., ListValidatorSettings], dns_server: DnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`/suppressed` reads the list in chunks (here 3 rows): every answered row counts in `total`, the first
    `limit` come back in row order."""
    monkeypatch.setattr(organisation_check, "CHUNK", 3)
    dns_server.zone("a.jp", mx=[(10, "mx.a.jp")])
    rows = [(f"u{n}@a.jp", "", "", "", "各位") for n in range(10)]
    asked: list[list[str]] = []
    suppressed: set[str] = set()
    async with serving(_notifier(asked, suppressed)) as notifier_url:
        app = create_app(lv_settings(notifier_url=notifier_url))
        async with running_app(app) as client:
            list_id = (await upload(client, csv_bytes(rows, header=False))).json()["list_id"]
            assert (await wait_done(client, list_id))["status"] == "valid"
            suppressed.update({"u1@a.jp", "u5@a.jp", "u8@a.jp", "u9@a.jp"})  # after the upload
            asked.clear()
            r = await client.get(
                f"/internal/lists/{list_id}/suppressed",
                params={"organisation": "corp.example.jp", "limit": 2},
                headers=acting(),
            )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["total"], [row["row"] for row in body["rows"]]) == (4, [2, 6])
    assert [len(a) for a in asked] == [3, 3, 3, 1]
