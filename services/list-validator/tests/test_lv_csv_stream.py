"""The streaming CSV reader: whatever the chunk boundaries cut (a multi-byte character, a quoted cell's line
break, a CRLF, a BOM), the rows and refusals are those of the whole file read at once."""

from __future__ import annotations

import codecs
import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isseimail_list_validator.csv_reader import MAX_RECORD_CHARS, CsvRefused, ParsedCsv, open_csv, read_csv

HEADER = ["メールアドレス", "会社名", "部署名1", "部署名2", "ご担当者名"]


def _csv(rows: list[list[str]], newline: str = "\r\n") -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator=newline).writerows(rows)
    return out.getvalue()


def _rows(parsed: ParsedCsv) -> list[tuple[object, ...]]:
    return [tuple(r) for r in parsed.rows]


def _outcome(data: bytes, chunk_size: int, max_rows: int = 100) -> object:
    """What reading gives: the parse, or the refusal (code and message)."""
    try:
        parsed = read_csv(data, max_rows=max_rows, max_columns=50, chunk_size=chunk_size)
    except CsvRefused as exc:
        return ("refused", exc.code, exc.message)
    return (parsed.encoding, parsed.has_header, parsed.has_controls, _rows(parsed))


CELL = st.text(
    alphabet=st.characters(
        codec="cp932",
        exclude_categories=("Cs", "Zs", "Zl", "Zp"),
        include_characters=",\"\n\r' \t髙﨑①",
        exclude_characters="\xa2\xa3\xac\u2016\u2212\u301c\uf8f0\uf8f1\uf8f2\uf8f3",
    ),
    max_size=10,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(st.from_regex(r"[a-z]{1,6}@[a-z]{1,6}\.jp", fullmatch=True), CELL, CELL, CELL, CELL),
        min_size=1,
        max_size=6,
    ),
    header=st.booleans(),
    encoding=st.sampled_from(["cp932", "utf-8", "utf-8-sig", "utf-16"]),
    newline=st.sampled_from(["\r\n", "\n", "\r"]),
    chunk_size=st.integers(1, 40),
)
def test_any_chunk_size_reads_what_the_whole_file_reads(
    rows: list[tuple[str, ...]], header: bool, encoding: str, newline: str, chunk_size: int
) -> None:
    """Chunks of 1–40 bytes split Shift_JIS/UTF-8/UTF-16 characters, quoted line breaks, CRLF and the BOM
    anywhere: the rows, row numbers, header and encoding are the same as with one large chunk."""
    data = _csv([HEADER, *map(list, rows)] if header else [list(r) for r in rows], newline).encode(encoding)
    assert _outcome(data, chunk_size) == _outcome(data, 1 << 20)


@settings(max_examples=200)
@given(data=st.binary(max_size=300), chunk_size=st.integers(1, 16))
def test_any_bytes_are_refused_or_read_alike_at_any_chunk_size(data: bytes, chunk_size: int) -> None:
    """Invalid byte sequences, NUL bytes, binary magic: the same refusal (message and byte position included)
    whatever the chunks."""
    assert _outcome(data, chunk_size) == _outcome(data, 1 << 20)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 64])
def test_cut_inside_a_character_a_quoted_cell_and_a_crlf(chunk_size: int) -> None:
    """The cuts the reader must survive, placed by hand: Shift_JIS lead/trail bytes, a quoted cell spanning
    lines, CR and LF apart, all at every small chunk size."""
    text = 'taro@example.jp,"株式会社\r\n髙橋",営業部,,山田\r\nhanako@example.jp,ｶﾅ,"a,b","""q""",各位\r\n'
    for encoding in ("cp932", "utf-8", "utf-8-sig", "utf-16"):
        parsed = read_csv(text.encode(encoding), max_rows=10, max_columns=50, chunk_size=chunk_size)
        assert [(r.row, r.email, r.company, r.department1, r.department2, r.contact) for r in parsed.rows] == [
            (1, "taro@example.jp", "株式会社\r\n髙橋", "営業部", "", "山田"),
            (2, "hanako@example.jp", "ｶﾅ", "a,b", '"q"', "各位"),
        ]


def test_invalid_bytes_after_a_bom_name_their_position_whatever_the_chunks() -> None:
    """31 bytes a line, three lines: the bad byte is the 94th after the BOM, at any chunk size."""
    data = codecs.BOM_UTF8 + "a@example.jp,株式会社,,,x\r\n".encode() * 3 + b"\xff,x\r\n"
    messages = {_outcome(data, size) for size in (1, 5, 1 << 16)}
    expected = "UTF-8 (BOM付き) として読めない不正なバイト列があります（94バイト目付近）。"
    assert messages == {("refused", "encoding", expected)}


def test_a_record_longer_than_the_limit_is_refused_without_reading_it_whole() -> None:
    """A line of 2 million characters (no newline, or an unclosed quote across lines) is refused."""
    for body in (b"a@example.jp," + b"x," * MAX_RECORD_CHARS, b'a@example.jp,"' + b"x\n" * MAX_RECORD_CHARS):
        with pytest.raises(CsvRefused) as refused:
            read_csv(b"ok@example.jp,,,,x\n" + body, max_rows=10, max_columns=50)
        assert refused.value.code == "malformed"
        assert refused.value.message.startswith("2行目付近のCSVの形式が正しくありません")


def test_too_many_rows_stops_at_the_first_row_past_the_limit() -> None:
    """Refused as soon as the limit is passed (rows after it are not read): a clear Japanese message."""
    data = "メールアドレス\r\n".encode("cp932") + b"".join(b"u%d@example.jp,,,,x\r\n" % i for i in range(1000))
    stream = open_csv(io.BytesIO(data), max_rows=10, max_columns=50)
    read = []
    with pytest.raises(CsvRefused) as refused:
        read.extend(stream)
    assert (refused.value.code, refused.value.message) == ("too_many_rows", "送信先が多すぎます（最大10件）。")
    assert len(read) == 10
    assert stream.has_header


def test_a_stream_reads_in_batches_and_leaves_the_file_open() -> None:
    data = b"".join(b"u%d@example.jp,,,,x\n" % i for i in range(25))
    file = io.BytesIO(data)
    stream = open_csv(file, max_rows=100, max_columns=50, chunk_size=7)
    assert [len(b) for b in stream.batches(10)] == [10, 10, 5]
    assert not file.closed
    assert stream.count == 25
