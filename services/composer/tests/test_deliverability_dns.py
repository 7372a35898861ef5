"""Domain readiness against the real DNS server on loopback and a stand-in dispatcher on a real port:
SPF chains, DKIM keys, DMARC policies, the bounce MX and PTR, each finding with the record to publish."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from isseimail_composer.deliverability.report import ReadinessChecker
from isseimail_shared.contracts.composer import Finding, Report
from isseimail_testing.dns import DnsServer, reverse_name

from .deliverability_support import (
    BOUNCE,
    MAIL_HOST,
    SENDING_IP,
    DkimPeer,
    ed25519_public_key,
    good_bounce,
    good_domain,
    key_json,
    readiness_settings,
    rsa_public_key,
)


@pytest.fixture
def make_checker(dns_server: DnsServer, dkim_peer: DkimPeer) -> Any:
    made: list[ReadinessChecker] = []

    def build(**overrides: Any) -> ReadinessChecker:
        checker = ReadinessChecker.from_settings(readiness_settings(dns_server, dkim_peer, **overrides))
        made.append(checker)
        return checker

    return build


@pytest.fixture
async def checker(make_checker: Any) -> AsyncIterator[ReadinessChecker]:
    c = make_checker()
    yield c
    await c.close()


def one(report: Report, check: str) -> Finding:
    found = [f for f in report.findings if f.check == check]
    assert len(found) == 1, (check, report.findings)
    return found[0]


async def test_good_domain_is_ok_everywhere(
    checker: ReadinessChecker, dns_server: DnsServer, dkim_peer: DkimPeer
) -> None:
    """SPF with an include, matching DKIM, DMARC reject and a resolving bounce MX: every finding ok."""
    domain = good_domain(dns_server, dkim_peer)
    report = await checker.report(domain)
    assert [f.status for f in report.findings] == ["ok"] * len(report.findings), report.findings
    assert {f.check for f in report.findings} == {"spf", "dkim", "dmarc", "bounce_mx", "bounce_spf"}
    assert report.status == "ok"
    assert report.blocking == []
    assert "DNS参照 1 回" in one(report, "spf").message
    assert all(not f.records for f in report.findings)


async def test_missing_and_duplicate_spf(checker: ReadinessChecker, dns_server: DnsServer, dkim_peer: DkimPeer) -> None:
    """No SPF: error with a v=spf1 record naming our sending address; two SPF records: error naming the count."""
    domain = good_domain(dns_server, dkim_peer)
    dns_server.zone(domain, txt=["some-verification=1"])
    spf = one(await checker.report(domain, fresh=True), "spf")
    assert spf.status == "error"
    assert "SPFレコード" in spf.message
    assert spf.records[0].model_dump() == {"name": domain, "type": "TXT", "value": f"v=spf1 ip4:{SENDING_IP} -all"}
    dns_server.zone(domain, txt=["v=spf1 ip4:192.0.2.10 -all", "v=spf1 include:other.example -all"])
    spf = one(await checker.report(domain, fresh=True), "spf")
    assert spf.status == "error"
    assert "2件" in spf.message
    assert len(spf.found) == 2


async def test_include_chain_over_ten_lookups(
    checker: ReadinessChecker, dns_server: DnsServer, dkim_peer: DkimPeer
) -> None:
    """A chain of includes with 11 DNS-querying terms is an error that names the count and the limit."""
    domain = good_domain(dns_server, dkim_peer)
    dns_server.zone(domain, txt=["v=spf1 include:i1.chain.example mx -all"])
    for i in range(1, 9):
        dns_server.zone(f"i{i}.chain.example", txt=[f"v=spf1 include:i{i + 1}.chain.example -all"])
    dns_server.zone("i9.chain.example", txt=["v=spf1 ip4:192.0.2.10 ?all"])
    spf = one(await checker.report(domain, fresh=True), "spf")
    # include:i1..i9 (9) + mx (1) = 10: allowed
    assert spf.status == "ok", spf
    dns_server.zone("i9.chain.example", txt=["v=spf1 a:x.example ip4:192.0.2.10 ?all"])
    spf = one(await checker.report(domain, fresh=True), "spf")
    assert spf.status == "error"
    assert "11回" in spf.message
    assert "上限の10回" in spf.message
    assert spf.records
    assert spf.records[0].value.startswith("v=spf1 ")


async def test_include_loop_and_missing_targets(
    checker: ReadinessChecker, dns_server: DnsServer, dkim_peer: DkimPeer
) -> None:
    """An include loop is reported (not followed forever); include/redirect targets without SPF are errors."""
    domain = good_domain(dns_server, dkim_peer)
    dns_server.zone(domain, txt=["v=spf1 include:loop-a.example -all"])
    dns_server.zone("loop-a.example", txt=["v=spf1 include:loop-b.example -all"])
    dns_server.zone("loop-b.example", txt=["v=spf1 include:loop-a.example -all"])
    spf = one(await checker.report(domain, fresh=True), "spf")
    assert spf.status == "error"
    assert "ループ" in spf.message
    assert dns_server.queries[("loop-a.example", "TXT")] <= 2
    dns_server.zone(domain, txt=["v=spf1 include:nothing.example redirect=gone.example"])
    spf = one(await checker.report(domain, fresh=True), "spf")
    assert spf.status == "error"
    assert "nothing.example にSPFレコードがありません" in spf.message
    assert "gone.example にSPFレコードがありません" in spf.message


@pytest.mark.parametrize(
    ("record", "status", "needle"),
    [
        ("v=spf1 ip4:192.0.2.10 ~all", "warning", "~all"),
        ("v=spf1 ip4:192.0.2.10 ?all", "warning", "?all"),
        ("v=spf1 +all", "error", "+all"),
        ("v=spf1 ip4:192.0.2.10", "warning", "-all"),
        ("v=spf1 ip4:192.0.2.10 redirect=_spf.good.example.jp", "ok", "DNS参照 1 回"),
        ("v=spf1 ip4:999.0.0.1 -all", "error", "アドレス"),
    ],
)
async def test_spf_all_qualifiers(
    checker: ReadinessChecker, dns_server: DnsServer, dkim_peer: DkimPeer, record: str, status: str, needle: str
) -> None:
    """+all is an error; ~all, ?all and no 'all' are warnings; 'all' through redirect= counts; bad syntax errors."""
    domain = good_domain(dns_server, dkim_peer)
    dns_server.zone(domain, txt=[record])
    spf = one(await checker.report(domain, fresh=True), "spf")
    assert spf.status == status, spf
    assert needle in spf.message
    if status != "ok":
        assert spf.records[0].value.endswith(" -all")


async def test_dkim_matches_mismatches_missing(
    checker: ReadinessChecker, dns_server: DnsServer, dkim_peer: DkimPeer
) -> None:
    """The published key must be the one the dispatcher signs with; a wrong or missing key is an error."""
    domain = good_domain(dns_server, dkim_peer)
    assert one(await checker.report(domain), "dkim").status == "ok"
    dns_server.zone(f"s1._domainkey.{domain}", txt=[f"v=DKIM1; k=rsa; p={rsa_public_key()}"])
    dkim = one(await checker.report(domain, fresh=True), "dkim")
    assert dkim.status == "error"
    assert "一致しません" in dkim.message
    assert dkim.records[0].name == f"s1._domainkey.{domain}"
    assert dkim.records[0].value == dkim_peer.keys[domain][0]["txt_value"]
    dns_server.zone(f"s1._domainkey.{domain}", nxdomain=True)
    report = await checker.report(domain, fresh=True)
    dkim = one(report, "dkim")
    assert dkim.status == "error"
    assert "公開されていません" in dkim.message
    assert report.blocking == ["dkim"]
    dns_server.zone(f"s1._domainkey.{domain}", txt=["v=DKIM1; k=rsa; p="])
    assert "失効" in one(await checker.report(domain, fresh=True), "dkim").message


async def test_dkim_next_and_ed25519_keys_warn(
    checker: ReadinessChecker, dns_server: DnsServer, dkim_peer: DkimPeer
) -> None:
    """A 'next' key or an Ed25519 second signature not yet in DNS is a warning, not a refusal."""
    domain = good_domain(dns_server, dkim_peer)
    dkim_peer.keys[domain] += [
        key_json(domain, "s2", rsa_public_key(), state="next"),
        key_json(domain, "e1", ed25519_public_key(), algorithm="ed25519-sha256"),
        key_json(domain, "old", rsa_public_key(), state="retired"),
    ]
    report = await checker.report(domain)
    dkim = [f for f in report.findings if f.check == "dkim"]
    assert [f.status for f in dkim] == ["ok", "warning", "warning"]
    assert report.blocking == []
    assert {r.name for f in dkim for r in f.records} == {f"s2._domainkey.{domain}", f"e1._domainkey.{domain}"}


async def test_dkim_without_keys_or_dispatcher(make_checker: Any, dns_server: DnsServer, dkim_peer: DkimPeer) -> None:
    """No key at the dispatcher: error telling how to make one; the dispatcher unreachable: error, not cached."""
    domain = good_domain(dns_server, dkim_peer)
    dkim_peer.keys[domain] = []
    checker = make_checker()
    dkim = one(await checker.report(domain), "dkim")
    assert dkim.status == "error"
    assert "isseimail-dispatcher dkim" in dkim.message
    await checker.close()
    dead = make_checker(dispatcher_url="http://127.0.0.1:9")
    report = await dead.report(domain)
    assert "取得できなかった" in one(report, "dkim").message
    before = dns_server.queries[(f"_dmarc.{domain}", "TXT")]
    await dead.report(domain)
    assert dns_server.queries[(f"_dmarc.{domain}", "TXT")] == before + 1  # an unverified report is asked again
    await dead.close()


@pytest.mark.parametrize(
    ("records", "status", "needle", "suggested"),
    [
        ([], "error", "DMARCレコード", "v=DMARC1; p=none; adkim=r; aspf=r; rua=mailto:dmarc-reports@good.example.jp"),
        (
            ["v=DMARC1; p=none; rua=mailto:r@good.example.jp"],
            "warning",
            "p=none",
            "v=DMARC1; p=quarantine; adkim=r; aspf=r; rua=mailto:r@good.example.jp",
        ),
        (
            ["v=DMARC1; p=reject"],
            "warning",
            "rua=",
            "v=DMARC1; p=reject; adkim=r; aspf=r; rua=mailto:dmarc-reports@good.example.jp",
        ),
        (["v=DMARC1; p=reject; pct=50; rua=mailto:r@good.example.jp"], "warning", "pct=50", None),
        (["v=DMARC1; p=reject; rua=mailto:r@good.example.jp"], "ok", "p=reject", None),
        (["v=DMARC1; p=reject; aspf=s; rua=mailto:r@good.example.jp"], "ok", "aspf=s", None),
        (["v=DMARC1; p=bogus"], "error", "無効", None),
        (["v=DMARC1; p=none", "v=DMARC1; p=reject"], "error", "2件", None),
    ],
)
async def test_dmarc_policies(
    checker: ReadinessChecker,
    dns_server: DnsServer,
    dkim_peer: DkimPeer,
    records: list[str],
    status: str,
    needle: str,
    suggested: str | None,
) -> None:
    """DMARC missing / invalid / duplicated is an error; p=none, pct<100, no rua warn; reject is ok."""
    domain = good_domain(dns_server, dkim_peer)
    dns_server.zone(f"_dmarc.{domain}", txt=records)
    report = await checker.report(domain, fresh=True)
    dmarc = one(report, "dmarc")
    assert dmarc.status == status, dmarc
    assert needle in dmarc.message
    assert (report.blocking == ["dmarc"]) == (status == "error")
    if suggested:
        assert dmarc.records[0].model_dump() == {"name": f"_dmarc.{domain}", "type": "TXT", "value": suggested}


async def test_dmarc_of_the_organisational_domain_applies(
    checker: ReadinessChecker, dns_server: DnsServer, dkim_peer: DkimPeer
) -> None:
    """A subdomain without its own record falls under its organisational domain's policy (sp= when given),
    found with the Public Suffix List: not an intermediate parent, never the public suffix co.jp."""
    domain = good_domain(dns_server, dkim_peer, "news.shop.example.co.jp")
    dns_server.zone("_dmarc.news.shop.example.co.jp", nxdomain=True)
    dns_server.zone("_dmarc.shop.example.co.jp", txt=["v=DMARC1; p=reject; rua=mailto:r@example.co.jp"])
    dns_server.zone("_dmarc.co.jp", txt=["v=DMARC1; p=reject; rua=mailto:r@co.jp"])
    dns_server.zone("_dmarc.example.co.jp", txt=["v=DMARC1; p=reject; sp=none; rua=mailto:r@example.co.jp"])
    dmarc = one(await checker.report(domain), "dmarc")
    assert dmarc.status == "warning"
    assert "p=none" in dmarc.message
    assert dmarc.records[0].name == "_dmarc.example.co.jp"


@pytest.mark.parametrize(
    ("domain", "published", "status"),
    [
        ("news.shop.city.kawasaki.jp", "_dmarc.city.kawasaki.jp", "ok"),  # exception rule: a registrable name
        ("news.foo.x.kawasaki.jp", "_dmarc.x.kawasaki.jp", "error"),  # *.kawasaki.jp: a suffix holds no policy
        ("news.foo.x.kawasaki.jp", "_dmarc.foo.x.kawasaki.jp", "ok"),
        ("mail.myapp.github.io", "_dmarc.github.io", "error"),  # private suffix
        ("mail.myapp.github.io", "_dmarc.myapp.github.io", "ok"),
    ],
)
async def test_dmarc_org_domain_of_wildcard_exception_and_private_suffixes(
    checker: ReadinessChecker, dns_server: DnsServer, dkim_peer: DkimPeer, domain: str, published: str, status: str
) -> None:
    """Only the domain and its organisational domain are asked; a record on a public suffix never applies."""
    domain = good_domain(dns_server, dkim_peer, domain)
    dns_server.zone(f"_dmarc.{domain}", nxdomain=True)
    dns_server.zone(published, txt=["v=DMARC1; p=reject; rua=mailto:r@good.example.jp"])
    dmarc = one(await checker.report(domain), "dmarc")
    assert dmarc.status == status, dmarc


async def test_bounce_mx_missing_null_or_elsewhere(
    checker: ReadinessChecker, dns_server: DnsServer, dkim_peer: DkimPeer
) -> None:
    """The bounce domain needs an MX whose host resolves; it should name the configured bounce host."""
    domain = good_domain(dns_server, dkim_peer)
    dns_server.zone(BOUNCE, txt=[f"v=spf1 ip4:{SENDING_IP} -all"])
    mx = one(await checker.report(domain, fresh=True), "bounce_mx")
    assert mx.status == "error"
    assert "MXレコードがありません" in mx.message
    assert mx.records[0].model_dump() == {"name": BOUNCE, "type": "MX", "value": f"10 {MAIL_HOST}."}
    dns_server.zone(BOUNCE, null_mx=True)
    assert "null MX" in one(await checker.report(domain, fresh=True), "bounce_mx").message
    dns_server.zone(BOUNCE, mx=[(10, "nowhere.good.example.jp")])
    assert "アドレスがありません" in one(await checker.report(domain, fresh=True), "bounce_mx").message
    dns_server.zone(BOUNCE, mx=[(10, "mx.elsewhere.example")])
    dns_server.zone("mx.elsewhere.example", a=["198.51.100.9"])
    assert one(await checker.report(domain, fresh=True), "bounce_mx").status == "warning"


async def test_ptr_in_mx_mode(make_checker: Any, dns_server: DnsServer, dkim_peer: DkimPeer) -> None:
    """Direct-MX mode: the sending address needs a PTR that resolves back to it (and names the EHLO host)."""
    domain = good_domain(dns_server, dkim_peer)
    checker = make_checker(delivery_mode="mx")
    ptr = one(await checker.report(domain), "ptr")
    assert ptr.status == "error"
    assert "逆引き（PTR）がありません" in ptr.message
    assert [r.model_dump() for r in ptr.records] == [
        {"name": "10.2.0.192.in-addr.arpa", "type": "PTR", "value": f"{MAIL_HOST}."},
        {"name": MAIL_HOST, "type": "A", "value": SENDING_IP},
    ]
    dns_server.zone(reverse_name(SENDING_IP), ptr=["host.isp.example"])
    dns_server.zone("host.isp.example", a=["203.0.113.1"])
    ptr = one(await checker.report(domain, fresh=True), "ptr")
    assert ptr.status == "error"
    assert "一致しない" in ptr.message
    assert ptr.found == ["host.isp.example"]
    dns_server.zone("host.isp.example", a=[SENDING_IP])
    ptr = one(await checker.report(domain, fresh=True), "ptr")
    assert ptr.status == "warning"
    assert "EHLO名" in ptr.message
    dns_server.zone(reverse_name(SENDING_IP), ptr=[MAIL_HOST])
    assert one(await checker.report(domain, fresh=True), "ptr").status == "ok"
    await checker.close()
    relay = make_checker()
    assert not [f for f in (await relay.report(domain)).findings if f.check == "ptr"]  # relay mode: no PTR check
    await relay.close()


async def test_misconfigured_domain_lists_every_problem(
    make_checker: Any, dns_server: DnsServer, dkim_peer: DkimPeer
) -> None:
    """Everything wrong at once: each check is an error with the exact record to publish."""
    domain = "bad.example.jp"
    dkim_peer.keys[domain] = [key_json(domain, "sel1", rsa_public_key())]
    dns_server.zone(domain, txt=["v=spf1 ip4:192.0.2.10 -all", "v=spf1 mx -all"])
    dns_server.zone(f"sel1._domainkey.{domain}", txt=[f"v=DKIM1; k=rsa; p={rsa_public_key()}"])
    dns_server.zone("bounce.bad.example.jp")  # exists, no MX, no SPF
    checker = make_checker(delivery_mode="mx", bounce_domain="bounce.bad.example.jp")
    report = await checker.report(domain)
    statuses = {f.check: f.status for f in report.findings}
    assert statuses == {
        "spf": "error",
        "dkim": "error",
        "dmarc": "error",
        "bounce_mx": "error",
        "bounce_spf": "error",
        "ptr": "error",
    }
    assert all(f.records for f in report.findings), report.findings
    names = {(r.name, r.type) for f in report.findings for r in f.records}
    assert names == {
        (domain, "TXT"),
        (f"sel1._domainkey.{domain}", "TXT"),
        (f"_dmarc.{domain}", "TXT"),
        ("bounce.bad.example.jp", "MX"),
        ("bounce.bad.example.jp", "TXT"),
        ("10.2.0.192.in-addr.arpa", "PTR"),
        (MAIL_HOST, "A"),
    }
    assert report.status == "error"
    assert report.blocking == ["dkim", "dmarc"]
    await checker.close()


async def test_reports_are_cached_briefly(make_checker: Any, dns_server: DnsServer, dkim_peer: DkimPeer) -> None:
    """A second look within the cache time asks DNS nothing; fresh=True and cache_seconds=0 ask again."""
    domain = good_domain(dns_server, dkim_peer)
    checker = make_checker(readiness_cache_seconds=60)
    await checker.report(domain)
    asked = sum(dns_server.queries.values())
    await checker.report(domain.upper())
    assert sum(dns_server.queries.values()) == asked
    await checker.report(domain, fresh=True)
    assert sum(dns_server.queries.values()) == 2 * asked
    await checker.close()
    uncached = make_checker(readiness_cache_seconds=0)
    await uncached.report(domain)
    await uncached.report(domain)
    assert sum(dns_server.queries.values()) == 4 * asked
    await uncached.close()


async def test_dns_failure_is_an_error_not_a_pass(
    make_checker: Any, dns_server: DnsServer, dkim_peer: DkimPeer
) -> None:
    """SERVFAIL everywhere: every check says it could not be verified (error), never ok."""
    domain = good_domain(dns_server, dkim_peer)
    for name in (domain, f"s1._domainkey.{domain}", f"_dmarc.{domain}", BOUNCE):
        dns_server.zone(name, servfail=True)
    checker = make_checker()
    report = await checker.report(domain)
    assert {f.status for f in report.findings} == {"error"}
    assert all("確認できませんでした" in f.message for f in report.findings)
    await checker.close()


def test_good_bounce_helper_is_consistent(dns_server: DnsServer) -> None:
    good_bounce(dns_server)
    assert dns_server.lookup(BOUNCE) is not None


@pytest.mark.parametrize(
    ("records", "status", "needle"),
    [
        ({"@": "v=spf1 ip4:198.51.100.1 -all"}, "error", "192.0.2.10（判定 fail）"),
        (
            {"@": "v=spf1 include:_other.example ~all", "_other.example": "v=spf1 ip4:198.51.100.0/24 -all"},
            "error",
            "softfail",
        ),
        ({"@": "v=spf1 mx -all", "mx": "yes"}, "ok", "DNS参照 1 回"),
        ({"@": "v=spf1 a:host.good.example.jp/24 -all", "host.good.example.jp": "192.0.2.99"}, "ok", "DNS参照 1 回"),
        ({"@": "v=spf1 a:host.good.example.jp -all", "host.good.example.jp": "192.0.2.99"}, "error", "fail"),
        ({"@": "v=spf1 exists:%{i}.spf.example -all"}, "error", "fail"),  # the macro's name does not exist
        ({"@": "v=spf1 exists:%{i}.spf.example -all", "192.0.2.10.spf.example": "127.0.0.2"}, "ok", "DNS参照 1 回"),
        (
            {"@": "v=spf1 exists:%{ir}.%{v}._spf.%{d2} -all", "10.2.0.192.in-addr._spf.example.jp": "127.0.0.2"},
            "ok",
            "",
        ),
        (
            {"@": "v=spf1 exists:%{l}.%{o}._u.example -all", "postmaster.good.example.jp._u.example": "127.0.0.2"},
            "ok",
            "",
        ),
        ({"@": "v=spf1 exists:%{h}._helo.%{d} -all", f"{MAIL_HOST}._helo.good.example.jp": "127.0.0.2"}, "ok", ""),
        ({"@": "v=spf1 exists:%{s} -all", "postmaster@good.example.jp": "127.0.0.2"}, "ok", ""),
        ({"@": "v=spf1 a:%{d0} -all"}, "error", "マクロ「%{d0}」"),  # a malformed macro is a permerror
        ({"@": "v=spf1 ptr -all"}, "ok", ""),  # the PTR (mail.good.example.jp, forward-confirmed) is in the domain
        ({"@": "v=spf1 ptr:elsewhere.example -all"}, "error", "fail"),
        ({"@": "v=spf1 exists:%{p}._p.%{d} -all", f"{MAIL_HOST}._p.good.example.jp": "127.0.0.2"}, "ok", ""),
        (
            {"@": "v=spf1 ip6:2001:db8::/32 include:_v4.example -all", "_v4.example": "v=spf1 ip4:192.0.2.0/28 -all"},
            "ok",
            "",
        ),
    ],
)
async def test_spf_must_authorise_the_sending_address(
    checker: ReadinessChecker,
    dns_server: DnsServer,
    dkim_peer: DkimPeer,
    records: dict[str, str],
    status: str,
    needle: str,
) -> None:
    """With ISSEIMAIL_SENDING_IPS set, SPF is evaluated for that address (ip4, a/cidr, mx, include, redirect)."""
    domain = good_domain(dns_server, dkim_peer)
    dns_server.zone(reverse_name(SENDING_IP), ptr=[MAIL_HOST])  # forward-confirmed by good_bounce's A record
    for name, value in records.items():
        if name == "@":
            dns_server.zone(domain, txt=[value], mx=[(10, MAIL_HOST)] if "mx" in records else [])
        elif name == "mx":
            continue
        elif value.startswith("v=spf1"):
            dns_server.zone(name, txt=[value])
        else:
            dns_server.zone(name, a=[value])
    spf = one(await checker.report(domain, fresh=True), "spf")
    assert spf.status == status, spf
    assert needle in spf.message
    if status == "error":
        assert f"ip4:{SENDING_IP}" in spf.records[0].value


async def test_a_dead_resolver_costs_a_send_a_few_seconds_at_most(
    make_checker: Any, dns_server: DnsServer, dkim_peer: DkimPeer
) -> None:
    """DNS answering too late: the report gives up after its deadline with 'could not verify' errors (blocking),
    and is not cached."""
    domain = good_domain(dns_server, dkim_peer)
    dns_server.zone(f"_dmarc.{domain}", txt=["v=DMARC1; p=reject; rua=mailto:r@good.example.jp"], delay=4.0)
    checker = make_checker(dns_timeout_seconds=0.5)
    started = asyncio.get_running_loop().time()
    report = await checker.report(domain)
    elapsed = asyncio.get_running_loop().time() - started
    assert elapsed < checker.deadline() + 1.0
    assert "dmarc" in report.blocking
    assert all("確認できませんでした" in f.message for f in report.findings if f.status == "error")
    asked = dns_server.queries[(f"_dmarc.{domain}", "TXT")]
    await checker.report(domain)
    assert dns_server.queries[(f"_dmarc.{domain}", "TXT")] > asked  # not cached: asked again
    await checker.close()
