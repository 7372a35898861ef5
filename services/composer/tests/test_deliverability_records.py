"""The SPF, DMARC and DKIM-key record parsers: examples, hostile input, and properties (hypothesis)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isseimail_composer.deliverability.records import (
    RecordError,
    SpfTerm,
    is_dmarc,
    is_spf,
    parse_dkim_key,
    parse_dmarc,
    parse_spf,
)

labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
domains = st.lists(labels, min_size=2, max_size=4).map(".".join)
qualifiers = st.sampled_from(["", "+", "-", "~", "?"])
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)


def _error_of(parse: Callable[[str], object], text: str) -> str | None:
    """The RecordError message (anything else propagates and fails the test), or None when it parses."""
    try:
        parse(text)
    except RecordError as exc:
        return str(exc)
    return None


@st.composite
def spf_terms(draw: st.DrawFn) -> str:
    q = draw(qualifiers)
    kind = draw(st.sampled_from(["include", "a", "mx", "ptr", "exists", "ip4", "ip6", "a/", "mx:"]))
    if kind in ("include", "exists"):
        return f"{q}{kind}:{draw(domains)}"
    if kind in ("a", "mx", "ptr"):
        return f"{q}{kind}" + draw(st.sampled_from(["", ":" + draw(domains)]))
    if kind == "ip4":
        return f"{q}ip4:{draw(ipv4)}" + draw(st.sampled_from(["", "/24", "/32"]))
    if kind == "ip6":
        return f"{q}ip6:{draw(ipv6)}" + draw(st.sampled_from(["", "/64"]))
    if kind == "a/":
        return f"{q}a/{draw(st.integers(0, 32))}"
    return f"{q}mx:{draw(domains)}/{draw(st.integers(0, 32))}//{draw(st.integers(0, 128))}"


@given(st.lists(spf_terms(), max_size=12), qualifiers, st.one_of(st.none(), domains))
@settings(max_examples=300)
def test_valid_spf_round_trips_and_counts_lookups(terms: list[str], all_q: str, redirect: str | None) -> None:
    """Any well-formed record parses to its own terms, and lookups = DNS-querying terms (+ redirect)."""
    words = ["v=spf1", *terms, f"{all_q}all"]
    if redirect:
        words.append(f"redirect={redirect}")
    record = parse_spf(" ".join(words))
    assert [t.text() for t in record.terms[:-1]] == [w.lstrip("+") for w in terms]
    assert record.all_qualifier() == (all_q or "+")
    expected = sum(
        1 for w in terms if w.lstrip("+-~?").split(":")[0].split("/")[0] in ("include", "a", "mx", "ptr", "exists")
    )
    assert record.lookups() == expected + (1 if redirect else 0)
    assert record.redirect == redirect


@given(st.text(max_size=300))
@settings(max_examples=500)
def test_spf_parser_is_total(text: str) -> None:
    """Arbitrary text either parses or raises RecordError with a Japanese message; nothing else."""
    error = _error_of(parse_spf, text)
    assert error is None or not error.isascii()


@given(st.text(alphabet="v=spf1 :/.-~?+allincludemx4ip6abc0123456789%{}", max_size=120))
@settings(max_examples=500)
def test_spf_parser_total_on_near_misses(text: str) -> None:
    """Text made of SPF's own characters still parses or is refused cleanly."""
    try:
        record = parse_spf(text)
    except RecordError:
        return
    assert is_spf(text) or text.lower().startswith("v=spf1")
    assert record.lookups() >= 0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("v=spf2 -all", "v=spf1"),
        ("v=spf1 ip4:300.1.1.1 -all", "アドレス"),
        ("v=spf1 ip4:2001:db8::1 -all", "IPv4"),
        ("v=spf1 include -all", "ドメイン"),
        ("v=spf1 foo:bar -all", "解釈できない"),
        ("v=spf1 all:x", "値"),
        ("v=spf1 redirect=a.jp redirect=b.jp", "2回"),
        ("v=spf1 ptr/24 -all", "ptr"),
        ("v=spf1 " + "a" * 5000, "長すぎ"),
    ],
)
def test_spf_errors_say_what_is_wrong(text: str, needle: str) -> None:
    with pytest.raises(RecordError, match=needle):
        parse_spf(text)


