"""The pass-service's internal API (docs/internal-api.md): request and response bodies, validated at the edge.

Text that may reach a mail header (names, department) is one line without control characters; free
text (purpose, rejection reason) may span lines but carries no other control characters.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, EmailStr, Field, IPvAnyAddress

from isseimail_shared.contracts import Endpoint, ServiceContract

# Cc control (CR, LF, NUL...), Cf format (bidi overrides), Zl/Zp line separators, Co private use (外字), Cs surrogates.
_FORBIDDEN_SINGLE = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs"}


def _single_line(value: str) -> str:
    if any(unicodedata.category(c) in _FORBIDDEN_SINGLE for c in value):
        raise ValueError("改行や制御文字、外字は使用できません。")
    value = value.strip()
    if not value:
        raise ValueError("入力してください。")
    return value


def _multi_line(value: str) -> str:
    value = value.replace("\r\n", "\n").strip()
    if any(c not in "\n\t" and unicodedata.category(c) in _FORBIDDEN_SINGLE for c in value):
        raise ValueError("制御文字や外字は使用できません。")
    if not value:
        raise ValueError("入力してください。")
    return value


def _no_line_break(value: str) -> str:
    if any(unicodedata.category(c) in _FORBIDDEN_SINGLE for c in value):
        raise ValueError("改行や制御文字は使用できません。")
    return value


def _iso_day(value: object) -> object:
    """Only "YYYY-MM-DD": no timestamps, datetimes or other formats that lax parsing would take."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or len(value) != 10 or value[4] != "-" or value[7] != "-":
        raise ValueError("日付は YYYY-MM-DD の形式で入力してください。")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("存在しない日付です。") from None


Name = Annotated[str, Field(max_length=100), AfterValidator(_single_line)]
FreeText = Annotated[str, Field(max_length=1000), AfterValidator(_multi_line)]
Reason = Annotated[str, Field(max_length=500), AfterValidator(_multi_line)]
Email = Annotated[EmailStr, Field(max_length=254)]
Day = Annotated[dt.date, BeforeValidator(_iso_day)]


def _six_digits(value: str) -> str:
    if len(value) != 6 or not all(c in "0123456789" for c in value):
        raise ValueError("ユーザーIDは6桁の数字で入力してください。")
    return value


UserId = Annotated[str, AfterValidator(_six_digits)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=5000)


class ApplicationIn(_Input):
    applicant_name: Name
    applicant_email: Email
    department: Name
    use_date: Day
    purpose: FreeText
    client_ip: IPvAnyAddress | None = None


class ApplicationOut(BaseModel):
    application_id: int
    applicant_name: str
    applicant_email: str
    department: str
    use_date: dt.date
    purpose: str
    state: Literal["pending", "approved", "rejected"]
    created_at: dt.datetime
    decided_at: dt.datetime | None = None
    decided_by: str | None = None
    reject_reason: str | None = None
    pass_id: int | None = None
    user_id: str | None = None


class ApplicationList(BaseModel):
    items: list[ApplicationOut]
    total: int


class Decision(_Input):
    admin_id: int = Field(ge=1, le=2**62)
    client_ip: IPvAnyAddress | None = None


class Rejection(Decision):
    reason: Reason


class IssuedOut(BaseModel):
    application_id: int
    pass_id: int
    user_id: str
    use_date: dt.date


SessionId = Annotated[str, Field(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


class PassLoginIn(_Input):
    user_id: UserId
    password: Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_no_line_break)]
    use_date: Day
    client_ip: IPvAnyAddress | None = None
    replaces: SessionId | None = None  # the session the browser holds now: revoked, a new id is issued


class PassOut(BaseModel):
    pass_id: int
    user_id: str
    use_date: dt.date
    state: Literal["active", "consumed", "expired", "scheduled"]


class PassListItem(PassOut):
    application_id: int
    applicant_name: str
    applicant_email: str
    consumed_at: dt.datetime | None = None
    campaign_id: uuid.UUID | None = None


class PassList(BaseModel):
    items: list[PassListItem]
    total: int


class AdminLoginIn(_Input):
    email: Annotated[str, Field(min_length=1, max_length=254), AfterValidator(_single_line)]
    password: Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_no_line_break)]
    client_ip: IPvAnyAddress | None = None
    replaces: SessionId | None = None


