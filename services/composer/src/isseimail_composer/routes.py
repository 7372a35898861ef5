"""Internal HTTP routes of the composer (docs/internal-api.md): drafts, preview, ready-check, snapshot.

Draft routes act for the pass named by the gateway's X-Isseimail-Pass-Id / X-Isseimail-User-Id
headers; a draft of another pass is "not found". The snapshot is for the dispatcher.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from isseimail_composer import drafts, readiness
from isseimail_composer.attachment_safety import AttachmentGuard
from isseimail_composer.deliverability.api import GateDep
from isseimail_composer.errors import FROZEN, NO_PASS, NOT_FOUND
from isseimail_composer.form import (
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS,
    Attachment,
    Draft,
    check_attachments,
    check_draft,
)
from isseimail_composer.freeze import sender_copy
from isseimail_composer.settings import ComposerSettings
from isseimail_composer.snapshot import snapshot_lines
from isseimail_composer.upload import read_draft_form
from isseimail_shared.app import Db, held
from isseimail_shared.clients.base import Unavailable
from isseimail_shared.clients.list_validator import ListsClient
from isseimail_shared.contracts.composer import (
    AttachmentInfo,
    AttachmentPolicy,
    DraftDeleted,
    DraftForm,
    DraftOut,
    DraftSaved,
    Preview,
    Ready,
)
from isseimail_shared.contracts.forms import multipart_body
from isseimail_shared.errors import ApiError
from isseimail_shared.mailmerge import Recipient

router = APIRouter(prefix="/internal/campaigns", tags=["campaigns"])
policy_router = APIRouter(prefix="/internal", tags=["attachments"])

UNAVAILABLE = "ただいま処理できません。しばらくしてから再度お試しください。"


class PassContext(BaseModel):
    pass_id: int
    user_id: str


def pass_context(
    x_isseimail_pass_id: Annotated[str | None, Header()] = None,
    x_isseimail_user_id: Annotated[str | None, Header()] = None,
) -> PassContext:
    if not x_isseimail_pass_id or not x_isseimail_pass_id.isdigit() or not x_isseimail_user_id:
        raise ApiError(401, NO_PASS)
    return PassContext(pass_id=int(x_isseimail_pass_id), user_id=x_isseimail_user_id[:20])


PassDep = Annotated[PassContext, Depends(pass_context)]


SettingsDep = Annotated[ComposerSettings, Depends(held(ComposerSettings))]
ListsDep = Annotated[ListsClient, Depends(held(ListsClient))]
GuardDep = Annotated[AttachmentGuard, Depends(held(AttachmentGuard))]

DRAFT_FORM = multipart_body(DraftForm)


def _campaign_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ApiError(404, NOT_FOUND) from None


async def _checked_draft(
    values: dict[str, str],
    files: list[tuple[str, bytes]],
    settings: ComposerSettings,
    guard: AttachmentGuard,
    lists: ListsClient,
    pass_id: int,
) -> Draft:
    """The form rules, then PDF safety and the virus scan; 422 with every error at once.

    Files the form rules already refused (not a PDF, wrong name) are still scanned, so that a virus is
    named as what it is rather than as "not a PDF"."""
    draft, errors = check_draft(
        values, files, allowed_domains=settings.sender_domains, attachments_required=settings.attachments_required
    )
    if len(files) <= MAX_ATTACHMENTS:
        kept = check_attachments(files)[0]
        names = {id(a.data) for a in kept}
        refused = [Attachment(name, data) for name, data in files if data and id(data) not in names]
        found = [
            await guard.check(kept),
            await guard.check(refused, structure=False),
        ]
        problem = " ".join(p for p in found if p)
        if problem:
            errors["attachments"] = f"{errors['attachments']} {problem}" if "attachments" in errors else problem
    if draft is not None and "list_id" not in errors:
        # A list is its pass's alone: another pass's list id is "not found", never its rows in the preview.
        try:
            owned = await lists.get_list(draft.list_id, pass_id)
        except Unavailable:
            raise ApiError(503, UNAVAILABLE) from None
        if owned is None:
            errors["list_id"] = readiness.LIST_NOT_FOUND
    if draft is None or errors:
        raise ApiError.invalid(errors)
    return draft


@router.post("", status_code=201, openapi_extra=DRAFT_FORM)
async def create_draft(
    request: Request, who: PassDep, pool: Db, settings: SettingsDep, guard: GuardDep, lists: ListsDep
) -> DraftSaved:
    """Check every field (all errors at once), the attachments' safety, and store the draft."""
    form = await read_draft_form(request)
    draft = await _checked_draft(form.values, form.files, settings, guard, lists, who.pass_id)
    async with pool.acquire() as conn:
        campaign_id = await drafts.create(conn, who.pass_id, who.user_id, draft)
    return DraftSaved(campaign_id=campaign_id)


@router.put("/{campaign_id}", openapi_extra=DRAFT_FORM)
async def replace_draft(
    campaign_id: str,
    request: Request,
    who: PassDep,
    pool: Db,
    settings: SettingsDep,
    guard: GuardDep,
    lists: ListsDep,
) -> DraftSaved:
    """Replace the draft; stored attachments are kept unless files are sent or clear_attachments is set."""
    cid = _campaign_id(campaign_id)
    form = await read_draft_form(request)
    files = form.files
    async with pool.acquire() as conn:
        stored = await drafts.load(conn, cid, who.pass_id)
        if stored is None:
            raise ApiError(404, NOT_FOUND)
        if stored.state != "draft":
            raise ApiError(409, FROZEN)
        clear = form.values.get("clear_attachments", "").strip().lower() in ("1", "true", "on", "yes")
        if not files and not clear:
            files = [(a.filename, a.data) for a in stored.draft.attachments]
        draft = await _checked_draft(form.values, files, settings, guard, lists, who.pass_id)
        await drafts.replace(conn, cid, who.pass_id, draft)
    return DraftSaved(campaign_id=cid)


