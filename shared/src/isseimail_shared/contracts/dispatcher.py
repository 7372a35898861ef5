"""The dispatcher's internal API (docs/internal-api.md): progress, control, estimate, DKIM keys."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from isseimail_shared.contracts import Endpoint, ServiceContract

CampaignStatus = Literal["accepted", "dispatching", "paused", "completed", "cancelled"]
DkimAlgorithm = Literal["rsa-sha256", "ed25519-sha256"]


class Progress(BaseModel):
    campaign_id: uuid.UUID
    pass_id: int
    status: CampaignStatus
    total: int
    sent: int
    retrying: int
    failed: int
    cancelled: int  # recipients not sent because the campaign was cancelled
    paused_by: Literal["administrator", "failure_rate"] | None  # while paused, else None
    bounced: int
    delayed: int  # a delay notice came back and no bounce yet (遅延中)
    pending: int
    started_at: str | None  # ISO 8601
    finished_at: str | None


class ControlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    actor: Annotated[str, Field(min_length=1, max_length=320)]


class ControlOut(BaseModel):
    campaign_id: uuid.UUID
    status: CampaignStatus
    previous: CampaignStatus
    in_flight: int | None = None  # pause and cancel: workers still holding a batch at the deadline (0 normally)
    sent: int
    failed: int
    cancelled: int
    open: int


class DomainPace(BaseModel):
    domain: str
    recipients: int
    per_minute: float  # the rate in force now, fleet-wide


class CampaignEstimate(BaseModel):
    campaign_id: uuid.UUID
    pass_id: int
    recipients: int
    domains: int
    seconds: float  # the slowest domain's recipients / its rate
    slowest: DomainPace | None  # None for a campaign without deliveries


class DkimKey(BaseModel):
    selector: str
    algorithm: DkimAlgorithm
    state: Literal["active", "next", "retired"]
    public_key: str  # base64, as p= carries it
    txt_name: str
    txt_value: str


class DkimKeys(BaseModel):
    domain: str  # normalised: lower case, IDN as A-labels, no trailing dot
    keys: list[DkimKey]


class DkimGenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    algorithm: DkimAlgorithm = "rsa-sha256"  # "rsa" / "ed25519" are accepted too
    selector: str | None = Field(default=None, max_length=63)


class DkimGenerated(BaseModel):
    domain: str
    key: DkimKey


class DkimRotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    algorithm: DkimAlgorithm | None = None
    force: bool = False  # promote even when the TXT record does not resolve yet (audited by the caller)


class DkimRotated(BaseModel):
    domain: str
    activated: list[str]  # selectors
    keys: list[DkimKey]


CONTRACT = ServiceContract(
    name="dispatcher",
    port=8084,
    intro=(
        'Work queue `dispatcher.batches` (internal to the dispatcher): messages `{"batch_id": int}`; anything'
        " else goes to `dispatcher.batches.dlq`."
    ),
    endpoints=(
        Endpoint(
            "GET",
            "/internal/campaigns/{campaign_id}/progress",
            "Header `X-Isseimail-Pass-Id` required; another pass's campaign is 404. Cheap (one index pass over the"
            " campaign's deliveries); 404 with a Japanese message for an unknown or malformed id. `pass_id` lets"
            " the gateway show a campaign only to the pass that sent it.",
            response=Progress,
        ),
        Endpoint(
            "POST",
            "/internal/campaigns/{campaign_id}/pause|resume|cancel",
            "`campaign_control.py`, every change recorded in `campaign_controls`. Pause (from accepted or"
            " dispatching) and cancel (also from paused) answer once no worker holds a batch of the campaign"
            " (`in_flight` 0; at most 20 s): after that nothing more of it is sent. Resume (from paused, whoever"
            " paused it) hands the parked batches back to the scheduler and answers without `in_flight`. Cancel"
            " turns the recipients not yet sent into `cancelled`. The same status again is 200 and changes nothing;"
            " any other state 409 with a Japanese message; 404 for an unknown or malformed id.",
            request=ControlRequest,
            response=ControlOut,
        ),
        Endpoint(
            "GET",
            "/internal/campaigns/{campaign_id}/estimate",
            "(X-Isseimail-Pass-Id) The sending time at the per-domain pacing in force (the slowest domain's"
            " recipients over its fleet-wide rate, adaptive throttling included; SMTP time and retries left out),"
            " for the 受付完了 page; 404 for an unknown or malformed id (`estimate.py`).",
            response=CampaignEstimate,
            extra=(DomainPace,),
        ),
        Endpoint(
            "GET",
            "/internal/dkim/{domain}",
            "The DKIM keys of a sender domain, active first, then next, then retired (newest first within a"
            ' state). An unknown domain is 200 with `"keys": []`; a malformed one 422 `ドメイン名が正しくありません。`.'
            " `active` signs; `next` is to be published and does not sign yet; `retired` no longer signs but should"
            " stay published for a week. While the table has no active RSA key for the domain, the key configured"
            " in `ISSEIMAIL_DKIM_SELECTOR`/`ISSEIMAIL_DKIM_PRIVATE_KEY` (when it signs for this domain) is listed"
            " as `active`. Never a private key. The composer's domain-readiness check reads this.",
            response=DkimKeys,
            extra=(DkimKey,),
        ),
        Endpoint(
            "POST",
            "/internal/dkim/{domain}/keys",
            "201 a new RSA 2048 or Ed25519 key in state `next`, stored Fernet-encrypted"
            " (`ISSEIMAIL_DKIM_KEY_SECRET`); the selector defaults to `s<year><letter>` (RSA) or `e<year><letter>`"
            " (Ed25519). 409 when the domain already has a `next` key of that algorithm, the selector is taken, or"
            " Ed25519 is asked for a domain without an RSA key (Ed25519 is the optional second signature); 503 when"
            " `ISSEIMAIL_DKIM_KEY_SECRET` is unset or does not open the keys already stored; 422 per field.",
            request=DkimGenerateRequest,
            response=DkimGenerated,
            status=201,
        ),
        Endpoint(
            "POST",
            "/internal/dkim/{domain}/rotate",
            "(body optional) Each `next` key (of that algorithm, or all) becomes `active` and the `active` key it"
            " replaces becomes `retired` (its private key erased). Unless `force`, the next key's TXT record must"
            " already resolve (through `ISSEIMAIL_DNS_NAMESERVERS`) to its public key: 409 naming the record to"
            " publish otherwise. 409 when there is no `next` key, or when it would leave Ed25519 active without RSA.",
            request=DkimRotateRequest,
            response=DkimRotated,
        ),
    ),
)
