"""A real DNS server on a loopback port (dnslib), serving zones each test declares.

    dns = DnsServer(); dns.start()
    dns.zone("example.jp", mx=[(10, "mx.example.jp")])
    dns.zone("a-only.jp", a=["127.0.0.1"])
    dns.zone("nullmx.jp", null_mx=True)
    dns.zone("gone.jp", nxdomain=True)        # also the answer for any name never declared
    dns.zone("broken.jp", servfail=True)
    dns.zone("empty.jp")                       # exists, no records: NOERROR with no answer
    dns.zone("slow.jp", mx=[...], delay=3.0)  # answers after a delay (timeouts)
    dns.zone("s1._domainkey.example.jp", txt=["v=DKIM1; k=rsa; p=..."])  # one TXT record per item
    dns.zone(reverse_name("192.0.2.7"), ptr=["mail.example.jp"])       # reverse DNS (PTR)
The server counts queries per (name, type) so tests can prove a domain was looked up once.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dnslib import AAAA, MX, PTR, QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSServer


@dataclass
class Zone:
    mx: list[tuple[int, str]] = field(default_factory=list)
    a: list[str] = field(default_factory=list)
    aaaa: list[str] = field(default_factory=list)
    txt: list[str] = field(default_factory=list)
    ptr: list[str] = field(default_factory=list)
    null_mx: bool = False
    nxdomain: bool = False
    servfail: bool = False
    delay: float = 0.0


class _Resolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, server: DnsServer) -> None:
        self.server = server

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        self.server.record_query(qname, qtype)
        reply = request.reply()
        zone = self.server.lookup(qname)
        if zone is None or zone.nxdomain:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if zone.delay:
            time.sleep(zone.delay)
        if zone.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        name = request.q.qname
        if qtype == "MX":
            if zone.null_mx:
                reply.add_answer(RR(name, QTYPE.MX, rdata=MX(".", 0), ttl=60))
            for pref, host in zone.mx:
                reply.add_answer(RR(name, QTYPE.MX, rdata=MX(host, pref), ttl=60))
        elif qtype == "A":
            for ip in zone.a:
                reply.add_answer(RR(name, QTYPE.A, rdata=A(ip), ttl=60))
        elif qtype == "AAAA":
            for ip in zone.aaaa:
                reply.add_answer(RR(name, QTYPE.AAAA, rdata=AAAA(ip), ttl=60))
        elif qtype == "TXT":
            for text in zone.txt:
                reply.add_answer(RR(name, QTYPE.TXT, rdata=TXT(txt_strings(text)), ttl=60))
        elif qtype == "PTR":
            for host in zone.ptr:
                reply.add_answer(RR(name, QTYPE.PTR, rdata=PTR(host), ttl=60))
        return reply


def reverse_name(ip: str) -> str:
    """The PTR owner name of an address: 7.2.0.192.in-addr.arpa (IPv6: nibbles under ip6.arpa)."""
    return ipaddress.ip_address(ip).reverse_pointer


def txt_strings(text: str) -> list[bytes]:
    """One TXT record as DNS carries it: character-strings of at most 255 bytes (a 2048-bit DKIM key is longer)."""
    data = text.encode()
    return [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]


class DnsServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._zones: dict[str, Zone] = {}
        self._lock = threading.Lock()
        self.queries: Counter[tuple[str, str]] = Counter()
        self._server: DNSServer | None = None

    def zone(self, name: str, **records: Any) -> Zone:
        zone = Zone(**records)
        with self._lock:
            self._zones[name.rstrip(".").lower()] = zone
        return zone

    def clear(self) -> None:
        with self._lock:
            self._zones.clear()
            self.queries.clear()

    def lookup(self, name: str) -> Zone | None:
        with self._lock:
            return self._zones.get(name)

    def record_query(self, name: str, qtype: str) -> None:
        with self._lock:
            self.queries[(name, qtype)] += 1

    def query_txt(self, name: str, timeout: float = 5.0) -> list[str]:
        """The TXT records of a name, asked over UDP as any resolver would (each record's strings joined)."""
        reply = DNSRecord.parse(DNSRecord.question(name, "TXT").send(self.host, self.port, timeout=timeout))
        return [b"".join(rr.rdata.data).decode() for rr in reply.rr if rr.rtype == QTYPE.TXT]

    def dkim_dnsfunc(self) -> Callable[..., bytes]:
        """A `dnsfunc` for dkimpy's verify that looks the key up in this server over the network."""

        def lookup(name: bytes, timeout: int = 5) -> bytes:
            found = self.query_txt(name.decode().rstrip("."), timeout)
            return found[0].encode() if found else b""

        return lookup

    @property
    def nameserver(self) -> str:
        """As ISSEIMAIL_DNS_NAMESERVERS wants it."""
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self._server = DNSServer(_Resolver(self), port=self.port, address=self.host, tcp=False)
        self._server.start_thread()
        self.port = self._server.server.server_address[1]

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server.server.server_close()
            self._server = None
