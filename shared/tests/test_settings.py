"""Settings: ISSEIMAIL_* variables parse into typed values; bad values are refused with a clear reason."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from isseimail_shared.settings import ServiceSettings, SmtpRelay, parse_nameserver


def test_defaults_point_at_local_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without any variable the services use the local PostgreSQL, RabbitMQ and the catcher on :1025."""
    for key in ("ISSEIMAIL_DATABASE_URL", "ISSEIMAIL_AMQP_URL", "ISSEIMAIL_SMTP_RELAY", "ISSEIMAIL_TIMEZONE"):
        monkeypatch.delenv(key, raising=False)
    s = ServiceSettings()
    assert s.database_url.get_secret_value() == "postgresql://postgres@127.0.0.1:5432/isseimail"
    assert s.amqp_url.get_secret_value() == "amqp://guest:guest@127.0.0.1:5672/"
    assert (s.smtp_relay.host, s.smtp_relay.port, s.smtp_relay.security) == ("127.0.0.1", 1025, "none")
    assert s.timezone == "Asia/Tokyo"
    assert ipaddress.ip_address("192.168.1.20") in s.intranet_cidrs[4]


def test_environment_values_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Comma lists and URLs in the environment become typed values."""
    monkeypatch.setenv("ISSEIMAIL_SMTP_RELAY", "smtp+starttls://mailer:p%40ss@relay.example.jp")
    monkeypatch.setenv("ISSEIMAIL_DNS_NAMESERVERS", "127.0.0.1:5353, 10.0.0.1")
    monkeypatch.setenv("ISSEIMAIL_INTRANET_CIDRS", "10.1.0.0/16,fd00::/8")
    s = ServiceSettings()
    assert s.smtp_relay.security == "starttls"
    assert s.smtp_relay.port == 587
    assert s.smtp_relay.username == "mailer"
    assert s.smtp_relay.password is not None
    assert s.smtp_relay.password.get_secret_value() == "p@ss"
    assert s.nameserver_strings() == ["127.0.0.1:5353", "10.0.0.1:53"]
    assert [str(n) for n in s.intranet_cidrs] == ["10.1.0.0/16", "fd00::/8"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1:1025", ("127.0.0.1", 1025, "none")),
        ("smtp://mx.example.jp", ("mx.example.jp", 25, "none")),
        ("smtps://mx.example.jp", ("mx.example.jp", 465, "tls")),
        ("smtp+starttls://mx.example.jp:2587", ("mx.example.jp", 2587, "starttls")),
    ],
)
def test_relay_forms(url: str, expected: tuple[str, int, str]) -> None:
    """The three relay URL forms give host, port and TLS mode, with the right default port."""
    relay = SmtpRelay.parse(url)
    assert (relay.host, relay.port, relay.security) == expected


@pytest.mark.parametrize("url", ["http://x", "smtp://", "smtp://host:99999", "relay.example.jp"])
def test_bad_relay_is_refused(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """A relay that is not smtp/smtps/smtp+starttls with a host and valid port stops start-up."""
    monkeypatch.setenv("ISSEIMAIL_SMTP_RELAY", url)
    with pytest.raises(ValidationError):
        ServiceSettings()


def test_relay_password_never_printed() -> None:
    """The relay's string form (what logs show) hides the password."""
    relay = SmtpRelay.parse("smtps://user:secret-pw@relay.example.jp")
    assert "secret-pw" not in str(relay)
    assert "secret-pw" not in repr(relay)


@given(st.ip_addresses(v=4), st.integers(1, 65535))
def test_nameserver_roundtrip_v4(ip: ipaddress.IPv4Address, port: int) -> None:
    """Any IPv4 address with any port parses back to itself."""
    assert parse_nameserver(f"{ip}:{port}") == (str(ip), port)
    assert parse_nameserver(str(ip)) == (str(ip), 53)


@given(st.ip_addresses(v=6), st.integers(1, 65535))
def test_nameserver_roundtrip_v6(ip: ipaddress.IPv6Address, port: int) -> None:
    """IPv6 nameservers are written [ip]:port or bare."""
    assert parse_nameserver(f"[{ip}]:{port}") == (str(ip), port)
    assert parse_nameserver(str(ip)) == (str(ip), 53)


@pytest.mark.parametrize("item", ["dns.example.jp", "127.0.0.1:0", "127.0.0.1:70000", "1.2.3:53", ""])
def test_bad_nameserver_is_refused(item: str) -> None:
    """Host names, bad ports and broken addresses are not nameservers."""
    with pytest.raises(ValueError, match=r".+"):
        parse_nameserver(item)


def test_help_exits_before_settings_are_read(capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` anywhere in the arguments prints the usage and exits 0; other arguments pass through."""
    from isseimail_shared.cli import exit_on_help

    with pytest.raises(SystemExit) as ended:
        exit_on_help(["serve", "--help"], "isseimail-x [serve]")
    assert ended.value.code == 0
    assert capsys.readouterr().out == "usage: isseimail-x [serve]\n"
    exit_on_help(["serve"], "isseimail-x [serve]")  # no help asked: returns
    assert capsys.readouterr().out == ""
