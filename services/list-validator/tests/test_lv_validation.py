"""Proof of existence end to end in the service: real DNS on loopback, real PostgreSQL and RabbitMQ."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from isseimail_list_validator.app import create_app
from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_testing.dns import DnsServer
from isseimail_testing.lists import acting, csv_bytes, upload, wait_done
from isseimail_testing.process import running_app


def _zones(dns: DnsServer) -> None:
    dns.zone("good.co.jp", mx=[(10, "mx1.good.co.jp"), (20, "mx2.good.co.jp")])
    dns.zone("aonly.jp", a=["192.0.2.1"])
    dns.zone("v6only.jp", aaaa=["2001:db8::1"])
    dns.zone("nullmx.jp", null_mx=True)
    dns.zone("broken.jp", servfail=True)
    dns.zone("slow.jp", mx=[(10, "mx.slow.jp")], delay=1.0)
    dns.zone("nomail.jp")
    dns.zone("docomo.ne.jp", mx=[(10, "mfsmax.docomo.ne.jp")])
    dns.zone("xn--r8jz45g.jp", mx=[(10, "mx.xn--r8jz45g.jp")])


ROWS = [
    ("taro@good.co.jp", "会社A", "", "", "山田太郎"),  # 2
    ("hanako@aonly.jp", "", "", "", "各位"),  # 3
    ("jiro@v6only.jp", "", "", "", "皆様"),  # 4
    ("x@nullmx.jp", "", "", "", "担当"),  # 5
    ("x@gone.jp", "", "", "", "担当"),  # 6  (never declared: NXDOMAIN)
    ("x@broken.jp", "", "", "", "担当"),  # 7
    ("x@slow.jp", "", "", "", "担当"),  # 8
    ("x@nomail.jp", "", "", "", "担当"),  # 9
    ("taro..yamada@docomo.ne.jp", "", "", "", "担当"),  # 10
    ("info@例え.jp", "", "", "", "担当"),  # 11
    ("TARO@GOOD.CO.JP", "", "", "", "山田"),  # 12 not a duplicate: local part differs in case
    ("taro@Good.Co.Jp", "", "", "", "山田"),  # 13 duplicate of row 2
    ("not-an-address", "", "", "", "担当"),  # 14
    ("ok@good.co.jp", "会社", "", "", ""),  # 15 contact missing
    ("<evil@good.co.jp>", "", "", "", "担当"),  # 16
]


async def test_every_domain_outcome_is_reported_per_row(lv: httpx.AsyncClient, dns_server: DnsServer) -> None:
    """Each row ends with the status and reason its domain earned; each domain is asked once (MX)."""
    _zones(dns_server)
    response = await upload(lv, csv_bytes(ROWS))
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert (accepted["encoding"], accepted["has_header"], accepted["rows"]) == ("cp932", True, 15)
    assert accepted["encoding_label"] == "Shift_JIS (CP932)"
    summary = await wait_done(lv, accepted["list_id"])
    assert summary["status"] == "invalid"
    assert (summary["rows"], summary["checked"]) == (15, 15)
    bad = {r["row"]: (r["status"], r["code"]) for r in summary["bad_rows"]}
    # The notifier is unreachable in this test: rows whose domain is fine are unverified, never silently ok.
    assert bad == {
        2: ("unverified", "suppression_unavailable"),
        3: ("unverified", "suppression_unavailable"),
        4: ("unverified", "suppression_unavailable"),
        5: ("invalid", "null_mx"),
        6: ("invalid", "domain_not_found"),
        7: ("unverified", "dns_unverified"),
        8: ("unverified", "dns_unverified"),
        9: ("invalid", "no_mail_host"),
        10: ("unverified", "suppression_unavailable"),
        11: ("unverified", "suppression_unavailable"),
        12: ("unverified", "suppression_unavailable"),
        13: ("invalid", "duplicate"),
        14: ("invalid", "syntax"),
        15: ("invalid", "missing_contact"),
        16: ("invalid", "bad_chars"),
    }
    messages = {r["row"]: r["message"] for r in summary["bad_rows"]}
    assert messages[13] == "同じメールアドレスが2行目にあります。"
    assert messages[6] == "ドメインが存在しません。"
    q = dns_server.queries
    assert q[("good.co.jp", "MX")] == 1  # two rows (plus a duplicate), one query
    assert q[("docomo.ne.jp", "MX")] == 1
    assert q[("xn--r8jz45g.jp", "MX")] == 1  # the IDN domain is asked as A-labels
    assert q[("broken.jp", "MX")] == 2  # SERVFAIL is retried (dns_attempts=2), then "could not be verified"
    assert q[("aonly.jp", "A")] == 1


async def test_unverified_policy_allow_lets_the_list_through(
    lv_settings: Callable[..., ListValidatorSettings], dns_server: DnsServer
) -> None:
    """With the 'allow' policy, unverified rows (DNS timeout, suppression list down) do not block the list."""
    dns_server.zone("good.co.jp", mx=[(10, "mx.good.co.jp")])
    dns_server.zone("broken.jp", servfail=True)
    async with running_app(create_app(lv_settings(unverified_policy="allow"))) as client:
        rows = [("a@good.co.jp", "", "", "", "各位"), ("b@broken.jp", "", "", "", "各位")]
        list_id = (await upload(client, csv_bytes(rows, header=False))).json()["list_id"]
        summary = await wait_done(client, list_id)
        assert (summary["status"], summary["ok"], summary["unverified"]) == ("valid", 0, 2)
        lines = (await client.get(f"/internal/lists/{list_id}/rows", headers=acting())).text.splitlines()
        assert [line.count('"row"') for line in lines] == [1, 1]


async def test_whole_file_refusals_store_nothing(
    lv_settings: Callable[..., ListValidatorSettings], database_url: str
) -> None:
    """Empty, binary, header-only, 1,000-column, too many rows, too large: 4xx in Japanese, no list stored."""
    import asyncpg

    async with running_app(create_app(lv_settings(list_max_bytes=64 * 1024, list_max_rows=3))) as client:
        cases: list[tuple[bytes, int]] = [
            (b"", 422),
            (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10, 422),
            ("メールアドレス,会社名,部署名1,部署名2,ご担当者名\r\n".encode("cp932"), 422),
            (b"a@example.jp" + b",x" * 1000, 422),
            (b"a@example.jp,,,,x\n" * 4, 422),
            (b"a@example.jp,,,,x\n" * 5000, 413),
        ]
        for data, status in cases:
            response = await upload(client, data)
            assert response.status_code == status, (data[:20], response.text)
            detail = response.json()["detail"]
            assert isinstance(detail, str)
            assert any("\u3040" <= ch <= "\u30ff" for ch in detail)

        async def endless() -> Any:
            for _ in range(10_000):  # 640 MB if it were read whole
                yield b"a@example.jp,,,,x\n" * 3640

        response = await client.post("/internal/lists", content=endless(), headers={"X-Isseimail-Pass-Id": "7"})
        assert response.status_code == 413
        missing = await client.post("/internal/lists", content=b"a@example.jp,,,,x")
        assert missing.status_code == 422
        assert missing.json()["errors"]
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM list_validator.lists") == 0
    finally:
        await conn.close()


async def test_a_list_belongs_to_its_pass(lv: httpx.AsyncClient, dns_server: DnsServer) -> None:
    """Another pass gets 404 for the list, its errors and its rows; rows of an invalid list are refused."""
    rows = [("a@gone.jp", "", "", "", "各位")]
    list_id = (await upload(lv, csv_bytes(rows), pass_id=7)).json()["list_id"]
    summary = await wait_done(lv, list_id)
    assert summary["status"] == "invalid"
    for path in ("", "/errors", "/rows"):
        other = await lv.get(f"/internal/lists/{list_id}{path}", headers={"X-Isseimail-Pass-Id": "8"})
        assert other.status_code == 404
        assert other.json()["detail"] == "送信先リストが見つかりません。"
    assert (await lv.get(f"/internal/lists/{list_id}/rows", headers={"X-Isseimail-Pass-Id": "7"})).status_code == 409
    errors = await lv.get(f"/internal/lists/{list_id}/errors", headers={"X-Isseimail-Pass-Id": "7"})
    assert errors.headers["content-type"].startswith("application/x-ndjson")
    assert '"code": "domain_not_found"' in errors.text
    assert (await lv.get("/internal/lists/not-a-uuid")).status_code == 422
    assert (await lv.get("/internal/lists/00000000-0000-0000-0000-000000000000", headers=acting())).status_code == 404
    for path in ("", "/rows", "/errors"):  # a read naming no pass is nobody's: refused, never the rows
        assert (await lv.get(f"/internal/lists/{list_id}{path}")).status_code == 422
    # the gateway reads the limits from here, where the settings live
    assert (await lv.get("/internal/lists/limits")).json() == {"max_bytes": 10 * 1024 * 1024, "max_rows": 50_000}
