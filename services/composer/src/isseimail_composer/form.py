"""The form rules of the operating manual: every field checked, all errors at once, keyed by field.

`check_draft()` turns raw form input into a `Draft` or a dict of Japanese messages. Attachments are
judged by content (a `%PDF-` header) and by a plain `.pdf` name; limits are the manual's.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Literal

from isseimail_composer import text_rules

MAX_SENDER_EMAIL = 50
MAX_SENDER_NAME = 50
MAX_SUBJECT = 100
MAX_BODY = 5000
MAX_ATTACHMENTS = 5
MAX_ATTACHMENT_BYTES = 2_097_152  # 2 MB together
MAX_FILENAME = 100
PDF_MAGIC = b"%PDF-"

Charset = Literal["utf-8", "iso-2022-jp"]
CHARSETS: dict[str, Charset] = {"utf-8": "utf-8", "utf8": "utf-8", "iso-2022-jp": "iso-2022-jp", "jis": "iso-2022-jp"}

LABELS = {
    "list_id": "送信先リスト",
    "sender_email": "送信者メールアドレス",
    "sender_name": "送信者名称",
    "subject": "件名",
    "body": "本文",
    "charset": "文字コード",
    "attachments": "添付ファイル",
}

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"^{_ATEXT}(?:\.{_ATEXT})*$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_WINDOWS_RESERVED = frozenset('<>:"|?*')


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes


@dataclass(frozen=True)
class Draft:
    list_id: uuid.UUID
    sender_email: str
    sender_name: str
    subject: str
    body: str
    charset: Charset
    attachments: list[Attachment] = field(default_factory=list)


def _required(key: str) -> str:
    return f"{LABELS[key]}を入力してください。"


def _too_long(key: str, limit: int, count: int) -> str:
    return f"{LABELS[key]}は{limit:,}文字以内にしてください（現在{count:,}文字）。"


def check_sender_email(value: str, allowed_domains: list[str]) -> tuple[str, str | None]:
    """(normalised address, error or None)."""
    value = value.strip()
    if not value:
        return value, _required("sender_email")
    if re.search(r"[\r\n\v\f\x85\u2028\u2029]", value):
        return value, "送信者メールアドレスに改行は使えません。"
    if re.search(r"[,;\s]", value) or value.count("@") > 1:
        return value, "送信者メールアドレスは1つだけ入力してください。"
    if len(value) > MAX_SENDER_EMAIL:
        return value, _too_long("sender_email", MAX_SENDER_EMAIL, len(value))
    local, _, domain = value.rpartition("@")
    domain = domain.lower()
    labels = domain.split(".")
    if (
        not value.isascii()
        or not _LOCAL.match(local)
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        return value, "送信者メールアドレスの形式が正しくありません（例: taro@example.co.jp、半角英数字）。"
    address = f"{local}@{domain}"
    if allowed_domains and domain not in allowed_domains:
        listed = "、".join(allowed_domains)
        return address, f"送信者メールアドレスのドメインは次のいずれかにしてください: {listed}"
    return address, None


def check_text(key: str, raw: str, limit: int, *, multiline: bool, charset: Charset) -> tuple[str, str | None]:
    """A text field: required, length in user-visible characters, refused characters with positions."""
    value = text_rules.normalise(raw, multiline=multiline)
    # One-line fields: runs of spaces collapse (a display name loses them in every mail reader anyway).
    value = value.rstrip() if multiline else re.sub(" {2,}", " ", value.strip())
    if not value.strip():
        return value, _required(key)
    if not multiline and re.search(r"[\r\n\u2028\u2029]", value):
        return value, f"{LABELS[key]}に改行を含めないでください。"
    problems = []
    if len(value) > limit:
        problems.append(_too_long(key, limit, len(value)))
    found = text_rules.bad_chars(value, multiline=multiline, iso_2022_jp=charset == "iso-2022-jp")
    if found:
        problems.append(text_rules.describe(LABELS[key], found, multiline=multiline))
    return value, " ".join(problems) or None


def check_filename(raw: str) -> tuple[str, str | None]:
    name = text_rules.normalise(raw, multiline=False).strip()
    shown = name if len(name) <= 40 else name[:40] + "…"
    if not name:
        return name, "ファイル名のないファイルがあります。"
    if "/" in name or "\\" in name or name in (".", ".."):
        return name, f"「{shown}」: ファイル名にフォルダの指定（/ や \\）を含めないでください。"
    if len(name) > MAX_FILENAME:
        return name, f"「{shown}」: ファイル名は{MAX_FILENAME}文字以内にしてください（現在{len(name)}文字）。"
    found = text_rules.bad_chars(name, multiline=False, iso_2022_jp=False)
    if found:
        return name, f"「{shown}」: " + text_rules.describe("ファイル名", found, multiline=False)
    if any(c in _WINDOWS_RESERVED for c in name) or name.startswith("."):
        return name, f'「{shown}」: ファイル名に < > : " | ? * や先頭のピリオドは使用できません。'
    if not name.lower().endswith(".pdf") or len(name) <= 4:
        return name, f"「{shown}」: PDFファイルの名前は「.pdf」で終わるようにしてください。"
    return name, None


NO_ATTACHMENT = "添付ファイル（PDF）を1つ以上選択してください。"


def check_attachments(files: list[tuple[str, bytes]], *, required: bool = False) -> tuple[list[Attachment], str | None]:
    """The manual marks attachments (必須); ISSEIMAIL_ATTACHMENTS_REQUIRED=false allows text-only mail."""
    if required and not files:
        return [], NO_ATTACHMENT
    if len(files) > MAX_ATTACHMENTS:
        return [], f"添付ファイルは{MAX_ATTACHMENTS}個までです（現在{len(files)}個）。"
    problems: list[str] = []
    kept: list[Attachment] = []
    for raw_name, data in files:
        name, error = check_filename(raw_name)
        shown = name if len(name) <= 40 else name[:40] + "…"
        if error is not None:
            problems.append(error)
        elif not data:
            problems.append(f"「{shown}」: 空のファイル（0バイト）は添付できません。")
        elif not data.startswith(PDF_MAGIC):
            problems.append(f"「{shown}」: PDFファイルではありません。PDF形式のファイルだけを添付できます。")
        else:
            kept.append(Attachment(name, data))
    total = sum(len(data) for _, data in files)
    if total > MAX_ATTACHMENT_BYTES:
        problems.append(f"添付ファイルは合計2MB（{MAX_ATTACHMENT_BYTES:,}バイト）までです（現在{total:,}バイト）。")
    return kept, " ".join(problems) or None


def check_draft(
    values: dict[str, str],
    files: list[tuple[str, bytes]],
    *,
    allowed_domains: list[str],
    attachments_required: bool = False,
) -> tuple[Draft | None, dict[str, str]]:
    """Check every field; a Draft when all are fine, else None and every error keyed by field."""
    errors: dict[str, str] = {}
    list_id: uuid.UUID | None = None
    raw_list = values.get("list_id", "").strip()
    if not raw_list:
        errors["list_id"] = "送信先リストを指定してください（CSVをアップロードして確認を済ませてください）。"
    else:
        try:
            list_id = uuid.UUID(raw_list)
        except ValueError:
            errors["list_id"] = "送信先リストの指定が正しくありません。"
    charset = CHARSETS.get(values.get("charset", "").strip().lower() or "utf-8")
    if charset is None:
        errors["charset"] = "文字コードは「utf-8」か「iso-2022-jp」を選んでください。"
    cs: Charset = charset or "utf-8"
    sender_email, error = check_sender_email(values.get("sender_email", ""), allowed_domains)
    if error:
        errors["sender_email"] = error
    checked: dict[str, str] = {}
    for key, limit, multiline in (
        ("sender_name", MAX_SENDER_NAME, False),
        ("subject", MAX_SUBJECT, False),
        ("body", MAX_BODY, True),
    ):
        checked[key], error = check_text(key, values.get(key, ""), limit, multiline=multiline, charset=cs)
        if error:
            errors[key] = error
    attachments, error = check_attachments(files, required=attachments_required)
    if error:
        errors["attachments"] = error
    if errors or list_id is None:
        return None, errors
    return Draft(
        list_id, sender_email, checked["sender_name"], checked["subject"], checked["body"], cs, attachments
    ), {}
