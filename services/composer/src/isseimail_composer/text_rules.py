"""Character rules of the form: counting as the user sees it, and 外字 / control / JIS X 0208 checks.

Counting is in Unicode code points after NFC, with a CRLF as one line break. A refused character is
named with its position (line and column in the body, column elsewhere) and its code point, so the
user can find it even when the browser shows it as a blank box.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from isseimail_shared.mailmerge import JIS_VARIANTS

MAX_REPORTED = 5  # name the first few offending characters; a pasted binary blob must not make a huge message
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")  # hide the true text order
LINE_BREAKS = frozenset("\n\r\u2028\u2029\x0b\x0c\x85")


@dataclass(frozen=True)
class BadChar:
    char: str
    line: int  # 1-based
    column: int  # 1-based, in code points
    reason: str  # Japanese: why this character is refused


def normalise(value: str, *, multiline: bool) -> str:
    """NFC; in multi-line text a CRLF (or a lone CR) becomes one LF."""
    value = unicodedata.normalize("NFC", value)
    if multiline:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value


def char_reason(char: str, *, multiline: bool) -> str | None:
    """Why `char` may not appear in a field, or None when it may."""
    if char in LINE_BREAKS:
        return None if multiline and char == "\n" else "改行は使用できません"
    if char == "\t":
        return None if multiline else "タブは使用できません"
    if char in BIDI_CONTROLS:
        return "文字の向きを変える制御文字は使用できません"
    category = unicodedata.category(char)
    if category == "Co":
        return "外字（私用領域の文字）は使用できません"
    if category == "Cn":
        return "未定義の文字は使用できません"
    if category in ("Cc", "Cs"):
        return "制御文字は使用できません"
    return None


def jis_reason(char: str) -> str | None:
    """Why `char` cannot be sent as ISO-2022-JP (outside ASCII + JIS X 0208), or None."""
    try:
        char.translate(JIS_VARIANTS).encode("iso-2022-jp")
    except UnicodeEncodeError:
        return "ISO-2022-JPでは送信できない文字です（JIS X 0208の範囲外）"
    return None


def bad_chars(value: str, *, multiline: bool, iso_2022_jp: bool) -> list[BadChar]:
    """Every refused character with its position; `value` must already be normalised."""
    found: list[BadChar] = []
    line, column = 1, 0
    for char in value:
        if char == "\n" and multiline:
            line, column = line + 1, 0
            continue
        column += 1
        reason = char_reason(char, multiline=multiline)
        if reason is None and iso_2022_jp:
            reason = jis_reason(char)
        if reason is not None:
            found.append(BadChar(char, line, column, reason))
    return found


def describe(label: str, found: list[BadChar], *, multiline: bool) -> str:
    """One Japanese message naming the first few refused characters and their positions."""
    parts = []
    for bad in found[:MAX_REPORTED]:
        where = f"{bad.line}行目{bad.column}文字目" if multiline else f"{bad.column}文字目"
        shown = bad.char if unicodedata.category(bad.char)[0] not in "CZ" else ""
        parts.append(f"{where}の文字{'「' + shown + '」' if shown else ''}(U+{ord(bad.char):04X})：{bad.reason}")
    more = f"（ほか{len(found) - MAX_REPORTED}か所）" if len(found) > MAX_REPORTED else ""
    return f"{label}に使用できない文字があります。" + "、".join(parts) + f"{more}。別の文字に置き換えてください。"
