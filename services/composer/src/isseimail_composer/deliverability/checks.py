"""DKIM, DMARC, bounce MX and PTR checks: each answers findings with a Japanese explanation and the records
to publish. (SPF has its own module: it follows a chain.)"""

from __future__ import annotations

import ipaddress
import re

from isseimail_composer.deliverability.orgdomain import organizational_domain
from isseimail_composer.deliverability.records import DmarcRecord, RecordError, is_dmarc, parse_dkim_key, parse_dmarc
from isseimail_composer.deliverability.resolver import DnsFailure, Resolver
from isseimail_shared.contracts.composer import DnsRecord, Finding
from isseimail_shared.contracts.dispatcher import DkimKey

DNS_DOWN = "DNSが応答しないため確認できませんでした。時間をおいて再確認してください。"
KEY_TYPES = {"rsa-sha256": "rsa", "ed25519-sha256": "ed25519"}


def _same_key(a: str, b: str) -> bool:
    return re.sub(r"\s+", "", a) == re.sub(r"\s+", "", b)


async def _check_key(dns: Resolver, key: DkimKey) -> Finding:
    publish = [DnsRecord(name=key.txt_name, type="TXT", value=key.txt_value)]
    # The RSA key is the signature receivers rely on; an Ed25519 one is a second signature (RFC 8463), and a
    # "next" key only has to be in DNS before rotation: a problem with those is a warning, not a refusal.
    severe = "error" if key.state == "active" and key.algorithm == "rsa-sha256" else "warning"
    label = f"DKIMセレクタ「{key.selector}」（{key.algorithm}、{'使用中' if key.state == 'active' else '次に使う鍵'}）"
    try:
        texts = await dns.txt(key.txt_name)
    except DnsFailure:
        return Finding(check="dkim", status=severe, message=f"{label}: {DNS_DOWN}", records=publish)
    found = [t for t in texts if "p=" in t]
    if not found:
        return Finding(
            check="dkim",
            status=severe,
            message=f"{label}の公開鍵が {key.txt_name} に公開されていません。受信側で署名を検証できません。",
            records=publish,
        )
    if len(found) > 1:
        return Finding(
            check="dkim",
            status=severe,
            message=f"{label}: {key.txt_name} にDKIMレコードが{len(found)}件あります。1件にしてください。",
            records=publish,
            found=found,
        )
    try:
        record = parse_dkim_key(found[0])
    except RecordError as exc:
        return Finding(check="dkim", status=severe, message=f"{label}: {exc}", records=publish, found=found)
    if not record.public_key:
        problem = "の公開鍵が空（失効扱い）です。"
    elif record.key_type != KEY_TYPES[key.algorithm]:
        problem = f"の鍵の種類が違います（DNSは {record.key_type}）。"
    elif not _same_key(record.public_key, key.public_key):
        problem = "の公開鍵が、署名に使う秘密鍵と一致しません。受信側で署名の検証に失敗します。"
    else:
        return Finding(check="dkim", status="ok", message=f"{label}の公開鍵は署名に使う鍵と一致しています。")
    return Finding(check="dkim", status=severe, message=label + problem, records=publish, found=found)


async def check_dkim(dns: Resolver, domain: str, keys: list[DkimKey] | None) -> list[Finding]:
    """One finding per key the dispatcher signs with (or will sign with next)."""
    if keys is None:
        return [
            Finding(
                check="dkim",
                status="error",
                message="配信サービス（dispatcher）から署名鍵を取得できなかったため、DKIMを確認できませんでした。",
            )
        ]
    live = [k for k in keys if k.state in ("active", "next")]
    if not any(k.state == "active" for k in live):
        waiting = [k for k in live if k.state == "next"]
        if waiting:
            message = (
                f"{domain} にはまだ署名に使う鍵（active）がありません。下のTXTレコードを公開してから"
                f"「isseimail-dispatcher dkim rotate {domain}」で署名を始めてください。"
            )
        else:
            message = (
                f"{domain} のDKIM署名鍵がありません。「isseimail-dispatcher dkim generate {domain}」で鍵を作成し、"
                "表示されるTXTレコードを公開してから rotate してください。"
            )
        records = [DnsRecord(name=k.txt_name, type="TXT", value=k.txt_value) for k in waiting]
        return [Finding(check="dkim", status="error", message=message, records=records)]
    return [await _check_key(dns, key) for key in live]


