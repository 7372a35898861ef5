"""The notifier's internal API (docs/internal-api.md): the suppression list, a campaign's failures, unsubscribes."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from isseimail_shared.contracts import Endpoint, ServiceContract

MAX_CHECK = 50_000
GLOBAL_SCOPE = "*"  # a suppression that holds for every sender (a bounce)
# A search text: no control character (a NUL cannot even reach PostgreSQL's text type).
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"

Address = Annotated[str, Field(min_length=1, max_length=320)]
Text = Annotated[str, Field(min_length=1, max_length=500)]


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    addresses: list[Address] = Field(max_length=MAX_CHECK)
    # The sender organisation (From domain) the list is for: its unsubscribes and complaints count too.
    organisation: str | None = Field(default=None, min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.\-]+$")


class CheckResponse(BaseModel):
    suppressed: dict[str, str]  # address as asked -> reason


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
    scope: Annotated[str, Field(max_length=253, pattern=r"^(\*|[A-Za-z0-9.\-]+)$")] = GLOBAL_SCOPE


class SuppressionAdded(BaseModel):
    added: str
    scope: str


class SuppressionDeleted(BaseModel):
    deleted: str


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


class UnsubscribeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Literal["one-click"] = "one-click"


class TokenValid(BaseModel):
    valid: bool


class Unsubscribed(BaseModel):
    unsubscribed: bool


CONTRACT = ServiceContract(
    name="notifier",
    port=8085,
    intro=(
        "SMTP listener (`ISSEIMAIL_BOUNCE_LISTEN_PORT`), recipients on `ISSEIMAIL_BOUNCE_DOMAIN`: VERP addresses"
        " (bounces, and ARF feedback reports sent to the envelope sender), `unsubscribe+<token>@` (the"
        " List-Unsubscribe mailto:; the token is checked at RCPT, 550 when unknown or forged; the mail is the"
        " request), and `fbl@` (register it with mailbox providers' feedback loops: ARF reports, RFC 5965)."
        " Anything else 550."
    ),
    endpoints=(
        Endpoint(
            "POST",
            "/internal/suppressions/check",
            "(≤ 50,000 addresses) Without `organisation` only non-existence bounces count (scope `*`: they hold for"
            " every sender); with it, also that sender organisation's unsubscribes, complaints and the bounces that"
            " concern only that sender (a recipient's filter, `filtered`; repeated policy refusals or full"
            " mailboxes). `reason` is `complained` or `unsubscribed` for those (a complaint wins over an"
            " unsubscribe, both over a bounce), else the bounce reason. Matching ignores case; the answer uses the"
            " addresses as asked. 422 for more than 50,000, an address over 320 chars, or an organisation that is"
            " not a domain name.",
            request=CheckRequest,
            response=CheckResponse,
        ),
        Endpoint(
            "GET",
            "/internal/suppressions?q=&limit=&offset=",
            "(limit 1–500, default 50; `q` = substring) For the administrator pages. `scope`: `*` or the sender"
            " organisation; `kind`: bounced, unsubscribed, complained.",
            response=SuppressionPage,
            extra=(Suppression,),
        ),
        Endpoint(
            "DELETE",
            "/internal/suppressions/{address}",
            "200 or 404 (every scope, or only `scope`; audited in the notifier's suppression_audit).",
            request=DeleteRequest,
            response=SuppressionDeleted,
        ),
        Endpoint(
            "POST",
            "/internal/suppressions",
            "(`scope` `*` by default, or a sender organisation) 201 (kind `manual`, audited as `add`), 409 when the"
            " address is already suppressed there (an inactive row — soft bounces below the limit — is taken over),"
            " 422 for an address without exactly one @ or with whitespace, an empty or over-500-character reason.",
            request=AddRequest,
            response=SuppressionAdded,
            status=201,
        ),
        Endpoint(
            "GET",
            "/internal/campaigns/{campaign_id}/failures?limit=&offset=",
            "(limit 1–1000, default 50) In the order recorded; 422 for an id that is not a UUID. The gateway's"
            " console pages it and builds the CSV from it (`/api/v1/admin/campaigns/{id}/failures[.csv]`).",
            response=FailurePage,
            extra=(Failure,),
        ),
        Endpoint(
            "GET",
            "/internal/unsubscribes/{token}",
            '200 or 404 `{"detail"}`. For the gateway\'s one-click route: the token (see'
            " `isseimail_shared.unsubscribe`) names a delivery, and its MAC must match that delivery's address and"
            " the campaign's sender organisation. The answers never name the address or the organisation.",
            response=TokenValid,
        ),
        Endpoint(
            "POST",
            "/internal/unsubscribes/{token}",
            "200 (idempotent: a replay answers the same and leaves one suppression row) or 404.",
            request=UnsubscribeRequest,
            response=Unsubscribed,
        ),
    ),
)
