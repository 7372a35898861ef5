"""SPF macro expansion (RFC 7208 section 7): %{s} %{l} %{o} %{d} %{i} %{p} %{v} %{h}, with the digit and
"r" transformers, the delimiters . - + , / _ = and the escapes %% %_ %-. Pure: %{p} (the validated
name of the client, which needs DNS) is passed in by the evaluator.

    expand("%{ir}.%{v}._spf.%{d2}", MacroContext(...))  ->  "10.2.0.192.in-addr._spf.example.jp"
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass

MAX_DOMAIN = 253
DELIMITERS = ".-+,/_="
# The letters check_host() knows; c, r and t belong to exp= only (RFC 7208 7.2), which is never evaluated here.
LETTERS = "slodiphv"
_MACRO = re.compile(r"%\{([A-Za-z])(\d*)(r?)([.\-+,/_=]*)\}", re.ASCII)


class MacroError(ValueError):
    """The macro-string is malformed: RFC 7208 calls it a permerror."""


@dataclass(frozen=True)
class MacroContext:
    sender: str  # the MAIL FROM (or postmaster@HELO) address
    domain: str  # the domain being evaluated now (changes through include: and redirect=)
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    helo: str
    validated: str = "unknown"  # %{p}: the client's validated host name, "unknown" when none

    @property
    def local_part(self) -> str:
        local, at, _ = self.sender.rpartition("@")
        return local if at and local else "postmaster"

    @property
    def sender_domain(self) -> str:
        return self.sender.rpartition("@")[2] or self.helo


def dotted_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """%{i}: dotted quad for IPv4, dot-separated nibbles for IPv6 (RFC 7208 7.3)."""
    if ip.version == 4:
        return str(ip)
    return ".".join(ip.exploded.replace(":", ""))


def _value(letter: str, ctx: MacroContext) -> str:
    return {
        "s": ctx.sender,
        "l": ctx.local_part,
        "o": ctx.sender_domain,
        "d": ctx.domain,
        "i": dotted_ip(ctx.ip),
        "p": ctx.validated,
        "v": "in-addr" if ctx.ip.version == 4 else "ip6",
        "h": ctx.helo,
    }[letter]


def _transform(value: str, digits: str, reverse: bool, delimiters: str) -> str:
    parts = re.split("[" + re.escape(delimiters or ".") + "]", value)
    if reverse:
        parts.reverse()
    if digits:
        keep = int(digits)
        if keep == 0:
            raise MacroError("a transformer of 0 labels")
        parts = parts[-keep:]
    return ".".join(parts)


def expand(text: str, ctx: MacroContext) -> str:
    """The macro-string with its macros replaced; MacroError for a malformed one."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "%":
            out.append(char)
            i += 1
            continue
        following = text[i + 1 : i + 2]
        if following in ("%", "_", "-"):
            out.append({"%": "%", "_": " ", "-": "%20"}[following])
            i += 2
            continue
        match = _MACRO.match(text, i)
        if match is None or match.group(1).lower() not in LETTERS:
            raise MacroError(f"malformed macro at {i}")
        letter, digits, reverse, delimiters = match.groups()
        value = _transform(_value(letter.lower(), ctx), digits, bool(reverse), delimiters)
        if letter.isupper():  # RFC 7208 7.3: upper-case letters URL-escape the value
            value = urllib.parse.quote(value, safe="-._~")
        out.append(value)
        i = match.end()
    return "".join(out)


def expand_domain(text: str, ctx: MacroContext) -> str:
    """A domain-spec expanded for a query: longer than 253 characters loses labels on the left (RFC 7208 7.3)."""
    name = expand(text, ctx).rstrip(".")
    while len(name) > MAX_DOMAIN and "." in name:
        name = name.split(".", 1)[1]
    if len(name) > MAX_DOMAIN or not name:
        raise MacroError("the expanded domain is not a domain name")
    return name.lower()


_SAMPLE = MacroContext("postmaster@example.jp", "example.jp", ipaddress.ip_address("192.0.2.1"), "example.jp")


def is_well_formed(text: str) -> bool:
    """Whether a macro-string's syntax is valid (what it expands to depends on the message)."""
    try:
        expand(text, _SAMPLE)
    except MacroError:
        return False
    return True
