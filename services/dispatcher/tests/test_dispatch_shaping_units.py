"""Pure logic of shaping: the rate-limit reply classifier, the AIMD arithmetic, presets and overrides."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from isseimail_dispatcher import __main__ as cli
from isseimail_dispatcher.adaptive import (
    Adaptation,
    ThrottleState,
    after_rate_limit,
    effective_per_minute,
    is_rate_limit,
    is_recovered,
)
from isseimail_dispatcher.settings import DispatcherSettings, DomainLimit
from isseimail_dispatcher.shaping import PresetError, load_presets, parse_presets
from isseimail_dispatcher.smtp_client import Reply

# --- the classifier -------------------------------------------------------------------------------


def classify(code: int, line: str) -> bool:
    reply = Reply(code, (line,))
    return is_rate_limit(reply.code, reply.enhanced, reply.text)


@pytest.mark.parametrize(
    ("code", "line"),
    [
        (421, "4.7.0 Try again later, closing connection. (EHLO) - gsmtp"),
        (421, "4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP"),
        (451, "4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation."),
        (421, "RP-001 (COL004-MC1F3) Unfortunately, some messages from 192.0.2.1 weren't sent."),
        (421, "4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume"),
        (421, "[TS01] Messages from 192.0.2.1 temporarily deferred due to user complaints"),
        (450, "4.7.1 Client host rejected: too many connections"),
        (421, "Too many concurrent SMTP connections; please try again later."),
        (451, "Rate limit exceeded, slow down"),
        (450, "Requested action aborted: sending rate exceeded"),
    ],
)
def test_provider_rate_limit_replies_are_recognised(code: int, line: str) -> None:
    """The replies Gmail, Outlook, Yahoo and the carriers give when they want less volume count as throttling."""
    assert classify(code, line)


@pytest.mark.parametrize(
    ("code", "line"),
    [
        (451, "4.7.1 greylisted, try later"),
        (450, "4.7.1 <u@example.jp>: Recipient address rejected: Greylisted for 300 seconds"),
        (421, "4.3.2 service shutting down"),
        (452, "4.3.1 insufficient storage"),
        (452, "4.5.3 Too many recipients"),
        (451, "4.3.0 local error in processing"),
        (550, "5.7.1 rate limit exceeded, message rejected"),
        (554, "5.7.0 Too many connections [TS01]"),
        (250, "2.0.0 OK rate limit ok"),
        (421, "4.4.2 hosts01.example.jp timeout"),
    ],
)
def test_other_replies_are_not_rate_limits(code: int, line: str) -> None:
    """Greylisting, shutdowns, storage, 5xx and 2xx never lower a domain's rate."""
    assert not classify(code, line)


@given(st.integers(min_value=-1000, max_value=100_000), st.none() | st.text(max_size=20), st.text(max_size=3000))
def test_any_reply_classifies_without_error(code: int, enhanced: str | None, text: str) -> None:
    """Arbitrary replies (hostile text included) give a bool; a 5xx or 2xx is never throttling."""
    result = is_rate_limit(code, enhanced, text)
    assert isinstance(result, bool)
    if not 400 <= code < 500:
        assert result is False


@given(st.integers(min_value=500, max_value=599), st.text(max_size=500))
def test_5xx_with_throttling_words_never_counts(code: int, text: str) -> None:
    """Even a 5xx that says 'rate limit' and carries 4.7.0 is a permanent failure, not a slow-down."""
    assert not is_rate_limit(code, "4.7.0", f"4.7.0 rate limit [TS01] too many connections {text}")


# --- the arithmetic -------------------------------------------------------------------------------

ADAPT = Adaptation(window=60.0, factor=0.5, floor=6.0, increase_fraction=0.1)


def test_a_rate_limit_halves_the_rate_then_it_rises_a_step_per_quiet_window() -> None:
    """600/min: a throttle reply at t=0 gives 300 until t=60, then 360, 420, ... 600 at t=300, never more."""
    state = after_rate_limit(ThrottleState(), 600, ADAPT, now=1000.0)
    assert state == ThrottleState(300.0, 1000.0, 1000.0)
    rates = [effective_per_minute(state, 600, ADAPT, 1000.0 + t) for t in (0, 59.9, 60, 120, 180, 240, 299, 300, 9999)]
    assert rates == [300, 300, 360, 420, 480, 540, 540, 600, 600]
    assert not is_recovered(state, 600, ADAPT, 1299.0)
    assert is_recovered(state, 600, ADAPT, 1300.0)


