"""Does a domain's SPF authorise one sending address? A check_host() (RFC 7208 4) for the administrator's
report: ip4/ip6, a, mx, ptr, include, exists, redirect and all, with macros expanded (spf_macros.py) for a
representative sender (postmaster@ the domain unless given: the local part of a VERP address differs per
message) and our EHLO name."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from isseimail_composer.deliverability.records import RecordError, SpfTerm, is_spf, parse_spf
from isseimail_composer.deliverability.resolver import DnsFailure, Resolver
from isseimail_composer.deliverability.spf_macros import MacroContext, MacroError, expand_domain

RESULTS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MAX_LOOKUPS = 10
MAX_MX_HOSTS = 10  # RFC 7208 4.6.4: addresses of at most 10 MX hosts are looked at
MAX_PTR_NAMES = 10  # RFC 7208 4.6.4: and of at most 10 PTR names


class _Unknown(Exception):
    """The answer cannot be known here (permerror or temperror)."""


IP = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass
class _Budget:
    lookups: int = 0
    validated: list[str] | None = None  # the client's validated names, looked up once per evaluation

    def spend(self) -> None:
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            raise _Unknown


def _cidr(suffix: str, version: int) -> int:
    """The prefix length of an a/mx term for the address family: suffix "", "/24", "//64" or "/24//64"."""
    match = re.fullmatch(r"(?:/(\d+))?(?://(\d+))?", suffix)
    if match is None:
        raise _Unknown
    v4, v6 = match.groups()
    return (int(v4) if v4 else 32) if version == 4 else (int(v6) if v6 else 128)


def _in(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, addresses: list[str], prefix: int) -> bool:
    for text in addresses:
        address = ipaddress.ip_address(text)
        if address.version == ip.version and ip in ipaddress.ip_network(f"{address}/{prefix}", strict=False):
            return True
    return False


async def validated_names(dns: Resolver, ip: IP) -> list[str]:
    """The client's PTR names whose addresses include it (RFC 7208 5.5); a PTR that cannot be read gives none."""
    try:
        names = (await dns.ptr(ip.reverse_pointer))[:MAX_PTR_NAMES]
    except DnsFailure:
        return []
    confirmed = []
    for name in names:
        try:
            addresses = await dns.addresses(name)
        except DnsFailure:
            continue  # RFC 7208 5.5: an error here skips the name
        if any(ipaddress.ip_address(a) == ip for a in addresses):
            confirmed.append(name)
    return confirmed


def _within(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


async def _validated(dns: Resolver, ctx: MacroContext, budget: _Budget) -> list[str]:
    if budget.validated is None:
        budget.validated = await validated_names(dns, ctx.ip)
    return budget.validated


async def _context(dns: Resolver, text: str, ctx: MacroContext, budget: _Budget) -> MacroContext:
    """The context with %{p} filled in when the text uses it: the current domain, else a subdomain of it,
    else any validated name (RFC 7208 7.3)."""
    if "%{p" not in text.lower():
        return ctx
    names = await _validated(dns, ctx, budget)
    preferred = sorted(names, key=lambda n: (n != ctx.domain, not _within(n, ctx.domain)))
    return replace(ctx, validated=preferred[0] if preferred else "unknown")


async def _target(dns: Resolver, text: str | None, ctx: MacroContext, budget: _Budget) -> str:
    if not text:
        return ctx.domain
    if "%" not in text:
        return text.rstrip(".").lower()
    try:
        return expand_domain(text, await _context(dns, text, ctx, budget))
    except MacroError:
        raise _Unknown from None  # permerror


async def _matches(dns: Resolver, ctx: MacroContext, term: SpfTerm, budget: _Budget) -> bool:
    mechanism, ip = term.mechanism, ctx.ip
    if mechanism == "all":
        return True
    if mechanism in ("ip4", "ip6"):
        return ip in ipaddress.ip_network(term.value, strict=False)
    budget.spend()
    target = await _target(dns, term.target(), ctx, budget)
    if mechanism == "ptr":
        return any(_within(name, target) for name in await _validated(dns, ctx, budget))
    if mechanism == "include":
        result = await _check_host(dns, replace(ctx, domain=target), budget)
        if result in ("none", "unknown"):
            raise _Unknown
        return result == "pass"
    if mechanism == "exists":
        return bool(await dns.addresses(target))
    suffix = term.value if term.value.startswith("/") else term.value[len(term.value.split("/", 1)[0]) :]
    prefix = _cidr(suffix, ip.version)
    if mechanism == "a":
        return _in(ip, await dns.addresses(target), prefix)
    hosts = [h for _, h in await dns.mx(target) if h][:MAX_MX_HOSTS]
    for host in hosts:
        if _in(ip, await dns.addresses(host), prefix):
            return True
    return False


async def _check_host(dns: Resolver, ctx: MacroContext, budget: _Budget) -> str:
    found = [t for t in await dns.txt(ctx.domain) if is_spf(t)]
    if not found:
        return "none"
    if len(found) > 1:
        raise _Unknown
    try:
        record = parse_spf(found[0])
    except RecordError:
        raise _Unknown from None
    for term in record.terms:
        if await _matches(dns, ctx, term, budget):
            return RESULTS[term.qualifier]
    if record.redirect:
        budget.spend()
        target = await _target(dns, record.redirect, ctx, budget)
        result = await _check_host(dns, replace(ctx, domain=target), budget)
        if result == "none":
            raise _Unknown  # RFC 7208 6.1: a redirect to a domain without SPF is a permerror
        return result
    return "neutral"


async def authorizes(dns: Resolver, domain: str, ip: str, *, sender: str | None = None, helo: str | None = None) -> str:
    """pass / fail / softfail / neutral / none, or unknown when it cannot be evaluated (permerror, temperror)."""
    ctx = MacroContext(
        sender=sender or f"postmaster@{domain}", domain=domain, ip=ipaddress.ip_address(ip), helo=helo or domain
    )
    try:
        return await _check_host(dns, ctx, _Budget())
    except (_Unknown, DnsFailure, RecursionError):
        return "unknown"
