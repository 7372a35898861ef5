"""DKIM signatures, computed in a thread: hashing a 2 MB body must not stall the event loop.

A message gets one DKIM-Signature per active key of its sender's domain: RSA (what every receiver checks)
and, when the domain has one, Ed25519 (RFC 8463) as a second signature. The keys are loaded once per batch
(`Keyring.signer_for`), not per message. A domain with no key made by `isseimail-dispatcher dkim` falls back
to the key configured in ISSEIMAIL_DKIM_SELECTOR / ISSEIMAIL_DKIM_PRIVATE_KEY, as before.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from dataclasses import dataclass, field

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim.canonicalization import CanonicalizationPolicy

from isseimail_dispatcher import dkim_store
from isseimail_dispatcher.dkim_keys import Algorithm, DkimKeyError, KeyBox, normalize_domain
from isseimail_dispatcher.settings import DispatcherSettings

HEADER = b"DKIM-Signature"
# Header fields relaxed (survives refolding by relays), body simple (the body is ours, byte for byte).
POLICY = CanonicalizationPolicy.from_c_value(b"relaxed/simple")
# Signed once more than they occur ("oversigning", RFC 6376 §8.15): an instance added in transit, or added
# at all when the message has none (say a List-Unsubscribe-Post or a second From), breaks the signature, so
# nobody can replay a signed message with a forged sender, subject or unsubscribe target.
# RFC 8058 §4 requires List-Unsubscribe and List-Unsubscribe-Post to be signed.
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
# Signed when present: those, and the MIME headers (signed as they occur, not oversigned).
SIGNED_HEADERS = (*OVERSIGNED_HEADERS, b"mime-version", b"content-type", b"content-transfer-encoding")


PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class SigningKey:
    selector: bytes
    domain: bytes  # d=
    algorithm: Algorithm
    private_key: PrivateKey = field(repr=False)


def load_private_key(algorithm: Algorithm, material: bytes, *, trusted: bool = False) -> PrivateKey:
    """The key object from what is stored: PEM (RSA) or the base64 seed dkimpy uses (Ed25519).

    `trusted` skips OpenSSL's RSA consistency check (70 ms): for keys we generated ourselves and that come
    back through Fernet, which authenticates them.
    """
    try:
        if algorithm == "ed25519-sha256":
            return ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(material, validate=True))
        key = serialization.load_pem_private_key(material, password=None, unsafe_skip_rsa_key_validation=trusted)
    except (ValueError, TypeError):
        raise DkimKeyError("DKIM 秘密鍵を読み込めません。") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DkimKeyError("DKIM 秘密鍵が RSA 鍵ではありません。")
    return key


def include_headers(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    present = [name.lower() for name, _ in headers if name.lower() in SIGNED_HEADERS]
    return present + list(OVERSIGNED_HEADERS)


def split_message(message: bytes) -> tuple[list[tuple[bytes, bytes]], bytes | memoryview]:
    """Header fields and body as dkimpy's parser gives them, without its cost on big messages.

    dkimpy splits the whole message into lines to find the end of the header: on a 2.7 MB message that was
    most of the signing time. Only the header block goes through its parser here; the body is signed byte for
    byte as it goes on the wire (mailmerge stamps CRLF line ends only; even counting bare LFs in a 2.7 MB body
    cost 6 ms). A header block with a bare LF takes dkimpy's own path for the whole message.
    """
    end = message.find(b"\r\n\r\n")
    if end < 0 or message.count(b"\n", 0, end + 4) != message.count(b"\r\n", 0, end + 4):
        headers, body = dkim.rfc822_parse(message)
    else:
        headers, _ = dkim.rfc822_parse(message[: end + 4])
        body = memoryview(message)[end + 4 :]  # no copy: a worker signs several 2.7 MB messages at once
    return [(name, value) for name, value in headers], body


def simple_body_hash(body: bytes | memoryview) -> bytes:
    """bh= for the "simple" body (RFC 6376 3.4.3: trailing empty lines dropped, one CRLF at the end),
    hashed in place rather than on a canonical copy."""
    end = len(body)
    while end >= 2 and body[end - 2 : end] == b"\r\n":
        end -= 2
    hasher = hashlib.sha256(body[:end])
    hasher.update(b"\r\n")
    return base64.b64encode(hasher.digest())


class DkimSigner:
    """Signs like dkimpy's DKIM.sign (relaxed/simple, the same tags and folding), with the body hashed once
    for all keys and the signatures made by OpenSSL (dkimpy's pure-Python RSA took 6 ms a message)."""

    def __init__(self, keys: list[SigningKey]) -> None:
        self.keys = keys

    def sign_sync(self, message: bytes) -> bytes:
        return self.signature_headers(message) + message

    def signature_headers(self, message: bytes) -> bytes:
        """The DKIM-Signature header fields to put in front of the message."""
        headers, body = split_message(message)
        names = include_headers(headers)
        canonical = POLICY.canonicalize_headers(headers)
        body_hash = simple_body_hash(body)
        now = str(int(time.time())).encode()
        return b"".join(self._signature(key, canonical, names, body_hash, now) for key in self.keys)

    @staticmethod
    def _signature(
        key: SigningKey, headers: list[tuple[bytes, bytes]], names: list[bytes], body_hash: bytes, now: bytes
    ) -> bytes:
        tags = [
            (b"v", b"1"),
            (b"a", key.algorithm.encode()),
            (b"c", b"relaxed/simple"),
            (b"d", key.domain),
            (b"i", b"@" + key.domain),
            (b"q", b"dns/txt"),
            (b"s", key.selector),
            (b"t", now),
            (b"h", b" : ".join(names)),
            (b"bh", body_hash),
            (b"b", b"0" * 60),  # b= on a line of its own, so folding after signing keeps the other tags
        ]
        value = dkim.fold(b"; ".join(b"=".join(t) for t in tags), namelen=len(HEADER), linesep=b"\r\n")
        value = dkim.RE_BTAG.sub(b"\\1", value)
        hasher = hashlib.sha256()
        dkim.hash_headers(hasher, POLICY, headers, names, (HEADER, b" " + value), dict(tags))
        if isinstance(key.private_key, rsa.RSAPrivateKey):
            signature = key.private_key.sign(hasher.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        else:
            signature = key.private_key.sign(hasher.digest())  # RFC 8463: Ed25519 over the SHA-256 hash
        tags[-1] = (b"b", base64.b64encode(signature))
        value = dkim.fold(b"; ".join(b"=".join(t) for t in tags) + b"\r\n", namelen=len(HEADER), linesep=b"\r\n")
        header: bytes = HEADER + b": " + value
        return header

    async def sign(self, message: bytes) -> bytes:
        # Only hashing runs in the thread; the signed copy is made here, so the big allocations stay in the
        # main thread's malloc arena (made in pool threads they raised a worker's RSS by 50 MB).
        return await asyncio.to_thread(self.signature_headers, message) + message


class Keyring:
    """Finds the signer for a sender domain: its active keys from the table, else the configured key."""

    def __init__(self, settings: DispatcherSettings) -> None:
        self.settings = settings
        self.box = KeyBox(settings.dkim_key_secret.get_secret_value()) if settings.dkim_key_secret else None
        self._configured: PrivateKey | None = None
        if settings.dkim_selector and settings.dkim_private_key:
            pem = settings.dkim_private_key.get_secret_value().replace("\\n", "\n").encode()
            try:
                self._configured = load_private_key("rsa-sha256", pem)  # once per process: the check costs 70 ms
            except DkimKeyError:
                raise DkimKeyError("ISSEIMAIL_DKIM_PRIVATE_KEY は PEM 形式の RSA 秘密鍵ではありません。", 503) from None

    def configured_signer(self, sender_domain: str) -> DkimSigner | None:
        """The configured key (ISSEIMAIL_DKIM_*), signing as ISSEIMAIL_DKIM_DOMAIN or the sender's domain."""
        if self._configured is None or not self.settings.dkim_selector:
            return None
        domain = (self.settings.dkim_domain or sender_domain).encode()
        return DkimSigner([SigningKey(self.settings.dkim_selector.encode(), domain, "rsa-sha256", self._configured)])

    async def signer_for(self, conn: dkim_store.Conn, sender_domain: str) -> DkimSigner | None:
        try:
            domain = normalize_domain(sender_domain)
        except DkimKeyError:
            return self.configured_signer(sender_domain)
        keys = await dkim_store.signing_keys(conn, self.box, domain)
        if not keys:
            return self.configured_signer(sender_domain)
        return DkimSigner(
            [
                SigningKey(
                    k.selector.encode(), k.domain.encode(), k.algorithm, load_private_key(k.algorithm, p, trusted=True)
                )
                for k, p in keys
            ]
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