def test_a_burst_of_replies_lowers_once_but_restarts_the_window() -> None:
    """Replies within the hold after a decrease (window/5) do not halve again; each restarts the quiet window."""
    state = after_rate_limit(ThrottleState(), 600, ADAPT, now=0.0)
    again = after_rate_limit(state, 600, ADAPT, now=5.0)
    assert again == ThrottleState(300.0, 5.0, 0.0)
    assert effective_per_minute(again, 600, ADAPT, 60.0) == 300  # window counts from 5 s
    later = after_rate_limit(again, 600, ADAPT, now=13.0)  # past the 12 s hold: halves again
    assert later.lowered == 150.0
    assert later.decreased_at == 13.0


def test_a_throttled_rate_continues_from_where_it_recovered_to() -> None:
    """A new reply during recovery halves the rate in force, not the configured one."""
    state = after_rate_limit(ThrottleState(), 600, ADAPT, now=0.0)  # 300
    state = after_rate_limit(state, 600, ADAPT, now=120.0)  # recovered to 420, halved
    assert state.lowered == 210.0


def test_the_rate_never_goes_below_the_floor_nor_above_the_configured_rate() -> None:
    """Many replies end at the floor; a configured rate below the floor is the floor itself."""
    state = ThrottleState()
    for i in range(30):
        state = after_rate_limit(state, 600, ADAPT, now=i * 20.0)  # past the hold, within the window
    assert state.lowered == 6.0
    low = after_rate_limit(ThrottleState(), 4, ADAPT, now=0.0)
    assert low.lowered == 4.0


@given(
    st.floats(min_value=1, max_value=1e6),
    st.lists(st.floats(min_value=0, max_value=1e5), min_size=1, max_size=20),
    st.floats(min_value=0.01, max_value=0.99),
    st.floats(min_value=0.01, max_value=1.0),
)
def test_aimd_stays_within_bounds_and_recovers(
    ceiling: float, gaps: list[float], factor: float, fraction: float
) -> None:
    """Whatever the replies' timing: the rate stays in [min(floor, ceiling), ceiling], never rises after a reply,
    and is back at the ceiling after enough quiet windows."""
    adapt = Adaptation(window=60.0, factor=factor, floor=6.0, increase_fraction=fraction)
    state, now = ThrottleState(), 0.0
    for gap in gaps:
        now += gap
        before = effective_per_minute(state, ceiling, adapt, now)
        state = after_rate_limit(state, ceiling, adapt, now)
        after = effective_per_minute(state, ceiling, adapt, now)
        assert min(6.0, ceiling) - 1e-9 <= after <= before + 1e-9
    rates = [effective_per_minute(state, ceiling, adapt, now + k * 30.0) for k in range(2 * 12)]
    assert rates == sorted(rates)
    assert state.lowered is not None
    windows = math.ceil((ceiling - state.lowered) / (ceiling * fraction)) + 1
    assert is_recovered(state, ceiling, adapt, now + windows * adapt.window)


# --- presets and overrides ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "connections", "per_minute"),
    [
        ("gmail.com", 10, 3000),
        ("yahoo.co.jp", 5, 1200),
        ("yahoo.com", 5, 1200),
        ("hotmail.co.jp", 10, 3000),
        ("msn.com", 10, 3000),
        ("docomo.ne.jp", 3, 300),
        ("ezweb.ne.jp", 3, 300),
        ("au.com", 3, 300),
        ("i.softbank.jp", 3, 300),
        ("SoftBank.ne.jp", 3, 300),
    ],
)
def test_built_in_presets_cover_the_providers(domain: str, connections: int, per_minute: int) -> None:
    """Each provider's domains get its preset, with a messages-per-connection limit."""
    limit = DispatcherSettings().limit_for(domain)
    assert (limit.connections, limit.per_minute) == (connections, per_minute)
    assert limit.messages_per_connection is not None


def test_an_override_replaces_only_the_fields_it_names() -> None:
    """ISSEIMAIL_DOMAIN_LIMITS: per_minute for gmail.com keeps the preset's connections; a new domain is added."""
    s = DispatcherSettings(
        domain_limits='{"gmail.com": {"per_minute": 100}, "Example.JP": {"messages_per_connection": 7}}',
        domain_connections=4,
        domain_per_minute=50,
    )
    assert s.limit_for("gmail.com") == DomainLimit(connections=10, per_minute=100, messages_per_connection=100)
    assert s.limit_for("example.jp") == DomainLimit(connections=4, per_minute=50, messages_per_connection=7)
    assert s.limit_for("other.jp") == DomainLimit(connections=4, per_minute=50)
    assert {"gmail.com", "example.jp", "docomo.ne.jp"} <= set(s.shaping.named_domains())


