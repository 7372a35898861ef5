"""The system-mail templates rendered with realistic and hostile values: the exact Japanese texts, one-line
subjects whatever the data, StrictUndefined everywhere, and no template file that nothing renders."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from jinja2 import UndefinedError, meta

from isseimail_notifier import mail_texts, reasons, report_texts, texts
from isseimail_notifier.delays import DelayLine
from isseimail_notifier.mail_queue import build_message
from isseimail_notifier.report_texts import Completion, FailureLine, PausedCounts
from isseimail_shared.events import AdminCreated, ApplicationRejected, PassIssued

PACKAGE = Path(mail_texts.__file__).parent
CAMPAIGN = uuid.UUID("0b8f6f5e-8e55-4c0c-9d55-1f1f1f1f1f1f")
DAY = dt.date(2026, 11, 30)  # a Monday
START = dt.datetime(2026, 11, 30, 1, 0, 0, tzinfo=dt.UTC)  # 10:00 in Tokyo
HOSTILE = "山田\r\nBcc: victim@example.com\r\n\r\n本文を差し替え\u2028\x85"
LINE_BREAKS = "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"


def failure(
    n: int = 1,
    *,
    row: int | None = 5,
    status: str | None = "5.1.1",
    code: int | None = 550,
    source: str = "smtp",
    diagnostic: str = "550 5.1.1 <tanaka@example.jp>: user unknown",
) -> FailureLine:
    return FailureLine(f"user{n}@example.jp", row, source, "userunknown", status, code, diagnostic)


def completion_of(subject: str = "年末年始休業のお知らせ", unsubscribed: int = 0, complained: int = 0) -> Completion:
    return Completion(CAMPAIGN, subject, START, START + dt.timedelta(minutes=4), 11, 9, 2, 1, unsubscribed, complained)


def issued(name: str = "山田 太郎") -> PassIssued:
    return PassIssued(
        pass_id=41,
        application_id=7,
        user_id="123456",
        use_date=DAY,
        applicant_name=name,
        applicant_email="taro@example.jp",
        admin_email="admin@example.jp",
        encrypted_password="unused-here",
        login_url="https://isseimail.example.jp/login",
    )


# One realistic context per mail template: every variable each one names, with every branch taken.
CONTEXTS: dict[str, dict[str, Any]] = {
    "credentials.txt": {
        "for_admin": True,
        "applicant_name": "山田 太郎",
        "applicant_email": "taro@example.jp",
        "login_url": "https://isseimail.example.jp/login",
        "use_date": DAY,
        "user_id": "123456",
        "password": "Kx7mP2qR9t",
        "rules_url": "https://isseimail.example.jp/rules",
    },
    "rejection.txt": {
        "applicant_name": "山田 太郎",
        "use_date": DAY,
        "reason": "利用目的が不明確です。",
        "admin_email": "admin@example.jp",
    },
    "admin_created.txt": {"email": "admin@corp.example.jp", "console_url": "https://isseimail.example.jp/admin"},
    "failures.txt": {
        "sender": "山田",
        "campaign_id": CAMPAIGN,
        "campaign_subject": "年末年始休業のお知らせ",
        "lines": [failure(1), failure(2)],
        "inline_limit": 1,
        "window_minutes": 10,
    },
    "completion.txt": {
        "sender": "山田",
        "c": completion_of(unsubscribed=1),
        "lines": [failure(1), failure(2)],
        "inline_limit": 1,
        "timezone": "Asia/Tokyo",
        "delayed": [DelayLine("slow@example.jp", 3, "4.4.1", "")],
    },
    "paused.txt": {
        "sender": "山田",
        "campaign_id": CAMPAIGN,
        "campaign_subject": "年末年始休業のお知らせ",
        "counts": PausedCounts(10, 2, 6, 0.75),
        "lines": [failure(1), failure(2)],
        "inline_limit": 1,
    },
}


def template_files() -> tuple[set[str], set[str]]:
    """(mails, parts) of templates/mail/: parts start with "_" and are only included."""
    names = set(mail_texts.ENV.list_templates())
    return {n for n in names if not n.startswith("_")}, {n for n in names if n.startswith("_")}


def test_every_template_file_is_used() -> None:
    """Each mail template is rendered by the package's code and has a context here; each part is included."""
    mails, parts = template_files()
    assert mails == set(CONTEXTS)
    code = "\n".join(p.read_text() for p in PACKAGE.glob("*.py"))
    for name in mails:
        assert f'"{name}"' in code, f"{name}: no module renders it"
    included: set[str] = set()
    for name in mails | parts:
        source = mail_texts.ENV.loader.get_source(mail_texts.ENV, name)[0]  # type: ignore[union-attr]
        included |= {n for n in meta.find_referenced_templates(mail_texts.ENV.parse(source)) if n}
    assert parts == included
    assert set(mail_texts.ENV.list_templates()) >= included  # nothing includes a file that is not there


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_every_template_renders_and_needs_each_value(name: str) -> None:
    """With its values a mail renders (one-line subject, body ending in a newline); without any one, it fails."""
    text = mail_texts.render(name, **CONTEXTS[name])
    assert text.subject.startswith("【一斉メール】")
    assert not any(c in text.subject for c in LINE_BREAKS)
    assert text.body.endswith("\n")
    assert not text.body.startswith("\n")
    assert "{{" not in text.body
    assert "{%" not in text.body
    for missing in CONTEXTS[name]:
        values = {k: v for k, v in CONTEXTS[name].items() if k != missing}
        with pytest.raises(UndefinedError):
            mail_texts.render(name, **values)


