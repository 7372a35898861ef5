"""`isseimail-composer check-domain` as an operator runs it: a real process, DNS on loopback, exit status."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys

from isseimail_testing.dns import DnsServer

from .deliverability_support import MAIL_HOST, DkimPeer, good_domain, key_json, readiness_values, rsa_public_key


async def check_domain(dns: DnsServer, dkim_peer: DkimPeer, *args: str, **env: str) -> tuple[int, str, str]:
    command = shutil.which("isseimail-composer") or sys.executable
    prefix = [] if command.endswith("isseimail-composer") else ["-m", "isseimail_composer"]
    settings = {f"ISSEIMAIL_{name.upper()}": str(value) for name, value in readiness_values(dns, dkim_peer).items()}
    environment = {**os.environ, **settings, **env}
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


async def test_good_domain_exits_zero(dns_server: DnsServer, dkim_peer: DkimPeer) -> None:
    """A well-configured domain: every line OK, exit status 0."""
    good_domain(dns_server, dkim_peer)
    status, out, _ = await check_domain(dns_server, dkim_peer, "good.example.jp")
    assert status == 0, out
    assert "[OK] SPF" in out
    assert "[OK] DKIM" in out
    assert "エラー 0 件" in out


async def test_misconfigured_domain_prints_records_and_exits_one(dns_server: DnsServer, dkim_peer: DkimPeer) -> None:
    """Errors print the records to publish in zone-file form and the status is 1; --json is machine-readable."""
    dkim_peer.keys["bad.example.jp"] = [key_json("bad.example.jp", "sel1", rsa_public_key())]
    dns_server.zone("bad.example.jp", txt=["v=spf1 +all"])
    status, out, _ = await check_domain(dns_server, dkim_peer, "bad.example.jp", ISSEIMAIL_DELIVERY_MODE="mx")
    assert status == 1
    assert "[エラー] SPF: 「+all」" in out
    assert f'sel1._domainkey.bad.example.jp. IN TXT "{dkim_peer.keys["bad.example.jp"][0]["txt_value"]}"' in out
    assert '_dmarc.bad.example.jp. IN TXT "v=DMARC1; p=none;' in out
    assert f"10.2.0.192.in-addr.arpa. IN PTR {MAIL_HOST}." in out
    assert "一斉送信は拒否されます" in out
    status, out, _ = await check_domain(dns_server, dkim_peer, "bad.example.jp", "--json")
    assert status == 1
    report = json.loads(out)
    assert report["blocking"] == ["dkim", "dmarc"]


async def test_bad_domain_name_is_usage_error(dns_server: DnsServer, dkim_peer: DkimPeer) -> None:
    status, _, err = await check_domain(dns_server, dkim_peer, "not a domain")
    assert status == 2
    assert "ドメイン名が正しくありません" in err