def test_mx_hosts_match_a_provider() -> None:
    """A Google Workspace domain (MX at google.com) gets Gmail's preset; a look-alike host does not."""
    s = DispatcherSettings()
    gmail = s.limit_for("gmail.com")
    assert s.limit_for("corp.example.jp", ("aspmx.l.google.com",)) == gmail
    assert s.limit_for("corp.example.jp", ("ASPMX.L.GOOGLE.COM.",)) == gmail
    assert s.limit_for("corp.example.jp", ("mx.notgoogle.com",)) == s.limit_for("other.example")
    assert s.limit_for("corp.example.jp", ("tenant.mail.protection.outlook.com",)).per_minute == 3000


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"gmail.com": {"conections": 5}}', "conections"),
        ('{"gmail.com": {"per_minute": 0}}', "per_minute"),
        ('{"gmail.com": {"per_minute": "fast"}}', "per_minute"),
        ('{"gmail.com": [1]}', "gmail.com"),
        ("{not json", "domain_limits"),
        ("[1]", "JSON object"),
    ],
)
def test_malformed_override_stops_at_start_with_the_field_named(value: str, message: str) -> None:
    """A broken ISSEIMAIL_DOMAIN_LIMITS is a settings error naming what is wrong, not a later surprise."""
    with pytest.raises(ValidationError, match=message):
        DispatcherSettings(domain_limits=value)


def test_malformed_override_from_the_environment_exits_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`isseimail-dispatcher` with a broken ISSEIMAIL_DOMAIN_LIMITS exits with the field named, no traceback."""
    monkeypatch.setenv("ISSEIMAIL_DOMAIN_LIMITS", '{"docomo.ne.jp": {"connections": -1}}')
    with pytest.raises(SystemExit) as exited:
        cli.main(["worker"])
    assert "docomo.ne.jp" in str(exited.value)
    assert "connections" in str(exited.value)


GOOD = """
[providers.x]
domains = ["x.example"]
connections = 2
per_minute = 60
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[providers.x\n", "not valid TOML"),
        ("[providers.x]\ndomains = []\nconnections = 1\nper_minute = 1\n", "providers.x.domains"),
        ("[providers.x]\ndomains = ['a.jp']\nper_minute = 1\n", "providers.x.connections"),
        (GOOD + "speed = 3\n", "providers.x.speed"),
        (GOOD + "[providers.y]\ndomains = ['X.example']\nconnections = 1\nper_minute = 1\n", "both providers"),
        ("[providers.x]\ndomains = ['a b']\nconnections = 1\nper_minute = 1\n", "not a domain name"),
        ("providers = 3\n", "providers"),
    ],
)
def test_malformed_presets_are_refused_with_the_place_named(text: str, message: str) -> None:
    """A presets file with a syntax error, a missing or unknown field or a duplicated domain is refused."""
    with pytest.raises(PresetError, match=message):
        parse_presets(text, "test.toml")


def test_an_operators_presets_file_replaces_the_built_in_one(tmp_path: Path) -> None:
    """ISSEIMAIL_SHAPING_PRESETS_FILE: its providers apply, the built-in ones no longer do; a bad file stops start."""
    path = tmp_path / "presets.toml"
    path.write_text(GOOD, encoding="utf-8")
    s = DispatcherSettings(shaping_presets_file=path, domain_connections=4)
    assert s.limit_for("x.example") == DomainLimit(connections=2, per_minute=60)
    assert s.limit_for("gmail.com").connections == 4
    path.write_text("[providers.x]\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"presets\.toml"):
        DispatcherSettings(shaping_presets_file=path)
    with pytest.raises(ValidationError, match="cannot read"):
        DispatcherSettings(shaping_presets_file=tmp_path / "missing.toml")


def test_the_built_in_presets_file_is_valid() -> None:
    """The shipped file parses and names every provider the issue lists."""
    assert set(load_presets().providers) == {"gmail", "yahoo_japan", "yahoo", "outlook", "docomo", "au", "softbank"}