def test_text_is_not_html_escaped_but_html_would_be() -> None:
    """text/plain keeps < and & as they are; an .html template (none yet) would be autoescaped."""
    body = texts.credentials(issued("R&D <部>"), "a<b&c", for_admin=True, rules_url="https://x/rules").body
    assert "申請者: R&D <部> <taro@example.jp>" in body
    assert "パスワード は [a<b&c] です。" in body
    assert mail_texts.ENV.autoescape("part.html") is True  # type: ignore[operator]
    assert mail_texts.ENV.autoescape("credentials.txt") is False  # type: ignore[operator]


def test_credentials_mail_word_for_word() -> None:
    """The applicant's credential mail, whole."""
    text = texts.credentials(issued(), "Kx7mP2qR9t", for_admin=False, rules_url="https://isseimail.example.jp/rules")
    assert text.subject == "【一斉メール】1DayPass 発行のお知らせ"
    assert text.body == (
        "山田 太郎 様\n\n1DayPass の申請が承認されました。\n\n"
        "ご利用日当日に、以下のログインURL から一斉メールへログインしてください。\n\n"
        "ログインURL: https://isseimail.example.jp/login\n"
        "ご利用日: 2026年11月30日（月）\n\n"
        "ユーザーID は [123456] です。\n"
        "パスワード は [Kx7mP2qR9t] です。\n\n"
        "ご利用の前に、1DayPass のルールをお読みください: https://isseimail.example.jp/rules\n\n"
        "※ このユーザーID とパスワードは、ご利用日当日（日本時間の0時から24時まで）のみ有効です。\n"
        "※ 一斉メールを送信すると、このユーザーID とパスワードは無効になります。\n"
        "   再度ご利用になる場合は、改めて 1DayPass を申請してください（再発行は不可）。\n"
        "※ ユーザーID とパスワードは他の人に教えたり、このメールを転送したりしないでください。\n"
        "※ このメールは送信専用です。返信されてもお答えできません。\n"
    )


def test_admin_copy_of_credentials_and_the_admin_notice() -> None:
    admin = texts.credentials(issued(), "pw", for_admin=True, rules_url="https://x/rules").body
    assert admin.startswith(
        "管理者各位\n\n以下の 1DayPass を発行しました（管理者控え）。\n申請者: 山田 太郎 <taro@example.jp>\n\n"
    )
    created = texts.admin_created(AdminCreated(admin_id=1, email="boss@corp.example.jp"), "https://i.example.jp/admin")
    assert created.subject == "【一斉メール】管理者アカウント作成のお知らせ"
    assert created.body == (
        "isseimail 一斉メールの管理者アカウントが作成されました。\n\n"
        "管理者メールアドレス: boss@corp.example.jp\n"
        "管理画面: https://i.example.jp/admin\n\n"
        "お心当たりのない場合は、システム管理者にご連絡ください。\n"
    )


