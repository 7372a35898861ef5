"""Reading a recipient CSV as Excel and other tools really write it.

Encoding: a strict try-in-order (BOM → UTF-8 → CP932), never a guess that silently garbles names;
the encoding used is reported. Rows carry the row number the user sees in Excel (header and blank
rows counted). Whole-file problems raise `CsvRefused` with a Japanese message; per-row problems are
left to the address checks so that every bad row can be reported at once.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from typing import NamedTuple

COLUMNS = ("email", "company", "department1", "department2", "contact")

_EMAIL_HEADERS = {
    "メールアドレス",
    "メール",
    "mail",
    "email",
    "e-mail",
    "mailaddress",
    "emailaddress",
    "アドレス",
    "送信先",
    "宛先",
    "e-mailaddress",
    "メアド",
}
_OTHER_HEADERS = {"会社名", "部署名1", "部署名2", "部署名", "ご担当者名", "担当者名", "担当者", "氏名", "名前", "宛名"}
_STRIP = " \t\r\n\u3000\u00a0\ufeff"
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029]")
_CP932_UNDEFINED = re.compile("[\x80-\x9f\uf8f0-\uf8f3]")
_BINARY_MAGIC = {
    b"PK\x03\x04": "Excelブック（.xlsx）や圧縮ファイルは読めません。CSV形式で保存してからアップロードしてください。",
    b"\xd0\xcf\x11\xe0": "Excelブック（.xls）は読み込めません。CSV形式で保存してからアップロードしてください。",
    b"%PDF": "PDFファイルは読み込めません。CSVファイルをアップロードしてください。",
}


ENCODING_LABELS = {
    "cp932": "Shift_JIS (CP932)",
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (BOM付き)",
    "utf-16": "UTF-16",
}
_PAD = [[""] * (5 - n) for n in range(5)]


class CsvRefused(ValueError):
    """The whole file cannot be used; `message` is what the user sees."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


class CsvRow(NamedTuple):  # a tuple: 100,000 of them are built per large list
    row: int  # as Excel numbers it: 1-based, header and blank lines included
    email: str
    company: str
    department1: str
    department2: str
    contact: str
    extra_columns: bool = False


@dataclass(frozen=True)
class ParsedCsv:
    encoding: str
    has_header: bool
    rows: list[CsvRow]
    has_controls: bool = True  # False: no control character (besides tab and line breaks) anywhere


def decode(data: bytes) -> tuple[str, str]:
    """Bytes → (text, encoding label). Raises CsvRefused for binary files and invalid byte sequences."""
    for magic, text in _BINARY_MAGIC.items():
        if data.startswith(magic):
            raise CsvRefused("binary", text)
    if data.startswith(codecs.BOM_UTF8):
        return _strict(data[3:], "utf-8", "UTF-8 (BOM付き)"), "utf-8-sig"
    if data.startswith(codecs.BOM_UTF16_LE):
        return _strict(data[2:], "utf-16-le", "UTF-16"), "utf-16"
    if data.startswith(codecs.BOM_UTF16_BE):
        return _strict(data[2:], "utf-16-be", "UTF-16"), "utf-16"
    if b"\x00" in data:
        raise CsvRefused("binary", "CSVファイルではありません（バイナリデータが含まれています）。")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp932")
        # Python maps the bytes Shift_JIS leaves undefined (0x80, 0xA0, 0xFD-0xFF) to C1/private-use
        # characters instead of failing: such a file is not really CP932.
        if not _CP932_UNDEFINED.search(text):
            return text, "cp932"
    except UnicodeDecodeError:
        pass
    raise CsvRefused(
        "encoding",
        "文字コードを判別できません（不正なバイト列があります）。"
        "UTF-8 または Shift_JIS（CP932）で保存したCSVをアップロードしてください。",
    )


def _strict(data: bytes, codec: str, label: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        raise CsvRefused(
            "encoding", f"{label} として読めない不正なバイト列があります（{exc.start + 1}バイト目付近）。"
        ) from None


def _looks_binary(text: str) -> bool:
    if "\x00" in text:
        return True
    sample = text[:65536]
    controls = sum(1 for ch in sample if ch < " " and ch not in "\t\r\n\x1a")
    return controls > max(8, len(sample) // 100)


def _norm_header(cell: str) -> str:
    text = unicodedata.normalize("NFKC", cell).strip(_STRIP).lower()
    return "".join(ch for ch in text if not ch.isspace() and ch not in "*※()（）必須")


def _dialect(text: str) -> tuple[str, int]:
    """(delimiter, lines to skip). Excel's 'Unicode text' export is tab-separated UTF-16; a first line
    'sep=;' names the delimiter explicitly."""
    first = text[: text.find("\n")] if "\n" in text[:65536] else text[:65536]
    first = first.strip("\r\ufeff")
    if first.lower().startswith("sep=") and len(first) == 5:
        return first[4], 1
    return ("\t" if first.count("\t") > first.count(",") else ","), 0


def is_header(cells: list[str]) -> bool:
    """A first row is a header when its first cell is no address and the row names known columns."""
    if not cells or "@" in cells[0] or "＠" in cells[0]:
        return False
    names = [_norm_header(c) for c in cells]
    return names[0] in _EMAIL_HEADERS or any(n in _OTHER_HEADERS for n in names[1:])


def read_csv(data: bytes, *, max_rows: int, max_columns: int) -> ParsedCsv:
    """Decode and parse a whole CSV (its size is bounded by the caller); raises CsvRefused."""
    if not data.strip(b" \t\r\n"):
        raise CsvRefused("empty", "ファイルが空です。")
    text, encoding = decode(data)
    if _looks_binary(text):
        raise CsvRefused("binary", "CSVファイルではありません（バイナリデータが含まれています）。")
    delimiter, offset = _dialect(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    rows: list[CsvRow] = []
    has_header = False
    seen_content = False
    number = 0
    try:
        for number, record in enumerate(reader, 1 - offset):
            if number < 1:
                continue  # Excel's "sep=," line: Excel hides it, so it has no row number
            if len(record) > max_columns:
                raise CsvRefused("too_many_columns", f"{number}行目の列が多すぎます（最大{max_columns}列）。")
            cells = [c.strip(_STRIP) for c in record]
            while cells and not cells[-1]:
                cells.pop()
            if not cells:
                continue  # a blank line (or a row of empty cells) is no recipient
            if not seen_content:
                seen_content = True
                if is_header(cells):
                    has_header = True
                    continue
            if len(rows) >= max_rows:
                raise CsvRefused("too_many_rows", f"送信先が多すぎます（最大{max_rows:,}件）。")
            width = len(cells)
            if width < 5:
                cells += _PAD[width]
            rows.append(CsvRow(number, cells[0], cells[1], cells[2], cells[3], cells[4], width > 5))
    except csv.Error:
        raise CsvRefused(
            "malformed", f"{number + 1}行目付近のCSVの形式が正しくありません（長すぎるセルや閉じていない引用符）。"
        ) from None
    if not rows:
        raise CsvRefused("no_rows", "送信先が1件もありません。" if has_header else "ファイルが空です。")
    return ParsedCsv(encoding, has_header, rows, _CONTROLS.search(text) is not None)
