"""Address syntax: email-validator's rules, IDN to A-labels, SMTPUTF8 off, legacy carrier local parts."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from isseimail_list_validator.address_check import AddressChecker
from isseimail_list_validator.settings import DEFAULT_LEGACY_CARRIER_DOMAINS

CHECKER = AddressChecker(DEFAULT_LEGACY_CARRIER_DOMAINS)


@pytest.mark.parametrize(
    ("raw", "code", "wire"),
    [
        ("taro.yamada@example.jp", "ok", "taro.yamada@example.jp"),
        ("Taro@Example.JP", "ok", "Taro@example.jp"),
        ("info@例え.jp", "ok", "info@xn--r8jz45g.jp"),
        ("taro..yamada@docomo.ne.jp", "ok_legacy", '"taro..yamada"@docomo.ne.jp'),
        ("hanako.@ezweb.ne.jp", "ok_legacy", '"hanako."@ezweb.ne.jp'),
        ("a.-.b..@i.softbank.jp", "ok_legacy", '"a.-.b.."@i.softbank.jp'),
        ("x..y@d.vodafone.ne.jp", "ok_legacy", '"x..y"@d.vodafone.ne.jp'),
        ("taro..yamada@example.jp", "syntax", None),
        ("hanako.@example.co.jp", "syntax", None),
        ("...@docomo.ne.jp", "syntax", None),
        ("太郎@example.jp", "non_ascii_local", None),
        ("taro＠example.jp", "full_width", None),
        ("ｔａｒｏ@example.jp", "full_width", None),
        ("", "missing_email", None),
        ("taro@example.jp\r\nBcc: x@example.jp", "bad_chars", None),
        ("<taro@example.jp>", "bad_chars", None),
        ("Taro <taro@example.jp>", "bad_chars", None),
        ("taro yamada@example.jp", "bad_chars", None),
        ("taro@example", "syntax", None),
        ("taro@localhost", "syntax", None),
        ("taro", "syntax", None),
        ("@example.jp", "syntax", None),
        ('"a b"@example.jp', "bad_chars", None),
        ('"ab"@example.jp', "syntax", None),
        ("a@[127.0.0.1]", "syntax", None),
        ("a" * 65 + "@example.jp", "syntax", None),
        ("a@" + "b" * 250 + ".jp", "too_long", None),
    ],
)
def test_address_cases(raw: str, code: str, wire: str | None) -> None:
    """Each address gets the expected reason code and, when fine, its wire form."""
    result = CHECKER.check(raw)
    assert result.code == code
    assert result.email == wire


def test_smtputf8_allows_non_ascii_local_part() -> None:
    """With SMTPUTF8 enabled a non-ASCII local part is accepted and kept (domain still A-labels)."""
    result = AddressChecker([], smtputf8=True).check("太郎@例え.jp")
    assert (result.code, result.email) == ("ok", "太郎@xn--r8jz45g.jp")


def test_duplicate_key_is_case_insensitive_in_the_domain_only() -> None:
    """Keys ignore the domain's case but not the local part's."""
    assert CHECKER.check("Taro@EXAMPLE.jp").key == CHECKER.check("Taro@example.JP").key
    assert CHECKER.check("Taro@example.jp").key != CHECKER.check("taro@example.jp").key


LOCAL = st.text(alphabet="abcXYZ09.-_+!#'=~\"() @<>,;:[]\\é", min_size=0, max_size=20)
DOMAIN = st.one_of(
    st.sampled_from(["example.jp", "docomo.ne.jp", "例え.jp", "ex..jp", "-x.jp", "a.b", "x.test", "xn--r8jz45g.jp"]),
    st.from_regex(
        r"[A-Za-z0-9-]{1,8}(\.[A-Za-z0-9-]{1,8}){0,2}\.(jp|COM|test|LOCAL|123|x-y|a|xn--zz)\.?", fullmatch=True
    ),
    st.from_regex(r"[a-z]{60,70}\.jp", fullmatch=True),
)


@settings(max_examples=600)
@given(local=LOCAL, domain=DOMAIN)
def test_agrees_with_email_validator(local: str, domain: str) -> None:
    """Outside carrier domains, the fast path accepts exactly what email-validator accepts, same wire form."""
    raw = f"{local}@{domain}"
    result = CHECKER.check(raw)
    try:
        expected = validate_email(raw, check_deliverability=False, allow_smtputf8=False, strict=True)
    except EmailNotValidError:
        expected = None
    if result.code == "ok_legacy":
        assert CHECKER.is_legacy_domain(str(result.domain))
        assert expected is None or expected.ascii_email == raw
        return
    if expected is None:
        assert not result.ok
    elif result.ok:
        assert result.email == expected.ascii_email
    else:
        assert result.code == "bad_chars"  # quoted local parts with spaces: refused on purpose


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_never_raises_and_wire_form_is_safe(raw: str) -> None:
    """Any text gets a code; an accepted address never carries CR, LF, spaces or angle brackets."""
    result = CHECKER.check(raw)
    assert result.code
    if result.ok:
        assert result.email is not None
        assert not any(ch in result.email for ch in "\r\n <>\x00")
        assert len(result.email) <= 254
