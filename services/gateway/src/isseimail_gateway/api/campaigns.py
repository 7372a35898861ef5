"""Gateway JSON API: composing and sending a campaign (under /api/v1).

The composer owns the form rules; the gateway passes the multipart form through (capped in size while
it arrives) with the pass headers, and relays the composer's answer: 422 bodies carry `errors` keyed by
field. Sending is the one place the pass is consumed: ready-check on the composer first, then the
pass-service's atomic consume; only the winner gets 202.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from isseimail_gateway.session import (
    EXPIRED,
    PassSession,
    PassSessionDep,
    UpstreamsDep,
    pass_headers,
    require_pass_session,
)
from isseimail_gateway.upstream import UNAVAILABLE, Upstreams, get_upstreams, parsed, relayed
from isseimail_shared.contracts.composer import DraftDeleted, DraftForm, DraftOut, DraftSaved, Preview, Ready
from isseimail_shared.contracts.forms import multipart_body
from isseimail_shared.contracts.pass_service import ConsumeOut
from isseimail_shared.errors import ApiError

router = APIRouter(prefix="/api/v1", tags=["campaigns"])

MAX_FORM_BYTES = 2_097_152 + 512 * 1024  # the 2 MB of attachments plus room for the text fields
TOO_LARGE = "送信内容が大きすぎます。添付ファイルは合計2MB（2,097,152バイト）までです。"
NOT_FOUND = "指定された一斉メールが見つかりません。"

DRAFT_FORM = multipart_body(DraftForm)

ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"description": "errors keyed by field (Japanese)"},
    404: {"description": "not found"},
}


class SendAccepted(BaseModel):
    status: str
    campaign_id: str


def _campaign_id(raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ApiError(404, NOT_FOUND) from None


async def _capped_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class _TooLarge(Exception):
    pass


def _relay(response: httpx.Response, model: type[BaseModel], ok: int = 200) -> JSONResponse:
    """The composer's answer: a success read as its contract model, an error in the one error shape
    (upstream.relayed)."""
    if response.status_code == ok:
        return JSONResponse(parsed(response, model, ok=ok).model_dump(mode="json", by_alias=True), status_code=ok)
    if response.is_error:
        raise relayed(response)
    try:
        return JSONResponse(response.json(), status_code=response.status_code)
    except ValueError:
        raise ApiError(503, UNAVAILABLE) from None


async def _forward_form(
    request: Request, method: str, path: str, session: PassSession, upstreams: Upstreams, ok: int
) -> JSONResponse:
    try:
        body = await _capped_body(request)
    except _TooLarge:
        raise ApiError(413, TOO_LARGE, {"attachments": TOO_LARGE}) from None
    headers = {**pass_headers(session), "Content-Type": request.headers.get("content-type", "")}
    return _relay(await upstreams.call("composer", method, path, content=body, headers=headers), DraftSaved, ok)


@router.post("/campaigns", status_code=201, openapi_extra=DRAFT_FORM, responses={201: {"model": DraftSaved}, **ERRORS})
async def create_campaign(request: Request, session: PassSessionDep, upstreams: UpstreamsDep) -> JSONResponse:
    """Create the draft (一斉メールの作成): 201 with campaign_id, or 422 with every error keyed by field."""
    return await _forward_form(request, "POST", "/internal/campaigns", session, upstreams, 201)


@router.put("/campaigns/{campaign_id}", openapi_extra=DRAFT_FORM, responses={200: {"model": DraftSaved}, **ERRORS})
async def replace_campaign(
    campaign_id: str, request: Request, session: PassSessionDep, upstreams: UpstreamsDep
) -> JSONResponse:
    """Replace the draft; stored attachments stay unless files or clear_attachments are sent."""
    path = f"/internal/campaigns/{_campaign_id(campaign_id)}"
    return await _forward_form(request, "PUT", path, session, upstreams, 200)


@router.delete("/campaigns/{campaign_id}", responses={200: {"model": DraftDeleted}, **ERRORS})
async def reset_campaign(campaign_id: str, session: PassSessionDep, upstreams: UpstreamsDep) -> JSONResponse:
    """Reset: the draft and its attachments are deleted."""
    path = f"/internal/campaigns/{_campaign_id(campaign_id)}"
    return _relay(await upstreams.call("composer", "DELETE", path, headers=pass_headers(session)), DraftDeleted)


@router.get("/campaigns/{campaign_id}/draft", responses={200: {"model": DraftOut}, **ERRORS})
async def get_draft(campaign_id: str, session: PassSessionDep, upstreams: UpstreamsDep) -> JSONResponse:
    """The draft's fields, to fill the form again."""
    path = f"/internal/campaigns/{_campaign_id(campaign_id)}"
    return _relay(await upstreams.call("composer", "GET", path, headers=pass_headers(session)), DraftOut)


@router.get("/campaigns/{campaign_id}/preview", responses={200: {"model": Preview}, **ERRORS})
async def preview_campaign(campaign_id: str, session: PassSessionDep, upstreams: UpstreamsDep) -> JSONResponse:
    """The confirmation view: From, Subject, the full text as the first recipient sees it, attachments."""
    path = f"/internal/campaigns/{_campaign_id(campaign_id)}/preview"
    return _relay(await upstreams.call("composer", "GET", path, headers=pass_headers(session)), Preview)


async def require_sendable_session(
    request: Request, upstreams: Annotated[Upstreams, Depends(get_upstreams)]
) -> PassSession:
    """The pass session; a pass already consumed (or expired) is a 409 here, because sending twice is a conflict."""
    try:
        return await require_pass_session(request, upstreams)
    except ApiError as exc:
        if exc.status == 401 and exc.detail == EXPIRED:
            raise ApiError(409, EXPIRED) from None
        raise


@router.post(
    "/campaigns/{campaign_id}/send",
    status_code=202,
    responses={202: {"model": SendAccepted}, 409: {"description": "この1DayPassは失効しています"}, **ERRORS},
)
async def send_campaign(
    campaign_id: str,
    session: Annotated[PassSession, Depends(require_sendable_session)],
    upstreams: UpstreamsDep,
) -> JSONResponse:
    """一斉送信: ready-check (list valid, draft complete), then consume the pass exactly once → 202."""
    cid = _campaign_id(campaign_id)
    ready = await upstreams.call("composer", "POST", f"/internal/campaigns/{cid}/ready", headers=pass_headers(session))
    if ready.status_code == 409:
        raise ApiError(409, EXPIRED)
    if ready.status_code != 200:
        return _relay(ready, Ready)
    consumed = await upstreams.call(
        "pass", "POST", f"/internal/passes/{session.pass_id}/consume", json={"campaign_id": cid}
    )
    if consumed.status_code in (404, 409):
        raise ApiError(409, EXPIRED)
    if consumed.status_code != 200 or not ConsumeOut.model_validate_json(consumed.content).won:
        return _relay(consumed, ConsumeOut)
    return JSONResponse({"status": "accepted", "campaign_id": cid}, status_code=202)
