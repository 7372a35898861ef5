"""The bounce parser: hand-made copies of real MTAs' bounces, hostile input, and totality."""

from __future__ import annotations

import base64
import json
import quopri
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isseimail_notifier.bounce_parser import BounceResult, parse_bounce
from isseimail_notifier.reasons import REASONS, classify

BOUNCES = Path(__file__).parent / "bounces"

# file: (is_bounce, recipient, status, reason, hard); a status the bounce lacks is derived from the reason.
EXPECTED: dict[str, tuple[bool, str | None, str | None, str, bool]] = {
    "rfc3464-simple.eml": (True, "louisl@larry.slip.umd.edu", "4.0.0", "networkerror", False),
    "rfc3464-multiple.eml": (True, "arathib@vnet.ibm.com", "5.0.0", "userunknown", True),
    "rfc3464-delayed.eml": (False, "slow@example.org", "4.4.1", "delayed", False),
    "postfix-userunknown.eml": (True, "nobody-here@example.co.jp", "5.1.1", "userunknown", True),
    "postfix-mailboxfull.eml": (True, "full@example.co.jp", "5.2.2", "mailboxfull", False),
    "exim-userunknown.eml": (True, "ghost@example.com", "5.1.1", "userunknown", True),
    "exim-expired.eml": (True, "late@example.net", "5.4.7", "expired", False),
    "sendmail-hostunknown.eml": (True, "user@no-such-domain.example", "5.1.2", "hostunknown", True),
    "sendmail-plain-mesgtoolarge.eml": (True, "big@example.org", "5.3.4", "mesgtoobig", False),
    "exchange-recipnotfound.eml": (True, "departed@contoso.example", "5.1.10", "userunknown", True),
    "exchange-legacy-plain.eml": (True, "quota.user@corp.example", "5.2.2", "mailboxfull", False),
    "gmail-overquota.eml": (True, "fullbox@gmail.com", "5.2.2", "mailboxfull", False),
    "gmail-spam.eml": (True, "target@gmail.com", "5.7.1", "spamdetected", False),
    "carrier-docomo-filtered.eml": (True, "keitai.user@docomo.ne.jp", "5.2.0", "filtered", False),
    "carrier-au-userunknown.eml": (True, "nobody.x@ezweb.ne.jp", "5.1.1", "userunknown", True),
    "qmail-userunknown.eml": (True, "nouser@qmail.example.jp", "5.1.1", "userunknown", True),
    "vacation-autoreply.eml": (False, None, None, "vacation", False),
    "not-a-bounce.eml": (False, None, None, "undefined", False),
    "dsn-no-recipient.eml": (False, None, None, "undefined", False),
}
FAMILIES = sorted(p.parent.name for p in BOUNCES.glob("*/expected.json"))
FAMILY_CASES = [
    (family, name, verdict)
    for family in FAMILIES
    for name, verdict in json.loads((BOUNCES / family / "expected.json").read_text(encoding="utf-8")).items()
]


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


def test_every_family_fixture_has_an_expectation() -> None:
    """Each vendor family has at least three fixtures, every one of them in its expected.json."""
    for family in FAMILIES:
        listed = set(json.loads((BOUNCES / family / "expected.json").read_text(encoding="utf-8")))
        assert sorted(p.name for p in (BOUNCES / family).glob("*.eml")) == sorted(listed), family
        assert len(listed) >= 3, family


@pytest.mark.parametrize(("family", "name", "verdict"), FAMILY_CASES, ids=[f"{f}/{n}" for f, n, _ in FAMILY_CASES])
def test_vendor_family_fixture(family: str, name: str, verdict: dict[str, object]) -> None:
    """Each vendor's format gives the expected verdict: bounce or not, hard/soft, reason, status, recipient, action."""
    result = parse_bounce((BOUNCES / family / name).read_bytes())
    got = {
        "is_bounce": result.is_bounce,
        "reason": result.reason,
        "hard": result.hard,
        "status": result.status,
        "recipient": result.recipient,
        "action": result.action,
    }
    assert got == verdict


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
        ("5.1.1", "552 mailbox is over quota", 552, "mailboxfull"),
        ("5.1.1", "procmail: Quota exceeded while writing", None, "mailboxfull"),
        ("5.1.1", "Command died with status 1: /usr/bin/procmail", None, "mailererror"),
        ("5.1.1", "too many recipients this hour", None, "ratelimited"),
        ("5.2.1", "550 5.2.1 user unknown", 550, "userunknown"),
        ("5.1.1", "550 5.1.1 Requested action not taken: rejected", 550, "userunknown"),
        ("5.7.1", "Message rejected due to local policy", 550, "policyviolation"),
        ("5.0.0", "connect to mx.example[192.0.2.1]:25: Connection refused", None, "networkerror"),
        ("5.1.0", "550 5.1.0 Sender address rejected: Domain not found", 550, "rejected"),
        ("5.4.1", "550 5.4.1 Recipient address rejected: Access denied", 550, "userunknown"),
        (None, "指定されたユーザは存在しません", None, "userunknown"),
        (None, "retry time not reached for any host after a long failure period", None, "expired"),
        (None, "delivery temporarily suspended: connect to x: Connection refused", None, "networkerror"),
        (None, "Account suspended", None, "suspend"),
        (None, "Message size exceeds fixed maximum message size", 552, "mesgtoobig"),
        (None, "", 552, "mailboxfull"),
        (None, "", None, "undefined"),
        ("5.7.26", "", None, "authfailure"),
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
    if result.hard:
        assert result.is_bounce
    if not result.is_bounce:
        assert result.reason in {"undefined", "vacation", "delayed", "delivered", "feedback"}


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


