"""DNS lookups for readiness through the configured nameservers (aiodns), with a clear 'could not ask' apart
from 'there is no such record'."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiodns
import pycares

_NODATA = pycares.errno.ARES_ENODATA
_NXDOMAIN = pycares.errno.ARES_ENOTFOUND
MAX_NAME = 253


class DnsFailure(Exception):
    """The resolver gave no usable answer (SERVFAIL, timeout, refused): nothing can be said about the record."""


class Resolver:
    def __init__(self, nameservers: Sequence[str], *, timeout: float, tries: int = 2) -> None:
        self._resolver = aiodns.DNSResolver(nameservers=list(nameservers) or None, timeout=timeout, tries=tries)
        self.queries = 0

    async def close(self) -> None:
        await self._resolver.close()

    async def _records(self, name: str, qtype: str) -> list[pycares.DNSRecord]:
        """Answers of that type; [] for NXDOMAIN or NODATA; DnsFailure otherwise."""
        name = name.rstrip(".")
        if not name or len(name) > MAX_NAME:
            return []
        self.queries += 1
        try:
            result = await self._resolver.query_dns(name, qtype)
        except aiodns.error.DNSError as exc:
            errno = exc.args[0] if exc.args else -1
            if errno in (_NODATA, _NXDOMAIN):
                return []
            raise DnsFailure(f"{qtype} {name}: {exc.args[1] if len(exc.args) > 1 else exc}") from None
        wanted = getattr(pycares, f"QUERY_TYPE_{qtype}")
        return [r for r in result.answer if r.type == wanted]  # not the CNAMEs on the way

    async def txt(self, name: str) -> list[str]:
        records = await self._records(name, "TXT")
        out = []
        for r in records:
            if isinstance(r.data, pycares.TXTRecordData):
                out.append(r.data.data.decode("utf-8", "replace"))
        return out

    async def mx(self, name: str) -> list[tuple[int, str]]:
        records = await self._records(name, "MX")
        found = [
            (r.data.priority, str(r.data.exchange).rstrip(".").lower())
            for r in records
            if isinstance(r.data, pycares.MXRecordData)
        ]
        return sorted(found)

    async def addresses(self, name: str) -> list[str]:
        both = await asyncio.gather(self._records(name, "A"), self._records(name, "AAAA"))  # one round trip
        return [
            str(r.data.addr)
            for records in both
            for r in records
            if isinstance(r.data, (pycares.ARecordData, pycares.AAAARecordData))
        ]

    async def ptr(self, reverse_name: str) -> list[str]:
        records = await self._records(reverse_name, "PTR")
        return [str(r.data.dname).rstrip(".").lower() for r in records if isinstance(r.data, pycares.PTRRecordData)]
