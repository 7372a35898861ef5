"""Internal HTTP routes (docs/internal-api.md): suppression check for the list validator; the administrator's
console through the gateway (suppression list search, add, remove; a campaign's failures)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from isseimail_notifier import failures, reasons, suppressions
from isseimail_shared.app import Db
from isseimail_shared.contracts.notifier import (
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
from isseimail_shared.errors import INVALID_INPUT, install_validation_handler

router = APIRouter(prefix="/internal/suppressions", tags=["suppressions"])
campaigns_router = APIRouter(prefix="/internal/campaigns", tags=["failures"])


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


@router.post("", status_code=201, response_model=SuppressionAdded, responses={409: {"description": "already there"}})
async def add_suppression(body: AddRequest, pool: Db) -> SuppressionAdded | JSONResponse:
    """An administrator adds an address (audited with the reason and who); 409 when it is already there."""
    if not await suppressions.add(pool, body.address, body.reason, body.actor, body.scope):
        return JSONResponse({"detail": "この送信先は既に配信停止リストに登録されています。"}, status_code=409)
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
) -> SuppressionDeleted | JSONResponse:
    if not await suppressions.remove(pool, address, body.reason, body.actor, body.scope):
        return JSONResponse({"detail": "この送信先は配信停止リストに登録されていません。"}, status_code=404)
    return SuppressionDeleted(deleted=address.strip().lower())


_HTTP_MESSAGES = {
    400: "リクエストの形式が正しくありません。",
    404: "見つかりません。",
    405: "この操作はできません。",
}


def install_errors(app: FastAPI) -> None:
    """Validation errors answer 422 in Japanese, per field (the contract's error body)."""

    install_validation_handler(app, INVALID_INPUT)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own errors (unparsable body, unknown route) are English; callers get Japanese.
        detail = _HTTP_MESSAGES.get(exc.status_code, "リクエストを処理できませんでした。")
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)
