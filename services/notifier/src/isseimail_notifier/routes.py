"""Internal HTTP routes (docs/internal-api.md): suppression check for the list validator; the administrator's
console through the gateway (suppression list search, add, remove; a campaign's failures)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from isseimail_notifier import failures, reasons, suppressions
from isseimail_shared.app import Db
from isseimail_shared.errors import ApiError

MAX_CHECK = 50_000

router = APIRouter(prefix="/internal/suppressions", tags=["suppressions"])
campaigns_router = APIRouter(prefix="/internal/campaigns", tags=["failures"])

Address = Annotated[str, Field(min_length=1, max_length=320)]
Text = Annotated[str, Field(min_length=1, max_length=500)]


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    addresses: list[Address] = Field(max_length=MAX_CHECK)
    # The sender organisation (From domain) the list is for: its unsubscribes and complaints count too.
    organisation: str | None = Field(default=None, min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.\-]+$")


class CheckResponse(BaseModel):
    suppressed: dict[str, str]


class Suppression(BaseModel):
    address: str
    scope: str  # "*" (every sender: a bounce) or the sender organisation
    kind: str  # bounced, unsubscribed, complained
    reason: str
    hard: bool
    bounces: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    source_campaign: uuid.UUID | None


class SuppressionPage(BaseModel):
    total: int
    items: list[Suppression]


class DeleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text
    actor: Text
    scope: Annotated[str | None, Field(max_length=253)] = None  # only this scope; default every scope


class AddRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
    reason: Text
    actor: Text
    # "*" (every sender, default) or one sender organisation (a From domain)
    scope: Annotated[str, Field(max_length=253, pattern=r"^(\*|[A-Za-z0-9.\-]+)$")] = suppressions.GLOBAL


class Failure(BaseModel):
    recipient: str
    row_number: int | None
    source: str  # smtp (refused while sending) or bounce (came back later)
    status: str | None
    smtp_code: int | None
    reason: str  # the reason code
    reason_text: str  # the same in Japanese
    hard: bool
    diagnostic: str
    created_at: dt.datetime


class FailurePage(BaseModel):
    total: int
    items: list[Failure]


@router.post("/check")
async def check(body: CheckRequest, pool: Db) -> CheckResponse:
    return CheckResponse(suppressed=await suppressions.check(pool, body.addresses, body.organisation))


@router.get("")
async def list_suppressions(
    pool: Db,
    q: Annotated[str, Query(max_length=320)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> SuppressionPage:
    total, rows = await suppressions.search(pool, q, limit, offset)
    return SuppressionPage(total=total, items=[Suppression(**dict(r)) for r in rows])


@router.post("", status_code=201)
async def add_suppression(body: AddRequest, pool: Db) -> JSONResponse:
    """An administrator adds an address (audited with the reason and who); 409 when it is already there."""
    if not await suppressions.add(pool, body.address, body.reason, body.actor, body.scope):
        raise ApiError(409, "この送信先は既に配信停止リストに登録されています。")
    return JSONResponse({"added": body.address.strip().lower(), "scope": body.scope.lower()}, status_code=201)


@campaigns_router.get("/{campaign_id}/failures")
async def campaign_failures(
    campaign_id: uuid.UUID,
    pool: Db,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> FailurePage:
    """A campaign's failed (refused while sending) and bounced recipients with their reasons, paged."""
    total, rows = await failures.page(pool, campaign_id, limit, offset)
    items = [Failure(**dict(r), reason_text=reasons.japanese(r["reason"])) for r in rows]
    return FailurePage(total=total, items=items)


@router.delete("/{address}")
async def delete_suppression(
    address: Annotated[str, Path(min_length=1, max_length=320)], body: DeleteRequest, pool: Db
) -> JSONResponse:
    if not await suppressions.remove(pool, address, body.reason, body.actor, body.scope):
        raise ApiError(404, "この送信先は配信停止リストに登録されていません。")
    return JSONResponse({"deleted": address.strip().lower()})
