"""The smoke stack's DNS server (dnslib): the list-validator checks recipient domains against it, never the
internet. Every name under the smoke test's domains (ISSEIMAIL_SMOKE_DOMAINS, default example.jp) has an MX
pointing at mx.<domain>, whose A record is the stack's mail catcher; anything else is NXDOMAIN."""

from __future__ import annotations

import os
import socket
import time

from dnslib import MX, QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSServer

DOMAINS = tuple(d.strip().lower() for d in os.environ.get("ISSEIMAIL_SMOKE_DOMAINS", "example.jp").split(","))
MAIL_HOST = os.environ.get("ISSEIMAIL_SMOKE_MAIL_HOST", "mailpit")


class Resolver(BaseResolver):
    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        if not any(name == d or name.endswith("." + d) for d in DOMAINS):
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        qtype = QTYPE[request.q.qtype]
        if qtype == "MX" and not name.startswith("mx."):
            reply.add_answer(RR(request.q.qname, QTYPE.MX, rdata=MX(f"mx.{name}."), ttl=60))
        elif qtype == "A" and name.startswith("mx."):
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(socket.gethostbyname(MAIL_HOST)), ttl=60))
        return reply  # NOERROR without answers: the name exists, the type does not


if __name__ == "__main__":
    for transport in (False, True):
        DNSServer(Resolver(), port=53, address="0.0.0.0", tcp=transport).start_thread()
    print(f"dns: serving {', '.join(DOMAINS)} on :53", flush=True)
    while True:
        time.sleep(3600)
