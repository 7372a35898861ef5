"""DKIM signatures (dkimpy), computed in a thread: hashing a 2 MB body must not stall the event loop."""

from __future__ import annotations

import asyncio

import dkim

from isseimail_dispatcher.settings import DispatcherSettings

SIGNED_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"mime-version", b"content-type"]


class DkimSigner:
    def __init__(self, selector: str, private_key: bytes, domain: str | None) -> None:
        self.selector = selector.encode()
        self.private_key = private_key
        self.domain = domain

    @classmethod
    def from_settings(cls, settings: DispatcherSettings) -> DkimSigner | None:
        if not settings.dkim_enabled():
            return None
        assert settings.dkim_selector is not None
        assert settings.dkim_private_key is not None
        key = settings.dkim_private_key.get_secret_value().replace("\\n", "\n").encode()
        return cls(settings.dkim_selector, key, settings.dkim_domain)

    def sign_sync(self, message: bytes, sender_domain: str) -> bytes:
        domain = (self.domain or sender_domain).encode()
        header: bytes = dkim.sign(
            message,
            self.selector,
            domain,
            self.private_key,
            canonicalize=(b"relaxed", b"simple"),
            include_headers=SIGNED_HEADERS,
            linesep=b"\r\n",
        )
        return header + message

    async def sign(self, message: bytes, sender_domain: str) -> bytes:
        return await asyncio.to_thread(self.sign_sync, message, sender_domain)
