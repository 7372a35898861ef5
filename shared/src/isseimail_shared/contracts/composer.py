"""The composer's internal API (docs/internal-api.md): drafts, preview, ready-check, the frozen snapshot, and the
sender-domain readiness reports (findings ok / warning / error, each with the records to publish)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from isseimail_shared.contracts import Endpoint, ServiceContract
from isseimail_shared.mailmerge import CampaignTemplate, Recipient

Status = Literal["ok", "warning", "error"]
Check = Literal["spf", "bounce_spf", "dkim", "dmarc", "bounce_mx", "ptr"]
BLOCKING_CHECKS = ("dkim", "dmarc")  # an error here refuses sending (unless overridden)
_RANK = {"ok": 0, "warning": 1, "error": 2}


class DnsRecord(BaseModel):
    name: str
    type: str
    value: str

    def zone_line(self) -> str:
        value = f'"{self.value}"' if self.type == "TXT" else self.value
        return f"{self.name}. IN {self.type} {value}"


class Finding(BaseModel):
    check: Check
    status: Status
    message: str  # Japanese, for the administrator
    records: list[DnsRecord] = Field(default_factory=list)  # what to publish (empty when nothing is needed)
    found: list[str] = Field(default_factory=list)  # what DNS answers now, for comparison


class Override(BaseModel):
    domain: str
    reason: str
    created_by: str
    created_at: str


class Report(BaseModel):
    domain: str
    checked_at: str
    status: Status
    findings: list[Finding]
    blocking: list[str] = Field(default_factory=list)  # checks that refuse sending (dkim, dmarc with an error)
    override: Override | None = None

    @classmethod
    def of(cls, domain: str, checked_at: str, findings: list[Finding]) -> Report:
        worst = max((f.status for f in findings), key=_RANK.__getitem__, default="ok")
        blocking = sorted({f.check for f in findings if f.check in BLOCKING_CHECKS and f.status == "error"})
        return cls(domain=domain, checked_at=checked_at, status=worst, findings=findings, blocking=blocking)


class OverrideRecord(BaseModel):
    """One entry of a domain's override audit trail (overrides are never deleted)."""

    reason: str
    created_by: str
    created_at: str | None
    withdrawn_by: str | None
    withdrawn_at: str | None
    withdraw_reason: str | None


class DomainReport(Report):
    """A report as the API answers it: with whether it refuses sending and the override history."""

    sender_domain: bool
    refused: bool
    override_history: list[OverrideRecord]


class DomainReports(BaseModel):
    domains: list[DomainReport]


class OverrideRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actor: str = Field(min_length=1, max_length=254, description="the administrator (e-mail)")
    reason: str = Field(max_length=500, description="why (kept in the audit trail)")


class OverrideWithdrawn(BaseModel):
    domain: str
    withdrawn: bool


# --- drafts ------------------------------------------------------------------------------------------

Charset = Literal["utf-8", "iso-2022-jp"]
DraftState = Literal["draft", "frozen", "failed"]


class DraftForm(BaseModel):
    """The draft's multipart form (POST and PUT), read as a stream by its routes; documents the OpenAPI body."""

    list_id: uuid.UUID = Field(description="確認済みの送信先リスト")
    sender_email: str = Field(max_length=50, description="送信者メールアドレス")
    sender_name: str = Field(max_length=50, description="送信者名称")
    subject: str = Field(max_length=100, description="件名")
    body: str = Field(max_length=5000, description="本文（外字不可）")
    charset: Charset = "utf-8"
    attachments: list[bytes] = Field(
        default=[],
        max_length=5,
        description="添付ファイル: PDFのみ、5個まで、合計2MB（2,097,152バイト）まで。"
        "1つ以上必須（ISSEIMAIL_ATTACHMENTS_REQUIRED=false のときは任意）",
    )
    clear_attachments: bool = Field(
        default=False, description="PUT only: remove stored attachments (without files they are kept)"
    )


class DraftSaved(BaseModel):
    campaign_id: uuid.UUID


class DraftDeleted(BaseModel):
    campaign_id: uuid.UUID
    deleted: bool


class AttachmentInfo(BaseModel):
    name: str
    size: int


class DraftOut(BaseModel):
    campaign_id: uuid.UUID
    state: DraftState
    list_id: uuid.UUID
    sender_email: str
    sender_name: str
    subject: str
    body: str
    charset: Charset
    attachments: list[AttachmentInfo]


class Preview(BaseModel):
    """The mail as the list's first recipient sees it (the sender's own copy when the list cannot be read)."""

    model_config = ConfigDict(populate_by_name=True)

    campaign_id: uuid.UUID
    state: DraftState
    from_: str = Field(alias="from", description="送信者名称 <送信者メールアドレス>")
    reply_to: str
    sender_name: str
    sender_email: str
    to: str
    recipient: Recipient
    recipient_is_sender: bool
    subject: str
    charset: Charset
    text: str
    attachments: list[AttachmentInfo]
    attachments_total: int
    attachments_limit: int