def _dmarc_value(existing: DmarcRecord | None, domain: str, policy: str) -> str:
    rua = ",".join(existing.rua) if existing and existing.rua else f"mailto:dmarc-reports@{domain}"
    return f"v=DMARC1; p={policy}; adkim=r; aspf=r; rua={rua}"


async def _find_dmarc(dns: Resolver, domain: str) -> tuple[str, list[str]]:
    """(the domain holding the policy, its DMARC records): the domain itself, else its organisational domain
    (RFC 7489 6.6.3), found with the Public Suffix List: never a public suffix such as co.jp."""
    candidates = dict.fromkeys([domain, organizational_domain(domain)])
    for candidate in candidates:
        found = [t for t in await dns.txt(f"_dmarc.{candidate}") if is_dmarc(t)]
        if found:
            return candidate, found
    return domain, []


def _aligned(bounce_domain: str, domain: str, mode: str) -> bool:
    """SPF alignment of the envelope sender with the From domain (RFC 7489 3.1.2): the same name (strict), or
    the same organisational domain (relaxed)."""
    if mode == "s":
        return bounce_domain == domain
    return organizational_domain(bounce_domain) == organizational_domain(domain)


async def check_dmarc(dns: Resolver, domain: str, bounce_domain: str) -> Finding:
    name = f"_dmarc.{domain}"
    try:
        holder, found = await _find_dmarc(dns, domain)
    except DnsFailure:
        return Finding(check="dmarc", status="error", message=f"DMARC: {DNS_DOWN}")
    if not found:
        return Finding(
            check="dmarc",
            status="error",
            message=f"{domain} にDMARCレコード（{name} のTXT）がありません。大手メールサービスは一斉送信に"
            "DMARCを求めています。まず p=none で公開し、レポートを確認してから quarantine / reject に進めてください。",
            records=[DnsRecord(name=name, type="TXT", value=_dmarc_value(None, domain, "none"))],
        )
    if len(found) > 1:
        return Finding(
            check="dmarc",
            status="error",
            message=f"_dmarc.{holder} にDMARCレコードが{len(found)}件あります。"
            "1件にしてください（複数あると無効です）。",
            records=[DnsRecord(name=f"_dmarc.{holder}", type="TXT", value=_dmarc_value(None, domain, "none"))],
            found=found,
        )
    try:
        record = parse_dmarc(found[0])
    except RecordError as exc:
        return Finding(
            check="dmarc",
            status="error",
            message=f"_dmarc.{holder} のDMARCレコードが無効です: {exc}",
            records=[DnsRecord(name=f"_dmarc.{holder}", type="TXT", value=_dmarc_value(None, domain, "none"))],
            found=found,
        )
    policy = record.subdomain_policy if holder != domain and record.subdomain_policy else record.policy
    notes: list[str] = []
    status = "ok"
    if policy == "none":
        status = "warning"
        notes.append("ポリシーが p=none（監視のみ）で、なりすましメールは拒否されません。")
    if record.pct < 100:
        status = "warning"
        notes.append(f"pct={record.pct} のため、ポリシーは一部のメールにしか適用されません。")
    if not record.rua:
        status = "warning"
        notes.append("集計レポートの送付先（rua=）がなく、認証の失敗に気づけません。")
    if record.adkim == "s":
        notes.append("DKIMは厳密アライメント（adkim=s）です。署名ドメインは差出人ドメインと同一です。")
    if not _aligned(bounce_domain, domain, record.aspf):
        notes.append(
            f"エンベロープ送信者（{bounce_domain}）は差出人ドメインとSPFのアライメントが取れません"
            f"（aspf={record.aspf}）。DMARCの合格はDKIM署名によります。"
        )
    head = f"DMARCポリシーは p={policy} です。"
    if status == "ok":
        return Finding(check="dmarc", status="ok", message=head + "".join(notes), found=found)
    better = "quarantine" if policy == "none" else policy
    value = _dmarc_value(record, domain, better)
    return Finding(
        check="dmarc",
        status="warning",
        message=head + "".join(notes),
        records=[DnsRecord(name=f"_dmarc.{holder}", type="TXT", value=value)],
        found=found,
    )


