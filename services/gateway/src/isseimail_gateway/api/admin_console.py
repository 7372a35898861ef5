"""The administrator's console API (under /api/v1/admin): a campaign's failed and bounced recipients (paged,
and as a CSV that Excel opens), and the suppression list (search, add, remove, each with a reason).

The data stays where it is owned: the notifier keeps failures, bounces and the suppression list; the
gateway checks the admin session, names the administrator as the actor (the notifier audits additions and
removals) and logs every read of recipients' addresses.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import uuid
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from isseimail_gateway.api.lists import neutralise
from isseimail_gateway.api.passes import relay_error
from isseimail_gateway.session import AdminSessionDep, UpstreamsDep
from isseimail_gateway.upstream import Upstreams, parsed
from isseimail_shared.contracts import notifier as contract
from isseimail_shared.contracts.dispatcher import ControlOut
from isseimail_shared.errors import ApiError


def _json_time(value: dt.datetime) -> str:
    """A timestamp as the JSON answer spells it (the CSV shows the same text as the API)."""
    return value.isoformat().replace("+00:00", "Z")


log = logging.getLogger(__name__)

router = APIRouter()

CAMPAIGN_NOT_FOUND = "一斉メールが見つかりません。"
CSV_MAX_ROWS = 200_000  # far above a campaign's size (50,000 rows per list); bounds one download's memory
CSV_PAGE = 1000  # rows per call to the notifier
CSV_HEADER = [
    "CSVの行",
    "メールアドレス",
    "理由",
    "理由コード",
    "検出",
    "エラーコード",
    "相手先サーバからの応答",
    "日時",
]
SOURCES = {"smtp": "送信時に拒否", "bounce": "後からバウンス"}


def campaign_uuid(raw: str) -> uuid.UUID:
    """A malformed campaign id is simply not found (404), never passed on to an upstream URL."""
    try:
        return uuid.UUID(raw) if len(raw) <= 36 else uuid.UUID("")
    except ValueError:
        raise ApiError(404, CAMPAIGN_NOT_FOUND) from None


class FailureItem(BaseModel):
    recipient: str
    row_number: int | None
    source: str
    status: str | None
    smtp_code: int | None
    reason: str
    reason_text: str
    hard: bool
    diagnostic: str
    created_at: str


class FailurePage(BaseModel):
    campaign_id: str
    total: int
    limit: int
    offset: int
    items: list[FailureItem]


class AddSuppression(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: Annotated[str, Field(min_length=3, max_length=320, description="メールアドレス")]
    reason: Annotated[str, Field(min_length=1, max_length=500, description="登録の理由 (記録されます)")]
    scope: Annotated[
        str, Field(max_length=253, description="'*' = すべての送信元 (既定), または送信元ドメインだけ")
    ] = "*"


class RemoveSuppression(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=500, description="削除の理由 (記録されます)")]
    scope: Annotated[str | None, Field(max_length=253, description="この送信元ドメインだけ (既定: すべて)")] = None


async def _failures(upstreams: Upstreams, campaign_id: uuid.UUID, limit: int, offset: int) -> contract.FailurePage:
    response = await upstreams.call(
        "notifier", "GET", f"/internal/campaigns/{campaign_id}/failures", params={"limit": limit, "offset": offset}
    )
    return parsed(response, contract.FailurePage)


@router.get("/campaigns/{campaign_id}/failures", response_model=FailurePage)
async def campaign_failures(
    campaign_id: str,
    admin: AdminSessionDep,
    upstreams: UpstreamsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Any:
    """A campaign's failed (refused while sending) and bounced recipients with their reasons, oldest first."""
    found = campaign_uuid(campaign_id)
    body = await _failures(upstreams, found, limit, offset)
    log.info("admin %s read failures of campaign %s (offset %d)", admin.admin_id, found, offset)
    return {"campaign_id": str(found), "limit": limit, "offset": offset, **body.model_dump(mode="json")}


