"""Composer test fixtures: a stand-in list-validator on a real port serving the rows contract.

The real list-validator is being built in parallel; this tiny app serves exactly the two routes of
docs/internal-api.md that the composer reads (status and NDJSON rows), over real HTTP via uvicorn.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import pytest
import uvicorn
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse, Response, StreamingResponse

from isseimail_composer.app import create_app
from isseimail_composer.settings import ComposerSettings
from isseimail_testing.http import serving_peer
from isseimail_testing.process import free_port, running_app

from .deliverability_support import DkimPeer

PASS_ID = 41
USER_ID = "123456"
HEADERS = {"X-Isseimail-Pass-Id": str(PASS_ID), "X-Isseimail-User-Id": USER_ID}


@dataclass
class FakeLists:
    url: str
    lists: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    rows: dict[uuid.UUID, list[dict[str, Any]]] = field(default_factory=dict)
    row_requests: int = 0
    # (list_id, organisation) -> rows suppressed for that sender organisation; "down" = answer 503
    suppressed: dict[tuple[uuid.UUID, str], list[dict[str, Any]] | str] = field(default_factory=dict)

    def add(self, rows: list[dict[str, Any]], *, status: str = "valid", pass_id: int = PASS_ID) -> uuid.UUID:
        list_id = uuid.uuid4()
        self.lists[list_id] = {  # a ListSummary (isseimail_shared.contracts.list_validator)
            "list_id": str(list_id),
            "pass_id": pass_id,
            "status": status,
            "filename": "list.csv",
            "encoding": "utf-8",
            "encoding_label": "UTF-8",
            "has_header": True,
            "rows": len(rows),
            "checked": len(rows),
            "ok": len(rows),
            "invalid": 0,
            "unverified": 0,
            "domains": len({r["email"].rpartition("@")[2] for r in rows}),
            "domains_pending": 0,
            "created_at": "2026-12-07T09:00:00+09:00",
            "finished_at": None if status == "validating" else "2026-12-07T09:00:01+09:00",
            "bad_rows": [],
        }
        self.rows[list_id] = rows
        return list_id


def sample_rows(n: int) -> list[dict[str, Any]]:
    rows = [
        {
            "row": 1,
            "email": "hanako@example.com",
            "company": "株式会社テスト",
            "department1": "営業部",
            "department2": "第一課",
            "contact": "佐藤花子",
        },
        {
            "row": 2,
            "email": "all@example.net",
            "company": "サンプル商事",
            "department1": "",
            "department2": "",
            "contact": "各位",
        },
    ]
    for i in range(3, n + 1):
        rows.append(
            {
                "row": i,
                "email": f"user{i}@example.org",
                "company": f"会社{i}",
                "department1": "",
                "department2": "",
                "contact": f"担当{i}",
            }
        )
    return rows[:n]


def fake_list_app(state: FakeLists) -> FastAPI:
    app = FastAPI()

    def owned(list_id: uuid.UUID, pass_id: int) -> bool:
        """The contract: a list is answered only for the pass that uploaded it (404 for any other)."""
        return list_id in state.lists and state.lists[list_id]["pass_id"] == pass_id

    @app.get("/internal/lists/{list_id}")
    async def get_list(list_id: uuid.UUID, x_isseimail_pass_id: Annotated[int, Header()]) -> JSONResponse:
        if not owned(list_id, x_isseimail_pass_id):
            return JSONResponse({"detail": "送信先リストが見つかりません。"}, status_code=404)
        return JSONResponse(state.lists[list_id])

    @app.get("/internal/lists/{list_id}/suppressed")
    async def suppressed(
        list_id: uuid.UUID, organisation: str, x_isseimail_pass_id: Annotated[int, Header()], limit: int = 1000
    ) -> JSONResponse:
        if not owned(list_id, x_isseimail_pass_id):
            return JSONResponse({"detail": "送信先リストが見つかりません。"}, status_code=404)
        found = state.suppressed.get((list_id, organisation), [])
        if found == "down":
            return JSONResponse({"detail": "配信停止リストを確認できませんでした。"}, status_code=503)
        rows = list(found)
        answer = {"list_id": str(list_id), "organisation": organisation, "total": len(rows), "rows": rows[:limit]}
        return JSONResponse({**answer, "unverified": False})

    @app.get("/internal/lists/{list_id}/rows")
    async def rows(list_id: uuid.UUID, x_isseimail_pass_id: Annotated[int, Header()]) -> Response:
        if not owned(list_id, x_isseimail_pass_id):
            return JSONResponse({"detail": "送信先リストが見つかりません。"}, status_code=404)
        state.row_requests += 1
        data = state.rows.get(list_id, [])

        async def lines() -> AsyncIterator[bytes]:
            for start in range(0, len(data), 1000):
                chunk = data[start : start + 1000]
                yield "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk).encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app


@pytest.fixture
async def fake_lists() -> AsyncIterator[FakeLists]:
    """The list-validator's read contract on a real loopback port."""
    port = free_port()
    state = FakeLists(url=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(fake_list_app(state), port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(3000):  # up to 30 s on a loaded machine
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "stand-in list-validator did not start"
    yield state
    server.should_exit = True
    await asyncio.wait_for(task, 10)


@pytest.fixture
async def dkim_peer() -> AsyncIterator[DkimPeer]:
    """The dispatcher's DKIM key contract on a real loopback port (domain readiness reads it)."""
    async with serving_peer(DkimPeer()) as peer:
        yield peer


@pytest.fixture
def composer_settings(make_settings: Callable[..., Any], fake_lists: FakeLists) -> Callable[..., ComposerSettings]:
    def build(**overrides: Any) -> ComposerSettings:
        settings: ComposerSettings = make_settings(ComposerSettings, list_validator_url=fake_lists.url, **overrides)
        return settings

    return build


@pytest.fixture
async def composer(composer_settings: Callable[..., ComposerSettings]) -> AsyncIterator[Any]:
    """The composer app running against this test's database, vhost and stand-in list-validator."""
    async with running_app(create_app(composer_settings())) as client:
        yield client
