"""DKIM through the real worker path: messages captured by the real SMTP server verify with dkimpy, whose key
lookups go over UDP to the real loopback DNS server serving the published TXT records."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import dkim
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from isseimail_dispatcher.dkim_keys import KeyPair, generate, txt_name, txt_value
from isseimail_dispatcher.dkim_signing import DkimSigner, SigningKey, load_private_key
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_shared.mailmerge import Recipient, render_campaign
from isseimail_testing.dns import DnsServer
from isseimail_testing.smtp import Captured, CaptureServer

from .conftest import running_dispatcher

DOMAIN = "corp.example.jp"  # the snapshot peer's sender domain
REQUIRED = {"from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"}


def signatures(data: bytes) -> list[dict[bytes, bytes]]:
    return [
        dkim.util.parse_tag_value(value)
        for name, value in dkim.rfc822_parse(data)[0]
        if name.lower() == b"dkim-signature"
    ]


def verify_all(data: bytes, dns: DnsServer) -> list[bool]:
    """Every DKIM-Signature of the message, verified on its own (dkim.verify checks only the first)."""
    results = []
    for index in range(len(signatures(data))):
        try:
            results.append(bool(dkim.DKIM(data).verify(idx=index, dnsfunc=dns.dkim_dnsfunc())))
        except dkim.DKIMException:  # what dkim.verify turns into False
            results.append(False)
    return results


async def publish(
    api: httpx.AsyncClient, dns: DnsServer, domain: str = DOMAIN, *, states: set[str] | None = None
) -> dict[str, Any]:
    """Serve every listed key's TXT record from the DNS server, as the operator would publish them."""
    listing: dict[str, Any] = (await api.get(f"/internal/dkim/{domain}")).json()
    for key in listing["keys"]:
        if states is None or key["state"] in states:
            dns.zone(key["txt_name"], txt=[key["txt_value"]])
    return listing


@pytest.fixture
def signing_settings(
    dkim_settings: Callable[..., DispatcherSettings], snapshot_peer: Any
) -> Callable[..., DispatcherSettings]:
    """DKIM settings reading campaigns from the snapshot peer, with one-click unsubscribe (List-Unsubscribe-Post
    on every message)."""
    return functools.partial(dkim_settings, composer_url=snapshot_peer.url, public_url="https://mail.example.jp")