_success_action = st.sampled_from(["delivered", "relayed", "expanded", "deliverable", "Delivered", "RELAYED"])
_success_status = st.builds(lambda a, b: f"2.{a}.{b}", st.integers(0, 9), st.integers(0, 30))
_any_status = st.builds(lambda c, a, b: f"{c}.{a}.{b}", st.sampled_from("245"), st.integers(0, 9), st.integers(0, 30))
_diag_words = st.sampled_from(
    ["550 5.1.1 user unknown", "mailbox full", "250 Ok", "No such user", "rejected", "", "552 over quota", "5.0.0"]
)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.tuples(_success_action, _any_status),
        st.tuples(st.sampled_from(["failed", "delayed", "", "failed (bad)", "delivered"]), _success_status),
    ),
    _diag_words,
    st.booleans(),
)
def test_no_success_is_ever_a_failure(pair: tuple[str, str], diagnostic: str, with_text: bool) -> None:
    """Any 2.x.x status or a success action (delivered/relayed/expanded/deliverable) is never a failure."""
    action, status = pair
    block = "Final-Recipient: rfc822; ok@example.jp\n" + (f"Action: {action}\n" if action else "")
    block += f"Status: {status}\n" + (f"Diagnostic-Code: smtp; {diagnostic}\n" if diagnostic else "")
    raw = _dsn(block) if with_text else _dsn(block).replace(b"text/plain\n\nfailed\n", b"text/plain\n\n\n")
    result = parse_bounce(raw)
    assert not result.is_bounce
    assert not result.hard
    assert result.reason in {"delivered", "delayed", "undefined"}


@settings(max_examples=150, deadline=None)
@given(_success_status, st.sampled_from(["250 Ok", "250 2.0.0 queued", "accepted", ""]))
def test_plain_success_report_is_not_a_failure(status: str, reply: str) -> None:
    """A plain-text report that carries only a 2.x.x status (no 4xx/5xx anywhere) is not a failure."""
    raw = (
        "From: MAILER-DAEMON@mx.example\nSubject: Delivery Status Notification\n\n"
        f"<ok@example.jp>: delivered {status} {reply}\n"
    ).encode()
    assert parse_bounce(raw).is_bounce is False


@pytest.mark.parametrize(
    ("diag", "status", "expected"),
    [
        ("550 5.1.1 <a@example.jp>... User unknown", "5.0.0", "5.1.1"),
        ("550 5.2.2 mailbox full", "5.0.0", "5.2.2"),
        ("550 user unknown", "5.0.0", "5.0.0"),
        ("450 4.2.2 over quota", "4.0.0", "4.2.2"),
    ],
)
def test_generic_status_gives_way_to_the_specific_one_in_the_text(diag: str, status: str, expected: str) -> None:
    """A DSN's x.0.0 is replaced by the specific status its diagnostic carries."""
    block = f"Final-Recipient: rfc822; a@example.jp\nAction: failed\nStatus: {status}\nDiagnostic-Code: smtp; {diag}\n"
    assert parse_bounce(_dsn(block)).status == expected


def test_footer_and_message_id_addresses_are_never_the_recipient() -> None:
    """In a free-form bounce the recipient comes from a recipient position or the returned headers."""
    raw = (
        b"From: MAILER-DAEMON@provider.example\nSubject: Undeliverable\n\n"
        b"Message-ID: <AB12CD34EF56AB78CD90@mail.example.jp>\n"
        b"Your message could not be delivered. 550 5.1.1 no such user.\n"
        b"Please contact support@provider.example for help.\n\n"
        b"------ Original message ------\nTo: real@target.example\nSubject: hi\n"
    )
    result = parse_bounce(raw)
    assert (result.is_bounce, result.recipient, result.reason) == (True, "real@target.example", "userunknown")


@settings(max_examples=150, deadline=None)
@given(st.from_regex(r"[a-z]{1,10}@[a-z]{1,10}", fullmatch=True), st.text(max_size=300))
def test_unqualified_addresses_are_never_the_recipient(address: str, noise: str) -> None:
    """user@host without a dot in the domain is never taken as the failed recipient."""
    raw = (
        f"From: MAILER-DAEMON@mx.example\nSubject: Returned mail\n\n<{address}>: 550 5.1.1 user unknown\n{noise}\n"
    ).encode()
    result = parse_bounce(raw)
    if result.recipient is not None:
        domain = result.recipient.rpartition("@")[2]
        assert "." in domain
