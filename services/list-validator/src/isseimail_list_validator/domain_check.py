"""Does a domain accept mail? MX, null MX (RFC 7505), implicit MX through A/AAAA (RFC 5321 5.1).

Answers are final ("ok", "domain_not_found", "null_mx", "no_mail_host") or "dns_unverified" when the
resolver kept failing (SERVFAIL, timeout, refused) after the configured attempts: that is not the same
as "does not exist", and the list's policy decides what it means.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiodns
import pycares
from prometheus_client import Counter

log = logging.getLogger(__name__)

DNS_QUERIES = Counter(
    "isseimail_list_validator_dns_queries_total", "DNS queries sent by domain checks.", ["qtype", "outcome"]
)

_NODATA = pycares.errno.ARES_ENODATA
_NXDOMAIN = pycares.errno.ARES_ENOTFOUND
_TIMEOUT = pycares.errno.ARES_ETIMEOUT


@dataclass(frozen=True)
class DomainResult:
    code: str  # ok, domain_not_found, null_mx, no_mail_host, dns_unverified
    mx: list[str] = field(default_factory=list)  # exchanges by preference (A/AAAA fallback: the domain)
    detail: str = ""


class _Unverified(Exception):
    pass


class DomainChecker:
    def __init__(self, nameservers: Sequence[str], *, timeout: float, attempts: int) -> None:
        self._nameservers = list(nameservers) or None
        self._timeout = timeout
        self._attempts = attempts
        self._resolver = self._new_resolver()

    def _new_resolver(self) -> aiodns.DNSResolver:
        return aiodns.DNSResolver(nameservers=self._nameservers, timeout=self._timeout, tries=self._attempts)

    async def close(self) -> None:
        await self._resolver.close()

    async def _ask(self, domain: str, qtype: str) -> pycares.DNSResult:
        """One query; a timeout is asked once more on a fresh channel.

        c-ares scales a server's timeout to the latency it has seen: after many fast answers a domain whose
        servers take a second times out on every try, well inside ISSEIMAIL_DNS_TIMEOUT_SECONDS. A channel
        with no history waits the configured timeout, so a slow but working domain is verified, not blocked.
        """
        try:
            return await self._resolver.query_dns(domain, qtype)
        except aiodns.error.DNSError as exc:
            if not exc.args or exc.args[0] != _TIMEOUT:
                raise
        fresh = self._new_resolver()
        try:
            return await fresh.query_dns(domain, qtype)
        finally:
            await fresh.close()

    async def _query(self, domain: str, qtype: str) -> list[pycares.DNSRecord] | None:
        """Records of that type; None for NODATA; raises LookupError for NXDOMAIN, _Unverified otherwise.

        c-ares itself retries (SERVFAIL at once, timeouts with a backoff from a latency-based timeout)
        `attempts` times; what still fails is "could not be verified", never "does not exist".
        """
        try:
            result = await self._ask(domain, qtype)
        except aiodns.error.DNSError as exc:
            errno = exc.args[0] if exc.args else -1
            if errno == _NODATA:
                DNS_QUERIES.labels(qtype, "nodata").inc()
                return None
            if errno == _NXDOMAIN:
                DNS_QUERIES.labels(qtype, "nxdomain").inc()
                raise LookupError(domain) from None
            DNS_QUERIES.labels(qtype, "error").inc()
            raise _Unverified(str(exc.args[1] if len(exc.args) > 1 else exc)) from None
        DNS_QUERIES.labels(qtype, "answer").inc()
        records = [r for r in result.answer if r.type == pycares.QUERY_TYPE_MX or qtype != "MX"]
        return records or None

    async def addresses(self, host: str) -> list[str]:
        """IP addresses of a mail exchanger (for the SMTP probe), through the configured nameservers."""
        try:
            records = await self._query(host, "A") or await self._query(host, "AAAA") or []
        except (LookupError, _Unverified):
            return []
        return [str(r.data.addr) for r in records if hasattr(r.data, "addr")]

    async def check(self, domain: str) -> DomainResult:
        try:
            mx = await self._query(domain, "MX")
            if mx is not None:
                exchanges = sorted(
                    (r.data.priority, str(r.data.exchange).rstrip(".").lower())
                    for r in mx
                    if isinstance(r.data, pycares.MXRecordData)
                )
                hosts = [host for _, host in exchanges if host]
                if not hosts and exchanges:
                    return DomainResult("null_mx")  # RFC 7505: "MX 0 ." says the domain takes no mail
                if hosts:
                    return DomainResult("ok", hosts)
            # No MX: the domain itself is the implicit MX when it has an address (RFC 5321 5.1).
            if await self._query(domain, "A") is not None or await self._query(domain, "AAAA") is not None:
                return DomainResult("ok", [domain])
            return DomainResult("no_mail_host")
        except LookupError:
            return DomainResult("domain_not_found")
        except _Unverified as exc:
            return DomainResult("dns_unverified", detail=str(exc))
