"""Parsers for the DNS TXT records readiness reads: SPF (RFC 7208), DMARC (RFC 7489), DKIM keys (RFC 6376).

Pure and total: any text either parses or raises RecordError with a Japanese reason (property-tested).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

MAX_RECORD = 4096  # longer than any sane TXT record; refuse before parsing
SPF_MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
SPF_LOOKUP_MECHANISMS = ("include", "a", "mx", "ptr", "exists")  # RFC 7208 4.6.4 (plus redirect=)
_SPF_TERM = re.compile(r"^([+\-~?]?)([a-z0-9]+)(?:([:/])(.*))?$", re.IGNORECASE)
_MODIFIER = re.compile(r"^([a-z][a-z0-9_.\-]*)=(.*)$", re.IGNORECASE)
_DOMAIN_SPEC = re.compile(r"^[\x21-\x2e\x30-\x7e]{1,253}$")  # visible ASCII but "/" (macros allowed)
_CIDR = re.compile(r"\d{1,3}(//\d{1,3})?|/\d{1,3}")
DMARC_POLICIES = ("none", "quarantine", "reject")


class RecordError(ValueError):
    """The record cannot be used; the message (Japanese) says why."""


@dataclass(frozen=True)
class SpfTerm:
    qualifier: str  # "+", "-", "~", "?"
    mechanism: str  # one of SPF_MECHANISMS, lower case
    value: str = ""  # domain-spec, address or cidr suffix as written ("" when none)

    def text(self) -> str:
        q = "" if self.qualifier == "+" else self.qualifier
        if not self.value:
            return f"{q}{self.mechanism}"
        sep = "" if self.value.startswith("/") else ":"
        return f"{q}{self.mechanism}{sep}{self.value}"

    def target(self) -> str | None:
        """The domain this mechanism names (None: the current domain, or not a domain at all)."""
        if self.mechanism in ("ip4", "ip6", "all") or not self.value or self.value.startswith("/"):
            return None
        return self.value.split("/", 1)[0]


@dataclass(frozen=True)
class SpfRecord:
    terms: tuple[SpfTerm, ...]
    redirect: str | None = None
    modifiers: tuple[tuple[str, str], ...] = ()

    def lookups(self) -> int:
        """DNS-querying terms of this record alone (includes not followed)."""
        own = sum(1 for t in self.terms if t.mechanism in SPF_LOOKUP_MECHANISMS)
        return own + (1 if self.redirect else 0)

    def all_qualifier(self) -> str | None:
        for term in self.terms:
            if term.mechanism == "all":
                return term.qualifier
        return None


def is_spf(text: str) -> bool:
    """RFC 7208 4.5: a record is SPF when it is exactly 'v=spf1' or starts with 'v=spf1 '."""
    lowered = text.lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


def _check_value(mechanism: str, sep: str | None, value: str) -> str:
    if mechanism == "all":
        if sep is not None:
            raise RecordError("「all」には値を付けられません。")
        return ""
    if mechanism in ("ip4", "ip6"):
        if sep != ":" or not value:
            raise RecordError(f"「{mechanism}」にはアドレスが必要です。")
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise RecordError(f"「{mechanism}:{value[:60]}」のアドレスが正しくありません。") from None
        if network.version != int(mechanism[-1]):
            raise RecordError(f"「{mechanism}:{value[:60]}」はIPv{mechanism[-1]}のアドレスではありません。")
        return value
    if sep is None:
        if mechanism in ("include", "exists"):
            raise RecordError(f"「{mechanism}」にはドメインが必要です。")
        return ""
    if sep == "/":
        if mechanism not in ("a", "mx") or not _CIDR.fullmatch(value):
            raise RecordError(f"「{mechanism}/{value[:20]}」が正しくありません。")
        return "/" + value
    domain, slash, cidr = value.partition("/")
    if not _DOMAIN_SPEC.match(domain):
        raise RecordError(f"「{mechanism}」のドメインが正しくありません。")
    if slash and (mechanism not in ("a", "mx") or not _CIDR.fullmatch(cidr)):
        raise RecordError(f"「{mechanism}:{value[:60]}」のネットワーク長が正しくありません。")
    return value


def parse_spf(text: str) -> SpfRecord:
    """Parse one SPF record; RecordError (Japanese) for anything RFC 7208 calls a permerror in the syntax."""
    if len(text) > MAX_RECORD:
        raise RecordError("SPFレコードが長すぎます。")
    words = text.split(" ")
    if not words or words[0].lower() != "v=spf1":
        raise RecordError("SPFレコードは「v=spf1」で始まる必要があります。")
    terms: list[SpfTerm] = []
    modifiers: list[tuple[str, str]] = []
    seen: set[str] = set()
    for word in words[1:]:
        if not word:
            continue  # repeated spaces are tolerated in practice
        modifier = _MODIFIER.match(word)
        if modifier and not word.lower().startswith(("ip4:", "ip6:")):
            name, value = modifier.group(1).lower(), modifier.group(2)
            if name in ("redirect", "exp"):
                if name in seen:
                    raise RecordError(f"「{name}=」が2回以上あります。")
                if not _DOMAIN_SPEC.match(value):
                    raise RecordError(f"「{name}=」のドメインが正しくありません。")
                seen.add(name)
            modifiers.append((name, value))
            continue
        match = _SPF_TERM.match(word)
        if not match or match.group(2).lower() not in SPF_MECHANISMS:
            raise RecordError(f"SPFレコードに解釈できない項目「{word[:60]}」があります。")
        qualifier, mechanism, sep, value = match.groups()
        mechanism = mechanism.lower()
        terms.append(SpfTerm(qualifier or "+", mechanism, _check_value(mechanism, sep, value or "")))
    redirect = next((v for n, v in modifiers if n == "redirect"), None)
    return SpfRecord(tuple(terms), redirect, tuple(modifiers))


@dataclass(frozen=True)
class DmarcRecord:
    policy: str
    subdomain_policy: str | None = None
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100
    rua: tuple[str, ...] = ()
    ruf: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)


def is_dmarc(text: str) -> bool:
    return re.match(r"^v\s*=\s*DMARC1\s*(;|$)", text, re.IGNORECASE) is not None


def _tags(text: str, what: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        name, eq, value = part.partition("=")
        name = name.strip().lower()
        if not eq or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise RecordError(f"{what}に解釈できない部分「{part.strip()[:60]}」があります。")
        if name in tags:
            raise RecordError(f"{what}の「{name}=」が2回以上あります。")
        tags[name] = value.strip()
    return tags


def _uris(value: str) -> tuple[str, ...]:
    uris = tuple(u.strip() for u in value.split(",") if u.strip())
    for uri in uris:
        if not re.fullmatch(r"mailto:[^\s@,;]+@[^\s@,;!]+(![0-9]+[kmgt]?)?", uri, re.IGNORECASE):
            raise RecordError(f"DMARCの報告先「{uri[:60]}」は「mailto:アドレス」の形式ではありません。")
    return uris


def parse_dmarc(text: str) -> DmarcRecord:
    """Parse a DMARC record; p= must be present (RFC 7489 6.3), adkim/aspf r or s, pct 0–100."""
    if len(text) > MAX_RECORD:
        raise RecordError("DMARCレコードが長すぎます。")
    if not is_dmarc(text):
        raise RecordError("DMARCレコードは「v=DMARC1」で始まる必要があります。")
    tags = _tags(text, "DMARCレコード")
    policy = tags.get("p", "").lower()
    if not policy:
        raise RecordError("DMARCレコードにポリシー（p=）がありません。")
    if policy not in DMARC_POLICIES:
        raise RecordError(
            f"DMARCのポリシー「p={tags['p'][:30]}」は none / quarantine / reject のいずれかにしてください。"
        )
    sp = tags.get("sp", "").lower() or None
    if sp is not None and sp not in DMARC_POLICIES:
        raise RecordError(f"DMARCの「sp={tags['sp'][:30]}」が正しくありません。")
    modes = {}
    for name in ("adkim", "aspf"):
        value = tags.get(name, "r").lower()
        if value not in ("r", "s"):
            raise RecordError(f"DMARCの「{name}={tags[name][:30]}」は r か s にしてください。")
        modes[name] = value
    pct_text = tags.get("pct", "100")
    if not pct_text.isdigit() or not 0 <= int(pct_text) <= 100:
        raise RecordError(f"DMARCの「pct={pct_text[:30]}」は0から100の整数にしてください。")
    return DmarcRecord(
        policy=policy,
        subdomain_policy=sp,
        adkim=modes["adkim"],
        aspf=modes["aspf"],
        pct=int(pct_text),
        rua=_uris(tags.get("rua", "")),
        ruf=_uris(tags.get("ruf", "")),
        tags=tags,
    )


@dataclass(frozen=True)
class DkimKeyRecord:
    key_type: str  # "rsa" or "ed25519"
    public_key: str  # p= with whitespace removed ("" = revoked)
    tags: dict[str, str] = field(default_factory=dict)


def parse_dkim_key(text: str) -> DkimKeyRecord:
    """Parse a DKIM key record (selector._domainkey TXT): v=DKIM1 (optional, first), k= (rsa default), p=."""
    if len(text) > MAX_RECORD:
        raise RecordError("DKIMレコードが長すぎます。")
    tags = _tags(text, "DKIMレコード")
    if "v" in tags and (tags["v"] != "DKIM1" or next(iter(tags)) != "v"):
        raise RecordError("DKIMレコードの「v=」は先頭で「DKIM1」にしてください。")
    if "p" not in tags:
        raise RecordError("DKIMレコードに公開鍵（p=）がありません。")
    key_type = tags.get("k", "rsa").lower()
    if key_type not in ("rsa", "ed25519"):
        raise RecordError(f"DKIMレコードの鍵の種類「k={tags['k'][:30]}」に対応していません。")
    public_key = re.sub(r"\s+", "", tags["p"])
    if not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", public_key):
        raise RecordError("DKIMレコードの公開鍵（p=）がBase64ではありません。")
    return DkimKeyRecord(key_type, public_key, tags)
