"""Unsubscribe tokens: which delivery an unsubscribe request is about, bound by an HMAC to the recipient
address and the sender organisation.

    token = base32( version(1) | campaign uuid(16) | delivery id(6, big-endian) | mac(9) )   # 52 chars

The token travels in `mailto:unsubscribe+<token>@<bounce domain>` (a local part of exactly 64 characters,
RFC 5321's limit) and in `https://<public url>/unsubscribe/<token>`. Lower-case base32 without padding,
because some MTAs lower-case local parts and because it needs no escaping in a URL.

A full address does not fit in 64 characters, so the token names the delivery, and the MAC covers the
recipient address and the sender organisation as well: whoever checks a token looks the delivery up
(the notifier knows where each delivery went and who sent the campaign) and the token verifies only for
that recipient and that organisation. Without the key (derived from ISSEIMAIL_VERP_SECRET with its own
label, so a VERP MAC is never an unsubscribe MAC) nobody can make one; 72 MAC bits against a
rate-limited online guess is ample.

The sender organisation is the sender's From domain (lower-case, IDNA A-labels): isseimail knows no
other notion of an organisation, and the From domain is what a recipient sees and what mailbox providers
judge reputation by.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass

VERSION = 1
TOKEN_LENGTH = 52
MAC_BYTES = 9
MAX_DELIVERY_ID = 2**48 - 1
LOCAL_PREFIX = "unsubscribe+"
TOKEN_PATTERN = r"[a-z2-7]{52}"  # noqa: S105 - a pattern, not a password
_TOKEN = re.compile(rf"^{TOKEN_PATTERN}$")
_LABEL = b"isseimail-unsubscribe-token"


@dataclass(frozen=True)
class TokenRef:
    """What a well-formed token names; `verify` says whether it was made for a recipient and organisation."""

    campaign_id: uuid.UUID
    delivery_id: int
    mac: bytes
    version: int = VERSION


def organisation_of(sender_email: str) -> str:
    """The sender organisation of a From address: its domain, lower-case, as IDNA A-labels."""
    domain = sender_email.strip().rpartition("@")[2].strip().rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        return domain


def _key(secret: bytes) -> bytes:
    return hmac.new(secret, _LABEL, hashlib.sha256).digest()


def _mac(secret: bytes, body: bytes, recipient: str, organisation: str) -> bytes:
    data = body + b"\0" + recipient.strip().lower().encode() + b"\0" + organisation.strip().lower().encode()
    return hmac.new(_key(secret), data, hashlib.sha256).digest()[:MAC_BYTES]


def _body(campaign_id: uuid.UUID, delivery_id: int) -> bytes:
    return bytes([VERSION]) + campaign_id.bytes + delivery_id.to_bytes(6, "big")


def make_token(secret: bytes, campaign_id: uuid.UUID, delivery_id: int, recipient: str, organisation: str) -> str:
    if not 0 <= delivery_id <= MAX_DELIVERY_ID:
        raise ValueError("delivery id out of range for an unsubscribe token")
    body = _body(campaign_id, delivery_id)
    raw = body + _mac(secret, body, recipient, organisation)
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def read_token(token: str) -> TokenRef | None:
    """The delivery a token names, or None for anything not shaped like a token of a known version.

    Says nothing about authenticity: `verify` does, once the delivery's recipient is known.
    """
    if not isinstance(token, str) or len(token) != TOKEN_LENGTH:
        return None
    token = token.lower()
    if not _TOKEN.match(token):
        return None
    raw = base64.b32decode(token.upper() + "====")
    if len(raw) != 1 + 16 + 6 + MAC_BYTES or raw[0] != VERSION:
        return None
    # 52 base32 characters carry 260 bits for 256 of data: the last 4 must be zero, or two spellings of
    # one token would exist (harmless, but one spelling per token keeps replays recognisable).
    if base64.b32encode(raw).decode("ascii").rstrip("=").lower() != token:
        return None
    return TokenRef(uuid.UUID(bytes=raw[1:17]), int.from_bytes(raw[17:23], "big"), raw[23:], raw[0])


def verify(secret: bytes, ref: TokenRef, recipient: str, organisation: str) -> bool:
    """True when the token was made for this recipient and organisation (constant-time comparison)."""
    expected = _mac(secret, _body(ref.campaign_id, ref.delivery_id), recipient, organisation)
    return hmac.compare_digest(expected, ref.mac)


def mailto_address(token: str, bounce_domain: str) -> str:
    return f"{LOCAL_PREFIX}{token}@{bounce_domain}"


def token_of_address(address: str, bounce_domain: str) -> str | None:
    """The token of `unsubscribe+<token>@<bounce domain>` (any case), or None for another address."""
    local, _, domain = address.strip().strip("<>").rpartition("@")
    if domain.lower() != bounce_domain.lower() or not local.lower().startswith(LOCAL_PREFIX):
        return None
    token = local[len(LOCAL_PREFIX) :].lower()
    return token if read_token(token) is not None else None
