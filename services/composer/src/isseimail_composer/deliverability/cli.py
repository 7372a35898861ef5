"""`isseimail-composer check-domain DOMAIN [--json]`: the readiness report on the terminal.

Exit status: 0 when nothing is an error (warnings allowed), 1 when any check is an error, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

from isseimail_composer.deliverability.gate import normalize_domain
from isseimail_composer.deliverability.report import ReadinessChecker
from isseimail_composer.settings import ComposerSettings
from isseimail_shared.contracts.composer import Report

LABELS = {"ok": "OK", "warning": "警告", "error": "エラー"}
CHECKS = {
    "spf": "SPF",
    "bounce_spf": "SPF（バウンス用ドメイン）",
    "dkim": "DKIM",
    "dmarc": "DMARC",
    "bounce_mx": "バウンス用ドメインのMX",
    "ptr": "逆引き（PTR）",
}


def render(report: Report) -> str:
    lines = [f"送信ドメイン {report.domain} の準備状況（{report.checked_at} 確認）", ""]
    for f in report.findings:
        lines.append(f"[{LABELS[f.status]}] {CHECKS[f.check]}: {f.message}")
        for text in f.found:
            lines.append(f"    現在のDNS: {text}")
        if f.records:
            lines.append("    公開するレコード:")
            lines.extend(f"      {r.zone_line()}" for r in f.records)
    errors = sum(f.status == "error" for f in report.findings)
    warnings = sum(f.status == "warning" for f in report.findings)
    lines += ["", f"結果: エラー {errors} 件、警告 {warnings} 件"]
    if report.blocking:
        lines.append(
            "DKIM / DMARC のエラーがあるため、このドメインからの一斉送信は拒否されます"
            "（管理者が例外を設定した場合を除く）。"
        )
    return "\n".join(lines)


async def _report(settings: ComposerSettings, domain: str) -> Report:
    checker = ReadinessChecker.from_settings(settings)
    try:
        return await checker.report(domain, fresh=True)
    finally:
        await checker.close()


def main(argv: list[str], settings: ComposerSettings, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="isseimail-composer check-domain", description="送信ドメインのDNS設定を確認します。"
    )
    parser.add_argument("domain")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    domain = normalize_domain(args.domain)
    if domain is None:
        print(f"ドメイン名が正しくありません: {args.domain}", file=sys.stderr)
        return 2
    report = asyncio.run(_report(settings, domain))
    print(report.model_dump_json(indent=2) if args.json else render(report), file=out)
    return 1 if report.status == "error" else 0
