"""SPF macro expansion (RFC 7208 7) and the organisational domain (Public Suffix List): pure, no servers."""

from __future__ import annotations

import ipaddress
import re
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from isseimail_composer.deliverability.orgdomain import organizational_domain
from isseimail_composer.deliverability.spf_macros import MacroContext, MacroError, expand, expand_domain

# RFC 7208 7.4's examples: sender strong-bad@email.example.com, client 192.0.2.3 (and 2001:db8::cb01).
V4 = MacroContext(
    "strong-bad@email.example.com", "email.example.com", ipaddress.ip_address("192.0.2.3"), "mx.example.org"
)
V6 = MacroContext(
    "strong-bad@email.example.com", "email.example.com", ipaddress.ip_address("2001:db8::cb01"), "mx.example.org"
)


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
        ("%{h}", "mx.example.org"),
        ("%{p}", "unknown"),
        ("%%%_%-", "% %20"),
        ("%{S}", "strong-bad%40email.example.com"),
    ],
)
def test_rfc_examples(text: str, expanded: str) -> None:
    """The worked examples of RFC 7208 7.4 expand exactly as the RFC prints them."""
    assert expand(text, V4) == expanded


def test_ipv6_nibbles() -> None:
    """%{i} of an IPv6 client is its 32 nibbles with dots; %{v} is ip6 (RFC 7208 7.4)."""
    assert expand("%{ir}.%{v}._spf.%{d2}", V6) == (
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
    )


def test_no_local_part_is_postmaster() -> None:
    ctx = MacroContext("example.org", "example.org", ipaddress.ip_address("192.0.2.3"), "example.org")
    assert expand("%{l}@%{o}", ctx) == "postmaster@example.org"


@pytest.mark.parametrize("text", ["%", "%{", "%{x}", "%{d0}", "%{c}", "%{d", "%a", "%{ d}", "%{d2rr}"])
def test_malformed_macros_are_refused(text: str) -> None:
    """A malformed macro (an unknown letter, 0 labels, a lone %) is a permerror, never a silent literal."""
    with pytest.raises(MacroError):
        expand(text, V4)


def test_long_expansion_loses_labels_on_the_left() -> None:
    long = MacroContext("x@" + "a" * 60 + ".example.com", "d.example", ipaddress.ip_address("192.0.2.3"), "h")
    name = expand_domain("%{o}.%{o}.%{o}.%{o}.%{o}", long)
    assert len(name) <= 253
    assert name.endswith(".example.com")
    assert not name.startswith(".")


labels = st.lists(st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True), min_size=1, max_size=8)


@given(labels, st.integers(min_value=1, max_value=12), st.booleans())
def test_transformers_match_their_definition(parts: list[str], keep: int, reverse: bool) -> None:
    """%{dNr}: reversed (when r) then the rightmost N labels, joined with dots."""
    domain = ".".join(parts)
    ctx = MacroContext("a@b.example", domain, ipaddress.ip_address("192.0.2.1"), "h.example")
    expected = list(reversed(parts)) if reverse else list(parts)
    assert expand(f"%{{d{keep}{'r' if reverse else ''}}}", ctx) == ".".join(expected[-keep:])


@given(st.text(alphabet="abc.-+,/_=%{}dlsoihpvrR0123456789", max_size=40))
def test_any_text_expands_or_is_refused(text: str) -> None:
    """Hostile macro-strings: either MacroError or an expansion with no macro left in it."""
    try:
        out = expand(text, V4)
    except MacroError:
        return
    assert re.search(r"%\{[a-z]", out.replace("%20", "")) is None


@given(st.ip_addresses(), st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True))
def test_ip_macro_round_trips(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, local: str) -> None:
    """%{i} reversed twice is %{i}; for IPv6 it has 32 nibbles; the local part comes back as written."""
    ctx = MacroContext(f"{local}@example.org", "example.org", ip, "h.example")
    dotted = expand("%{i}", ctx)
    assert expand("%{ir}", ctx).split(".")[::-1] == dotted.split(".")
    assert len(dotted.split(".")) == (4 if ip.version == 4 else 32)
    assert expand("%{l}", ctx) == local


@pytest.mark.parametrize(
    ("domain", "org"),
    [
        ("mail.example.co.jp", "example.co.jp"),
        ("example.co.jp", "example.co.jp"),
        ("co.jp", "co.jp"),
        ("news.shop.city.kawasaki.jp", "city.kawasaki.jp"),  # !city.kawasaki.jp: an exception to *.kawasaki.jp
        ("mail.foo.x.kawasaki.jp", "foo.x.kawasaki.jp"),  # *.kawasaki.jp: x.kawasaki.jp is a suffix
        ("a.b.github.io", "b.github.io"),  # private section
        ("Mail.Example.COM.", "example.com"),
        ("news.good.example.jp", "example.jp"),
    ],
)
def test_organizational_domain_follows_the_public_suffix_list(domain: str, org: str) -> None:
    assert organizational_domain(domain) == org


def test_the_suffix_list_is_read_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the Public Suffix List opens no socket: the list is the file the package ships."""
    from isseimail_composer.deliverability import orgdomain

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the Public Suffix List tried the network")

    orgdomain._psl.cache_clear()
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert organizational_domain("www.example.co.jp") == "example.co.jp"
