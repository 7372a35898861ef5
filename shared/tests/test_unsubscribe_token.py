"""Unsubscribe tokens name a delivery and verify only for its recipient and sender organisation."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from isseimail_shared.unsubscribe import (
    MAX_DELIVERY_ID,
    TOKEN_LENGTH,
    mailto_address,
    make_token,
    organisation_of,
    read_token,
    token_of_address,
    verify,
)

SECRET = b"secret"
DOMAIN = "bounce.example.jp"
ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
addresses = st.emails().map(str)
orgs = st.sampled_from(["corp.example.jp", "other.example.jp", "例え.jp", "sub.corp.example.jp"])
deliveries = st.integers(0, MAX_DELIVERY_ID)


@given(st.uuids(), deliveries, addresses, orgs)
def test_roundtrip(campaign: uuid.UUID, delivery: int, recipient: str, org: str) -> None:
    """A token reads back its delivery and verifies for its recipient (any case) and organisation."""
    token = make_token(SECRET, campaign, delivery, recipient, org)
    assert len(token) == TOKEN_LENGTH
    assert set(token) <= set(ALPHABET)
    assert len(mailto_address(token, DOMAIN).partition("@")[0]) == 64  # RFC 5321's local-part limit
    ref = read_token(token.upper())
    assert ref is not None
    assert (ref.campaign_id, ref.delivery_id) == (campaign, delivery)
    assert verify(SECRET, ref, recipient.upper(), org)


@given(st.uuids(), deliveries, addresses, orgs, orgs)
def test_other_org_or_recipient_or_key_does_not_verify(
    campaign: uuid.UUID, delivery: int, recipient: str, org: str, other_org: str
) -> None:
    """The same delivery's token does not verify for another organisation, another address or another key."""
    ref = read_token(make_token(SECRET, campaign, delivery, recipient, org))
    assert ref is not None
    assert verify(SECRET, ref, recipient, other_org) is (org == other_org)
    assert not verify(SECRET, ref, "x" + recipient, org)
    assert not verify(b"other-secret", ref, recipient, org)


@given(st.uuids(), deliveries, st.integers(0, TOKEN_LENGTH - 1), st.sampled_from(ALPHABET))
def test_tampering_is_refused(campaign: uuid.UUID, delivery: int, position: int, char: str) -> None:
    """Changing any one character gives a token that is malformed or does not verify."""
    token = make_token(SECRET, campaign, delivery, "a@example.jp", "corp.example.jp")
    tampered = token[:position] + char + token[position + 1 :]
    ref = read_token(tampered)
    if tampered == token:
        assert ref is not None
        return
    assert ref is None or not verify(SECRET, ref, "a@example.jp", "corp.example.jp")


@given(st.uuids(), deliveries, st.integers(0, TOKEN_LENGTH - 1))
def test_truncated_or_extended_tokens_are_malformed(campaign: uuid.UUID, delivery: int, cut: int) -> None:
    """A shortened or lengthened token is not a token at all."""
    token = make_token(SECRET, campaign, delivery, "a@example.jp", "corp.example.jp")
    assert read_token(token[:cut]) is None
    assert read_token(token + "a") is None
    assert read_token(token[1:] + token[:1]) is None or token[1:] + token[:1] == token


@given(st.text(max_size=300))
def test_forgeries_from_arbitrary_text_never_verify(text: str) -> None:
    """Arbitrary text never raises, and never verifies."""
    ref = read_token(text)
    assert ref is None or not verify(SECRET, ref, "a@example.jp", "corp.example.jp")
    assert token_of_address(text + "@" + DOMAIN, DOMAIN) is None or text.lower().startswith("unsubscribe+")


def test_version_byte_and_padding_bits_are_checked() -> None:
    """A token of an unknown version, or a second spelling of a token (non-zero padding bits), is refused."""
    import base64

    token = make_token(SECRET, uuid.uuid4(), 7, "a@example.jp", "corp.example.jp")
    raw = bytearray(base64.b32decode(token.upper() + "===="))
    raw[0] = 2
    assert read_token(base64.b32encode(bytes(raw)).decode().rstrip("=").lower()) is None
    last = ALPHABET.index(token[-1])
    respelled = token[:-1] + ALPHABET[last | 1] if last % 2 == 0 else token
    assert respelled == token or read_token(respelled) is None


def test_mailto_address_round_trip_and_foreign_addresses() -> None:
    """The mailto address gives its token back (MTAs may change the case); other addresses give None."""
    token = make_token(SECRET, uuid.uuid4(), 12, "a@example.jp", "corp.example.jp")
    address = mailto_address(token, DOMAIN)
    assert token_of_address(address.upper(), DOMAIN) == token
    assert token_of_address(f"<{address}>", DOMAIN) == token
    assert token_of_address(address.replace(DOMAIN, "evil.example"), DOMAIN) is None
    assert token_of_address(f"unsubscribe+{token[:-1]}@{DOMAIN}", DOMAIN) is None
    assert token_of_address(f"postmaster@{DOMAIN}", DOMAIN) is None


def test_organisation_is_the_from_domain() -> None:
    """The organisation is the lower-cased From domain, IDN as A-labels."""
    assert organisation_of("Koho@Corp.Example.JP") == "corp.example.jp"
    assert organisation_of("info@例え.jp") == "xn--r8jz45g.jp"
    assert organisation_of("nobody") == "nobody"