async def test_configured_key_still_signs(
    signing_settings: Callable[..., DispatcherSettings],
    smtp_server: CaptureServer,
    dns_server: DnsServer,
    make_recipients: Any,
    send_campaign: Any,
) -> None:
    """With no key in the table, ISSEIMAIL_DKIM_SELECTOR / _PRIVATE_KEY sign as before, and the read API lists
    that key as the active one, so the readiness check can compare it with DNS."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    settings = signing_settings(
        dkim_selector="isseimail",
        dkim_private_key=pem.replace("\n", "\\n"),  # as an environment variable carries it
    )
    async with running_dispatcher(settings) as (api, _):
        listing = await publish(api, dns_server)
        await send_campaign(make_recipients(3))
    assert [(k["selector"], k["state"], k["algorithm"]) for k in listing["keys"]] == [
        ("isseimail", "active", "rsa-sha256")
    ]
    assert len(smtp_server.messages) == 4
    for captured in smtp_server.messages:
        assert captured.data.startswith(b"DKIM-Signature:")
        assert verify_all(captured.data, dns_server) == [True]
    tampered_body = smtp_server.messages[0].data + b"one more line\r\n"
    assert verify_all(tampered_body, dns_server) == [False]


async def test_generated_rsa_and_ed25519_keys_both_sign(
    signing_settings: Callable[..., DispatcherSettings],
    smtp_server: CaptureServer,
    dns_server: DnsServer,
    make_recipients: Any,
    send_campaign: Any,
) -> None:
    """A domain with an RSA and an Ed25519 key gets two signatures per message; both verify, both cover the
    headers RFC 8058 and the issue name, and a header added in transit breaks them."""
    settings = signing_settings()
    async with running_dispatcher(settings) as (api, _):
        for algorithm in ("rsa", "ed25519"):
            assert (await api.post(f"/internal/dkim/{DOMAIN}/keys", json={"algorithm": algorithm})).status_code == 201
        await publish(api, dns_server)
        rotated = await api.post(f"/internal/dkim/{DOMAIN}/rotate")
        assert rotated.status_code == 200, rotated.text
        await send_campaign(make_recipients(3))
    assert len(smtp_server.messages) == 4
    for captured in smtp_server.messages:
        sigs = signatures(captured.data)
        assert sorted(s[b"a"] for s in sigs) == [b"ed25519-sha256", b"rsa-sha256"]
        assert all(s[b"d"] == DOMAIN.encode() for s in sigs)
        for sig in sigs:
            signed = [h.strip().decode() for h in re.split(rb"\s*:\s*", sig[b"h"])]
            assert set(signed) >= REQUIRED
            assert signed.count("list-unsubscribe-post") == 2  # present once, signed twice: no second one
        assert verify_all(captured.data, dns_server) == [True, True]
        forged = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" + captured.data
        assert verify_all(forged, dns_server) == [False, False]
        second_from = captured.data.replace(b"\r\nFrom: ", b"\r\nFrom: evil@attacker.example\r\nFrom: ", 1)
        assert verify_all(second_from, dns_server) == [False, False]


async def test_rotation_keeps_both_selectors_verifying(
    signing_settings: Callable[..., DispatcherSettings],
    smtp_server: CaptureServer,
    dns_server: DnsServer,
    make_recipients: Any,
    send_campaign: Any,
) -> None:
    """Mail signed before a rotation (old selector) and after it (new selector) both verify while both
    records are published; the old key really is another key (without its record the old mail fails)."""
    settings = signing_settings()
    async with running_dispatcher(settings) as (api, _):
        first = (await api.post(f"/internal/dkim/{DOMAIN}/keys", json={"selector": "s2026a"})).json()["key"]
        await publish(api, dns_server)
        assert (await api.post(f"/internal/dkim/{DOMAIN}/rotate")).status_code == 200
        await send_campaign(make_recipients(2))
        before: list[Captured] = smtp_server.messages

        second = (await api.post(f"/internal/dkim/{DOMAIN}/keys", json={})).json()["key"]
        during = await publish(api, dns_server)  # old active + new next: both selectors live
        rotated = (await api.post(f"/internal/dkim/{DOMAIN}/rotate")).json()
        await send_campaign(make_recipients(2))
        after = smtp_server.messages[len(before) :]
    assert {(k["selector"], k["state"]) for k in during["keys"]} == {
        (first["selector"], "active"),
        (second["selector"], "next"),
    }
    assert rotated["activated"] == [second["selector"]]
    assert {(k["selector"], k["state"]) for k in rotated["keys"]} == {
        (first["selector"], "retired"),
        (second["selector"], "active"),
    }
    assert len(before) == 3
    assert len(after) == 3
    assert all(signatures(m.data)[0][b"s"] == first["selector"].encode() for m in before)
    assert all(signatures(m.data)[0][b"s"] == second["selector"].encode() for m in after)
    for captured in before + after:
        assert verify_all(captured.data, dns_server) == [True]
    dns_server.zone(first["txt_name"], txt=[second["txt_value"]])  # the old name now carries another key
    assert verify_all(before[0].data, dns_server) == [False]
    assert verify_all(after[0].data, dns_server) == [True]


def stamped() -> bytes:
    template = render_campaign(
        "sender@corp.example.jp",
        "差出人  名",
        "ご案内 " * 20,
        "本文\n\n\n",
        attachments=[("a.pdf", b"%PDF-1.4\n" * 999)],
    )
    recipient = Recipient(row=1, email="user1@example.jp", company="株式会社テスト", contact="担当 1")
    return template.stamp(recipient, message_id="<1@corp.example.jp>", bounce_address="b1@bounce.example.jp")


EDGE_MESSAGES = {
    "stamped campaign mail": stamped(),
    "folded header, trailing blank lines": b"From: a@corp.example.jp\r\nTo: b@example.jp\r\nSubject: folded\r\n"
    b"  continued\twith tab  \r\nDate: Fri, 27 Nov 2026 10:00:00 +0900\r\n\r\nbody  \r\n\r\n\r\n",
    "no body": b"FROM: a@corp.example.jp\r\nsubject: x\r\n\r\n",
    "body without a final CRLF": b"From: a@corp.example.jp\r\nTo: b@example.jp\r\n\r\nlast line",
    "bare LF (dkimpy's own parse)": b"From: a@corp.example.jp\nTo: b@example.jp\n\nline\nline\n",
    "repeated headers": b"From: a@corp.example.jp\r\nTo: b@example.jp\r\nTo: c@example.jp\r\n"
    b"List-Unsubscribe: <mailto:u@x.jp>\r\n\r\nbody\r\n",
}
KEYS: dict[str, KeyPair] = {}


@pytest.mark.parametrize("name", list(EDGE_MESSAGES))
def test_signer_output_verifies_with_dkimpy(name: str, dns_server: DnsServer) -> None:
    """Our signer (OpenSSL primitives, header-only parse) produces what dkimpy's verifier accepts, on the
    worker's real messages and on awkward ones."""
    KEYS.setdefault("rsa", generate("rsa-sha256"))
    KEYS.setdefault("ed", generate("ed25519-sha256"))
    keys = []
    for selector, pair in (("s1", KEYS["rsa"]), ("e1", KEYS["ed"])):
        dns_server.zone(txt_name(selector, DOMAIN), txt=[txt_value(pair.algorithm, pair.public_key)])
        private = load_private_key(pair.algorithm, pair.private_key)
        keys.append(SigningKey(selector.encode(), DOMAIN.encode(), pair.algorithm, private))
    signed = DkimSigner(keys).sign_sync(EDGE_MESSAGES[name])
    assert signed.endswith(EDGE_MESSAGES[name])
    assert verify_all(signed, dns_server) == [True, True]
    forged_from = re.sub(rb"(?im)^(from:)", rb"\1 x", signed, count=1)
    assert forged_from != signed
    assert verify_all(forged_from, dns_server) == [False, False]
