"""The CSV reader: encodings Excel writes, header detection, Excel row numbers, limits, hostile bytes."""

from __future__ import annotations

import codecs
import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isseimail_list_validator.csv_reader import CsvRefused, is_header, read_csv

HEADER = ["メールアドレス", "会社名", "部署名1", "部署名2", "ご担当者名"]
ROWS = [
    ["taro@example.jp", "株式会社サンプル", "営業部", "第一課", "山田 太郎"],
    ["hanako@example.co.jp", "有限会社テスト, 本社", "総務部\n庶務係", "", "各位"],
]


def _csv(rows: list[list[str]], newline: str = "\r\n") -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator=newline).writerows(rows)
    return out.getvalue()


def _read(data: bytes, max_rows: int = 50_000) -> object:
    return read_csv(data, max_rows=max_rows, max_columns=50)


@pytest.mark.parametrize(
    ("encoded", "label"),
    [
        (lambda t: t.encode("cp932"), "cp932"),
        (lambda t: t.encode("utf-8"), "utf-8"),
        (lambda t: codecs.BOM_UTF8 + t.encode("utf-8"), "utf-8-sig"),
        (lambda t: t.encode("utf-16"), "utf-16"),
    ],
)
@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_reads_the_encodings_excel_writes(encoded: object, label: str, newline: str) -> None:
    """CP932, UTF-8 with/without BOM and UTF-16 with BOM read to the same rows; the encoding is named."""
    text = _csv([HEADER, *ROWS], newline)
    parsed = read_csv(encoded(text), max_rows=10, max_columns=50)  # type: ignore[operator]
    assert parsed.encoding == label
    assert parsed.has_header
    assert [(r.row, r.email, r.company, r.department1, r.contact) for r in parsed.rows] == [
        (2, "taro@example.jp", "株式会社サンプル", "営業部", "山田 太郎"),
        (3, "hanako@example.co.jp", "有限会社テスト, 本社", "総務部\n庶務係", "各位"),
    ]


def test_row_numbers_count_header_blank_lines_and_multiline_cells() -> None:
    """Row numbers are Excel's: a quoted line break stays in one row, blank rows still count."""
    text = 'a@example.jp,,,,様\r\n"b@example.jp","x","line1\r\nline2",,皆様\r\n\r\n,,,,\r\nc@example.jp,,,,各位\r\n'
    parsed = read_csv(text.encode(), max_rows=10, max_columns=50)
    assert not parsed.has_header
    assert [(r.row, r.email) for r in parsed.rows] == [(1, "a@example.jp"), (2, "b@example.jp"), (5, "c@example.jp")]


def test_whitespace_full_width_spaces_and_trailing_columns_are_trimmed() -> None:
    """Stray spaces, full-width spaces and trailing empty columns do not leak into the cells."""
    text = "\u3000 taro@example.jp \t,\u3000会社\u3000, ,,山田,,,,,\r\n"
    row = read_csv(text.encode("cp932"), max_rows=10, max_columns=50).rows[0]
    assert (row.email, row.company, row.department1, row.contact, row.extra_columns) == (
        "taro@example.jp",
        "会社",
        "",
        "山田",
        False,
    )


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"  \r\n\r\n", "empty"),
        (",".join(HEADER).encode("cp932") + b"\r\n", "no_rows"),
        (b"PK\x03\x04\x14\x00\x06\x00", "binary"),
        (b"%PDF-1.7\n", "binary"),
        (b"a@example.jp,\x00,,,x\r\n", "binary"),
        (b"\x82\xa0\xff\xfe\x80abc@example.jp", "encoding"),
        (codecs.BOM_UTF8 + b"a@example.jp,\xff\xfe,,,x", "encoding"),
        (codecs.BOM_UTF16_LE + b"a\x00@\x00\x00\xd8", "encoding"),
        (codecs.BOM_UTF16_BE + b"\x00a\x00@\xdc\x00", "encoding"),
        (b"a@example.jp" + b",x" * 1000 + b"\r\n", "too_many_columns"),
        (b'a@example.jp,"' + b"x" * 200_000 + b'",,,x\r\n', "malformed"),
        (bytes(range(1, 32)) * 100, "binary"),
    ],
)
def test_hostile_files_are_refused_with_a_japanese_message(data: bytes, code: str) -> None:
    """Empty, header-only, binary, invalid byte sequences, 1,000 columns, a huge cell: a clear refusal."""
    with pytest.raises(CsvRefused) as refused:
        _read(data)
    assert refused.value.code == code
    assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in refused.value.message)