async def check_bounce_mx(dns: Resolver, bounce_domain: str, mx_host: str) -> Finding:
    publish = [DnsRecord(name=bounce_domain, type="MX", value=f"10 {mx_host}.")]
    why = "エラーメール（バウンス）を受け取れず、宛先不明のアドレスに送り続けることになります。"
    try:
        mx = await dns.mx(bounce_domain)
        hosts = [h for _, h in mx if h]
        addresses = {h: await dns.addresses(h) for h in hosts}
    except DnsFailure:
        return Finding(
            check="bounce_mx", status="error", message=f"バウンス用ドメインのMX: {DNS_DOWN}", records=publish
        )
    found = [f"{p} {h}" for p, h in mx]
    if not hosts:
        what = "MXが「受信しない」（null MX）になっています" if mx else "MXレコードがありません"
        return Finding(
            check="bounce_mx",
            status="error",
            message=f"バウンス用ドメイン {bounce_domain} に{what}。{why}",
            records=publish,
            found=found,
        )
    if not any(addresses.values()):
        return Finding(
            check="bounce_mx",
            status="error",
            message=f"バウンス用ドメイン {bounce_domain} のMXホスト（{', '.join(hosts)}）にアドレスがありません。{why}",
            records=publish,
            found=found,
        )
    if mx_host not in hosts:
        return Finding(
            check="bounce_mx",
            status="warning",
            message=f"バウンス用ドメイン {bounce_domain} のMXが {mx_host} を指していません。"
            "バウンス受信サーバー（notifier）に届くことを確認してください。",
            records=publish,
            found=found,
        )
    return Finding(
        check="bounce_mx", status="ok", message=f"バウンス用ドメイン {bounce_domain} のMXは正しく設定されています。"
    )


async def check_ptr(dns: Resolver, ips: list[str], helo_name: str) -> list[Finding]:
    """Direct-MX mode: each sending address has a PTR whose name resolves back to it (forward-confirmed)."""
    if not ips:
        return [
            Finding(
                check="ptr",
                status="warning",
                message="直接配送（mx）モードですが、送信元IPアドレス（ISSEIMAIL_SENDING_IPS）が設定されていないため、"
                "逆引き（PTR）を確認できません。",
            )
        ]
    findings = []
    for ip in ips:
        reverse = ipaddress.ip_address(ip).reverse_pointer
        kind = "A" if ipaddress.ip_address(ip).version == 4 else "AAAA"
        publish = [
            DnsRecord(name=reverse, type="PTR", value=f"{helo_name}."),
            DnsRecord(name=helo_name, type=kind, value=ip),
        ]
        owner = "（逆引きはIPアドレスの管理者（回線事業者）が設定します。）"
        try:
            names = await dns.ptr(reverse)
            confirmed = [n for n in names if ip in await dns.addresses(n)]
        except DnsFailure:
            findings.append(Finding(check="ptr", status="error", message=f"{ip} の逆引き: {DNS_DOWN}", records=publish))
            continue
        if not names:
            message = f"送信元 {ip} に逆引き（PTR）がありません。多くの受信サーバーが拒否します。{owner}"
            findings.append(Finding(check="ptr", status="error", message=message, records=publish))
        elif not confirmed:
            message = (
                f"送信元 {ip} の逆引き名（{', '.join(names)}）を正引きしても {ip} になりません"
                f"（逆引きと正引きが一致しない）。{owner}"
            )
            findings.append(Finding(check="ptr", status="error", message=message, records=publish, found=names))
        elif helo_name not in confirmed:
            message = f"送信元 {ip} の逆引き名（{confirmed[0]}）が EHLO名（{helo_name}）と違います。"
            findings.append(Finding(check="ptr", status="warning", message=message, records=publish, found=names))
        else:
            message = f"送信元 {ip} の逆引きは {helo_name} で、正引きも一致しています。"
            findings.append(Finding(check="ptr", status="ok", message=message, found=names))
    return findings
