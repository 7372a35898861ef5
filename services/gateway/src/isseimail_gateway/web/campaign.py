"""The applicant's last steps: 一斉メール発行画面, 確認画面, 一斉送信, 送信処理受付完了 with live progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response

from isseimail_gateway.session import PassSession
from isseimail_gateway.upstream import get_upstreams
from isseimail_gateway.web import apiclient
from isseimail_gateway.web.applicant import login_again, parse_id
from isseimail_gateway.web.forms import files, pick, read_form, text
from isseimail_gateway.web.render import WebError, redirect, render
from isseimail_shared.clients.base import Unavailable

router = APIRouter(include_in_schema=False)

COMPOSE_FIELDS = ("sender_email", "sender_name", "subject", "body", "charset")
MAX_ATTACHMENTS = 5
TOO_MANY_FILES = "添付ファイルは5つまでです。"
NO_LIST = "先に送信先CSVファイルのチェックを行ってください。"
SCAN_ON = "添付ファイルはウイルス検査（ClamAV）とPDFの安全性チェックを行ってから受け付けます。"
SCAN_DOWN = "ウイルス検査が現在利用できないため、添付ファイルは受け付けられません。しばらくしてから再度お試しください。"
SCAN_OFF = "ウイルス検査は行われていません（PDFの安全性チェックのみ行います）。"


@dataclass(frozen=True)
class AttachmentPolicy:
    """What the compose page says about attachments, as the composer enforces it."""

    scan_status: str  # is every attachment virus-scanned? empty when the composer did not say
    required: bool  # the manual's (必須), unless ISSEIMAIL_ATTACHMENTS_REQUIRED=false at the composer

    def context(self) -> dict[str, Any]:
        return {"scan_status": self.scan_status, "attachments_required": self.required}


async def attachment_policy(request: Request) -> AttachmentPolicy:
    """The composer's attachment policy; when it cannot be read, the page shows the (必須) default."""
    try:
        policy = await get_upstreams(request).composer.attachment_policy()
    except Unavailable:
        return AttachmentPolicy("", True)
    if not policy.virus_scanning:
        return AttachmentPolicy(SCAN_OFF, policy.attachments_required)
    return AttachmentPolicy(SCAN_ON if policy.scanner_reachable else SCAN_DOWN, policy.attachments_required)


@router.get("/compose")
async def compose_form(request: Request, list_id: str = "", campaign_id: str = "") -> Response:
    if not list_id:
        raise WebError(400, NO_LIST, back="/lists/new")
    session = await apiclient.call(request, "GET", "/session")
    if not session.ok:
        return login_again(request, session.detail)
    values: dict[str, Any] = {"charset": "utf-8"}
    saved: list[Any] = []
    if campaign_id:
        campaign_id = parse_id(campaign_id)
        draft = await _saved_draft(request, session.body, campaign_id)
        values.update({k: str(draft.get(k) or "") for k in COMPOSE_FIELDS if draft.get(k)})
        saved = draft.get("attachments") or []
    return render(
        request,
        "compose.html",
        list_id=parse_id(list_id),
        campaign_id=campaign_id,
        values=values,
        saved_attachments=saved if isinstance(saved, list) else [],
        **(await attachment_policy(request)).context(),
    )


async def _saved_draft(request: Request, session: Any, campaign_id: str) -> dict[str, Any]:
    """The saved draft's fields (戻る from the confirmation): read from the composer as this pass."""
    info = PassSession.model_validate(session)
    try:
        found = await get_upstreams(request).composer.draft(campaign_id, info.pass_id, info.user_id)
    except Unavailable:
        found = None
    return found.model_dump(mode="json") if found is not None else {}  # the template's form values


