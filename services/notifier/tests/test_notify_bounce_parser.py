"""The bounce parser: hand-made copies of real MTAs' bounces, hostile input, and totality."""

from __future__ import annotations

import base64
import quopri
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isseimail_notifier.bounce_parser import BounceResult, parse_bounce
from isseimail_notifier.reasons import REASONS, classify

BOUNCES = Path(__file__).parent / "bounces"

# file: (is_bounce, recipient, status, reason, hard)
EXPECTED: dict[str, tuple[bool, str | None, str | None, str, bool]] = {
    "rfc3464-simple.eml": (True, "louisl@larry.slip.umd.edu", "4.0.0", "networkerror", False),
    "rfc3464-multiple.eml": (True, "arathib@vnet.ibm.com", "5.0.0", "userunknown", True),
    "rfc3464-delayed.eml": (False, "slow@example.org", "4.4.1", "delayed", False),
    "postfix-userunknown.eml": (True, "nobody-here@example.co.jp", "5.1.1", "userunknown", True),
    "postfix-mailboxfull.eml": (True, "full@example.co.jp", "5.2.2", "mailboxfull", False),
    "exim-userunknown.eml": (True, "ghost@example.com", "5.1.1", "userunknown", True),
    "exim-expired.eml": (True, "late@example.net", None, "expired", False),
    "sendmail-hostunknown.eml": (True, "user@no-such-domain.example", "5.1.2", "hostunknown", True),
    "sendmail-plain-mesgtoolarge.eml": (True, "big@example.org", "5.3.4", "mesgtoolarge", False),
    "exchange-recipnotfound.eml": (True, "departed@contoso.example", "5.1.10", "userunknown", True),
    "exchange-legacy-plain.eml": (True, "quota.user@corp.example", "5.2.2", "mailboxfull", False),
    "gmail-overquota.eml": (True, "fullbox@gmail.com", "5.2.2", "mailboxfull", False),
    "gmail-spam.eml": (True, "target@gmail.com", "5.7.1", "spamdetected", False),
    "carrier-docomo-filtered.eml": (True, "keitai.user@docomo.ne.jp", None, "filtered", True),
    "carrier-au-userunknown.eml": (True, "nobody.x@ezweb.ne.jp", None, "userunknown", True),
    "qmail-userunknown.eml": (True, "nouser@qmail.example.jp", "5.1.1", "userunknown", True),
    "vacation-autoreply.eml": (False, None, None, "vacation", False),
    "not-a-bounce.eml": (False, None, None, "undefined", False),
    "dsn-no-recipient.eml": (False, None, None, "undefined", False),
}


def test_every_fixture_has_an_expectation() -> None:
    """Each file in tests/bounces is checked (a new fixture without an expectation fails here)."""
    assert sorted(p.name for p in BOUNCES.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_is_understood(name: str) -> None:
    """The parser finds the failed recipient, status, reason and hardness each MTA's format carries."""
    result = parse_bounce((BOUNCES / name).read_bytes())
    assert (result.is_bounce, result.recipient, result.status, result.reason, result.hard) == EXPECTED[name]
    if result.is_bounce:
        assert result.diagnostic, "a real bounce keeps the server's own words"
    else:
        assert result.note


def test_diagnostic_keeps_the_servers_text() -> None:
    """The diagnostic is the remote server's reply, not the MTA's boilerplate."""
    result = parse_bounce((BOUNCES / "postfix-userunknown.eml").read_bytes())
    assert "User unknown in virtual mailbox table" in result.diagnostic
    carrier = parse_bounce((BOUNCES / "carrier-docomo-filtered.eml").read_bytes())
    assert "受信拒否設定" in carrier.diagnostic


def _dsn(blocks: str, extra_headers: str = "") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example\nSubject: Undelivered Mail Returned to Sender\n"
        + extra_headers
        + "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nfailed\n\n--b\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.example\n\n" + blocks + "\n--b--\n"
    ).encode()


def test_ten_thousand_recipients_cost_little() -> None:
    """A report with 10,000 recipient blocks gives one result quickly, keeping a bounded list."""
    blocks = "".join(
        f"Final-Recipient: rfc822; u{i}@example.jp\nAction: failed\nStatus: 5.1.1\n\n" for i in range(10_000)
    )
    start = time.monotonic()
    result = parse_bounce(_dsn(blocks))
    assert time.monotonic() - start < 5
    assert result.is_bounce
    assert result.recipient == "u0@example.jp"
    assert len(result.recipients) == 100


def test_nested_rfc822_ten_levels_deep() -> None:
    """A bounce wrapped in ten levels of message/rfc822 is handled without recursion trouble."""
    inner = b"From: x@example.jp\nSubject: hi\n\nbody\n"
    for level in range(10):
        inner = (
            (
                f"From: MAILER-DAEMON@l{level}.example\nSubject: Returned mail\nMIME-Version: 1.0\n"
                f'Content-Type: multipart/mixed; boundary="n{level}"\n\n--n{level}\nContent-Type: text/plain\n\n'
                f"<deep{level}@example.jp>: 550 5.1.1 user unknown\n\n--n{level}\nContent-Type: message/rfc822\n\n"
            ).encode()
            + inner
            + f"\n--n{level}--\n".encode()
        )
    result = parse_bounce(inner)
    assert result.is_bounce
    assert result.recipient == "deep9@example.jp"
    assert result.reason == "userunknown"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"Content-Type: multipart/report; boundary=\n\n--\n--",
        b"From: MAILER-DAEMON@x\nSubject: Returned mail\nContent-Type: text/plain; charset=x-no-such-charset\n\n"
        b"<a@b.jp>: 550 5.1.1 no such user \xff\xfe",
        b'From: MAILER-DAEMON@x\nSubject: =?bogus?Q?=ZZ?=\nContent-Type: text/plain; charset="utf-8"\n'
        b"Content-Transfer-Encoding: base64\n\n!!!not base64!!!",
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="q"\n\n--q\n'
        b"Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n%%%%\n--q--",
        b"Content-Type: multipart/mixed; boundary=a\n\n" + b"--a\nContent-Type: multipart/mixed; boundary=a\n\n" * 500,
    ],
)
def test_malformed_input_is_not_a_bounce_or_a_clean_result(raw: bytes) -> None:
    """Malformed MIME, bad charsets and broken encodings give a result, never an exception."""
    result = parse_bounce(raw)
    assert isinstance(result, BounceResult)
    assert result.reason in REASONS


