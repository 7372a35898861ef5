"""A byte-level pre-filter for the PDF check: can this file name active content at all?

PDF names may spell any character as #xx (`/J#61vaScript` is `/JavaScript`), and objects may sit compressed
in object streams. So: every name a rule of pdf_safety looks at is searched for in every spelling, as a
prefix (a longer name only costs a walk, never a miss), in the raw bytes and in the decoded object streams.
An object stream is found by its `/Type /ObjStm` (qpdf warns, hence refuses, when an object stream lacks
it); every occurrence of that name must belong to a distinct object that qpdf confirms is an object stream
(object_streams); anything it cannot account for makes the checker walk every object as before.
"""

from __future__ import annotations

import re

# What pdf_safety._TRIGGER watches, plus the names that only matter next to those (/S /Launch is itself one).
ACTIVE_NAMES = (
    "JS",
    "JavaScript",
    "Launch",
    "EmbeddedFile",
    "EF",
    "FileAttachment",
    "XFA",
    "RichMedia",
    "OpenAction",
    "AA",
)


def _spelled(name: str) -> bytes:
    """A regex matching /NAME in any #-escaped spelling, as a prefix of a name."""
    parts = [f"(?:{re.escape(c)}|#(?i:{ord(c):02x}))" for c in name]
    return ("/" + "".join(parts)).encode()


_ACTIVE = re.compile(b"|".join(_spelled(n) for n in ACTIVE_NAMES))
_LITERAL = tuple(b"/" + n.encode() for n in ACTIVE_NAMES)
_OBJSTM = re.compile(_spelled("ObjStm"))
_HEADER = re.compile(rb"(?<![0-9])([0-9]{1,10})[\x00\t\n\x0c\r ]{1,8}([0-9]{1,5})[\x00\t\n\x0c\r ]{1,8}obj")


def may_name_active_content(data: bytes) -> bool:
    if b"#" not in data:  # no escape anywhere: the plain spellings are all there is (bytes.find is ~10x a regex)
        return any(name in data for name in _LITERAL)
    return _ACTIVE.search(data) is not None


def _header_before(data: bytes, position: int) -> tuple[int, int] | None:
    """(number, generation) of the last "N G obj" that starts before `position`."""
    end = position
    while True:
        at = data.rfind(b"obj", 0, end)
        if at < 0:
            return None
        header = _HEADER.search(data, max(0, at - 40), at + 4)
        while header is not None and header.end() != at + 3:
            header = _HEADER.search(data, header.start() + 1, at + 4)
        if header is not None:
            return int(header.group(1)), int(header.group(2))
        end = at  # "endobj", or "obj" inside some data


def object_streams(data: bytes) -> list[tuple[int, int]] | None:
    """The object that each occurrence of /ObjStm falls in (the last "N G obj" before it), or None when two
    occurrences fall in objects of the same number. The caller confirms with qpdf that each is an object
    stream. Why that finds them all: each object stream has its own /ObjStm in its dictionary, in the raw
    bytes (a stream is never inside another); occurrences map one-to-one onto confirmed object streams, so
    there are at least as many confirmed ones as there are object streams, and no room for one to be missed."""
    owners = []
    for match in _OBJSTM.finditer(data):
        owner = _header_before(data, match.start())
        if owner is None:
            return None
        owners.append(owner)
    if len(set(owners)) != len(owners):
        return None
    return owners
