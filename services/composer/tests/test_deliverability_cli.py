"""`isseimail-composer check-domain` as an operator runs it: a real process, DNS on loopback, exit status."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator

import pytest

from isseimail_shared.testing.dns import DnsServer
from isseimail_shared.testing.http import serving

from .deliverability_support import BOUNCE, MAIL_HOST, SENDING_IP, DkimPeer, good_domain, key_json, rsa_public_key


@pytest.fixture
async def peer() -> AsyncIterator[DkimPeer]:
    p = DkimPeer()
    async with serving(p.app()) as url:
        p.url = url
        yield p


async def check_domain(dns: DnsServer, peer: DkimPeer, *args: str, **env: str) -> tuple[int, str, str]:
    command = shutil.which("isseimail-composer") or sys.executable
    prefix = [] if command.endswith("isseimail-composer") else ["-m", "isseimail_composer"]
    environment = {
        **os.environ,
        "ISSEIMAIL_DNS_NAMESERVERS": dns.nameserver,
        "ISSEIMAIL_DNS_TIMEOUT_SECONDS": "0.5",
        "ISSEIMAIL_DISPATCHER_URL": peer.url,
        "ISSEIMAIL_BOUNCE_DOMAIN": BOUNCE,
        "ISSEIMAIL_BOUNCE_MX_HOST": MAIL_HOST,
        "ISSEIMAIL_HELO_NAME": MAIL_HOST,
        "ISSEIMAIL_SENDING_IPS": SENDING_IP,
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        command,
        *prefix,
        "check-domain",
        *args,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_good_domain_exits_zero(dns_server: DnsServer, peer: DkimPeer) -> None:
    """A well-configured domain: every line OK, exit status 0."""
    good_domain(dns_server, peer)
    status, out, _ = await check_domain(dns_server, peer, "good.example.jp")
    assert status == 0, out
    assert "[OK] SPF" in out
    assert "[OK] DKIM" in out
    assert "エラー 0 件" in out


async def test_misconfigured_domain_prints_records_and_exits_one(dns_server: DnsServer, peer: DkimPeer) -> None:
    """Errors print the records to publish in zone-file form and the status is 1; --json is machine-readable."""
    peer.keys["bad.example.jp"] = [key_json("bad.example.jp", "sel1", rsa_public_key())]
    dns_server.zone("bad.example.jp", txt=["v=spf1 +all"])
    status, out, _ = await check_domain(dns_server, peer, "bad.example.jp", ISSEIMAIL_DELIVERY_MODE="mx")
    assert status == 1
    assert "[エラー] SPF: 「+all」" in out
    assert f'sel1._domainkey.bad.example.jp. IN TXT "{peer.keys["bad.example.jp"][0]["txt_value"]}"' in out
    assert '_dmarc.bad.example.jp. IN TXT "v=DMARC1; p=none;' in out
    assert f"10.2.0.192.in-addr.arpa. IN PTR {MAIL_HOST}." in out
    assert "一斉送信は拒否されます" in out
    status, out, _ = await check_domain(dns_server, peer, "bad.example.jp", "--json")
    assert status == 1
    report = json.loads(out)
    assert report["blocking"] == ["dkim", "dmarc"]


async def test_bad_domain_name_is_usage_error(dns_server: DnsServer, peer: DkimPeer) -> None:
    status, _, err = await check_domain(dns_server, peer, "not a domain")
    assert status == 2
    assert "ドメイン名が正しくありません" in err
