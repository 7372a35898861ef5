"""VERP bounce addresses: the envelope sender names the campaign and delivery, authenticated by an HMAC.

    b-<campaign uuid hex>-<delivery id>-<mac>@<bounce domain>

Only lower-case hex and digits, because some MTAs lower-case local parts; at most 64 characters, as
RFC 5321 allows (delivery ids below 10^16). The MAC (HMAC-SHA256, 48 bits, over campaign, delivery and
domain) stops a forged bounce from failing arbitrary recipients: without ISSEIMAIL_VERP_SECRET nobody
can make a valid address.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass

_PATTERN = re.compile(r"^b-([0-9a-f]{32})-(\d{1,16})-([0-9a-f]{12})$")


@dataclass(frozen=True)
class VerpTag:
    campaign_id: uuid.UUID
    delivery_id: int


def _mac(secret: bytes, domain: str, campaign_id: uuid.UUID, delivery_id: int) -> str:
    data = f"{campaign_id.hex}:{delivery_id}@{domain.lower()}".encode()
    return hmac.new(secret, data, hashlib.sha256).hexdigest()[:12]


def bounce_address(secret: bytes, domain: str, campaign_id: uuid.UUID, delivery_id: int) -> str:
    if not 0 <= delivery_id < 10**16:
        raise ValueError("delivery id out of range for a VERP address")
    return f"b-{campaign_id.hex}-{delivery_id}-{_mac(secret, domain, campaign_id, delivery_id)}@{domain}"


def parse_bounce_address(secret: bytes, domain: str, address: str) -> VerpTag | None:
    """The tag of a valid VERP address on our bounce domain; None for anything else or a bad MAC."""
    local, _, addr_domain = address.strip().strip("<>").rpartition("@")
    if addr_domain.lower() != domain.lower():
        return None
    match = _PATTERN.match(local.lower())
    if match is None:
        return None
    campaign_id, delivery_id = uuid.UUID(match[1]), int(match[2])
    if not hmac.compare_digest(match[3], _mac(secret, domain, campaign_id, delivery_id)):
        return None
    return VerpTag(campaign_id, delivery_id)