@router.post("/compose")
async def compose_submit(request: Request) -> Response:
    form = await read_form(request, max_files=MAX_ATTACHMENTS + 1)
    list_id = parse_id(text(form, "list_id")) if text(form, "list_id") else ""
    campaign_id = parse_id(text(form, "campaign_id")) if text(form, "campaign_id") else ""
    values = {name: text(form, name) for name in COMPOSE_FIELDS}
    values["charset"] = values["charset"] or "utf-8"
    attachments = files(form, "attachments")
    context: dict[str, Any] = {"list_id": list_id, "campaign_id": campaign_id, "values": values}
    if len(attachments) > MAX_ATTACHMENTS:
        context.update((await attachment_policy(request)).context())
        return render(request, "compose.html", 422, errors={"attachments": TOO_MANY_FILES}, **context)
    multipart = [("attachments", (f.filename, f.file, f.content_type or "application/pdf")) for f in attachments]
    data = {**values, "list_id": list_id}
    if campaign_id:
        result = await apiclient.call(request, "PUT", f"/campaigns/{campaign_id}", data=data, files=multipart or None)
    else:
        result = await apiclient.call(request, "POST", "/campaigns", data=data, files=multipart or None)
    if result.status == 401:
        return login_again(request, result.detail)
    if not result.ok:
        context.update((await attachment_policy(request)).context())
        return render(
            request,
            "compose.html",
            result.status,
            errors=result.field_errors,
            message=result.detail,
            **context,
        )
    campaign_id = str(pick(result.body, "campaign_id", "id", default=campaign_id))
    return redirect(f"/campaigns/{parse_id(campaign_id)}/confirm?list_id={list_id}")


@router.post("/compose/reset")
async def compose_reset(request: Request) -> Response:
    """入力欄をリセット: the draft (if one was saved) is deleted; the empty form comes back."""
    form = await read_form(request, max_files=MAX_ATTACHMENTS + 1)
    list_id = parse_id(text(form, "list_id")) if text(form, "list_id") else ""
    campaign_id = parse_id(text(form, "campaign_id")) if text(form, "campaign_id") else ""
    if campaign_id:
        result = await apiclient.call(request, "DELETE", f"/campaigns/{campaign_id}")
        if result.status == 401:
            return login_again(request, result.detail)
    return redirect(f"/compose?list_id={list_id}")


@router.get("/campaigns/{campaign_id}/confirm")
async def confirm(request: Request, campaign_id: str, list_id: str = "") -> Response:
    campaign_id = parse_id(campaign_id)
    result = await apiclient.call(request, "GET", f"/campaigns/{campaign_id}/preview")
    if result.status == 401:
        return login_again(request, result.detail)
    if not result.ok:
        raise WebError(result.status, result.detail)
    preview = result.body if isinstance(result.body, dict) else {}
    attachments = pick(preview, "attachments", default=[])
    return render(
        request,
        "confirm.html",
        campaign_id=campaign_id,
        list_id=parse_id(list_id) if list_id else "",
        sender=pick(preview, "from", "from_", "From", default=""),
        to=pick(preview, "to", "To", default=""),
        subject=pick(preview, "subject", "Subject", default=""),
        body_text=pick(preview, "text", "body", default=""),
        attachments=attachments if isinstance(attachments, list) else [],
    )


@router.post("/campaigns/{campaign_id}/send")
async def send(request: Request, campaign_id: str) -> Response:
    campaign_id = parse_id(campaign_id)
    await read_form(request, max_files=0)
    result = await apiclient.call(request, "POST", f"/campaigns/{campaign_id}/send")
    if result.status == 401:
        return login_again(request, result.detail)
    if not result.ok:
        raise WebError(result.status, result.detail, back=f"/campaigns/{campaign_id}/confirm")
    return redirect(f"/campaigns/{campaign_id}/accepted")


@router.get("/campaigns/{campaign_id}/accepted")
async def accepted(request: Request, campaign_id: str) -> Response:
    """送信処理受付完了: the pass is consumed by now, so the page itself needs no live session."""
    campaign_id = parse_id(campaign_id)
    return render(request, "accepted.html", campaign_id=campaign_id)