@router.delete("/{campaign_id}")
async def reset_draft(campaign_id: str, who: PassDep, pool: Db) -> DraftDeleted:
    """The form's reset: the draft and its attachments are deleted."""
    cid = _campaign_id(campaign_id)
    async with pool.acquire() as conn:
        await drafts.delete(conn, cid, who.pass_id)
    return DraftDeleted(campaign_id=cid, deleted=True)


@router.get("/{campaign_id}")
async def get_draft(campaign_id: str, who: PassDep, pool: Db) -> DraftOut:
    """The draft's fields, to fill the form again."""
    async with pool.acquire() as conn:
        stored = await drafts.load(conn, _campaign_id(campaign_id), who.pass_id)
    if stored is None:
        raise ApiError(404, NOT_FOUND)
    d = stored.draft
    return DraftOut(
        campaign_id=stored.campaign_id,
        state=stored.state,
        list_id=d.list_id,
        sender_email=d.sender_email,
        sender_name=d.sender_name,
        subject=d.subject,
        body=d.body,
        charset=d.charset,
        attachments=_attachments(d),
    )


def _attachments(draft: Draft) -> list[AttachmentInfo]:
    return [AttachmentInfo(name=a.filename, size=len(a.data)) for a in draft.attachments]


async def _first_recipient(lists: ListsClient, list_id: uuid.UUID, pass_id: int) -> Recipient | None:
    try:
        async for recipient in lists.rows(list_id, pass_id, limit=1):
            return recipient
    except Unavailable:
        return None
    return None


@router.get("/{campaign_id}/preview")
async def preview(campaign_id: str, who: PassDep, pool: Db, lists: ListsDep) -> Preview:
    """The mail exactly as the first recipient will see it: From, To, Subject, the full text, attachments."""
    async with pool.acquire() as conn:
        stored = await drafts.load(conn, _campaign_id(campaign_id), who.pass_id)
    if stored is None:
        raise ApiError(404, NOT_FOUND)
    d = stored.draft
    first = await _first_recipient(lists, d.list_id, who.pass_id)
    recipient = first or sender_copy(d.sender_email, d.sender_name)
    template = stored.template()
    return Preview(
        campaign_id=stored.campaign_id,
        state=stored.state,
        from_=f"{d.sender_name} <{d.sender_email}>",
        reply_to=f"{d.sender_name} <{d.sender_email}>",
        sender_name=d.sender_name,
        sender_email=d.sender_email,
        to=recipient.email,
        recipient=recipient,
        recipient_is_sender=first is None,
        subject=d.subject,
        charset=d.charset,
        text=template.text_for(recipient),
        attachments=_attachments(d),
        attachments_total=sum(len(a.data) for a in d.attachments),
        attachments_limit=MAX_ATTACHMENT_BYTES,
    )


@router.post("/{campaign_id}/ready")
async def ready(
    campaign_id: str,
    who: PassDep,
    pool: Db,
    lists: ListsDep,
    settings: SettingsDep,
    guard: GuardDep,
    gate: GateDep,
) -> Ready:
    """200 when the draft is complete and its list is valid and this pass's; 422 with the reasons otherwise."""
    async with pool.acquire() as conn:
        stored = await drafts.load(conn, _campaign_id(campaign_id), who.pass_id)
    if stored is None:
        raise ApiError(404, NOT_FOUND)
    if stored.state != "draft":
        raise ApiError(409, FROZEN)
    try:
        errors, recipient_count = await readiness.check(stored, who.pass_id, lists, settings.sender_domains, gate)
    except Unavailable:
        raise ApiError(503, UNAVAILABLE) from None
    if "attachments" not in errors:
        # Just before the pass is consumed: a file refused now never costs the user the pass.
        problem = await guard.check(stored.draft.attachments)
        if problem:
            errors["attachments"] = problem
    if errors:
        raise ApiError(422, "送信できません。各項目のメッセージを確認してください。", errors)
    return Ready(ready=True, campaign_id=stored.campaign_id, recipient_count=recipient_count)


@router.get("/{campaign_id}/snapshot", response_class=StreamingResponse)
async def snapshot(campaign_id: str, pool: Db) -> StreamingResponse:
    """The frozen campaign as NDJSON (for the dispatcher): header line, rows, the sender's copy (row 0)."""
    lines = await snapshot_lines(pool, _campaign_id(campaign_id))
    if lines is None:
        raise ApiError(404, "この一斉メールはまだ送信を受け付けていません。")
    return StreamingResponse(lines, media_type="application/x-ndjson")


@policy_router.get("/attachment-policy")
async def attachment_policy(guard: GuardDep, settings: SettingsDep) -> AttachmentPolicy:
    """What every attachment goes through: virus scanning on or off (and clamd answering), allowed PDF rules."""
    reachable = await guard.clamd.ping() if guard.clamd else None
    return AttachmentPolicy(
        virus_scanning=guard.scanning,
        scanner_reachable=reachable,
        pdf_allow=settings.pdf_allow,
        attachments_required=settings.attachments_required,
    )