def test_rejection_mail_word_for_word() -> None:
    event = ApplicationRejected(
        application_id=7,
        applicant_name="山田 太郎",
        applicant_email="taro@example.jp",
        use_date=dt.date(2027, 1, 3),
        reason="利用目的が不明確です。\n詳細を記入してください。",
        admin_email="admin@example.jp",
    )
    text = texts.rejection(event)
    assert text.subject == "【一斉メール】1DayPass 申請却下のお知らせ"
    assert text.body == (
        "山田 太郎 様\n\n"
        "ご利用日 2027年1月3日（日） の 1DayPass の申請は、以下の理由により却下されました。\n\n"
        "却下理由: 利用目的が不明確です。 詳細を記入してください。\n\n"
        "内容をご確認のうえ、必要であれば改めて申請してください。\n"
        "お問い合わせ先: admin@example.jp\n"
        "※ このメールは送信専用です。返信されてもお答えできません。\n"
    )


def test_single_failure_report_word_for_word() -> None:
    """One failure: no numbering, no digest note; every field of the line."""
    text = report_texts.failure_report("山田", CAMPAIGN, "年末年始休業のお知らせ", [failure()], 10)
    assert text.subject == "【一斉メール】配信エラーのお知らせ：年末年始休業のお知らせ"
    assert text.body == (
        "山田 様\n\n"
        f"一斉メール「年末年始休業のお知らせ」（キャンペーンID: {CAMPAIGN}）の"
        "次の送信先に、メールを配信できませんでした。\n\n"
        "送信先: user1@example.jp\n"
        "CSVの行: 5 行目\n"
        "理由: 宛先のメールアドレスが存在しません（ユーザー不明）。（userunknown）\n"
        f"対処: {reasons.japanese_advice('userunknown')}\n"
        "検出: 送信時に相手先サーバが拒否\n"
        "エラーコード: 550 5.1.1\n"
        "相手先サーバからの応答: 550 5.1.1 <tanaka@example.jp>: user unknown\n\n"
        "※ 送信先のメールアドレスをご確認ください。存在しないアドレスなどには、以後の一斉メールでも配信されません。\n"
        "※ 受信者の受信設定（指定受信など）による拒否は、受信者が設定を変えるまで、同じ組織からは配信されません。\n"
        "※ このメールは送信専用です。\n"
    )


def test_failure_digest_numbers_lines_and_points_to_the_csv_beyond_the_limit() -> None:
    lines = [failure(n, row=n) for n in range(1, report_texts.INLINE_DIGEST_LIMIT + 4)]
    text = report_texts.failure_report("山田", CAMPAIGN, "ご案内", lines, 0.5)
    assert text.subject == f"【一斉メール】配信エラーのお知らせ（{len(lines)} 件）：ご案内"
    assert f"次の {len(lines)} 件の送信先に" in text.body
    assert "[1]\n送信先: user1@example.jp\n" in text.body
    assert f"[{report_texts.INLINE_DIGEST_LIMIT}]\n" in text.body
    assert f"[{report_texts.INLINE_DIGEST_LIMIT + 1}]" not in text.body
    assert "\nほか 3 件は添付の CSV ファイルをご覧ください。\n" in text.body
    assert "0.5 分ごとにまとめてお知らせします。" in text.body
    # blocks are separated by exactly one blank line
    assert "相手先サーバからの応答: 550 5.1.1 <tanaka@example.jp>: user unknown\n\n[2]\n" in text.body


