"""Internal HTTP routes (docs/internal-api.md): suppression check for the list validator; the administrator's
console through the gateway (suppression list search, add, remove; a campaign's failures)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from isseimail_notifier import failures, reasons, suppressions
from isseimail_shared.app import Db
from isseimail_shared.contracts.notifier import (
    NO_CONTROL_CHARACTERS,
    AddRequest,
    CheckRequest,
    CheckResponse,
    DeleteRequest,
    Failure,
    FailurePage,
    Suppression,
    SuppressionAdded,
    SuppressionDeleted,
    SuppressionPage,
)
from isseimail_shared.errors import ApiError

router = APIRouter(prefix="/internal/suppressions", tags=["suppressions"])
campaigns_router = APIRouter(prefix="/internal/campaigns", tags=["failures"])


@router.post("/check")
async def check(body: CheckRequest, pool: Db) -> CheckResponse:
    return CheckResponse(suppressed=await suppressions.check(pool, body.addresses, body.organisation))


@router.get("")
async def list_suppressions(
    pool: Db,
    q: Annotated[str, Query(max_length=320, pattern=NO_CONTROL_CHARACTERS)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> SuppressionPage:
    total, rows = await suppressions.search(pool, q, limit, offset)
    return SuppressionPage(total=total, items=[Suppression(**dict(r)) for r in rows])


@router.post("", status_code=201, response_model=SuppressionAdded, responses={409: {"description": "already there"}})
async def add_suppression(body: AddRequest, pool: Db) -> SuppressionAdded:
    """An administrator adds an address (audited with the reason and who); 409 when it is already there."""
    if not await suppressions.add(pool, body.address, body.reason, body.actor, body.scope):
        raise ApiError(409, "この送信先は既に配信停止リストに登録されています。")
    return SuppressionAdded(added=body.address.strip().lower(), scope=body.scope.lower())


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


@router.delete("/{address}", response_model=SuppressionDeleted, responses={404: {"description": "not there"}})
async def delete_suppression(
    address: Annotated[str, Path(min_length=1, max_length=320)], body: DeleteRequest, pool: Db
) -> SuppressionDeleted:
    if not await suppressions.remove(pool, address, body.reason, body.actor, body.scope):
        raise ApiError(404, "この送信先は配信停止リストに登録されていません。")
    return SuppressionDeleted(deleted=address.strip().lower())
