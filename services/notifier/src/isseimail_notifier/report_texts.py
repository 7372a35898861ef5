"""Japanese texts of the sender's reports: failure reports, digests, the completion mail and its CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from isseimail_notifier.delays import DelayLine
from isseimail_notifier.reasons import japanese, japanese_advice

INLINE_DIGEST_LIMIT = 200


@dataclass(frozen=True)
class FailureLine:
    recipient: str
    row_number: int | None
    source: str  # "smtp" (refused while sending) or "bounce" (returned later)
    reason: str
    status: str | None
    smtp_code: int | None
    diagnostic: str


def one_line(text: str, limit: int = 200) -> str:
    """User or remote text inside a mail: one line, bounded (no CR/LF can reach a header)."""
    return " ".join(text.split())[:limit]


def _row(line: FailureLine) -> str:
    return f"{line.row_number} 行目" if line.row_number else "不明"


def _source(line: FailureLine) -> str:
    return "送信時に相手先サーバが拒否" if line.source == "smtp" else "送信後に返送（バウンス）"


def _code(line: FailureLine) -> str:
    parts = [str(line.smtp_code)] if line.smtp_code else []
    if line.status:
        parts.append(line.status)
    return " ".join(parts) or "なし"


def failure_subject(campaign_subject: str, count: int) -> str:
    what = "配信エラーのお知らせ" if count == 1 else f"配信エラーのお知らせ（{count} 件）"
    return f"【一斉メール】{what}：{one_line(campaign_subject, 60)}"


def failure_body(
    sender: str, campaign_id: uuid.UUID, campaign_subject: str, lines: Sequence[FailureLine], window_minutes: float
) -> str:
    head = f"{sender} 様\n\n一斉メール「{one_line(campaign_subject, 100)}」（キャンペーンID: {campaign_id}）の" + (
        "次の送信先に、メールを配信できませんでした。\n"
        if len(lines) == 1
        else f"次の {len(lines)} 件の送信先に、メールを配信できませんでした。\n"
    )
    blocks = []
    for number, line in enumerate(lines[:INLINE_DIGEST_LIMIT], start=1):
        prefix = "" if len(lines) == 1 else f"[{number}]\n"
        blocks.append(
            f"{prefix}送信先: {line.recipient}\n"
            f"CSVの行: {_row(line)}\n"
            f"理由: {japanese(line.reason)}（{line.reason}）\n"
            f"対処: {japanese_advice(line.reason)}\n"
            f"検出: {_source(line)}\n"
            f"エラーコード: {_code(line)}\n"
            f"相手先サーバからの応答: {one_line(line.diagnostic, 500) or 'なし'}\n"
        )
    more = ""
    if len(lines) > INLINE_DIGEST_LIMIT:
        more = f"\nほか {len(lines) - INLINE_DIGEST_LIMIT} 件は添付の CSV ファイルをご覧ください。\n"
    gather = ""
    if len(lines) > 1:
        gather = f"※ 短時間に続いた配信エラーは、{window_minutes:g} 分ごとにまとめてお知らせします。\n"
    return (
        head
        + "\n"
        + "\n".join(blocks)
        + more
        + "\n"
        + gather
        + "※ 送信先のメールアドレスをご確認ください。存在しないアドレスなどには、以後の一斉メールでも配信されません。\n"
        "※ 受信者の受信設定（指定受信など）による拒否は、受信者が設定を変えるまで、同じ組織からは配信されません。\n"
        "※ このメールは送信専用です。\n"
    )


def completion_subject(campaign_subject: str) -> str:
    return f"【一斉メール】送信完了のお知らせ：{one_line(campaign_subject, 60)}"


def _local(moment: dt.datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Completion:
    campaign_id: uuid.UUID
    subject: str
    started_at: dt.datetime
    finished_at: dt.datetime
    total: int
    sent: int
    failed: int
    bounced: int


def completion_body(
    sender: str,
    c: Completion,
    lines: Sequence[FailureLine],
    inline_limit: int,
    timezone: str,
    delayed: Sequence[DelayLine] = (),
) -> str:
    text = (
        f"{sender} 様\n\n"
        "一斉メールの送信が完了しました。\n\n"
        f"件名: {one_line(c.subject, 100)}\n"
        f"キャンペーンID: {c.campaign_id}\n"
        f"送信開始: {_local(c.started_at, timezone)}（{timezone}）\n"
        f"送信終了: {_local(c.finished_at, timezone)}（{timezone}）\n"
        f"送信先: {c.total} 件（送信者ご本人への控えを含みます）\n"
        f"配信成功: {c.sent} 件\n"
        f"配信失敗: {c.failed} 件\n"
        f"返送（バウンス）: {c.bounced} 件\n" + (f"遅延中: {len(delayed)} 件\n" if delayed else "")
    )
    if lines:
        text += "\n配信できなかった送信先:\n"
        for line in lines[:inline_limit]:
            text += f"- {line.recipient}（CSVの行: {_row(line)}）: {japanese(line.reason)}\n"
        if len(lines) > inline_limit:
            text += f"\n全 {len(lines)} 件の一覧を添付の CSV ファイル（failures.csv）に記載しました。\n"
    else:
        text += "\n配信できなかった送信先はありません。\n"
    text += delayed_section(delayed, inline_limit)
    return text + "\n※ 送信後に届く返送（バウンス）は、届きしだい個別にお知らせします。\n※ このメールは送信専用です。\n"


def delayed_section(delayed: Sequence[DelayLine], inline_limit: int) -> str:
    """The recipients 遅延中: a delay notice came, no final failure (yet). Empty when there are none."""
    if not delayed:
        return ""
    text = "\n配信が遅れている送信先（遅延中。相手先で再送中です）:\n"
    for line in delayed[:inline_limit]:
        code = f"（{line.status}）" if line.status else ""
        text += (
            f"- {line.recipient}（CSVの行: {f'{line.row_number} 行目' if line.row_number else '不明'}）: 遅延中{code}\n"
        )
    if len(delayed) > inline_limit:
        text += f"ほか {len(delayed) - inline_limit} 件\n"
    return text + "※ 遅延中の送信先は、最終的に配信できなかった場合にあらためてお知らせします。\n"


CSV_HEADER = ("CSVの行", "メールアドレス", "理由", "理由コード", "検出", "エラーコード", "相手先サーバからの応答")


def paused_subject(campaign_subject: str) -> str:
    return f"【一斉メール】送信停止のお知らせ：{one_line(campaign_subject, 60)}"


def paused_body(
    sender: str,
    campaign_id: uuid.UUID,
    campaign_subject: str,
    counts: tuple[int, int, int, float],
    lines: Sequence[FailureLine],
    inline_limit: int,
) -> str:
    total, sent, failed, rate = counts
    text = (
        f"{sender} 様\n\n"
        "配信できない送信先の割合が高いため、一斉メールの送信を途中で停止しました。\n"
        "送信先リスト（CSV）のメールアドレスに誤りがないかご確認ください。\n\n"
        f"件名: {one_line(campaign_subject, 100)}\n"
        f"キャンペーンID: {campaign_id}\n"
        f"送信先: {total} 件\n"
        f"配信済み: {sent} 件\n"
        f"配信失敗: {failed} 件（{rate * 100:.0f}%）\n"
        f"未送信: {max(total - sent - failed, 0)} 件\n"
    )
    if lines:
        text += "\n配信できなかった送信先:\n"
        for line in lines[:inline_limit]:
            text += f"- {line.recipient}（CSVの行: {_row(line)}）: {japanese(line.reason)}\n"
        if len(lines) > inline_limit:
            text += f"\n全 {len(lines)} 件の一覧を添付の CSV ファイル（failures.csv）に記載しました。\n"
    return text + "\n※ 送信の再開については、システム管理者にお問い合わせください。\n※ このメールは送信専用です。\n"


def _cell(value: object) -> object:
    """No spreadsheet formulas from remote text (CSV injection): such cells start with a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def failures_csv(lines: Sequence[FailureLine]) -> bytes:
    """UTF-8 with BOM and CRLF: what Excel opens without garbling Japanese."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        ["CSVの行", "メールアドレス", "理由", "理由コード", "検出", "エラーコード", "相手先サーバからの応答"]
    )
    for line in lines:
        writer.writerow(
            _cell(v)
            for v in [
                line.row_number or "",
                line.recipient,
                japanese(line.reason),
                line.reason,
                _source(line),
                _code(line),
                one_line(line.diagnostic, 1000),
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")
