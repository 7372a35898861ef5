"""Pure logic of the dispatcher: batch messages, SMTP transparency, batching, backoff, settings."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from isseimail_dispatcher.outcomes import MAX_BACKOFF, backoff
from isseimail_dispatcher.settings import DispatcherSettings, DomainLimit
from isseimail_dispatcher.smtp_client import Reply, prepare_data
from isseimail_dispatcher.work_messages import BatchMessage
from isseimail_dispatcher.worker import token_chunk
from isseimail_shared.work import InvalidMessage


@given(st.integers(min_value=1, max_value=2**63 - 1))
def test_batch_message_round_trips(batch_id: int) -> None:
    """What the scheduler publishes, the worker decodes back to the same id; the body is `{"batch_id": n}`."""
    message = BatchMessage(batch_id=batch_id)
    assert json.loads(message.encode()) == {"batch_id": batch_id}
    assert BatchMessage.decode(message.encode()) == message
    assert BatchMessage.decode(json.dumps({"batch_id": batch_id}).encode()).batch_id == batch_id  # the older bytes


@given(st.binary(max_size=2000))
def test_any_bytes_decode_or_raise_invalid_message(body: bytes) -> None:
    """Garbage never escapes as another exception type (which would requeue instead of dead-lettering)."""
    with contextlib.suppress(InvalidMessage):
        assert BatchMessage.decode(body).batch_id > 0


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_any_json_decodes_or_raises_invalid_message(value: object) -> None:
    """Well-formed JSON of the wrong shape is refused, never accepted by accident (nor coerced: "1", 1.0, true)."""
    body = json.dumps({"batch_id": value}).encode()
    try:
        decoded = BatchMessage.decode(body).batch_id
    except InvalidMessage:
        return
    assert type(value) is int
    assert decoded == value


def test_oversized_or_extended_batch_messages_are_refused() -> None:
    """A body over 1 KiB or with another field is invalid even when it holds a good batch id."""
    for body in (b'{"batch_id": 1}' + b" " * 1024, b'{"batch_id": 1, "x": 2}', b'{"batch_id": 0}', b"[1]"):
        with pytest.raises(InvalidMessage):
            BatchMessage.decode(body)


def unstuff(data: bytes) -> bytes:
    lines = data.split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


lines = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")), max_size=20)


@given(lines)
def test_prepare_data_is_transparent(parts: list[bytes]) -> None:
    """No data line is a lone dot; the receiver's unstuffing gives back the message, CRLF-terminated."""
    message = b"\r\n".join(parts)
    data = prepare_data(message)
    assert data.endswith(b"\r\n")
    assert b"\r\n.\r\n" not in b"\r\n" + data
    expected = message if message.endswith(b"\r\n") else message + b"\r\n"
    assert unstuff(data) == expected


@given(st.lists(st.sampled_from([b".", b"\r\n", b"\n", b"a", b"\r", b".."]), max_size=300))
@example([b"a."] * 64 + [b"\r\n", b".", b"a"])  # the first dot after those looked at singly starts a line
def test_prepare_data_finds_every_dot_line_however_many_dots(pieces: list[bytes]) -> None:
    """The dot search (dots one by one, then a two-byte search) stuffs exactly what a plain replace does, also
    with more dots than it looks at singly."""
    message = b"".join(pieces)
    expected = b"." + message if message.startswith(b".") else message
    expected = expected.replace(b"\r\n.", b"\r\n..")
    expected = expected if expected.endswith(b"\r\n") else expected + b"\r\n"
    assert prepare_data(message) == expected


def test_prepare_data_keeps_a_clean_message_as_is() -> None:
    """A message without dots at line starts is passed through without a copy."""
    message = b"Subject: x\r\n\r\nbody\r\n"
    assert prepare_data(message) is message


@given(st.integers(min_value=1, max_value=100), st.floats(min_value=0.01, max_value=600))
def test_backoff_grows_with_jitter_and_is_capped(attempts: int, base: float) -> None:
    """Each retry waits between half and one and a half of base*2^(n-1), never past 1.5 hours."""
    delay = backoff(attempts, base)
    step = min(MAX_BACKOFF, base * 2 ** (attempts - 1))
    assert 0.5 * step <= delay <= 1.5 * step


@pytest.mark.parametrize(
    ("first", "code", "enhanced"),
    [("5.1.1 <a@b>: user unknown", 550, "5.1.1"), ("OK", 250, None), ("4.7.1 greylisted", 451, "4.7.1")],
)
def test_reply_extracts_the_enhanced_status(first: str, code: int, enhanced: str | None) -> None:
    """The enhanced status code is read from the start of the first reply line."""
    reply = Reply(code, (first, "second line"))
    assert reply.enhanced == enhanced
    assert reply.text.startswith(first)


def test_domain_limits_from_json_override_the_default() -> None:
    """ISSEIMAIL_DOMAIN_LIMITS JSON overrides one domain; others get the default limit."""
    s = DispatcherSettings(domain_limits='{"Example.JP": {"connections": 2, "per_minute": 30}}', domain_connections=3)
    assert s.limit_for("example.jp") == DomainLimit(connections=2, per_minute=30)
    assert s.limit_for("other.jp").connections == 3
    assert s.limit_for("gmail.com").connections == 10
    with pytest.raises(ValueError, match="JSON object"):
        DispatcherSettings(domain_limits="[1]")


def test_metric_label_sets_exist_at_zero_before_any_mail() -> None:
    """A fresh worker exports its message counters at 0, so rate() sees the very first messages."""
    from prometheus_client import REGISTRY

    from isseimail_dispatcher import metrics

    metrics.initialise(["fresh-domain.example"])
    value = REGISTRY.get_sample_value(
        "isseimail_dispatch_messages_total",
        {"outcome": "sent", "reply_class": "2xx", "domain": "fresh-domain.example"},
    )
    assert value == 0.0


def test_tokens_are_taken_a_quarter_second_of_the_slowest_rate_at_a_time() -> None:
    """At the default 600 a minute a connection takes 20 tokens at a time; a fast domain a quarter second of
    its rate (one statement per batch); in relay mode the slower of the domain and the relay decides."""
    fast, relay = DomainLimit(connections=5, per_minute=1_200_000), DomainLimit(connections=5, per_minute=60_000)
    assert token_chunk([("example.jp", DomainLimit(connections=5, per_minute=600))]) == 20
    assert token_chunk([("example.jp", fast)]) == 5000
    assert token_chunk([("example.jp", fast), ("relay:127.0.0.1:25", relay)]) == 250