def test_missing_optional_fields_read_as_unknown_or_none() -> None:
    """No row, no codes, no diagnostic: 不明 / なし, never "None" or an empty field."""
    bare = failure(row=None, status=None, code=None, source="bounce", diagnostic="")
    text = report_texts.failure_report("山田", CAMPAIGN, "", [bare], 10)
    assert text.subject == "【一斉メール】配信エラーのお知らせ："
    for expected in (
        "CSVの行: 不明",
        "検出: 送信後に返送（バウンス）",
        "エラーコード: なし",
        "相手先サーバからの応答: なし",
    ):
        assert f"{expected}\n" in text.body
    done = report_texts.completion(
        "山田", completion_of(), [bare], 50, "Asia/Tokyo", [DelayLine("s@x.jp", None, None, "")]
    )
    assert "- user1@example.jp（CSVの行: 不明）: 宛先のメールアドレスが存在しません（ユーザー不明）。\n" in done.body
    assert "- s@x.jp（CSVの行: 不明）: 遅延中\n" in done.body
    assert "None" not in text.body + done.body


def test_completion_mail_word_for_word() -> None:
    """Counts in the sender's time zone, the failure list cut at the limit, the delayed, the wishes."""
    lines = [failure(1, row=2), failure(2, row=9)]
    delayed = [DelayLine("slow@example.jp", 3, "4.4.1", ""), DelayLine("late@example.jp", 4, None, "")]
    text = report_texts.completion("山田", completion_of(unsubscribed=2, complained=1), lines, 1, "Asia/Tokyo", delayed)
    assert text.subject == "【一斉メール】送信完了のお知らせ：年末年始休業のお知らせ"
    assert text.body == (
        "山田 様\n\n"
        "一斉メールの送信が完了しました。\n\n"
        "件名: 年末年始休業のお知らせ\n"
        f"キャンペーンID: {CAMPAIGN}\n"
        "送信開始: 2026-11-30 10:00:00（Asia/Tokyo）\n"
        "送信終了: 2026-11-30 10:04:00（Asia/Tokyo）\n"
        "送信先: 11 件（送信者ご本人への控えを含みます）\n"
        "配信成功: 9 件\n"
        "配信失敗: 2 件\n"
        "返送（バウンス）: 1 件\n"
        "遅延中: 2 件\n"
        "配信停止の申し出: 2 件\n"
        "迷惑メールの報告: 1 件\n"
        "※ 配信停止の申し出・迷惑メールの報告があった送信先には、今後この送信元ドメインからの一斉メールは"
        "送信されません（送信中に届いた場合は、それ以降の送信も止めました）。\n"
        "\n配信できなかった送信先:\n"
        "- user1@example.jp（CSVの行: 2 行目）: 宛先のメールアドレスが存在しません（ユーザー不明）。\n"
        "\n全 2 件の一覧を添付の CSV ファイル（failures.csv）に記載しました。\n"
        "\n配信が遅れている送信先（遅延中。相手先で再送中です）:\n"
        "- slow@example.jp（CSVの行: 3 行目）: 遅延中（4.4.1）\n"
        "ほか 1 件\n"
        "※ 遅延中の送信先は、最終的に配信できなかった場合にあらためてお知らせします。\n"
        "\n※ 送信後に届く返送（バウンス）は、届きしだい個別にお知らせします。\n※ このメールは送信専用です。\n"
    )
    clean = report_texts.completion("山田", completion_of(), [], 50, "Asia/Tokyo").body
    assert "\n配信できなかった送信先はありません。\n\n※ 送信後に届く返送" in clean
    assert "遅延中" not in clean
    assert "配信停止の申し出" not in clean


