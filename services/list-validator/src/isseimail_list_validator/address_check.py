"""Address syntax: email-validator's rules (syntax only), IDN domains as A-labels, legacy carrier addresses.

Each distinct domain is validated once (cached); a plain ASCII dot-atom local part takes a regex fast
path that accepts exactly what email-validator accepts (a property test holds the two together), so
that 50,000 rows cost milliseconds. Anything else goes through email-validator itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

MAX_ADDRESS = 254
MAX_LOCAL = 64
MAX_DOMAIN = 253

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
# Carrier addresses from before the carriers enforced RFC 5322: dots anywhere, never only dots.
_LEGACY_LOCAL = re.compile(rf"[.]*{_ATEXT}[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~.-]*")
_ASCII_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# The common case in one match: a dot-atom local part and an ASCII host name.
_FAST = re.compile(rf"({_ATEXT}+(?:\.{_ATEXT}+)*)@([A-Za-z0-9][A-Za-z0-9.-]*)")
_FULL_WIDTH = re.compile("[\uff01-\uff5e]")  # ＠, ．, ａ...: typed in full-width mode
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f<>\u3000\u00a0\u2028\u2029\ufeff]")


class AddressResult(NamedTuple):
    code: str  # "ok", "ok_legacy" or the reason the address is invalid
    email: str | None = None  # what goes on the wire
    domain: str | None = None  # A-label domain, lower case
    key: str | None = None  # duplicate detection: local part as written, domain case-insensitive

    @property
    def ok(self) -> bool:
        return self.code.startswith("ok")


class AddressChecker:
    def __init__(self, legacy_domains: Iterable[str], *, smtputf8: bool = False) -> None:
        self._legacy = frozenset(d.lower().rstrip(".") for d in legacy_domains)
        self._smtputf8 = smtputf8
        self._domain = lru_cache(maxsize=65536)(self._check_domain)

    def is_legacy_domain(self, domain: str) -> bool:
        labels = domain.split(".")
        return any(".".join(labels[i:]) in self._legacy for i in range(len(labels) - 1))

    @staticmethod
    def _check_domain(domain: str) -> str | None:
        """The domain's A-label form, or None when it is not a valid mail domain."""
        lower = domain.lower()
        if len(lower) <= MAX_DOMAIN and _ASCII_DOMAIN.fullmatch(lower) and "--" not in lower:
            # Plain LDH host names: email-validator's verdict without its IDNA machinery.
            tld = lower.rsplit(".", 1)[1]
            special = any(lower == s or lower.endswith("." + s) for s in SPECIAL_USE_DOMAIN_NAMES)
            return None if special or tld.isdigit() else lower
        try:
            result = validate_email(f"a@{domain}", check_deliverability=False, allow_smtputf8=True)
        except EmailNotValidError:
            return None
        return str(result.ascii_domain).lower()

    def check(self, raw: str) -> AddressResult:
        match = _FAST.fullmatch(raw)
        if match is not None and len(raw) <= MAX_ADDRESS:
            local, domain_text = match.groups()
            domain = self._domain(domain_text)
            if domain is not None and len(local) <= MAX_LOCAL:
                email = f"{local}@{domain}"
                if len(email) <= MAX_ADDRESS:
                    return AddressResult("ok", email, domain, email)
        return self._check(raw)

    def _check(self, raw: str) -> AddressResult:
        if not raw:
            return AddressResult("missing_email")
        if _FULL_WIDTH.search(raw):
            return AddressResult("full_width")
        if _FORBIDDEN.search(raw):
            return AddressResult("bad_chars")
        if len(raw) > MAX_ADDRESS:
            return AddressResult("too_long")
        local, at, domain_text = raw.rpartition("@")
        if not at or not local:
            return AddressResult("syntax")
        domain = self._domain(domain_text)
        if domain is None:
            return AddressResult("syntax")
        key = f"{local}@{domain}"
        if len(key) > MAX_ADDRESS:  # an IDN domain grows when converted to A-labels
            return AddressResult("too_long")
        if len(local) <= MAX_LOCAL and _DOT_ATOM.fullmatch(local):
            return AddressResult("ok", f"{local}@{domain}", domain, key)
        if len(local) <= MAX_LOCAL and self.is_legacy_domain(domain) and _LEGACY_LOCAL.fullmatch(local):
            # Real and deliverable at these carriers; quoting makes it valid RFC 5322 on the wire.
            return AddressResult("ok_legacy", f'"{local}"@{domain}', domain, key)
        if not local.isascii() and not self._smtputf8:
            return AddressResult("non_ascii_local")
        try:
            result = validate_email(
                f"{local}@{domain}", check_deliverability=False, allow_smtputf8=self._smtputf8, strict=True
            )
        except EmailNotValidError:
            return AddressResult("syntax")
        return AddressResult("ok", f"{result.local_part}@{domain}", domain, f"{result.local_part}@{domain}")
