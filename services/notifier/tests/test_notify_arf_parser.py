"""The ARF parser: RFC 5965's examples and a provider-style report are read; anything else is 'not a report'."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isseimail_notifier.arf_parser import FEEDBACK_TYPES, parse_arf

FEEDBACK = Path(__file__).parent / "feedback"

# file: (is_report, feedback_type, is a complaint, has the original)
EXPECTED = {
    "rfc5965-b1-simple.eml": (True, "abuse", True, True),
    "rfc5965-b2-optional-fields.eml": (True, "abuse", True, True),
    "provider-headers-only.eml": (True, "abuse", True, True),
    "not-spam.eml": (True, "not-spam", False, True),
    "malformed-no-feedback-type.eml": (False, None, False, False),
    "malformed-truncated.eml": (False, None, False, False),
    "plain-complaint-letter.eml": (False, None, False, False),
}


def test_every_fixture_has_an_expectation() -> None:
    """Each file in tests/feedback is checked."""
    assert sorted(p.name for p in FEEDBACK.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_is_understood(name: str) -> None:
    """Reports are recognised with their feedback type; the rest say why they are not reports."""
    report = parse_arf((FEEDBACK / name).read_bytes())
    assert (report.is_report, report.feedback_type, report.is_complaint, report.has_original) == EXPECTED[name]
    if not report.is_report:
        assert report.note


def test_optional_fields_of_rfc5965_b2() -> None:
    """Original-Mail-From, Original-Rcpt-To, Source-IP, Reported-Domain and the original's Message-ID are read."""
    report = parse_arf((FEEDBACK / "rfc5965-b2-optional-fields.eml").read_bytes())
    assert report.user_agent == "SomeGenerator/1.0"
    assert report.version == "1"
    assert report.original_mail_from == "somespammer@example.net"
    assert report.original_rcpt_to == ("user@example.com",)
    assert report.source_ip == "192.0.2.1"
    assert report.reported_domain == "example.net"
    assert report.arrival_date == "Thu, 8 Mar 2005 14:00:00 EDT"
    assert report.message_id == "8787KJKJ3K4J3K4J3K4J3.mail@example.net"
    assert report.envelope_senders() == ["somespammer@example.net"]


def test_headers_only_original_gives_our_tags() -> None:
    """From a text/rfc822-headers original: the Return-Path and List-Unsubscribe (where our tags are)."""
    raw = (FEEDBACK / "provider-headers-only.eml").read_bytes()
    raw = raw.replace(b"@@RETURN_PATH@@", b"b-abc@bounce.isseimail.localhost")
    raw = raw.replace(b"@@LIST_UNSUBSCRIBE@@", b"<mailto:unsubscribe+xyz@bounce.isseimail.localhost>")
    report = parse_arf(raw)
    assert report.return_path == "b-abc@bounce.isseimail.localhost"
    assert report.list_unsubscribe == "<mailto:unsubscribe+xyz@bounce.isseimail.localhost>"
    assert report.envelope_senders() == ["b-abc@bounce.isseimail.localhost"] * 2


def test_unknown_feedback_type_counts_as_other() -> None:
    """A Feedback-Type outside the registry is 'other' (still a complaint), with a note."""
    raw = (FEEDBACK / "rfc5965-b1-simple.eml").read_bytes().replace(b"Feedback-Type: abuse", b"Feedback-Type: Opt-Out")
    report = parse_arf(raw)
    assert report.feedback_type == "other"
    assert report.is_complaint
    assert report.note
    assert "opt-out" in report.note


def test_oversized_input_is_refused_cheaply() -> None:
    """Beyond the size cap the parser does not even look."""
    report = parse_arf(b"x" * (20 * 1024 * 1024 + 1))
    assert not report.is_report
    assert report.note
    assert "larger" in report.note


def test_deep_nesting_is_bounded() -> None:
    """A report buried under hundreds of multipart levels is not searched for (bounded work, no recursion error)."""
    inner = b"Content-Type: message/feedback-report\n\nFeedback-Type: abuse\n"
    for level in range(300):
        inner = (
            f'Content-Type: multipart/mixed; boundary="b{level}"\n\n--b{level}\n'.encode()
            + inner
            + f"\n--b{level}--\n".encode()
        )
    report = parse_arf(inner)
    assert not report.is_report


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4000))
def test_any_bytes_give_a_result(data: bytes) -> None:
    """Arbitrary bytes never raise."""
    report = parse_arf(data)
    assert report.is_report or report.note


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(sorted(EXPECTED)),
    st.integers(min_value=0, max_value=3000),
    st.binary(max_size=50),
)
def test_mangled_fixtures_never_raise(name: str, cut: int, junk: bytes) -> None:
    """Truncated or corrupted reports parse to something sane: a known type or 'not a report'."""
    raw = (FEEDBACK / name).read_bytes()
    report = parse_arf(raw[:cut] + junk + raw[cut + len(junk) :])
    assert report.feedback_type is None or report.feedback_type in FEEDBACK_TYPES
    assert report.is_report or report.note
    assert all(len(a) <= 500 for a in report.original_rcpt_to)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=2000))
def test_hostile_field_values_are_bounded(value: str) -> None:
    """Whatever a field holds, values come back single-line and capped."""
    raw = (FEEDBACK / "rfc5965-b2-optional-fields.eml").read_bytes()
    one_line = value.replace("\r", " ").replace("\n", " ")
    raw = raw.replace(b"SomeGenerator/1.0", one_line.encode("utf-8", "replace"))
    report = parse_arf(raw)
    if report.user_agent is not None:
        assert len(report.user_agent) <= 500
        assert "\n" not in report.user_agent
