"""What the cross-service flow tests share: the pass day and clock, the administrator, a list-validator that
accepts unverifiable addresses, and uploading a list through the gateway until it is valid."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_testing.dns import DnsServer
from isseimail_testing.lists import csv_bytes
from isseimail_testing.process import free_port

DAY = dt.date(2026, 12, 3)
NOW = dt.datetime(2026, 12, 3, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
ADMIN = ("admin@example.jp", "admin-password-long-enough")


def list_validator_settings(make_settings: Callable[..., Any], dns_server: DnsServer) -> ListValidatorSettings:
    """DNS on the test server (short timeout), results flushed at once, unverifiable domains allowed, and no
    notifier (nothing listens at its URL)."""
    settings: ListValidatorSettings = make_settings(
        ListValidatorSettings,
        dns_nameservers=dns_server.nameserver,
        dns_timeout_seconds=0.3,
        result_flush_seconds=0.02,
        unverified_policy="allow",
        notifier_url=f"http://127.0.0.1:{free_port()}",
    )
    return settings


async def upload_valid_list(client: httpx.AsyncClient, rows: list[tuple[str, ...]]) -> str:
    """Upload the rows as a CSV through the gateway and wait until the list is valid; returns its id."""
    r = await client.post("/api/v1/lists", files={"file": ("宛先.csv", csv_bytes(rows), "text/csv")})
    assert r.status_code == 202, r.text
    list_id: str = r.json()["list_id"]
    for _ in range(1200):  # up to a minute on a loaded machine
        body = (await client.get(f"/api/v1/lists/{list_id}")).json()
        if body["status"] != "validating":
            assert body["status"] == "valid", body
            return list_id
        await asyncio.sleep(0.05)
    raise TimeoutError(list_id)