class AdminOut(BaseModel):
    admin_id: int
    email: str


class NewSession(BaseModel):
    """Added to a successful login's answer: the id for the gateway's cookie and when it ends."""

    session_id: str
    expires_at: dt.datetime


class PassLoginOut(PassOut, NewSession):
    pass


class AdminLoginOut(AdminOut, NewSession):
    pass


class SessionRef(_Input):
    session_id: SessionId


class SessionOut(BaseModel):
    kind: Literal["pass", "admin"]
    expires_at: dt.datetime
    pass_id: int | None = None
    user_id: str | None = None
    use_date: dt.date | None = None
    state: Literal["active", "consumed", "expired", "scheduled"] | None = None
    campaign_id: uuid.UUID | None = None  # set once the pass is consumed: the session only reads its progress
    admin_id: int | None = None
    email: str | None = None


class ConsumeIn(_Input):
    campaign_id: uuid.UUID


class ConsumeOut(BaseModel):
    won: bool


class RevokeOut(BaseModel):
    revoked: bool


CONTRACT = ServiceContract(
    name="pass-service",
    port=8081,
    intro="Applications, passes, logins and the gateway's sessions.",
    endpoints=(
        Endpoint(
            "GET",
            "/internal/passes/{pass_id}",
            "The pass as of today in ISSEIMAIL_TIMEZONE (`scheduled`: its day has not come yet); the gateway checks"
            " this on every use of a pass session and accepts only `active`; 404 when unknown.",
            response=PassOut,
        ),
        Endpoint(
            "POST",
            "/internal/passes/{pass_id}/consume",
            '200 `{"won": true}` when this call consumed the pass (and `pass.consumed` went to the outbox in the'
            " same transaction), 409 with the 失効 message otherwise (already consumed, or not its day); 404 when"
            " unknown.",
            request=ConsumeIn,
            response=ConsumeOut,
        ),
        Endpoint(
            "POST",
            "/internal/applications",
            '201 the application (`state: "pending"`); 422 per field (past day, beyond ISSEIMAIL_MAX_DAYS_AHEAD,'
            " line breaks...).",
            request=ApplicationIn,
            response=ApplicationOut,
            status=201,
        ),
        Endpoint(
            "GET",
            "/internal/applications?state=&limit=&offset=",
            "Applications, newest first.",
            response=ApplicationList,
        ),
        Endpoint(
            "GET",
            "/internal/applications/{application_id}",
            "One application; 404 when unknown.",
            response=ApplicationOut,
        ),
        Endpoint(
            "POST",
            "/internal/applications/{application_id}/approve",
            "Issues the pass (never the password: `pass.issued` carries it encrypted); 409 when already decided or"
            " its day has passed, 403 unknown admin, 404 unknown application.",
            request=Decision,
            response=IssuedOut,
            status=201,
        ),
        Endpoint(
            "POST",
            "/internal/applications/{application_id}/reject",
            "200 the application; 409 when already decided.",
            request=Rejection,
            response=ApplicationOut,
        ),
        Endpoint(
            "GET",
            "/internal/passes?limit=&offset=",
            "Issued passes, newest first, with their state as of today (the administrator's page).",
            response=PassList,
        ),
        Endpoint(
            "POST",
            "/internal/login",
            "A new session, ending with the day of use (`replaces`, the session the browser held, is revoked);"
            " 401 one generic message (unknown ID, wrong password, wrong day), 403 the 失効 message (consumed or"
            " past pass, right password), 429 with `Retry-After` while this client is throttled (per user ID and"
            " client address, and per client address).",
            request=PassLoginIn,
            response=PassLoginOut,
        ),
        Endpoint(
            "POST",
            "/internal/admin/login",
            "A new administrator session (ISSEIMAIL_ADMIN_SESSION_HOURS); 401 generic; 429 throttled as above.",
            request=AdminLoginIn,
            response=AdminLoginOut,
        ),
        Endpoint(
            "POST",
            "/internal/sessions/lookup",
            'A pass session past its day: `state` "expired"; `campaign_id` set once the pass was consumed; 404'
            " unknown, revoked or (administrator) expired.",
            request=SessionRef,
            response=SessionOut,
        ),
        Endpoint("POST", "/internal/sessions/revoke", "Ends the session.", request=SessionRef, response=RevokeOut),
    ),
)
