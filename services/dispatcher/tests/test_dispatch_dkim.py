"""DKIM: with a key and selector configured, every message a worker sends carries a valid signature."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from isseimail_dispatcher.app import create_app, create_worker_app
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_shared.testing.process import running_app
from isseimail_shared.testing.smtp import CaptureServer


def keypair() -> tuple[str, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


async def test_messages_are_dkim_signed(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    snapshot_peer: Any,
    watch: Any,
    make_recipients: Any,
    accept_campaign: Any,
) -> None:
    """Each captured message verifies against the selector's public key; a tampered copy does not."""
    private, public = keypair()
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"isseimail._domainkey.corp.example.jp." else b""

    rows = make_recipients(3)
    campaign_id = snapshot_peer.add(rows)
    settings = make_settings(
        DispatcherSettings,
        composer_url=snapshot_peer.url,
        dkim_selector="isseimail",
        dkim_private_key=private.replace("\n", "\\n"),  # as an environment variable carries it
    )
    async with running_app(create_app(settings)), running_app(create_worker_app(settings)):
        await accept_campaign(campaign_id, len(rows))
        await watch.wait_for("campaign.completed")
    assert len(smtp_server.messages) == 4
    for captured in smtp_server.messages:
        assert captured.data.startswith(b"DKIM-Signature:")
        assert dkim.verify(captured.data, dnsfunc=dns)
    tampered = smtp_server.messages[0].data.replace("担当".encode(), b"X", 1)
    assert not dkim.verify(tampered.replace(b"To: ", b"To: x", 1), dnsfunc=dns)
