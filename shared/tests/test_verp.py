"""VERP addresses name campaign and delivery; forged, altered or foreign ones are refused."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from isseimail_shared.verp import bounce_address, parse_bounce_address

SECRET = b"secret"
DOMAIN = "bounce.example.jp"


@given(st.uuids(), st.integers(0, 10**16 - 1))
def test_roundtrip(campaign: uuid.UUID, delivery: int) -> None:
    """Any campaign and delivery id survive the round trip, also lower-cased, within 64 characters."""
    address = bounce_address(SECRET, DOMAIN, campaign, delivery)
    assert len(address.split("@")[0]) <= 64
    tag = parse_bounce_address(SECRET, DOMAIN, address.upper())
    assert tag is not None
    assert (tag.campaign_id, tag.delivery_id) == (campaign, delivery)


def test_forgeries_are_refused() -> None:
    """A changed delivery id, another key, another domain or garbage gives no tag."""
    campaign = uuid.uuid4()
    good = bounce_address(SECRET, DOMAIN, campaign, 41)
    local, _, _ = good.partition("@")
    parts = local.split("-")
    altered = f"{parts[0]}-{parts[1]}-42-{parts[3]}@{DOMAIN}"
    assert parse_bounce_address(SECRET, DOMAIN, good) is not None
    assert parse_bounce_address(SECRET, DOMAIN, altered) is None
    assert parse_bounce_address(b"other", DOMAIN, good) is None
    assert parse_bounce_address(SECRET, "other.example.jp", good.replace(DOMAIN, "other.example.jp")) is None
    assert parse_bounce_address(SECRET, DOMAIN, f"postmaster@{DOMAIN}") is None


@given(st.text(max_size=200))
def test_any_text_is_safe(text: str) -> None:
    """Arbitrary recipient text never raises; it is simply not a tag."""
    assert parse_bounce_address(SECRET, DOMAIN, text + "@" + DOMAIN) is None or text.startswith("b-")