class Ready(BaseModel):
    ready: bool
    campaign_id: uuid.UUID
    recipient_count: int  # the list's rows plus the sender's own copy


class AttachmentPolicy(BaseModel):
    virus_scanning: bool
    scanner_reachable: bool | None  # a clamd PING; None when scanning is off
    pdf_allow: list[str]
    attachments_required: bool


# --- the frozen campaign's snapshot (NDJSON) ------------------------------------------------------------


class SnapshotCampaign(BaseModel):
    campaign_id: uuid.UUID
    sender_email: str
    sender_name: str = ""
    subject: str
    recipient_count: int  # every recipient line, the sender's copy included (= campaign.accepted's)


class SnapshotHeader(BaseModel):
    """The snapshot's first line: the campaign's facts and its rendered template."""

    campaign: SnapshotCampaign
    template: CampaignTemplate


# Every further line: one recipient in the list's rows format; the sender's own copy last with row 0.
SnapshotRow = Recipient

CONTRACT = ServiceContract(
    name="composer",
    port=8083,
    intro=(
        "Drafts act for the pass in the headers (another pass's draft is 404; no headers 401); changes after"
        " freezing are 409. Attachments (`attachment_safety.py`): on POST/PUT, at the ready-check and again at"
        " freeze every file must be a sound PDF without active content (`pdf_safety.py`) and, when"
        " ISSEIMAIL_CLAMD_URL is set, clean by clamd; a refusal is 422 `errors.attachments` naming each file and"
        " its reason or signature (files refused by the form rules are still scanned, so a virus is named)."
        " Sender-domain reports (`deliverability/`) are cached ISSEIMAIL_READINESS_CACHE_SECONDS (not when DNS or"
        " the dispatcher failed); `refresh=true` asks again. The DKIM keys come from the dispatcher's"
        " `GET /internal/dkim/{domain}`. Overrides are never deleted (`domain_overrides` is the audit trail)."
    ),
    endpoints=(
        Endpoint(
            "GET",
            "/internal/campaigns/{campaign_id}/snapshot",
            "NDJSON of the frozen campaign: the header line, then one recipient per line in the list's rows format,"
            ' the sender\'s own copy included as the last line with `"row": 0`. Streamed: 50,000 rows in one'
            " response. 404 until the campaign is frozen.",
            response=SnapshotHeader,
            ndjson=SnapshotRow,
            extra=(SnapshotCampaign,),
        ),
        Endpoint(
            "POST",
            "/internal/campaigns/{campaign_id}/ready",
            "200 when the draft is complete and its list is `valid`, belongs to the same pass and has no row"
            " suppressed for the From domain (asked of the list-validator's `/suppressed`), 422 with the reasons"
            " (`errors.list_id` names such rows with their reason, ...) otherwise, 503 when the list-validator"
            " cannot answer, 409 when already frozen (the gateway calls it before consuming the pass; it checks and"
            " scans the attachments again). A sender domain listed in ISSEIMAIL_SENDER_DOMAINS whose DKIM or DMARC"
            " check is an error is refused here with `errors.sender_email`, unless an administrator's override is"
            " in force.",
            response=Ready,
        ),
        Endpoint(
            "POST",
            "/internal/campaigns",
            "Multipart form → 201, or 422 with `errors` keyed by field (all at once); 413 beyond 2.5 MB.",
            request=DraftForm,
            response=DraftSaved,
            status=201,
        ),
        Endpoint(
            "PUT",
            "/internal/campaigns/{campaign_id}",
            "The same form; stored attachments are kept unless files or `clear_attachments=1` are sent.",
            request=DraftForm,
            response=DraftSaved,
        ),
        Endpoint("DELETE", "/internal/campaigns/{campaign_id}", "The form's reset.", response=DraftDeleted),
        Endpoint("GET", "/internal/campaigns/{campaign_id}", "The fields, to refill the form.", response=DraftOut),
        Endpoint(
            "GET",
            "/internal/campaigns/{campaign_id}/preview",
            "The mail as the list's first recipient sees it.",
            response=Preview,
        ),
        Endpoint(
            "GET",
            "/internal/attachment-policy",
            "What every attachment goes through, for the gateway's compose page.",
            response=AttachmentPolicy,
        ),
        Endpoint(
            "GET",
            "/internal/domains?refresh=",
            "The report of every sender domain.",
            response=DomainReports,
            extra=(Finding, DnsRecord, Override, OverrideRecord),
        ),
        Endpoint(
            "GET",
            "/internal/domains/{domain}/readiness?refresh=",
            "One report (any host name; 422 for a malformed one). `blocking`: the errors that refuse sending.",
            response=DomainReport,
        ),
        Endpoint(
            "POST",
            "/internal/domains/{domain}/override",
            "201 the override (409 one is in force, 404 not a sender domain, 422 empty reason).",
            request=OverrideRequest,
            response=Override,
            status=201,
        ),
        Endpoint(
            "DELETE",
            "/internal/domains/{domain}/override",
            "Withdraws the override, or 404.",
            request=OverrideRequest,
            response=OverrideWithdrawn,
        ),
    ),
)
