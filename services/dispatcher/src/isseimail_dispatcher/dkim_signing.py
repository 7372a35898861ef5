"""DKIM signatures (dkimpy), computed in a thread: hashing a 2 MB body must not stall the event loop.

A message gets one DKIM-Signature per active key of its sender's domain: RSA (what every receiver checks)
and, when the domain has one, Ed25519 (RFC 8463) as a second signature. The keys are loaded once per batch
(`Keyring.signer_for`), not per message. A domain with no key made by `isseimail-dispatcher dkim` falls back
to the key configured in ISSEIMAIL_DKIM_SELECTOR / ISSEIMAIL_DKIM_PRIVATE_KEY, as before.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import dkim

from isseimail_dispatcher import dkim_store
from isseimail_dispatcher.dkim_keys import Algorithm, DkimKeyError, KeyBox, normalize_domain
from isseimail_dispatcher.settings import DispatcherSettings

# Signed when present. RFC 8058 §4 requires List-Unsubscribe and List-Unsubscribe-Post to be signed.
SIGNED_HEADERS = (
    b"from",
    b"to",
    b"cc",
    b"reply-to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
)
# Signed once more than they occur ("oversigning", RFC 6376 §8.15): an instance added in transit, or added
# at all when the message has none (say a List-Unsubscribe-Post or a second From), breaks the signature, so
# nobody can replay a signed message with a forged sender, subject or unsubscribe target.
OVERSIGNED_HEADERS = (
    b"from",
    b"to",
    b"cc",
    b"reply-to",
    b"subject",
    b"date",
    b"message-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
)


@dataclass(frozen=True)
class SigningKey:
    selector: bytes
    domain: bytes  # d=
    algorithm: Algorithm
    private_key: bytes = field(repr=False)


def include_headers(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    present = [name.lower() for name, _ in headers if name.lower() in SIGNED_HEADERS]
    return present + list(OVERSIGNED_HEADERS)


class DkimSigner:
    def __init__(self, keys: list[SigningKey]) -> None:
        self.keys = keys

    @classmethod
    def from_settings(cls, settings: DispatcherSettings, sender_domain: str) -> DkimSigner | None:
        """The configured key (ISSEIMAIL_DKIM_*), signing as ISSEIMAIL_DKIM_DOMAIN or the sender's domain."""
        if not settings.dkim_enabled():
            return None
        assert settings.dkim_selector is not None
        assert settings.dkim_private_key is not None
        key = settings.dkim_private_key.get_secret_value().replace("\\n", "\n").encode()
        domain = settings.dkim_domain or sender_domain
        return cls([SigningKey(settings.dkim_selector.encode(), domain.encode(), "rsa-sha256", key)])

    def sign_sync(self, message: bytes) -> bytes:
        # One parse of the message for all signatures; each sign() hashes the body again (bh= is per key).
        signer = dkim.DKIM(message, linesep=b"\r\n")
        names = include_headers(signer.headers)
        fields = []
        for key in self.keys:
            fields.append(
                signer.sign(
                    key.selector,
                    key.domain,
                    key.private_key,
                    signature_algorithm=key.algorithm.encode(),
                    canonicalize=(b"relaxed", b"simple"),
                    include_headers=names,
                )
            )
        return b"".join(fields) + message

    async def sign(self, message: bytes) -> bytes:
        return await asyncio.to_thread(self.sign_sync, message)


class Keyring:
    """Finds the signer for a sender domain: its active keys from the table, else the configured key."""

    def __init__(self, settings: DispatcherSettings) -> None:
        self.settings = settings
        self.box = KeyBox(settings.dkim_key_secret.get_secret_value()) if settings.dkim_key_secret else None

    async def signer_for(self, conn: dkim_store.Conn, sender_domain: str) -> DkimSigner | None:
        try:
            domain = normalize_domain(sender_domain)
        except DkimKeyError:
            return DkimSigner.from_settings(self.settings, sender_domain)
        keys = await dkim_store.signing_keys(conn, self.box, domain)
        if not keys:
            return DkimSigner.from_settings(self.settings, sender_domain)
        return DkimSigner(
            [SigningKey(k.selector.encode(), k.domain.encode(), k.algorithm, private) for k, private in keys]
        )

    async def check(self, conn: dkim_store.Conn) -> None:
        """At start: stored keys that the configured secret cannot open stop the worker with a clear error,
        instead of every batch failing later."""
        if await conn.fetchval("SELECT 1 FROM dkim_keys WHERE private_key IS NOT NULL LIMIT 1"):
            if self.box is None:
                raise DkimKeyError(
                    "ISSEIMAIL_DKIM_KEY_SECRET が設定されていないため、保存済みの DKIM 鍵を使用できません。"
                )
            await dkim_store.check_secret(conn, self.box)