def test_spf_examples() -> None:
    record = parse_spf("v=spf1  include:_spf.google.com ip4:192.0.2.0/24 a mx:mail.example.jp/24 ~all exp=x.jp")
    assert record.lookups() == 3
    assert record.all_qualifier() == "~"
    assert record.terms[0] == SpfTerm("+", "include", "_spf.google.com")
    assert record.terms[0].target() == "_spf.google.com"
    assert record.terms[3].target() == "mail.example.jp"
    assert record.terms[2].target() is None
    assert not is_spf("v=spf10 -all")
    assert is_spf("V=SPF1")
    assert not is_spf("spf1")


@st.composite
def dmarc_records(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    tags = {"p": draw(st.sampled_from(["none", "quarantine", "reject", "NONE", "Reject"]))}
    if draw(st.booleans()):
        tags["adkim"] = draw(st.sampled_from(["r", "s"]))
    if draw(st.booleans()):
        tags["aspf"] = draw(st.sampled_from(["r", "s"]))
    if draw(st.booleans()):
        tags["pct"] = str(draw(st.integers(0, 100)))
    if draw(st.booleans()):
        tags["rua"] = ",".join(f"mailto:{draw(labels)}@{draw(domains)}" for _ in range(draw(st.integers(1, 3))))
    sep = draw(st.sampled_from([";", "; ", " ; "]))
    text = sep.join(["v=DMARC1", *(f"{k}={v}" for k, v in tags.items())]) + draw(st.sampled_from(["", ";"]))
    return text, tags


@given(dmarc_records())
@settings(max_examples=300)
def test_valid_dmarc_round_trips(case: tuple[str, dict[str, str]]) -> None:
    text, tags = case
    record = parse_dmarc(text)
    assert record.policy == tags["p"].lower()
    assert record.adkim == tags.get("adkim", "r")
    assert record.aspf == tags.get("aspf", "r")
    assert record.pct == int(tags.get("pct", "100"))
    assert list(record.rua) == (tags["rua"].split(",") if "rua" in tags else [])


@given(st.text(max_size=300))
@settings(max_examples=500)
def test_dmarc_and_dkim_parsers_are_total(text: str) -> None:
    for parse in (parse_dmarc, parse_dkim_key):
        error = _error_of(parse, text)
        assert error is None or not error.isascii()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("v=DMARC1; rua=mailto:a@b.jp", "p="),
        ("v=DMARC1; p=block", "none / quarantine / reject"),
        ("v=DMARC1; p=none; adkim=x", "adkim"),
        ("v=DMARC1; p=none; pct=150", "pct"),
        ("v=DMARC1; p=none; p=reject", "2回"),
        ("v=DMARC1; p=none; rua=https://x.jp", "mailto"),
        ("p=none; v=DMARC1", "v=DMARC1"),
        ("v=DMARC1; p=none; garbage", "解釈できない"),
    ],
)
def test_dmarc_errors_say_what_is_wrong(text: str, needle: str) -> None:
    with pytest.raises(RecordError, match=needle):
        parse_dmarc(text)
    assert is_dmarc("v=DMARC1; p=none")
    assert not is_dmarc("v=DMARC10; p=none")


def test_dkim_key_records() -> None:
    key = parse_dkim_key("v=DKIM1; k=rsa; p=MIIB Ijan\n BgkqhkiG9w0B==")
    assert key.key_type == "rsa"
    assert key.public_key == "MIIBIjanBgkqhkiG9w0B=="
    assert parse_dkim_key("p=").public_key == ""  # revoked
    assert parse_dkim_key("k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=").key_type == "ed25519"
    for bad, needle in (
        ("v=DKIM1; k=rsa", "p="),
        ("k=dsa; p=AAAA", "種類"),
        ("p=!!!", "Base64"),
        ("k=rsa; v=DKIM1; p=A", "先頭"),
    ):
        with pytest.raises(RecordError, match=needle):
            parse_dkim_key(bad)
