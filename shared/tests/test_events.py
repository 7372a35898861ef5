"""Events: envelopes round-trip; anything else is an InvalidEvent with a reason, never another exception."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from isseimail_shared.events import (
    MAX_EVENT_BYTES,
    AdminCreated,
    Event,
    InvalidEvent,
    PassConsumed,
    decode,
    encode,
    envelope_for,
)


def test_roundtrip() -> None:
    """An encoded event decodes to the same envelope and payload."""
    event = PassConsumed(pass_id=7, campaign_id=uuid.uuid4(), user_id="123456")
    envelope = envelope_for(event)
    decoded_envelope, payload = decode(encode(envelope))
    assert decoded_envelope == envelope
    assert payload == event
    assert envelope.type == "pass.consumed"
    assert envelope.occurred_at.tzinfo is not None


def test_registry_is_derived_from_the_classes() -> None:
    """Every event class is registered under its type and version, and only once."""
    assert Event.registry[("admin.created", 1)] is AdminCreated
    types = [key[0] for key in Event.registry]
    assert len(types) == len(set(types))
    assert {"pass.issued", "campaign.accepted", "delivery.bounced"} <= set(types)


def _body(**overrides: object) -> bytes:
    base: dict[str, object] = {
        "event_id": str(uuid.uuid4()),
        "type": "admin.created",
        "version": 1,
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "payload": {"admin_id": 1, "email": "a@example.jp"},
    }
    base.update(overrides)
    return json.dumps(base).encode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "malformed envelope"),
        (b"[]", "malformed envelope"),
        (_body(type="no.such"), "unknown event type"),
        (_body(version=2), "unknown event type"),
        (_body(payload={"admin_id": "x", "email": "a@example.jp"}), "invalid admin.created payload"),
        (_body(payload={"admin_id": 1, "email": "a@example.jp", "extra": 1}), "invalid admin.created payload"),
        (_body(occurred_at="2026-01-01T00:00:00"), "malformed envelope"),
        (b"{" + b" " * MAX_EVENT_BYTES + b"}", "exceeds"),
    ],
)
def test_invalid_messages(body: bytes, reason: str) -> None:
    """Malformed, unknown, mistyped and oversized messages are refused with a reason for the log."""
    with pytest.raises(InvalidEvent, match=reason):
        decode(body)


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(body: bytes) -> None:
    """Whatever arrives, decode either returns an event or raises InvalidEvent."""
    with contextlib.suppress(InvalidEvent):
        decode(body)
