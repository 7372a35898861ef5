"""`make demo` (or ISSEIMAIL_DEMO=1 make run): what a first look needs on a machine without internet.

Real DNS is unreachable there, so every address would fail the existence check. The demo runs the project's
own DNS server (isseimail_testing.dns) on loopback with a small zone, points the services at it, creates an
administrator and writes a sample CSV whose bad rows show the error screen.

    settings = RunSettings()                  # ISSEIMAIL_DEMO, ISSEIMAIL_MAILCATCHER_PORT, ...
    dns = demo_dns(settings.demo_dns_port)    # started; dns.nameserver for ISSEIMAIL_DNS_NAMESERVERS
    write_sample_csv(path)                    # CP932, CRLF, as Excel writes it
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from isseimail_testing.dns import DnsServer

# Domains that take mail (an MX, or only an address: the implicit MX of RFC 5321 §5.1).
GOOD_DOMAINS = ("shoji.example.jp", "kogyo.example.co.jp", "bussan.example.jp")
A_ONLY_DOMAIN = "a-only.example.jp"
NO_MX_DOMAIN = "no-mx.example.jp"  # exists, no MX and no address: cannot take mail
NULL_MX_DOMAIN = "null-mx.example.jp"  # says explicitly that it takes no mail (RFC 7505)
UNKNOWN_DOMAIN = "unknown.example.jp"  # not in the zone: NXDOMAIN
ADMIN_EMAIL = "admin@shoji.example.jp"
SENDER_EMAIL = "koho@shoji.example.jp"

HEADER = "メールアドレス,会社名,部署名1,部署名2,ご担当者名"
GOOD_ROWS = (
    "tanaka@shoji.example.jp,例示商事株式会社,営業部,第一課,田中 一郎",
    "suzuki@shoji.example.jp,例示商事株式会社,総務部,,鈴木 花子",
    "sato@kogyo.example.co.jp,例示工業株式会社,購買部,資材課,佐藤 次郎",
    "takahashi@bussan.example.jp,例示物産株式会社,企画部,,高橋 三郎",
    "ito@a-only.example.jp,例示サービス株式会社,,,伊藤 四郎",
)
BAD_ROWS = (
    "watanabe@no-mx.example.jp,MXのない会社,,,渡辺 五郎",
    "yamamoto@null-mx.example.jp,受信しない会社,,,山本 六郎",
    "nakamura@unknown.example.jp,存在しないドメイン,,,中村 七郎",
    "kobayashi.shoji.example.jp,@のないアドレス,,,小林 八郎",
)


class RunSettings(BaseSettings):
    """`make run`'s own settings (not a service's): the mail catcher and the demo."""

    model_config = SettingsConfigDict(env_prefix="ISSEIMAIL_", extra="ignore")

    mailcatcher_port: int = Field(
        default=1025,
        ge=1,
        le=65535,
        description="make run: port of the embedded mail catcher (the default relay; mails saved under var/mail/).",
    )
    demo: bool = Field(
        default=False,
        description="make run: demo mode (make demo) — own DNS server with a demo zone, an administrator, "
        "a sample CSV in var/demo/.",
    )
    demo_dns_port: int = Field(
        default=0, ge=0, le=65535, description="make demo: UDP port of the demo DNS server (0 = any free port)."
    )


def demo_dns(port: int = 0) -> DnsServer:
    """The demo zone on a loopback DNS server, started."""
    dns = DnsServer(port=port)
    for domain in GOOD_DOMAINS:
        dns.zone(domain, mx=[(10, f"mx.{domain}")], a=["127.0.0.1"])
        dns.zone(f"mx.{domain}", a=["127.0.0.1"])
    dns.zone(A_ONLY_DOMAIN, a=["127.0.0.1"])
    dns.zone(NO_MX_DOMAIN)
    dns.zone(NULL_MX_DOMAIN, null_mx=True)
    dns.start()
    return dns


def sample_csv() -> bytes:
    """The sample list: five good rows and four bad ones (no MX, null MX, unknown domain, no @)."""
    return ("\r\n".join((HEADER, *GOOD_ROWS, *BAD_ROWS)) + "\r\n").encode("cp932")


def good_csv() -> bytes:
    """Only the good rows: a list that passes and can be sent."""
    return ("\r\n".join((HEADER, *GOOD_ROWS)) + "\r\n").encode("cp932")


def write_sample_csv(directory: Path) -> tuple[Path, Path]:
    """Write the sample (with bad rows) and the good-only list into `directory`; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    sample = directory / "送信先-サンプル-エラーあり.csv"
    good = directory / "送信先-サンプル.csv"
    sample.write_bytes(sample_csv())
    good.write_bytes(good_csv())
    return sample, good