def test_too_large_is_refused_by_the_parser() -> None:
    """Input beyond the parser's own limit is recorded as not-a-bounce without being parsed."""
    result = parse_bounce(b"x" * (21 * 1024 * 1024))
    assert not result.is_bounce
    assert result.note is not None
    assert "larger" in result.note


@pytest.mark.parametrize("encoding", ["base64", "quoted-printable"])
def test_transfer_encoded_delivery_status_is_read(encoding: str) -> None:
    """A message/delivery-status part sent base64 or quoted-printable encoded is decoded first."""
    fields = (
        b"Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822; enc@example.jp\nAction: failed\nStatus: 5.2.2\n"
        b"Diagnostic-Code: smtp; 552 5.2.2 mailbox full\n"
    )
    encoded = base64.encodebytes(fields) if encoding == "base64" else quopri.encodestring(fields)
    raw = (
        b"From: MAILER-DAEMON@x\nSubject: Returned mail\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=q\n\n--q\n"
        b"Content-Type: text/plain\n\nfailed\n--q\nContent-Type: message/delivery-status\n"
        b"Content-Transfer-Encoding: " + encoding.encode() + b"\n\n" + encoded + b"--q--\n"
    )
    result = parse_bounce(raw)
    assert (result.is_bounce, result.recipient, result.status, result.reason) == (
        True,
        "enc@example.jp",
        "5.2.2",
        "mailboxfull",
    )


def test_read_receipt_is_not_a_bounce() -> None:
    """A message disposition notification (read receipt) is not a bounce."""
    raw = (
        b"From: a@example.jp\nSubject: Read: hi\nContent-Type: multipart/report; "
        b'report-type=disposition-notification; boundary="m"\n\n--m\nContent-Type: text/plain\n\nread\n--m--\n'
    )
    assert parse_bounce(raw).is_bounce is False


@pytest.mark.parametrize(
    ("status", "text", "code", "reason"),
    [
        ("5.1.1", "whatever", None, "userunknown"),
        ("5.2.2", "", None, "mailboxfull"),
        ("5.7.1", "blocked using zen.spamhaus.org", None, "blocked"),
        ("5.7.1", "rejected as spam", None, "spamdetected"),
        ("5.7.1", "", None, "rejected"),
        ("4.4.7", "", None, "expired"),
        (None, "delivery temporarily suspended: connect to x: Connection refused", None, "networkerror"),
        (None, "Account suspended", None, "suspend"),
        (None, "Message size exceeds fixed maximum message size", 552, "mesgtoolarge"),
        (None, "", 552, "mailboxfull"),
        (None, "", None, "undefined"),
        ("5.7.26", "", None, "policyviolation"),
        (None, "容量が一杯です", None, "mailboxfull"),
    ],
)
def test_classification(status: str | None, text: str, code: int | None, reason: str) -> None:
    """Status codes decide when specific, the text otherwise, the class last."""
    assert classify(status, text, code) == reason


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_any_bytes_give_a_result(raw: bytes) -> None:
    """Any byte string parses to a result with a reason from the vocabulary."""
    result = parse_bounce(raw)
    assert result.reason in REASONS
    assert result.hard == (result.is_bounce and result.reason in {"userunknown", "hostunknown", "filtered"})


_field = st.sampled_from(
    ["Final-Recipient", "Original-Recipient", "Action", "Status", "Diagnostic-Code", "Remote-MTA", "X-Junk", ""]
)
_value = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.tuples(_field, _value), max_size=6), max_size=6), st.text(max_size=200))
def test_any_dsn_shaped_input_gives_a_result(blocks: list[list[tuple[str, str]]], subject: str) -> None:
    """Structured but arbitrary delivery-status fields never raise; a bounce always names a recipient."""
    body = "\n\n".join("\n".join(f"{k}: {v}" for k, v in block) for block in blocks)
    raw = _dsn(body, f"X-Subject-Echo: {subject.splitlines()[0] if subject.splitlines() else ''}\n")
    result = parse_bounce(raw)
    assert result.reason in REASONS
    if result.is_bounce:
        assert result.recipient


@settings(max_examples=120, deadline=None)
@given(st.text(max_size=3000), st.sampled_from(["utf-8", "iso-2022-jp", "shift_jis", "bogus-cs"]))
def test_any_plain_text_bounce_gives_a_result(text: str, charset: str) -> None:
    """Arbitrary text in a daemon's bounce, in any (even unknown) charset, never raises."""
    encoded = text.encode(charset if charset != "bogus-cs" else "utf-8", "replace")
    raw = (
        f"From: MAILER-DAEMON@x.example\nSubject: Returned mail\nContent-Type: text/plain; charset={charset}\n\n"
    ).encode() + encoded
    result = parse_bounce(raw)
    assert result.reason in REASONS
    if result.is_bounce:
        assert result.recipient
        assert "@" in result.recipient
