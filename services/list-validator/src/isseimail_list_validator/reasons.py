"""Row outcomes: a status (ok, invalid, unverified), a reason code and the Japanese message users see."""

from __future__ import annotations

from typing import Literal

Status = Literal["ok", "invalid", "unverified"]

MESSAGES: dict[str, str] = {
    "ok": "確認済みです。",
    "ok_legacy": "確認済みです（携帯電話会社の旧形式アドレス）。",
    "ok_catch_all": "確認済みです（ドメインがすべての宛先を受け付けるため、個別の存在は確認できません）。",
    "missing_email": "メールアドレスが入力されていません。",
    "missing_contact": "ご担当者名が入力されていません。",
    "bad_chars": "メールアドレスに使用できない文字（改行・< >・空白・制御文字など）が含まれています。",
    "syntax": "メールアドレスの形式が正しくありません。",
    "full_width": "メールアドレスに全角文字（＠や．など）が含まれています。半角で入力してください。",
    "non_ascii_local": "メールアドレスの@より前に全角文字などASCII以外の文字が含まれています。",
    "too_long": "メールアドレスが長すぎます。",
    "cell_too_long": "会社名・部署名・ご担当者名が長すぎます。",
    "control_chars": "制御文字が含まれています。",
    "too_many_columns": "列が多すぎます。",
    "duplicate": "同じメールアドレスが既に上の行にあります。",
    "domain_not_found": "ドメインが存在しません。",
    "null_mx": "このドメインはメールを受け付けていません（null MX）。",
    "no_mail_host": "このドメインにはメールサーバーがありません。",
    "dns_unverified": "ドメインを確認できませんでした（DNSが応答しません）。",
    "suppressed": "以前の送信で配信できなかったため、配信停止リストに登録されているアドレスです。",
    "unsubscribed": "配信停止の申し出があったアドレスです（この送信元ドメインからは送信できません）。",
    "complained": "迷惑メールの報告があったアドレスです（この送信元ドメインからは送信できません）。",
    "suppression_unavailable": "配信停止リストを確認できませんでした。",
    "mailbox_not_found": "メールボックスが存在しません（メールサーバーが受信を拒否しました）。",
    "smtp_unverified": "メールサーバーで宛先を確認できませんでした。",
}


def message(code: str, *, duplicate_of: int | None = None) -> str:
    text = MESSAGES.get(code, MESSAGES["syntax"])
    if code == "duplicate" and duplicate_of is not None:
        return f"同じメールアドレスが{duplicate_of}行目にあります。"
    return text