def test_too_many_rows_is_refused() -> None:
    """More rows than the limit is refused (not truncated)."""
    data = "".join(f"u{i}@example.jp,,,,各位\n" for i in range(11)).encode()
    assert len(_read(data, max_rows=11).rows) == 11  # type: ignore[attr-defined]
    with pytest.raises(CsvRefused, match="too_many_rows"):
        _read(data, max_rows=10)


def test_excel_unicode_text_is_tab_separated_utf16() -> None:
    """Excel's 'Unicode テキスト' export (UTF-16, tabs) reads like a CSV."""
    text = "\t".join(HEADER) + "\r\n" + "taro@example.jp\t会社, 本社\t\t\t山田\r\n"
    parsed = _read(text.encode("utf-16"))
    assert [(r.row, r.email, r.company, r.contact) for r in parsed.rows] == [  # type: ignore[attr-defined]
        (2, "taro@example.jp", "会社, 本社", "山田")
    ]


def test_sep_line_is_skipped_and_not_counted() -> None:
    """A first line 'sep=;' sets the delimiter; Excel hides it, so row numbers do not count it."""
    parsed = _read(b"sep=;\r\nmail;company;;;contact\r\na@example.jp;x;;;y\r\n")
    assert [(r.row, r.email, r.contact) for r in parsed.rows] == [(2, "a@example.jp", "y")]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("cells", "header"),
    [
        (HEADER, True),
        (["Email", "Company"], True),
        (["ｍａｉｌ"], True),
        (["メールアドレス（必須）", "会社名"], True),
        (["taro@example.jp", "会社名"], False),
        (["", "株式会社A", "", "", "山田"], False),
    ],
)
def test_header_detection(cells: list[str], header: bool) -> None:
    """A header names the columns and holds no address; a data row missing its address is no header."""
    assert is_header(cells) is header


CELL = st.text(
    alphabet=st.characters(
        codec="cp932",
        exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"),
        include_characters=",\"\n' ",
        # cp932 maps the first six to their full-width twins; U+F8F0-F8F3 stand for bytes Shift_JIS leaves undefined
        exclude_characters="\xa2\xa3\xac\u2016\u2212\u301c\uf8f0\uf8f1\uf8f2\uf8f3",
    ),
    max_size=12,
).map(lambda s: s.strip(" \n"))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.jp", fullmatch=True), CELL, CELL, CELL, CELL),
        min_size=1,
        max_size=8,
    ),
    encoding=st.sampled_from(["cp932", "utf-8", "utf-8-sig", "utf-16"]),
    newline=st.sampled_from(["\r\n", "\n"]),
)
def test_round_trip_property(rows: list[tuple[str, ...]], encoding: str, newline: str) -> None:
    """Whatever csv.writer writes in any supported encoding reads back to the same cells and rows."""
    data = _csv([list(r) for r in rows], newline).encode(encoding)
    parsed = read_csv(data, max_rows=100, max_columns=50)
    got = [(r.email, r.company, r.department1, r.department2, r.contact) for r in parsed.rows]
    expected = [tuple(c.strip(" \t\r\n\u3000\u00a0\ufeff") for c in r) for r in rows]
    assert got == expected
    assert [r.row for r in parsed.rows] == list(range(1, len(rows) + 1))


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    """Any byte string is either read or refused with CsvRefused — never another exception."""
    message = ""
    try:
        parsed = read_csv(data, max_rows=100, max_columns=50)
    except CsvRefused as exc:
        message = exc.message
    else:
        assert all(r.row >= 1 for r in parsed.rows)
        return
    assert message
