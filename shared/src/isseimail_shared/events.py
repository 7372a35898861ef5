"""Events: one envelope, one small pydantic model per event type, a registry derived from the classes.

The routing key of an event is its type ("pass.issued"). Consumers decode with `decode()`, which
raises `InvalidEvent` for anything that is not a well-formed envelope of a known type and version.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, ClassVar, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, ValidationError, model_validator

MAX_EVENT_BYTES = 1_048_576  # events carry ids and counts, never attachments


class InvalidEvent(ValueError):
    """A message that is not a valid event: it belongs in the dead-letter queue."""


class Event(BaseModel):
    """Base of every event payload. Subclasses set `event_type` (and `version` when it changes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    version: ClassVar[int] = 1
    registry: ClassVar[dict[tuple[str, int], type[Event]]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "event_type" in cls.__dict__:
            key = (cls.event_type, cls.version)
            if key in Event.registry:
                raise TypeError(f"event {key} defined twice")
            Event.registry[key] = cls


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    type: str = Field(min_length=1, max_length=100)
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    payload: dict[str, Any]


E = TypeVar("E", bound=Event)


def envelope_for(event: Event, *, event_id: uuid.UUID | None = None) -> Envelope:
    return Envelope(
        event_id=event_id or uuid.uuid4(),
        type=event.event_type,
        version=event.version,
        occurred_at=dt.datetime.now(dt.UTC),
        payload=event.model_dump(mode="json"),
    )


def encode(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode()


def decode(body: bytes) -> tuple[Envelope, Event]:
    """Parse and validate a message body; raises InvalidEvent with a reason fit for a log line."""
    if len(body) > MAX_EVENT_BYTES:
        raise InvalidEvent(f"event of {len(body)} bytes exceeds {MAX_EVENT_BYTES}")
    try:
        envelope = Envelope.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidEvent(f"malformed envelope: {exc.errors()[0]['msg']}") from None
    model = Event.registry.get((envelope.type, envelope.version))
    if model is None:
        raise InvalidEvent(f"unknown event type {envelope.type!r} version {envelope.version}")
    try:
        payload = model.model_validate(envelope.payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidEvent(f"invalid {envelope.type} payload at {first['loc']}: {first['msg']}") from None
    return envelope, payload


def dumps_debug(envelope: Envelope) -> str:
    return json.dumps(envelope.model_dump(mode="json"), ensure_ascii=False)


# --- event types ---------------------------------------------------------------------------------


class AdminCreated(Event):
    """An administrator account was created (at start-up or by the CLI)."""

    event_type: ClassVar[str] = "admin.created"
    admin_id: int
    email: EmailStr


class ApplicationSubmitted(Event):
    event_type: ClassVar[str] = "application.submitted"
    application_id: int
    applicant_name: str
    applicant_email: EmailStr
    department: str
    use_date: dt.date


class ApplicationRejected(Event):
    event_type: ClassVar[str] = "application.rejected"
    application_id: int
    applicant_name: str
    applicant_email: EmailStr
    use_date: dt.date
    reason: str
    admin_email: EmailStr


class PassIssued(Event):
    """The one place the plaintext password travels: Fernet-encrypted for the notifier."""

    event_type: ClassVar[str] = "pass.issued"
    pass_id: int
    application_id: int
    user_id: str = Field(pattern=r"^\d{6}$")
    use_date: dt.date
    applicant_name: str
    applicant_email: EmailStr
    admin_email: EmailStr
    encrypted_password: str
    login_url: str


class PassConsumed(Event):
    event_type: ClassVar[str] = "pass.consumed"
    pass_id: int
    campaign_id: uuid.UUID
    user_id: str


class ListValidated(Event):
    event_type: ClassVar[str] = "list.validated"
    list_id: uuid.UUID
    status: str  # "valid" or "invalid"
    rows: int = Field(ge=0)
    ok: int = Field(ge=0)
    invalid: int = Field(ge=0)
    unverified: int = Field(ge=0)


class CampaignAccepted(Event):
    event_type: ClassVar[str] = "campaign.accepted"
    campaign_id: uuid.UUID
    pass_id: int
    recipient_count: int = Field(ge=0)
    sender_email: EmailStr
    subject: str
    # The 送信者名 given at compose: the sender's reports are addressed to it (empty in events from before it was sent).
    sender_name: str = Field(default="", max_length=200)


class DeliverySucceeded(Event):
    event_type: ClassVar[str] = "delivery.succeeded"
    campaign_id: uuid.UUID
    delivery_id: int
    recipient: str
    smtp_code: int
    # The recipient's CSV row: lets the notifier name the row when a bounce for this delivery comes back.
    row_number: int | None = None


# The diagnostic of a delivery.failed the dispatcher records, without sending, for a recipient suppressed after
# 一斉送信 (an unsubscribe, complaint or hard bounce that arrived while the campaign was going out).
SUPPRESSED_AT_SEND = "isseimail: not sent, the address was suppressed after sending began"


class DeliveryFailed(Event):
    """A permanent failure while sending (5xx, or temporary failures past the retry age)."""

    event_type: ClassVar[str] = "delivery.failed"
    campaign_id: uuid.UUID
    delivery_id: int
    recipient: str
    row_number: int | None = None
    sender_email: EmailStr
    subject: str
    smtp_code: int | None = None
    enhanced_status: str | None = None
    diagnostic: str


class SettledFailure(BaseModel):
    """A permanent failure in a group of outcomes (5xx, or temporary failures past the retry age)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    delivery_id: int
    recipient: str
    row_number: int | None = None
    smtp_code: int | None = None
    enhanced_status: str | None = None
    diagnostic: str


class DeliveriesSettled(Event):
    """One committed group of a campaign's outcomes (up to a few hundred recipients), instead of an event each.

    The delivered recipients travel as three parallel lists (delivery id, CSV row, address): the notifier
    keeps them as one row per group, to name the address a later bounce or unsubscribe token points at.
    """

    event_type: ClassVar[str] = "deliveries.settled"
    campaign_id: uuid.UUID
    sender_email: EmailStr
    subject: str
    delivered_ids: list[int] = Field(default_factory=list, max_length=10_000)
    delivered_rows: list[int | None] = Field(default_factory=list, max_length=10_000)
    delivered_to: list[str] = Field(default_factory=list, max_length=10_000)
    failed: list[SettledFailure] = Field(default_factory=list, max_length=10_000)

    @model_validator(mode="after")
    def _parallel(self) -> DeliveriesSettled:
        if not len(self.delivered_ids) == len(self.delivered_rows) == len(self.delivered_to):
            raise ValueError("delivered_ids, delivered_rows and delivered_to must have the same length")
        return self


class CampaignCompleted(Event):
    event_type: ClassVar[str] = "campaign.completed"
    campaign_id: uuid.UUID
    sender_email: EmailStr
    subject: str
    total: int = Field(ge=0)
    sent: int = Field(ge=0)
    failed: int = Field(ge=0)
    started_at: AwareDatetime
    finished_at: AwareDatetime


class CampaignPaused(Event):
    """Dispatch stopped because too many recipients failed hard; the sender is told why."""

    event_type: ClassVar[str] = "campaign.paused"
    campaign_id: uuid.UUID
    sender_email: EmailStr
    subject: str
    total: int = Field(ge=0)
    sent: int = Field(ge=0)
    failed: int = Field(ge=0)
    failure_rate: float = Field(ge=0, le=1)


class DeliveryBounced(Event):
    """A bounce (DSN or non-standard) received after the message was accepted by the next hop."""

    event_type: ClassVar[str] = "delivery.bounced"
    campaign_id: uuid.UUID
    delivery_id: int
    recipient: str
    status: str | None = None
    reason: str
    hard: bool
    diagnostic: str


class DeliveryDelayed(Event):
    """A delay notice (DSN Action: delayed) for a delivery: not a failure, shown as 遅延中 until a final DSN."""

    event_type: ClassVar[str] = "delivery.delayed"
    campaign_id: uuid.UUID
    delivery_id: int
    recipient: str
    status: str | None = None
    diagnostic: str = ""
