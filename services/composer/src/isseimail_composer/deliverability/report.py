"""One sender domain's readiness report, every check run concurrently, cached briefly so a send does not wait
on DNS (failures are not cached: the next look asks again)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field

from isseimail_composer.deliverability import checks
from isseimail_composer.deliverability.resolver import Resolver
from isseimail_composer.deliverability.spf_check import check_spf
from isseimail_composer.settings import ComposerSettings
from isseimail_shared.clients.base import Unavailable
from isseimail_shared.clients.dispatcher import DispatcherClient
from isseimail_shared.contracts.composer import Finding, Report
from isseimail_shared.contracts.dispatcher import DkimKey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadinessConfig:
    bounce_domain: str
    delivery_mode: str
    helo_name: str
    sending_ips: list[str]
    relay_host: str
    bounce_mx_host: str

    @classmethod
    def from_settings(cls, s: ComposerSettings) -> ReadinessConfig:
        return cls(
            bounce_domain=s.bounce_domain.lower(),
            delivery_mode=s.delivery_mode,
            helo_name=s.helo_name.lower().rstrip("."),
            sending_ips=[str(ip) for ip in s.sending_ips],
            relay_host=s.smtp_relay.host.lower(),
            bounce_mx_host=(s.bounce_mx_host or s.helo_name).lower().rstrip("."),
        )

    def spf_mechanisms(self) -> list[str]:
        """What SPF must allow: the sending addresses when known, else the relay host (relay) or our EHLO host."""
        if self.sending_ips:
            return [f"ip{ipaddress.ip_address(ip).version}:{ip}" for ip in self.sending_ips]
        host = self.relay_host if self.delivery_mode == "relay" else self.helo_name
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return [f"a:{host}"]
        if address.is_loopback or address.is_private:
            return [f"a:{self.helo_name}"]  # a relay on this machine sends from this host's address
        return [f"ip{address.version}:{address}"]


async def _single(check: Awaitable[Finding]) -> list[Finding]:
    return [await check]


def _timed_out(domain: str, seconds: float) -> Report:
    message = f"{seconds:.0f}秒以内にDNSの応答が揃わず、確認できませんでした。時間をおいて再確認してください。"
    findings = [Finding(check=c, status="error", message=message) for c in ("spf", "dkim", "dmarc")]
    return Report.of(domain, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), findings)


@dataclass
class _Cached:
    report: Report
    expires: float


@dataclass
class ReadinessChecker:
    config: ReadinessConfig
    nameservers: list[str]
    dns_timeout: float
    dkim: DispatcherClient
    cache_seconds: float
    _cache: dict[str, _Cached] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, s: ComposerSettings) -> ReadinessChecker:
        dkim = DispatcherClient(
            s.dispatcher_url, s.internal_tokens, timeout=min(s.upstream_timeout_seconds, 10.0), connect_timeout=3.0
        )
        config = ReadinessConfig.from_settings(s)
        return cls(config, s.nameserver_strings(), s.dns_timeout_seconds, dkim, s.readiness_cache_seconds)

    async def close(self) -> None:
        await self.dkim.close()

    async def _keys(self, domain: str) -> list[DkimKey] | None:
        try:
            return await self.dkim.dkim_keys(domain)
        except Unavailable as exc:
            log.warning("dkim keys of %s unavailable: %s", domain, exc)
            return None

    async def _build(self, domain: str) -> Report:
        # A channel per report: c-ares keeps its own answer cache for the records' TTL, and a fresh look
        # (after the administrator fixed DNS) must really ask again. Our cache is the one in report().
        dns = Resolver(self.nameservers, timeout=self.dns_timeout)
        try:
            return await self._build_with(dns, domain)
        finally:
            await dns.close()

    async def _build_with(self, dns: Resolver, domain: str) -> Report:
        c = self.config

        async def dkim() -> list[Finding]:  # the dispatcher is asked while the other checks ask DNS
            return await checks.check_dkim(dns, domain, await self._keys(domain))

        mechanisms = c.spf_mechanisms()
        tasks: list[Awaitable[list[Finding]]] = [
            _single(check_spf(dns, domain, mechanisms, ips=c.sending_ips, helo=c.helo_name)),
            dkim(),
            _single(checks.check_dmarc(dns, domain, c.bounce_domain)),
            _single(checks.check_bounce_mx(dns, c.bounce_domain, c.bounce_mx_host)),
        ]
        if c.bounce_domain != domain:
            # The envelope sender (VERP) is on the bounce domain: receivers check SPF there.
            ips, helo = c.sending_ips, c.helo_name
            tasks.append(_single(check_spf(dns, c.bounce_domain, mechanisms, check="bounce_spf", ips=ips, helo=helo)))
        if c.delivery_mode == "mx":
            tasks.append(checks.check_ptr(dns, c.sending_ips, c.helo_name))
        findings = [f for group in await asyncio.gather(*tasks) for f in group]
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        return Report.of(domain, now, findings)

    def deadline(self) -> float:
        """A whole report's time limit: a few DNS timeouts, so a send never waits on a dead resolver for long."""
        return max(2.0, 3 * self.dns_timeout)

    async def report(self, domain: str, *, fresh: bool = False) -> Report:
        domain = domain.lower().rstrip(".")
        lock = self._locks.setdefault(domain, asyncio.Lock())
        async with lock:  # concurrent sends of one domain share one look-up
            cached = self._cache.get(domain)
            if cached and not fresh and cached.expires > time.monotonic():
                return cached.report.model_copy(deep=True)
            try:
                report = await asyncio.wait_for(self._build(domain), self.deadline())
            except TimeoutError:
                log.warning("readiness of %s not answered within %.1f s", domain, self.deadline())
                report = _timed_out(domain, self.deadline())
            unreachable = any("確認できませんでした" in f.message for f in report.findings)
            if self.cache_seconds > 0 and not unreachable:
                self._cache[domain] = _Cached(report, time.monotonic() + self.cache_seconds)
            else:
                self._cache.pop(domain, None)
            return report.model_copy(deep=True)
