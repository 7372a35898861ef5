"""Does a domain's SPF authorise one sending address? A check_host() (RFC 7208 4) for the administrator's
report: ip4/ip6, a, mx, include, exists, redirect and all; ptr and macros are not evaluated ("unknown")."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from isseimail_composer.deliverability.records import RecordError, SpfTerm, is_spf, parse_spf
from isseimail_composer.deliverability.resolver import DnsFailure, Resolver

RESULTS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MAX_LOOKUPS = 10
MAX_MX_HOSTS = 10  # RFC 7208 4.6.4: addresses of at most 10 MX hosts are looked at


class _Unknown(Exception):
    """The answer cannot be known here (permerror, temperror, ptr or a macro)."""


@dataclass
class _Budget:
    lookups: int = 0

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


async def _matches(
    dns: Resolver, domain: str, term: SpfTerm, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, budget: _Budget
) -> bool:
    mechanism = term.mechanism
    if mechanism == "all":
        return True
    if mechanism in ("ip4", "ip6"):
        return ip in ipaddress.ip_network(term.value, strict=False)
    target = term.target() or domain
    if "%" in target or mechanism == "ptr":
        raise _Unknown
    budget.spend()
    if mechanism == "include":
        result = await _check_host(dns, target, ip, budget)
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


async def _check_host(
    dns: Resolver, domain: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, budget: _Budget
) -> str:
    found = [t for t in await dns.txt(domain) if is_spf(t)]
    if not found:
        return "none"
    if len(found) > 1:
        raise _Unknown
    try:
        record = parse_spf(found[0])
    except RecordError:
        raise _Unknown from None
    for term in record.terms:
        if await _matches(dns, domain, term, ip, budget):
            return RESULTS[term.qualifier]
    if record.redirect:
        budget.spend()
        return await _check_host(dns, record.redirect.lower(), ip, budget)
    return "neutral"


async def authorizes(dns: Resolver, domain: str, ip: str) -> str:
    """pass / fail / softfail / neutral / none, or unknown when it cannot be evaluated here."""
    try:
        return await _check_host(dns, domain, ipaddress.ip_address(ip), _Budget())
    except (_Unknown, DnsFailure, RecursionError):
        return "unknown"