def failures_csv(items: list[contract.Failure], encoding: Literal["cp932", "utf-8"]) -> tuple[bytes, str]:
    """The rows as Excel opens them: CRLF, formula cells neutralised, CP932 (Shift_JIS) when every cell
    fits it, else UTF-8 with BOM (never a lost character). Returns the bytes and the charset used."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for item in items:
        code = item.status or (str(item.smtp_code) if item.smtp_code else "")
        cells = [
            str(item.row_number or ""),
            item.recipient,
            item.reason_text or item.reason,
            item.reason,
            SOURCES.get(item.source, item.source),
            code,
            " ".join(item.diagnostic.split())[:1000],
            _json_time(item.created_at),
        ]
        writer.writerow([neutralise(c) for c in cells])
    text = out.getvalue()
    if encoding == "cp932":
        try:
            return text.encode("cp932"), "Shift_JIS"
        except UnicodeEncodeError:
            pass
    return ("\ufeff" + text).encode("utf-8"), "utf-8"


@router.get(
    "/campaigns/{campaign_id}/failures.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, 404: {"description": CAMPAIGN_NOT_FOUND}},
)
async def campaign_failures_csv(
    campaign_id: str,
    admin: AdminSessionDep,
    upstreams: UpstreamsDep,
    encoding: Literal["cp932", "utf-8"] = "cp932",
) -> Response:
    """Every failed and bounced recipient as a CSV for Excel: CP932 by default (UTF-8 with BOM when a cell
    has a character CP932 lacks, or with ?encoding=utf-8); cells starting = + - @ tab CR are prefixed with '."""
    found = campaign_uuid(campaign_id)
    items: list[contract.Failure] = []
    while len(items) < CSV_MAX_ROWS:
        page = await _failures(upstreams, found, CSV_PAGE, len(items))
        items.extend(page.items)
        if not page.items or len(items) >= page.total:
            break
    data, charset = failures_csv(items[:CSV_MAX_ROWS], encoding)
    log.info("admin %s downloaded %d failures of campaign %s", admin.admin_id, len(items), found)
    name = f"failures-{found}.csv"
    return Response(
        data,
        media_type=f"text/csv; charset={charset}",
        headers={"Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}"},
    )


@router.get("/suppressions", response_model=contract.SuppressionPage)
async def list_suppressions(
    admin: AdminSessionDep,
    upstreams: UpstreamsDep,
    q: Annotated[str, Query(max_length=320, pattern=contract.NO_CONTROL_CHARACTERS)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Any:
    """The suppression list, searched by (part of) an address: `{"total": n, "items": [...]}`."""
    response = await upstreams.call(
        "notifier", "GET", "/internal/suppressions", params={"q": q.strip(), "limit": limit, "offset": offset}
    )
    if response.status_code != 200:
        return relay_error(response)
    return parsed(response, contract.SuppressionPage)


@router.post(
    "/suppressions",
    status_code=201,
    response_model=contract.SuppressionAdded,
    responses={409: {"description": "登録済み"}},
)
async def add_suppression(body: AddSuppression, admin: AdminSessionDep, upstreams: UpstreamsDep) -> Any:
    """Add an address with a reason: no campaign mails it again (checked at upload and at send time)."""
    response = await upstreams.call(
        "notifier", "POST", "/internal/suppressions", json={**body.model_dump(), "actor": admin.email}
    )
    if response.status_code != 201:
        return relay_error(response)
    return parsed(response, contract.SuppressionAdded, ok=201)


@router.delete(
    "/suppressions/{address}",
    response_model=contract.SuppressionDeleted,
    responses={404: {"description": "登録されていません"}},
)
async def remove_suppression(
    address: str, body: Annotated[RemoveSuppression, Body()], admin: AdminSessionDep, upstreams: UpstreamsDep
) -> Any:
    """Remove an address (every scope, or one) with a reason; the notifier records who and why."""
    address = address.strip()
    if not address or len(address) > 320 or any(c in address for c in "\r\n\0/"):
        raise ApiError(404, "この送信先は配信停止リストに登録されていません。")
    response = await upstreams.call(
        "notifier",
        "DELETE",
        f"/internal/suppressions/{quote(address, safe='@')}",
        json={**body.model_dump(), "actor": admin.email},
    )
    if response.status_code != 200:
        return relay_error(response)
    return parsed(response, contract.SuppressionDeleted)


class ControlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=500, description="理由 (記録されます)")]


@router.post(
    "/campaigns/{campaign_id}/{action}",
    response_model=ControlOut,
    response_model_exclude_none=True,  # resume answers without in_flight, as the dispatcher does
    responses={404: {"description": CAMPAIGN_NOT_FOUND}, 409: {"description": "この状態ではできません"}},
)
async def control_campaign(
    campaign_id: str,
    action: Literal["pause", "resume", "cancel"],
    body: ControlRequest,
    admin: AdminSessionDep,
    upstreams: UpstreamsDep,
) -> Any:
    """Pause (answers once nothing more is being sent), resume (also after an automatic pause for the failure
    rate) or cancel (recipients not yet sent are dropped; the answer counts sent, failed and cancelled)."""
    found = campaign_uuid(campaign_id)
    response = await upstreams.call(
        "dispatcher",
        "POST",
        f"/internal/campaigns/{found}/{action}",
        json={"reason": body.reason, "actor": admin.email},
    )
    if response.status_code != 200:
        return relay_error(response)
    log.info("admin %s: %s campaign %s", admin.admin_id, action, found)
    return parsed(response, ControlOut)
