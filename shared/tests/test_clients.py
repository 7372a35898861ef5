"""The one internal client base: the service token on every call, GET-only retries, answers read as models."""

from __future__ import annotations

import socket
import uuid

import httpx
import pytest
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import SecretStr

from isseimail_shared.clients.base import Unavailable
from isseimail_shared.clients.composer import ComposerClient
from isseimail_shared.clients.list_validator import ListsClient
from isseimail_shared.contracts.composer import SnapshotCampaign, SnapshotHeader
from isseimail_shared.contracts.list_validator import ListLimits
from isseimail_shared.mailmerge import Recipient, render_campaign

TOKENS = [SecretStr("first-token"), SecretStr("old-token")]


class Counting:
    def __init__(self) -> None:
        self.calls: list[str] = []


def flaky_app(seen: Counting, failures: int, status: int = 502) -> FastAPI:
    """Answers `status` for the first `failures` calls of each route, then the contract's answer."""
    app = FastAPI()

    @app.api_route("/internal/lists/limits", methods=["GET", "POST"])
    async def limits(x_isseimail_internal_token: str = Header("")) -> JSONResponse:
        seen.calls.append(x_isseimail_internal_token)
        if len(seen.calls) <= failures:
            return JSONResponse({"detail": "upstream"}, status_code=status)
        return JSONResponse({"max_bytes": 10, "max_rows": 20})

    return app


def client_for(app: FastAPI) -> ListsClient:
    return ListsClient("http://lists", TOKENS, timeout=5.0, backoff=0.0, transport=httpx.ASGITransport(app=app))


async def test_every_call_carries_the_first_token_and_reads_the_model() -> None:
    """The current (first) token is sent; the answer is the contract model."""
    seen = Counting()
    async with client_for(flaky_app(seen, 0)) as client:
        assert await client.limits() == ListLimits(max_bytes=10, max_rows=20)
    assert seen.calls == ["first-token"]


async def test_a_get_is_retried_after_a_gateway_error() -> None:
    """502/504 (the service never answered) are retried for a GET, up to the retry budget."""
    seen = Counting()
    async with client_for(flaky_app(seen, 2)) as client:
        assert (await client.limits()).max_rows == 20
    assert len(seen.calls) == 3
    seen = Counting()
    async with client_for(flaky_app(seen, 3)) as client:
        with pytest.raises(Unavailable) as refused:
            await client.limits()
    assert refused.value.status == 502
    assert len(seen.calls) == 3


async def test_a_503_and_a_post_are_never_retried() -> None:
    """A service's own 503 is its answer; a POST is not idempotent: one call each."""
    seen = Counting()
    async with client_for(flaky_app(seen, 1, status=503)) as client:
        with pytest.raises(Unavailable):
            await client.limits()
    assert len(seen.calls) == 1
    seen = Counting()
    async with client_for(flaky_app(seen, 1)) as client:
        response = await client.request("POST", "/internal/lists/limits")
    assert response.status_code == 502
    assert len(seen.calls) == 1


async def test_a_refused_connection_is_unavailable_after_the_retries() -> None:
    """Nothing listening: the typed call raises Unavailable (callers map it to their 503 or their fallback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: the connection is refused
    async with ListsClient(f"http://127.0.0.1:{port}", TOKENS, timeout=2.0, backoff=0.0) as client:
        with pytest.raises(Unavailable, match="ConnectError"):
            await client.limits()


async def test_an_answer_that_is_not_the_contract_is_unavailable() -> None:
    """A body missing a field of the model is refused, never passed on half-read."""
    app = FastAPI()

    @app.get("/internal/lists/limits")
    async def limits() -> JSONResponse:
        return JSONResponse({"max_bytes": 10})

    async with client_for(app) as client:
        with pytest.raises(Unavailable, match="ListLimits"):
            await client.limits()


def snapshot_app(header: SnapshotHeader, rows: list[Recipient]) -> FastAPI:
    app = FastAPI()

    @app.get("/internal/campaigns/{campaign_id}/snapshot")
    async def snapshot(campaign_id: uuid.UUID) -> StreamingResponse:
        body = "\n".join([header.model_dump_json(), *(r.model_dump_json() for r in rows)]) + "\n"
        return StreamingResponse(iter([body.encode()]), media_type="application/x-ndjson")

    return app


async def test_the_snapshot_header_and_rows_round_trip_through_one_model() -> None:
    """What the composer writes as SnapshotHeader is what the dispatcher's client reads, rows after it."""
    campaign_id = uuid.uuid4()
    template = render_campaign("s@example.jp", "送信者", "件名", "本文")
    facts = SnapshotCampaign(campaign_id=campaign_id, sender_email="s@example.jp", subject="件名", recipient_count=2)
    header = SnapshotHeader(campaign=facts, template=template)
    rows = [Recipient(row=1, email="a@example.jp", contact="各位"), Recipient(row=0, email="s@example.jp")]
    transport = httpx.ASGITransport(app=snapshot_app(header, rows))
    async with ComposerClient("http://composer", TOKENS, timeout=5.0, transport=transport) as client:
        async with client.snapshot(campaign_id) as snapshot:
            assert snapshot.header == header
            assert [r async for r in snapshot.recipients] == rows
        with pytest.raises(Unavailable, match="another campaign"):
            async with client.snapshot(uuid.uuid4()):
                pass
