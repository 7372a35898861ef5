"""Where a recipient domain's mail goes (the relay, or its MX hosts) and reusable connections there."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

import aiodns
import pycares

from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_dispatcher.smtp_client import Reply, SmtpConnection, SmtpError

log = logging.getLogger(__name__)

MX_CACHE_SECONDS = 300.0
IDLE_PER_HOST = 16


class NoRoute(SmtpError):
    """The domain accepts no mail (null MX, no such domain): permanent for every recipient there."""


@dataclass(frozen=True)
class Host:
    name: str
    port: int


class Router:
    def __init__(self, settings: DispatcherSettings) -> None:
        self._settings = settings
        self._resolver: aiodns.DNSResolver | None = None
        self._cache: dict[str, tuple[float, list[Host]]] = {}
        self._names: dict[str, tuple[str, ...]] = {}  # MX host names, for matching shaping presets

    async def hosts(self, domain: str) -> list[Host]:
        s = self._settings
        if s.delivery_mode == "relay":
            return [Host(s.smtp_relay.host, s.smtp_relay.port)]
        cached = self._cache.get(domain)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        hosts = await self._resolve(domain)
        self._cache[domain] = (time.monotonic() + MX_CACHE_SECONDS, hosts)
        return hosts

    async def _resolve(self, domain: str) -> list[Host]:
        if self._resolver is None:
            servers = self._settings.nameserver_strings()
            self._resolver = aiodns.DNSResolver(nameservers=servers or None, timeout=5, tries=2)
        port = self._settings.mx_port
        try:
            result = await self._resolver.query_dns(domain, "MX")
        except aiodns.error.DNSError as exc:
            code = exc.args[0] if exc.args else None
            if code == aiodns.error.ARES_ENOTFOUND:
                raise NoRoute("domain does not exist", Reply(550, ("5.1.2 domain does not exist",))) from None
            if code == aiodns.error.ARES_ENODATA:
                # No MX: the domain's own address is the implicit MX (RFC 5321 5.1).
                return [Host(address, port) for address in await self._addresses(domain)]
            raise SmtpError(f"MX lookup failed for {domain}") from None
        exchanges = sorted(
            (r.data.priority, str(r.data.exchange).rstrip("."))
            for r in result.answer
            if isinstance(r.data, pycares.MXRecordData)
        )
        if any(not name for _, name in exchanges):
            raise NoRoute("null MX", Reply(556, ("5.1.10 domain accepts no mail (null MX)",)))
        self._names[domain] = tuple(name for _, name in exchanges)
        hosts: list[Host] = []
        for _, name in exchanges:
            # Addresses from the configured resolver too: the system resolver may not know the zone.
            hosts.extend(Host(address, port) for address in await self._addresses(name))
        if not hosts:
            raise SmtpError(f"no address for the MX hosts of {domain}")
        return hosts

    async def mx_names(self, domain: str) -> tuple[str, ...]:
        """The domain's MX host names in mx mode (resolved and cached with its hosts); () in relay mode."""
        if self._settings.delivery_mode == "relay":
            return ()
        try:
            await self.hosts(domain)
        except SmtpError:
            return ()  # sending finds out again and records the failure
        return self._names.get(domain, ())

    async def _addresses(self, name: str) -> list[str]:
        assert self._resolver is not None
        try:
            result = await self._resolver.query_dns(name, "A")
        except aiodns.error.DNSError:
            return []
        return [str(r.data.addr) for r in result.answer if isinstance(r.data, pycares.ARecordData)]


class ConnectionPool:
    """Idle connections per host, reused by the next batch that goes there."""

    def __init__(self, settings: DispatcherSettings, router: Router) -> None:
        self._settings = settings
        self._router = router
        self._idle: dict[Host, list[SmtpConnection]] = {}

    async def connect(self, domain: str) -> tuple[Host, SmtpConnection]:
        """A connection for the domain: an idle one, or a new one to the first host that answers."""
        hosts = await self._router.hosts(domain)
        for host in hosts:
            idle = self._idle.get(host)
            while idle:
                conn = idle.pop()
                if not conn.broken:
                    return host, conn
        s = self._settings
        relay = s.smtp_relay if s.delivery_mode == "relay" else None
        last: SmtpError | None = None
        for host in hosts:
            try:
                conn = await SmtpConnection.open(
                    host.name,
                    host.port,
                    helo=s.helo_name,
                    timeout=s.smtp_timeout,
                    security=relay.security if relay else "none",
                    username=relay.username if relay else None,
                    password=relay.password.get_secret_value() if relay and relay.password else None,
                )
            except SmtpError as exc:
                log.info("cannot use %s:%d for %s: %s", host.name, host.port, domain, exc)
                last = exc
                continue
            return host, conn
        raise last or SmtpError(f"no host for {domain}")

    async def mx_names(self, domain: str) -> tuple[str, ...]:
        return await self._router.mx_names(domain)

    async def release(self, host: Host, conn: SmtpConnection) -> None:
        idle = self._idle.setdefault(host, [])
        if conn.broken or conn.ahead is not None or len(idle) >= IDLE_PER_HOST:  # ahead: an envelope of this batch
            await conn.quit()
        else:
            idle.append(conn)

    async def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                with contextlib.suppress(Exception):
                    await conn.quit()
        self._idle.clear()
