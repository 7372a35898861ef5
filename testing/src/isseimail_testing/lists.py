"""Helpers for tests and the benchmark: talk to the list-validator's internal API like the gateway does."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx


def acting(pass_id: int = 7) -> dict[str, str]:
    """The header naming the pass a list read acts for (the list-validator answers only its own lists)."""
    return {"X-Isseimail-Pass-Id": str(pass_id)}


async def upload(
    client: httpx.AsyncClient, data: bytes, pass_id: int = 7, filename: str = "list.csv"
) -> httpx.Response:
    """POST the CSV as the gateway does (raw body, the pass in headers)."""
    return await client.post(
        "/internal/lists",
        content=data,
        headers={
            "X-Isseimail-Pass-Id": str(pass_id),
            "X-Isseimail-User-Id": "123456",
            "X-Isseimail-Filename": filename,
        },
    )


async def wait_done(client: httpx.AsyncClient, list_id: str, timeout: float = 30.0, pass_id: int = 7) -> dict[str, Any]:
    """Poll the list (as the pass that uploaded it) until every domain is answered; returns the final summary."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/internal/lists/{list_id}", headers=acting(pass_id))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] != "validating":
            return body
        if time.monotonic() > deadline:
            raise TimeoutError(f"list still validating: {body}")
        await asyncio.sleep(0.05)


def csv_bytes(rows: list[tuple[str, ...]], encoding: str = "cp932", header: bool = True) -> bytes:
    """A CSV as Excel writes it (CP932, CRLF), with the manual's header row unless told otherwise."""
    lines = ["メールアドレス,会社名,部署名1,部署名2,ご担当者名"] if header else []
    lines += [",".join(r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)
