"""The list-validator's internal API (docs/internal-api.md): upload, status, bad rows, recipient rows."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel

from isseimail_shared.contracts import Endpoint, ServiceContract
from isseimail_shared.mailmerge import Recipient

ListStatus = Literal["validating", "valid", "invalid"]

# One line of GET /internal/lists/{id}/rows: the recipient row the mail merge fills in (the same model).
ListRow = Recipient


class ListLimits(BaseModel):
    """What the gateway enforces while it streams an upload here."""

    max_bytes: int
    max_rows: int


class ListAccepted(BaseModel):
    list_id: uuid.UUID
    status: ListStatus
    encoding: str
    encoding_label: str
    has_header: bool
    rows: int
    domains: int


class BadRow(BaseModel):
    """An invalid or unverified row (one line of /errors); `row` as Excel numbers it, header and blank lines counted."""

    row: int
    address: str
    status: Literal["invalid", "unverified"]
    code: str
    message: str  # Japanese


class ListSummary(BaseModel):
    list_id: uuid.UUID
    pass_id: int
    status: ListStatus
    filename: str
    encoding: str
    encoding_label: str
    has_header: bool
    rows: int
    checked: int
    ok: int
    invalid: int
    unverified: int
    domains: int
    domains_pending: int
    created_at: str  # ISO 8601 as the database's timestamp answers it
    finished_at: str | None
    bad_rows: list[BadRow] = []


class SuppressedRows(BaseModel):
    list_id: uuid.UUID
    organisation: str
    total: int
    rows: list[BadRow]  # status "invalid", code "unsubscribed" | "complained" | "suppressed"
    unverified: bool


CONTRACT = ServiceContract(
    name="list-validator",
    port=8082,
    intro=(
        "Routes that name a list require the `X-Isseimail-Pass-Id` header (422 without it) and answer 404 when the"
        " list belongs to another pass (the gateway names the logged-in pass, the composer the draft's pass)."
        " Emits `list.validated` (`ListValidated`: list_id, status, rows, ok, invalid, unverified) through its"
        " outbox once every distinct domain of the list is answered."
    ),
    endpoints=(
        Endpoint(
            "POST",
            "/internal/lists",
            "The CSV as the raw request body (the gateway streams the multipart `file` part here), headers"
            " `X-Isseimail-Pass-Id` (required), `X-Isseimail-User-Id`, `X-Isseimail-Filename` (percent-encoded);"
            ' 413 past `ISSEIMAIL_LIST_MAX_BYTES` (the body is never read further), 422 `{"detail", "code",'
            ' "errors": {"file"}}` for a file that cannot be used at all (empty, binary, undecodable, header'
            " only, too many rows/columns).",
            response=ListAccepted,
            status=202,
        ),
        Endpoint("GET", "/internal/lists/limits", "What the gateway enforces while streaming.", response=ListLimits),
        Endpoint(
            "GET",
            "/internal/lists/{list_id}?bad_rows=1000",
            "Status and counts; `bad_rows` (first N in row order, `bad_rows=0` for none; empty while validating)"
            " as in `/errors`.",
            response=ListSummary,
        ),
        Endpoint(
            "GET",
            "/internal/lists/{list_id}/errors",
            "NDJSON of every invalid or unverified row in row order.",
            ndjson=BadRow,
        ),
        Endpoint(
            "GET",
            "/internal/lists/{list_id}/rows",
            "NDJSON, one object per recipient row in CSV order; `email` is what goes on the wire (IDN domain as"
            " A-labels; legacy carrier local parts quoted). Only for a `valid` list (409 otherwise); with"
            " `ISSEIMAIL_UNVERIFIED_POLICY=allow` unverified rows are included.",
            ndjson=ListRow,
        ),
        Endpoint(
            "GET",
            "/internal/lists/{list_id}/suppressed?organisation=<domain>&limit=1000",
            "The list's ok/unverified rows that the notifier suppresses for that sender organisation (its"
            " unsubscribes and complaints, and every bounce), in row order, with the Japanese reason. A list is"
            " uploaded before the sender is known, so the upload itself checks bounces only; the composer's"
            " ready-check asks this with the From domain. 503 when the notifier cannot be asked (under"
            ' `ISSEIMAIL_UNVERIFIED_POLICY=allow`: no rows, `"unverified": true`); 422 for an organisation that'
            " is not a domain name; 404 for another pass's list.",
            response=SuppressedRows,
        ),
    ),
)
