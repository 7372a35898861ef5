"""Test support for domain readiness: a stand-in dispatcher serving the DKIM key contract on a loopback port,
real RSA/Ed25519 public keys, and zones for a well-configured sender domain."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from isseimail_composer.settings import ComposerSettings
from isseimail_testing.dns import DnsServer

BOUNCE = "bounce.good.example.jp"
MAIL_HOST = "mail.good.example.jp"
SENDING_IP = "192.0.2.10"


def rsa_public_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def ed25519_public_key() -> str:
    raw = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return base64.b64encode(raw).decode()


def key_json(
    domain: str, selector: str, public_key: str, *, state: str = "active", algorithm: str = "rsa-sha256"
) -> dict[str, Any]:
    k = "rsa" if algorithm == "rsa-sha256" else "ed25519"
    return {
        "selector": selector,
        "algorithm": algorithm,
        "state": state,
        "public_key": public_key,
        "txt_name": f"{selector}._domainkey.{domain}",
        "txt_value": f"v=DKIM1; k={k}; p={public_key}",
    }


@dataclass
class DkimPeer:
    """The dispatcher's GET /internal/dkim/{domain} contract; `keys[domain]` is what it answers."""

    url: str = ""
    keys: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/internal/dkim/{domain}")
        async def dkim(domain: str) -> JSONResponse:
            self.requests += 1
            return JSONResponse({"domain": domain, "keys": self.keys.get(domain, [])})

        return app


def good_domain(dns: DnsServer, peer: DkimPeer, domain: str = "good.example.jp") -> str:
    """A sender domain with everything right: SPF (one include), DKIM matching the dispatcher's key, DMARC reject,
    and the shared bounce domain with an MX that resolves."""
    public = rsa_public_key()
    peer.keys[domain] = [key_json(domain, "s1", public)]
    dns.zone(domain, txt=["v=spf1 ip4:192.0.2.10 include:_spf." + domain + " -all", "google-site-verification=x"])
    dns.zone("_spf." + domain, txt=["v=spf1 ip4:198.51.100.0/24 -all"])
    dns.zone(f"s1._domainkey.{domain}", txt=[f"v=DKIM1; k=rsa; p={public}"])
    dns.zone(f"_dmarc.{domain}", txt=[f"v=DMARC1; p=reject; rua=mailto:dmarc@{domain}"])
    good_bounce(dns)
    return domain


def good_bounce(dns: DnsServer) -> None:
    dns.zone(BOUNCE, mx=[(10, MAIL_HOST)], txt=[f"v=spf1 ip4:{SENDING_IP} -all"])
    dns.zone(MAIL_HOST, a=[SENDING_IP])


def readiness_values(dns: DnsServer, peer: DkimPeer) -> dict[str, Any]:
    """The settings domain readiness reads: the test DNS server (short timeout), the stand-in dispatcher, and the
    shared bounce domain and sending address that good_domain() publishes."""
    return {
        "dns_nameservers": dns.nameserver,
        "dns_timeout_seconds": 0.5,
        "dispatcher_url": peer.url,
        "bounce_domain": BOUNCE,
        "bounce_mx_host": MAIL_HOST,
        "helo_name": MAIL_HOST,
        "sending_ips": SENDING_IP,
    }


def readiness_settings(dns: DnsServer, peer: DkimPeer, **overrides: Any) -> ComposerSettings:
    return ComposerSettings(**{**readiness_values(dns, peer), **overrides})
