"""Reading a recipient CSV as Excel and other tools really write it.

Encoding: a strict try-in-order (BOM → UTF-8 → CP932), never a guess that silently garbles names;
the encoding used is reported. Rows carry the row number the user sees in Excel (header and blank
rows counted). Whole-file problems raise `CsvRefused` with a Japanese message; per-row problems are
left to the address checks so that every bad row can be reported at once.

A file is read as a stream, in constant memory whatever its size (a million rows is ~80 MB of CSV): one
pass finds the encoding (incremental strict decoders), the delimiter and whether control characters
occur; the rows are then read by iterating `open_csv(...)`, one record at a time.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

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
_BINARY = "CSVファイルではありません（バイナリデータが含まれています）。"


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


class CsvRow(NamedTuple):  # a tuple: one per row, built by the million for a large list
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


CHUNK = 1 << 16  # bytes read at a time: the reader's memory does not grow with the file
# Longest record (a row, with the line breaks of its quoted cells) in characters. A real row is far
# shorter (50 columns of 200 characters); csv's own limit (131,072 per cell) would allow 50 × that.
MAX_RECORD_CHARS = 1 << 20
_SAMPLE = 65536  # characters looked at for the delimiter and for binary content


@dataclass(frozen=True)
class Sniffed:
    """What one pass over the whole file found out before any row is read."""

    encoding: str  # the label: a key of ENCODING_LABELS
    codec: str  # what decodes the bytes after `skip`
    skip: int  # BOM bytes
    delimiter: str
    offset: int  # lines to skip ('sep=' line)
    has_controls: bool


class _NotThis(Exception):
    """The file is not in the encoding tried."""

    def __init__(self, position: int) -> None:
        self.position = position  # 0-based byte offset from the start of the text (after a BOM)


@dataclass
class _Scan:
    sample: str = ""
    nul_char: bool = False
    controls: bool = False
    cp932_undefined: bool = False


def _scan(file: BinaryIO, codec: str, skip: int, chunk_size: int, *, raw_checks: bool = False) -> _Scan:
    """Decode the whole file incrementally (strict); raises _NotThis at the first invalid byte sequence.

    `raw_checks`: the file has no BOM, so a NUL byte anywhere makes it binary whatever it decodes to
    (checked over every byte, even after the first invalid one), and it must hold more than whitespace.
    """
    file.seek(skip)
    decoder = codecs.getincrementaldecoder(codec)("strict")
    scan = _Scan()
    failed: int | None = None
    read = 0
    blank = True
    while True:
        data = file.read(chunk_size)
        final = not data
        if raw_checks and data:
            if b"\x00" in data:
                raise CsvRefused("binary", _BINARY)
            blank = blank and not data.strip(b" \t\r\n")
        if failed is None:
            buffered = len(decoder.getstate()[0])
            try:
                text = decoder.decode(data, final=final)
            except UnicodeDecodeError as exc:
                failed = read - buffered + exc.start
                if not raw_checks:
                    break
            else:
                if len(scan.sample) < _SAMPLE:
                    scan.sample += text[: _SAMPLE - len(scan.sample)]
                scan.nul_char = scan.nul_char or "\x00" in text
                scan.controls = scan.controls or _CONTROLS.search(text) is not None
                scan.cp932_undefined = scan.cp932_undefined or _CP932_UNDEFINED.search(text) is not None
        read += len(data)
        if final:
            break
    if raw_checks and blank:
        raise CsvRefused("empty", "ファイルが空です。")
    if failed is not None:
        raise _NotThis(failed)
    return scan


def sniff(file: BinaryIO, chunk_size: int = CHUNK) -> Sniffed:
    """The encoding (a strict try-in-order: BOM → UTF-8 → CP932), the delimiter and whether any control
    character occurs, from one pass over the file (two for CP932). Raises CsvRefused for an empty or
    binary file and for invalid byte sequences."""
    file.seek(0)
    head = file.read(max(chunk_size, 8))
    if not head.strip(b" \t\r\n") and not file.read(1):
        raise CsvRefused("empty", "ファイルが空です。")
    for magic, text in _BINARY_MAGIC.items():
        if head.startswith(magic):
            raise CsvRefused("binary", text)
    boms = (
        (codecs.BOM_UTF8, "utf-8", "utf-8-sig", "UTF-8 (BOM付き)"),
        (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16", "UTF-16"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16", "UTF-16"),
    )
    for bom, codec, encoding, label in boms:
        if head.startswith(bom):
            try:
                scan = _scan(file, codec, len(bom), chunk_size)
            except _NotThis as exc:
                raise CsvRefused(
                    "encoding", f"{label} として読めない不正なバイト列があります（{exc.position + 1}バイト目付近）。"
                ) from None
            return _sniffed(scan, encoding, codec, len(bom))
    try:
        return _sniffed(_scan(file, "utf-8", 0, chunk_size, raw_checks=True), "utf-8", "utf-8", 0)
    except _NotThis:
        pass
    with contextlib.suppress(_NotThis):
        scan = _scan(file, "cp932", 0, chunk_size)
        # Python maps the bytes Shift_JIS leaves undefined (0x80, 0xA0, 0xFD-0xFF) to C1/private-use
        # characters instead of failing: such a file is not really CP932.
        if not scan.cp932_undefined:
            return _sniffed(scan, "cp932", "cp932", 0)
    raise CsvRefused(
        "encoding",
        "文字コードを判別できません（不正なバイト列があります）。"
        "UTF-8 または Shift_JIS（CP932）で保存したCSVをアップロードしてください。",
    )


def _sniffed(scan: _Scan, encoding: str, codec: str, skip: int) -> Sniffed:
    if scan.nul_char or _looks_binary(scan.sample):
        raise CsvRefused("binary", _BINARY)
    delimiter, offset = _dialect(scan.sample)
    return Sniffed(encoding, codec, skip, delimiter, offset, scan.controls)


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


class CsvStream:
    """The rows of a sniffed file, read in constant memory (a chunk, one record) however long the file.

    Iterating raises CsvRefused for problems found on the way (a malformed or oversized record, too many
    columns or rows, no row at all); `has_header` is known once the first row has been read.
    """

    def __init__(self, file: BinaryIO, sniffed: Sniffed, *, max_rows: int, max_columns: int, chunk_size: int) -> None:
        self.sniffed = sniffed
        self.has_header = False
        self.count = 0  # rows read so far
        self._file = file
        self._max_rows = max_rows
        self._max_columns = max_columns
        self._chunk_size = chunk_size
        self._record_chars = 0

    @property
    def encoding(self) -> str:
        return self.sniffed.encoding

    @property
    def has_controls(self) -> bool:
        return self.sniffed.has_controls

    def _lines(self, text: io.TextIOWrapper) -> Iterator[str]:
        """Physical lines (terminators kept: csv joins a quoted cell's lines); a record longer than
        MAX_RECORD_CHARS stops the read, so no line is ever held longer than that."""
        while line := text.readline(MAX_RECORD_CHARS + 1 - self._record_chars):
            self._record_chars += len(line)
            if self._record_chars > MAX_RECORD_CHARS:
                raise _RecordTooLong
            yield line

    def __iter__(self) -> Iterator[CsvRow]:
        s = self.sniffed
        self._file.seek(s.skip)
        # newline="": line breaks reach csv untranslated (CRLF inside a quoted cell stays as written).
        text = io.TextIOWrapper(self._file, encoding=s.codec, errors="strict", newline="")
        text._CHUNK_SIZE = self._chunk_size  # type: ignore[attr-defined]
        try:
            yield from self._rows(csv.reader(self._lines(text), delimiter=s.delimiter, strict=False))
        finally:
            text.detach()  # the caller owns the file

    def _rows(self, reader: Iterator[list[str]]) -> Iterator[CsvRow]:
        seen_content = False
        number = 0
        try:
            for number, record in enumerate(reader, 1 - self.sniffed.offset):
                self._record_chars = 0
                if number < 1:
                    continue  # Excel's "sep=," line: Excel hides it, so it has no row number
                if len(record) > self._max_columns:
                    raise CsvRefused("too_many_columns", f"{number}行目の列が多すぎます（最大{self._max_columns}列）。")
                cells = [c.strip(_STRIP) for c in record]
                while cells and not cells[-1]:
                    cells.pop()
                if not cells:
                    continue  # a blank line (or a row of empty cells) is no recipient
                if not seen_content:
                    seen_content = True
                    if is_header(cells):
                        self.has_header = True
                        continue
                if self.count >= self._max_rows:
                    raise CsvRefused("too_many_rows", f"送信先が多すぎます（最大{self._max_rows:,}件）。")
                self.count += 1
                width = len(cells)
                if width < 5:
                    cells += _PAD[width]
                yield CsvRow(number, cells[0], cells[1], cells[2], cells[3], cells[4], width > 5)
        except (csv.Error, _RecordTooLong):
            raise CsvRefused(
                "malformed",
                f"{number + 1}行目付近のCSVの形式が正しくありません（長すぎるセルや閉じていない引用符）。",
            ) from None
        if not self.count:
            raise CsvRefused("no_rows", "送信先が1件もありません。" if self.has_header else "ファイルが空です。")

    def batches(self, size: int) -> Iterator[list[CsvRow]]:
        batch: list[CsvRow] = []
        for row in self:
            batch.append(row)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch


class _RecordTooLong(Exception):
    pass


def open_csv(file: BinaryIO, *, max_rows: int, max_columns: int, chunk_size: int = CHUNK) -> CsvStream:
    """Sniff a seekable binary file (raises CsvRefused); its rows are read by iterating the result."""
    return CsvStream(file, sniff(file, chunk_size), max_rows=max_rows, max_columns=max_columns, chunk_size=chunk_size)


def read_csv(data: bytes, *, max_rows: int, max_columns: int, chunk_size: int = CHUNK) -> ParsedCsv:
    """Read a whole CSV held in memory (small files, tests); raises CsvRefused."""
    stream = open_csv(io.BytesIO(data), max_rows=max_rows, max_columns=max_columns, chunk_size=chunk_size)
    rows = list(stream)
    return ParsedCsv(stream.encoding, stream.has_header, rows, stream.has_controls)
