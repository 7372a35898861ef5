"""SPF readiness: the domain's one v=spf1 record, followed through include:/redirect= counting DNS-querying
terms against RFC 7208's limit of 10, with loops, missing targets and a permissive 'all' flagged."""

from __future__ import annotations

from dataclasses import dataclass, field

from isseimail_composer.deliverability.records import RecordError, SpfRecord, is_spf, parse_spf
from isseimail_composer.deliverability.resolver import DnsFailure, Resolver
from isseimail_composer.deliverability.spf_eval import authorizes
from isseimail_composer.deliverability.spf_macros import is_well_formed
from isseimail_shared.contracts.composer import Check, DnsRecord, Finding

LOOKUP_LIMIT = 10  # RFC 7208 4.6.4
MAX_DOMAINS = 40  # a hostile chain is not followed forever, even if its lookups were not counted
ALL_TEXT = {
    "+": "「+all」はすべての送信元を許可しており、なりすましを防げません。",
    "?": "「?all」は判定を保留する設定で、なりすましを防げません。",
    "~": "「~all」（ソフトフェイル）です。送信元がそろったら「-all」にするとより確実です。",
}


@dataclass
class _Walk:
    lookups: int = 0
    domains: int = 0
    errors: list[str] = field(default_factory=list)
    top: SpfRecord | None = None


_MISSING = "missing"


async def _visit(dns: Resolver, domain: str, chain: tuple[str, ...], walk: _Walk) -> str | None:
    """Follow one domain's SPF. Returns the qualifier of the 'all' that ends its evaluation (through redirect=),
    None when there is none, or _MISSING when the domain has no SPF record."""
    walk.domains += 1
    if walk.domains > MAX_DOMAINS:
        walk.errors.append("SPFの参照先が多すぎるため、途中で確認をやめました。")
        return None
    found = [t for t in await dns.txt(domain) if is_spf(t)]
    if not found:
        return _MISSING
    if len(found) > 1:
        walk.errors.append(f"{domain} にSPFレコードが{len(found)}件あります（1件にまとめる必要があります）。")
        return None
    try:
        record = parse_spf(found[0])
    except RecordError as exc:
        walk.errors.append(f"{domain} のSPF: {exc}")
        return None
    if not chain:
        walk.top = record
    for text in [t.target() or "" for t in record.terms] + [record.redirect or ""]:
        if "%" in text and not is_well_formed(text):
            walk.errors.append(
                f"{domain} のSPF: マクロ「{text[:60]}」が正しくありません（受信側ではエラーになります）。"
            )
    walk.lookups += record.lookups()
    for term in record.terms:
        if term.mechanism == "include":
            await _follow(dns, domain, term.target() or "", "include", chain, walk)
    if record.redirect and record.all_qualifier() is None:  # redirect= is ignored when 'all' is present
        return await _follow(dns, domain, record.redirect, "redirect", chain, walk)
    return record.all_qualifier()


async def _follow(dns: Resolver, domain: str, target: str, how: str, chain: tuple[str, ...], walk: _Walk) -> str | None:
    target = target.rstrip(".").lower()
    if "%" in target:
        return None  # a macro names a domain per message; it is counted but cannot be followed here
    here = (*chain, domain)
    if target in here:
        walk.errors.append(f"SPFの参照がループしています（{' → '.join((*here, target))}）。")
        return None
    qualifier = await _visit(dns, target, here, walk)
    if qualifier == _MISSING:
        walk.errors.append(f"{domain} の「{how}」先 {target} にSPFレコードがありません。")
        return None
    return qualifier


def suggested_spf(mechanisms: list[str], current: SpfRecord | None) -> str:
    """Keep what the domain already authorises (without its 'all'), add ours, end with -all."""
    terms = [t.text() for t in current.terms if t.mechanism != "all"] if current else []
    for mechanism in mechanisms:
        if mechanism not in terms:
            terms.append(mechanism)
    return " ".join(["v=spf1", *terms, "-all"])


async def check_spf(
    dns: Resolver,
    domain: str,
    mechanisms: list[str],
    check: Check = "spf",
    ips: list[str] | None = None,
    helo: str | None = None,
) -> Finding:
    """One finding for the domain's SPF; `mechanisms` authorise this system's sending hosts, and each of `ips`
    (the configured sending addresses, EHLO `helo`) must get "pass"."""
    walk = _Walk()
    try:
        texts = await dns.txt(domain)
        qualifier = await _visit(dns, domain, (), walk)
    except DnsFailure:
        return Finding(
            check=check,
            status="error",
            message=f"{domain} のSPFを確認できませんでした（DNSが応答しません）。時間をおいて再確認してください。",
        )
    found = [t for t in texts if is_spf(t)]
    publish = [DnsRecord(name=domain, type="TXT", value=suggested_spf(mechanisms, walk.top))]
    if qualifier == _MISSING:
        return Finding(
            check=check,
            status="error",
            message=f"{domain} にSPFレコード（TXT「v=spf1 …」）がありません。受信側は送信元を確認できません。",
            records=publish,
        )
    problems = list(walk.errors)
    if walk.lookups > LOOKUP_LIMIT:
        problems.append(
            f"SPFのDNS参照が{walk.lookups}回あり、上限の{LOOKUP_LIMIT}回を超えています（受信側ではエラーになります）。"
            "include を減らすか、ip4:/ip6: に置き換えてください。"
        )
    if problems:
        return Finding(check=check, status="error", message=" ".join(problems), records=publish, found=found)
    if qualifier == "+":
        return Finding(check=check, status="error", message=ALL_TEXT["+"], records=publish, found=found)
    results = {ip: await authorizes(dns, domain, ip, helo=helo) for ip in ips or []}
    refused = {ip: r for ip, r in results.items() if r not in ("pass", "unknown")}
    if refused:
        named = "、".join(f"{ip}（判定 {r}）" for ip, r in refused.items())
        message = f"送信元 {named} が {domain} のSPFで許可されていません。受信側でSPFが失敗します。"
        return Finding(check=check, status="error", message=message, records=publish, found=found)
    if qualifier in ("?", "~"):
        return Finding(check=check, status="warning", message=ALL_TEXT[qualifier], records=publish, found=found)
    if qualifier is None:
        return Finding(
            check=check,
            status="warning",
            message="SPFレコードの末尾に「-all」がなく、許可していない送信元の扱いが決まっていません。",
            records=publish,
            found=found,
        )
    return Finding(
        check=check,
        status="ok",
        message=f"SPFは正しく設定されています（DNS参照 {walk.lookups} 回／上限 {LOOKUP_LIMIT} 回）。",
        found=found,
    )
