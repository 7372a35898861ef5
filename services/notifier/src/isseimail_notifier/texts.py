"""The Japanese texts of the pass mails (credentials, rejection)."""

from __future__ import annotations

import datetime as dt

from isseimail_shared.events import ApplicationRejected, PassIssued

CREDENTIALS_SUBJECT = "【一斉メール】1DayPass 発行のお知らせ"
REJECTION_SUBJECT = "【一斉メール】1DayPass 申請却下のお知らせ"

_WEEKDAYS = "月火水木金土日"


def japanese_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日（{_WEEKDAYS[day.weekday()]}）"


def _one_line(text: str, limit: int = 200) -> str:
    """User-supplied text inside a mail body: no line breaks that could fake extra lines, bounded."""
    return " ".join(text.split())[:limit]


def credentials_body(event: PassIssued, password: str, *, for_admin: bool, rules_url: str) -> str:
    if for_admin:
        opening = (
            "管理者各位\n\n"
            "以下の 1DayPass を発行しました（管理者控え）。\n"
            f"申請者: {_one_line(event.applicant_name)} <{event.applicant_email}>\n"
        )
    else:
        opening = f"{_one_line(event.applicant_name)} 様\n\n1DayPass の申請が承認されました。\n"
    return (
        f"{opening}\n"
        "ご利用日当日に、以下のログインURL から一斉メールへログインしてください。\n\n"
        f"ログインURL: {event.login_url}\n"
        f"ご利用日: {japanese_date(event.use_date)}\n\n"
        f"ユーザーID は [{event.user_id}] です。\n"
        f"パスワード は [{password}] です。\n\n"
        f"ご利用の前に、1DayPass のルールをお読みください: {rules_url}\n\n"
        "※ このユーザーID とパスワードは、ご利用日当日（日本時間の0時から24時まで）のみ有効です。\n"
        "※ 一斉メールを送信すると、このユーザーID とパスワードは無効になります。\n"
        "   再度ご利用になる場合は、改めて 1DayPass を申請してください（再発行は不可）。\n"
        "※ ユーザーID とパスワードは他の人に教えたり、このメールを転送したりしないでください。\n"
        "※ このメールは送信専用です。返信されてもお答えできません。\n"
    )


def rejection_body(event: ApplicationRejected) -> str:
    return (
        f"{_one_line(event.applicant_name)} 様\n\n"
        f"ご利用日 {japanese_date(event.use_date)} の 1DayPass の申請は、以下の理由により却下されました。\n\n"
        f"却下理由: {_one_line(event.reason, 1000)}\n\n"
        "内容をご確認のうえ、必要であれば改めて申請してください。\n"
        f"お問い合わせ先: {event.admin_email}\n"
        "※ このメールは送信専用です。返信されてもお答えできません。\n"
    )