def test_paused_mail_word_for_word() -> None:
    text = report_texts.paused("山田", CAMPAIGN, "ご案内", PausedCounts(10, 2, 6, 0.75), [failure(1, row=4)], 50)
    assert text.subject == "【一斉メール】送信停止のお知らせ：ご案内"
    assert text.body == (
        "山田 様\n\n"
        "配信できない送信先の割合が高いため、一斉メールの送信を途中で停止しました。\n"
        "送信先リスト（CSV）のメールアドレスに誤りがないかご確認ください。\n\n"
        "件名: ご案内\n"
        f"キャンペーンID: {CAMPAIGN}\n"
        "送信先: 10 件\n"
        "配信済み: 2 件\n"
        "配信失敗: 6 件（75%）\n"
        "未送信: 2 件\n"
        "\n配信できなかった送信先:\n"
        "- user1@example.jp（CSVの行: 4 行目）: 宛先のメールアドレスが存在しません（ユーザー不明）。\n"
        "\n※ 送信の再開については、システム管理者にお問い合わせください。\n※ このメールは送信専用です。\n"
    )
    # more counted than the total (events raced): never a negative 未送信
    assert "未送信: 0 件\n" in report_texts.paused("山田", CAMPAIGN, "x", PausedCounts(3, 3, 3, 0.5), [], 50).body


def all_mails(subject: str, name: str) -> list[mail_texts.MailText]:
    lines = [failure(1, diagnostic=subject), failure(2)]
    rejected = ApplicationRejected(
        application_id=1,
        applicant_name=name,
        applicant_email="taro@example.jp",
        use_date=DAY,
        reason=subject,
        admin_email="admin@example.jp",
    )
    return [
        texts.credentials(issued(name), "pw", for_admin=False, rules_url="https://x/rules"),
        texts.credentials(issued(name), "pw", for_admin=True, rules_url="https://x/rules"),
        texts.rejection(rejected),
        report_texts.failure_report(name, CAMPAIGN, subject, lines, 10),
        report_texts.failure_report(name, CAMPAIGN, subject, lines[:1], 10),
        report_texts.completion(name, completion_of(subject), lines, 50, "Asia/Tokyo"),
        report_texts.paused(name, CAMPAIGN, subject, PausedCounts(3, 1, 2, 0.66), lines, 50),
    ]


@pytest.mark.parametrize(
    ("subject", "name"),
    [
        (HOSTILE, HOSTILE),
        ("件名" * 5000, "長い名前" * 5000),
        ("\r\n", "\n"),
        ("=?utf-8?b?Zm9v?=\r\n\tX-Injected: yes", "Robert'); DROP TABLE--"),
    ],
    ids=["crlf", "very-long", "only-breaks", "encoded-word"],
)
def test_hostile_values_never_reach_a_header_or_fake_lines(subject: str, name: str) -> None:
    """User text with line breaks stays on its one line in the body; the subject is one bounded line and the
    built message has exactly the headers the notifier set."""
    for text in all_mails(subject, name):
        assert not any(c in text.subject for c in LINE_BREAKS)
        assert len(text.subject) <= len("【一斉メール】配信エラーのお知らせ（2 件）：") + 60
        assert not re.search(r"^(Bcc|X-Injected):", text.body, re.MULTILINE)
        assert "\n本文を差し替え" not in text.body
        assert all(len(line) <= 1100 for line in text.body.splitlines())
        row = {
            "subject": text.subject,
            "recipient": "taro@example.jp",
            "message_id": "<1.test@corp.example.jp>",
            "encrypted": False,
            "body": text.body,
            "attachment": None,
            "attachment_name": None,
        }
        parsed = message_from_bytes(build_message(row, "noreply@corp.example.jp").as_bytes(), policy=policy.default)  # type: ignore[arg-type]
        assert sorted(parsed.keys()) == sorted(
            [
                "From",
                "To",
                "Subject",
                "Date",
                "Message-ID",
                "Auto-Submitted",
                "Content-Type",
                "Content-Transfer-Encoding",
                "MIME-Version",
            ]
        )
        if "=?" not in subject:  # a literal encoded word in user text is decoded by readers: shown, not a header
            assert parsed["Subject"] == text.subject
        assert parsed.get_content() == text.body


def test_japanese_dates_and_local_times() -> None:
    assert mail_texts.japanese_date(dt.date(2026, 12, 6)) == "2026年12月6日（日）"
    assert mail_texts.local_time(dt.datetime(2026, 12, 31, 15, 0, tzinfo=dt.UTC), "Asia/Tokyo") == "2027-01-01 00:00:00"
