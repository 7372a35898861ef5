"""The gateway's list API with the real pass-service (login) and list-validator behind it, real DNS,
PostgreSQL and RabbitMQ: upload as multipart, status, errors.csv, ownership, limits while streaming."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from isseimail_gateway.api.lists import _csv_line, neutralise
from isseimail_gateway.app import create_app as gateway_app
from isseimail_gateway.settings import GatewaySettings
from isseimail_list_validator.app import create_app as lv_app
from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_notifier.app import create_app as notifier_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_pass.app import create_app as pass_app
from isseimail_pass.settings import PassSettings
from isseimail_shared.errors import ROUTE_NOT_FOUND
from isseimail_testing.dns import DnsServer
from isseimail_testing.fixtures import INTERNAL_TOKEN
from isseimail_testing.http import serving_service
from isseimail_testing.lists import csv_bytes
from isseimail_testing.passes import gateway_login, issue_pass
from isseimail_testing.process import free_port, running_app

DAY = dt.date(2026, 12, 3)
NOW = dt.datetime(2026, 12, 3, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
ADMIN = ("admin@example.jp", "admin-password-long-enough")


@dataclass
class Stack:
    gateway: Callable[[], Any]
    pass_url: str
    database_url: str


@pytest.fixture
async def stack(make_settings: Callable[..., Any], dns_server: DnsServer, database_url: str) -> AsyncIterator[Stack]:
    """pass-service, notifier and list-validator on real ports, a gateway in front (64 KB upload limit)."""
    pass_settings = make_settings(PassSettings, admin_email=ADMIN[0], admin_password=ADMIN[1])
    lv_settings = make_settings(
        ListValidatorSettings,
        dns_nameservers=dns_server.nameserver,
        dns_timeout_seconds=0.3,
        result_flush_seconds=0.02,
        list_max_bytes=64 * 1024,
    )
    notifier_settings = make_settings(NotifierSettings, bounce_listen_port=free_port())
    async with (
        serving_service(pass_app(pass_settings, clock=lambda: NOW)) as pass_url,
        serving_service(notifier_app(notifier_settings)) as notifier_url,
        serving_service(lv_app(lv_settings.model_copy(update={"notifier_url": notifier_url}))) as lv_url,
    ):
        dead = f"http://127.0.0.1:{free_port()}"

        def gateway() -> Any:
            settings = GatewaySettings(
                internal_tokens=INTERNAL_TOKEN,
                session_secret="lists-test-secret",
                pass_url=pass_url,
                list_validator_url=lv_url,
                composer_url=dead,
                dispatcher_url=dead,
                notifier_url=dead,
            )
            return running_app(gateway_app(settings))

        yield Stack(gateway, pass_url, database_url)


async def login(stack: Stack, client: httpx.AsyncClient, email: str) -> int:
    """Apply, approve and log in through the gateway; returns the pass id (the client keeps the cookie)."""
    issued = await issue_pass(stack.pass_url, stack.database_url, admin=ADMIN, applicant_email=email, use_date=DAY)
    await gateway_login(client, issued)
    return issued.pass_id


async def wait_checked(client: httpx.AsyncClient, list_id: str) -> dict[str, Any]:
    for _ in range(400):
        r = await client.get(f"/api/v1/lists/{list_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["status"] != "validating":
            return body
        await asyncio.sleep(0.05)
    raise TimeoutError(list_id)


async def test_upload_status_errors_csv_and_ownership(stack: Stack, dns_server: DnsServer) -> None:
    """A pass uploads, sees its bad rows and downloads them as Excel-safe CSV; another pass gets 404."""
    dns_server.zone("good.co.jp", mx=[(10, "mx.good.co.jp")])
    rows = [
        ("taro@good.co.jp", "会社", "", "", "山田"),
        ("-1+2@gone.jp", "", "", "", "各位"),  # valid syntax, domain does not exist; starts with "-"
        ("=HYPERLINK(x)@good.co.jp", "", "", "", "各位"),  # invalid syntax; would be a formula
        ("@good.co.jp", "", "", "", "各位"),
    ]
    async with stack.gateway() as owner, stack.gateway() as other:
        assert (await owner.post("/api/v1/lists", files={"file": ("a.csv", b"x@y.jp,,,,z")})).status_code == 401
        await login(stack, owner, "owner@example.jp")
        await login(stack, other, "other@example.jp")
        r = await owner.post("/api/v1/lists", files={"file": ("宛先.csv", csv_bytes(rows), "text/csv")})
        assert r.status_code == 202, r.text
        list_id = r.json()["list_id"]
        body = await wait_checked(owner, list_id)
        assert (body["status"], body["rows"], body["ok"], body["invalid"]) == ("invalid", 4, 1, 3)
        assert body["filename"] == "宛先.csv"
        assert [(b["row"], b["code"]) for b in body["bad_rows"]] == [
            (3, "domain_not_found"),
            (4, "syntax"),
            (5, "syntax"),
        ]
        assert "pass_id" not in body  # internal detail, not part of the public answer

        download = await owner.get(f"/api/v1/lists/{list_id}/errors.csv")
        assert download.status_code == 200
        assert download.headers["content-type"].startswith("text/csv")
        assert download.content.startswith(b"\xef\xbb\xbf")
        table = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
        assert table[0] == ["行", "メールアドレス", "状態", "理由コード", "理由"]
        assert [r[:4] for r in table[1:]] == [
            ["3", "'-1+2@gone.jp", "送信不可", "domain_not_found"],
            ["4", "'=HYPERLINK(x)@good.co.jp", "送信不可", "syntax"],
            ["5", "'@good.co.jp", "送信不可", "syntax"],
        ]
        assert download.content.count(b"\r\n") == 4

        for path in (f"/api/v1/lists/{list_id}", f"/api/v1/lists/{list_id}/errors.csv"):
            foreign = await other.get(path)
            assert foreign.status_code == 404
            assert foreign.json()["detail"] == "送信先リストが見つかりません。"
        # malformed ids (and ids that would walk the upstream path) are "not found", never 503 or 500
        for bad in ("not-a-list", "..%2F..%2Fhealthz", "%0d%0a", "%00", "a" * 300, "1' OR '1'='1", "%25", "123"):
            for suffix in ("", "/errors.csv"):
                refused = await owner.get(f"/api/v1/lists/{bad}{suffix}")
                assert refused.status_code == 404, (bad, suffix, refused.status_code, refused.text)
                assert refused.json()["detail"] in ("送信先リストが見つかりません。", ROUTE_NOT_FOUND), bad


async def test_upload_refusals_are_japanese_and_a_huge_stream_is_cut(stack: Stack) -> None:
    """No file field, not multipart, an unreadable CSV, and a 50 MB stream past the 64 KB limit: clear 4xx."""
    async with stack.gateway() as client:
        schema = (await client.get("/api/v1/openapi.json")).json()
        body = schema["paths"]["/api/v1/lists"]["post"]["requestBody"]["content"]["multipart/form-data"]
        assert body["schema"]["required"] == ["file"]
        await login(stack, client, "owner@example.jp")
        no_file = await client.post("/api/v1/lists", files={"other": ("a.csv", b"x")})
        assert no_file.status_code == 422
        assert no_file.json()["errors"] == {"file": "送信先CSVファイルを選択してください。"}
        plain = await client.post("/api/v1/lists", content=b"x@y.jp", headers={"content-type": "text/csv"})
        assert plain.status_code == 422
        empty = await client.post("/api/v1/lists", files={"file": ("a.csv", b"")})
        assert (empty.status_code, empty.json()["detail"]) == (422, "ファイルが空です。")
        binary = await client.post("/api/v1/lists", files={"file": ("a.xlsx", b"PK\x03\x04" + bytes(500))})
        assert binary.status_code == 422
        assert "CSV形式で保存" in binary.json()["detail"]

        boundary = "xyzzy"

        async def huge() -> AsyncIterator[bytes]:
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
                "Content-Type: text/csv\r\n\r\n"
            ).encode()
            for _ in range(800):  # 50 MB if it were read whole
                yield b"a@example.jp,,,,x\r\n" * 3500
            yield f"\r\n--{boundary}--\r\n".encode()

        big = await client.post(
            "/api/v1/lists", content=huge(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
        )
        assert big.status_code == 413
        assert big.json()["detail"] == "ファイルが大きすぎます（最大0.0625MB）。"
    conn = await asyncpg.connect(stack.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM list_validator.lists") == 0
    finally:
        await conn.close()


@given(st.text(max_size=50))
def test_no_cell_of_errors_csv_can_start_a_formula(cell: str) -> None:
    """Whatever a CSV cell held, the errors.csv cell never starts with = + - @ tab or CR, and reads back."""
    safe = neutralise(cell)
    assert safe[:1] not in ("=", "+", "-", "@", "\t", "\r")
    assert safe in (cell, "'" + cell)
    assert next(csv.reader(io.StringIO(_csv_line([cell]), newline=""))) == [safe]
