"""Pure logic of the pass: credentials, validators, day boundaries (no servers)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from isseimail_pass.clock import today
from isseimail_pass.credentials import (
    PASSWORD_ALPHABET,
    encrypt_for_notifier,
    hash_password,
    new_password,
    new_user_id,
    verify_password,
)
from isseimail_pass.settings import PassSettings
from isseimail_shared.contracts.pass_service import ApplicationIn, PassLoginIn
from isseimail_testing.fixtures import CREDENTIALS_KEY

LOOK_ALIKES = set("0Oo1lI")


def test_passwords_avoid_look_alikes_and_vary() -> None:
    """Passwords have the requested length, no look-alike characters, and do not repeat."""
    seen = {new_password(12) for _ in range(2000)}
    assert len(seen) == 2000
    assert all(len(p) == 12 and not (set(p) & LOOK_ALIKES) for p in seen)
    assert not set(PASSWORD_ALPHABET) & LOOK_ALIKES
    assert set("".join(seen)) == set(PASSWORD_ALPHABET)  # every symbol of the alphabet is used


def test_user_ids_are_six_digits() -> None:
    """User IDs are exactly six ASCII digits, leading zeros kept."""
    ids = [new_user_id() for _ in range(5000)]
    assert all(len(i) == 6 and i.isascii() and i.isdigit() for i in ids)


def test_hash_verify_and_encrypt_round_trip() -> None:
    """The Argon2 hash verifies only the right password; the Fernet token decrypts with the shared key."""
    password = new_password(12)
    stored = hash_password(password)
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, password)
    assert not verify_password(stored, password + "x")
    assert not verify_password(None, password)
    assert not verify_password("not a hash", password)
    token = encrypt_for_notifier(CREDENTIALS_KEY, password)
    assert password not in token
    assert Fernet(CREDENTIALS_KEY.encode()).decrypt(token.encode()).decode() == password


def test_day_of_use_follows_tokyo_midnight() -> None:
    """15:00 UTC is already the next day in Asia/Tokyo; 14:59 UTC is not."""
    assert today(lambda: dt.datetime(2026, 12, 2, 14, 59, tzinfo=dt.UTC), "Asia/Tokyo") == dt.date(2026, 12, 2)
    assert today(lambda: dt.datetime(2026, 12, 2, 15, 0, tzinfo=dt.UTC), "Asia/Tokyo") == dt.date(2026, 12, 3)
    jst = ZoneInfo("Asia/Tokyo")
    assert today(lambda: dt.datetime(2026, 12, 3, 0, 0, tzinfo=jst), "UTC") == dt.date(2026, 12, 2)


def test_settings_require_a_valid_fernet_key() -> None:
    """PassSettings refuse a missing or malformed credentials key, without echoing it."""
    with pytest.raises(ValidationError):
        PassSettings()  # type: ignore[call-arg]
    with pytest.raises(ValidationError) as info:
        PassSettings(credentials_key="secret-but-not-fernet")
    assert "secret-but-not-fernet" not in str(info.value)
    assert PassSettings(credentials_key=CREDENTIALS_KEY).credentials_key.get_secret_value() == CREDENTIALS_KEY


def _app(name: str) -> ApplicationIn:
    return ApplicationIn(
        applicant_name=name, applicant_email="a@example.jp", department="部", use_date="2026-12-03", purpose="p"
    )


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_accepted_names_never_carry_line_breaks_or_controls(name: str) -> None:
    """Whatever text is offered as a name, an accepted one is ≤100 chars, non-empty, without CR/LF or controls."""
    try:
        accepted = _app(name).applicant_name
    except ValidationError:
        return
    assert 0 < len(accepted) <= 100
    assert not any(c in accepted for c in "\r\n\x00\x0b\x0c\x85\u2028\u2029")
    assert accepted == accepted.strip()


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=8))
def test_login_user_id_accepts_only_six_ascii_digits(user_id: str) -> None:
    """A login's user ID validates iff it is six ASCII digits."""
    ok = len(user_id) == 6 and all(c in "0123456789" for c in user_id)
    try:
        PassLoginIn(user_id=user_id, password="x", use_date="2026-12-03")
    except ValidationError:
        assert not ok
    else:
        assert ok


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.dates().map(dt.date.isoformat), st.text(max_size=12), st.integers(), st.datetimes().map(str)))
def test_day_of_use_accepts_only_iso_dates(value: object) -> None:
    """A day of use validates iff it is a real calendar date written YYYY-MM-DD."""
    try:
        expected: dt.date | None = dt.date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        expected = None
    if expected is not None and (value != expected.isoformat()):
        expected = None  # fromisoformat is lenient on 3.11 for some forms; the API wants exactly YYYY-MM-DD
    try:
        parsed = PassLoginIn(user_id="123456", password="x", use_date=value).use_date  # type: ignore[arg-type]
    except ValidationError:
        assert expected is None, value
    else:
        assert parsed == expected, value


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=1100))
def test_accepted_purpose_keeps_only_newlines_and_tabs_as_controls(purpose: str) -> None:
    """An accepted purpose is ≤1000 chars, non-empty, with LF/TAB as its only control characters (CRLF → LF)."""
    try:
        accepted = ApplicationIn(
            applicant_name="a", applicant_email="a@example.jp", department="部", use_date="2026-12-03", purpose=purpose
        ).purpose
    except ValidationError:
        return
    assert 0 < len(accepted) <= 1000
    assert "\r" not in accepted
    assert all(c in "\n\t" or ord(c) >= 32 for c in accepted)
