"""Intranet only: a request from outside ISSEIMAIL_INTRANET_CIDRS gets 403 before anything else runs.

X-Forwarded-For is believed only when the direct peer is a trusted proxy; then the client is the
right-most address that is not itself a trusted proxy (the left part of the header is client-made).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from isseimail_shared.asgi_answer import send_json
from isseimail_shared.unsubscribe import TOKEN_PATTERN

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

FORBIDDEN_MESSAGE = "一斉メールは社内ネットワークからのみ利用できます。"
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes come from the cluster, not users
# The one exception for users outside: RFC 8058 one-click unsubscribe. Mailbox providers POST it from their
# servers and recipients open it from home, so it cannot be intranet-only. Exactly GET and POST of
# /unsubscribe/<token> with a well-formed token; any other path, method or token shape stays 403.
PUBLIC_PATH = re.compile(rf"/unsubscribe/{TOKEN_PATTERN}")
PUBLIC_METHODS = frozenset({"GET", "POST"})


def is_public(method: str, path: str) -> bool:
    return method in PUBLIC_METHODS and PUBLIC_PATH.fullmatch(path) is not None


def _in(address: Address, networks: Sequence[Network]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> Address | None:
    try:
        address: Address = ipaddress.ip_address(peer or "")
    except ValueError:
        return None
    if forwarded_for and _in(address, trusted):
        for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
            try:
                address = ipaddress.ip_address(hop)
            except ValueError:
                return None  # a garbled header from a trusted proxy: trust nothing
            if not _in(address, trusted):
                break
    return address


class IntranetOnly:
    def __init__(self, app: ASGIApp, allowed: Sequence[Network], trusted: Sequence[Network]) -> None:
        self.app = app
        self.allowed = list(allowed)
        self.trusted = list(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1") or None
        peer = (scope.get("client") or (None, 0))[0]
        address = client_address(peer, forwarded, self.trusted)
        outside = address is None or not _in(address, self.allowed)
        if outside and address is not None and is_public(scope.get("method", ""), scope["path"]):
            scope.setdefault("state", {})["client_ip"] = str(address)
            await self.app(scope, receive, send)
            return
        if outside:
            log.warning("refused request from outside the intranet", extra={"client": str(address or peer)})
            await send_json(send, 403, FORBIDDEN_MESSAGE)
            return
        scope.setdefault("state", {})["client_ip"] = str(address)
        await self.app(scope, receive, send)
