"""Hand-made PDFs for the attachment-safety tests, built in the test run (no fixture files).

`raw_pdf()` writes objects byte for byte (so a name can stay `/J#61vaScript` on disk) with a correct
classic xref table; `raw_pdf_with_object_stream()` packs the objects into one Flate-compressed object
stream with a cross-reference stream, as modern writers do; `resave()` lets qpdf rewrite a file
(versions, linearisation, object streams, encryption).
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from typing import Any

import pikepdf

CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
PAGES = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << >> >>"
TEXT = b"BT /F1 12 Tf 72 760 Td (Hello) Tj ET"


def stream(data: bytes, extra: bytes = b"", *, compress: bool = False) -> bytes:
    if compress:
        data = zlib.compress(data)
        extra += b" /Filter /FlateDecode"
    return b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def page_objects(catalog: bytes = CATALOG, page: bytes = PAGE) -> list[bytes]:
    """Objects 1-4: catalog, page tree, one page, its content stream."""
    return [catalog, PAGES, page, stream(TEXT)]


def raw_pdf(objects: list[bytes], *, version: bytes = b"1.7", trailer_extra: bytes = b"") -> bytes:
    """Objects numbered from 1 in order, a classic xref table, trailer with /Root 1 0 R."""
    out = bytearray(b"%PDF-" + version + b"\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        trailer_extra,
        xref,
    )
    return bytes(out)


def raw_pdf_with_object_stream(objects: list[bytes], streams: dict[int, bytes] | None = None) -> bytes:
    """Non-stream objects packed into one compressed object stream; `streams` (number → object) stay
    outside it, as streams must. Cross-reference stream, no xref table: nothing is readable in clear."""
    streams = streams or {}
    packed = [(n, body) for n, body in enumerate(objects, start=1) if n not in streams]
    header, body_bytes = bytearray(), bytearray()
    for n, body in packed:
        header += b"%d %d " % (n, len(body_bytes))
        body_bytes += body + b"\n"
    objstm_no = len(objects) + 1
    xref_no = objstm_no + 1
    raw = bytes(header) + bytes(body_bytes)
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for n, body in streams.items():
        offsets[n] = len(out)
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    offsets[objstm_no] = len(out)
    compressed = zlib.compress(raw)
    out += b"%d 0 obj\n<< /Type /ObjStm /N %d /First %d /Length %d /Filter /FlateDecode >>\nstream\n" % (
        objstm_no,
        len(packed),
        len(header),
        len(compressed),
    )
    out += compressed + b"\nendstream\nendobj\n"
    offsets[xref_no] = len(out)
    index_in_stream = {n: i for i, (n, _) in enumerate(packed)}
    rows = bytearray(struct.pack(">BIH", 0, 0, 65535))
    for n in range(1, xref_no + 1):
        if n in index_in_stream:
            rows += struct.pack(">BIH", 2, objstm_no, index_in_stream[n])
        else:
            rows += struct.pack(">BIH", 1, offsets[n], 0)
    xref_data = zlib.compress(bytes(rows))
    out += b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d /Filter /FlateDecode >>\nstream\n" % (
        xref_no,
        xref_no + 1,
        len(xref_data),
    )
    out += xref_data + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % offsets[xref_no]
    return bytes(out)


def resave(data: bytes, **save_options: Any) -> bytes:
    """qpdf reads the file and writes it again with the given pikepdf save options."""
    buf = io.BytesIO()
    with pikepdf.open(io.BytesIO(data)) as pdf:
        pdf.save(buf, **save_options)
    return buf.getvalue()


def plain_pdf(version: bytes = b"1.7") -> bytes:
    return raw_pdf(page_objects(), version=version)


def _padded(pad: int, seed: int) -> bytes:
    image = stream(
        random.Random(seed).randbytes(pad),
        b" /Type /XObject /Subtype /Image /Width %d /Height 1 /ColorSpace /DeviceGray /BitsPerComponent 8"
        % max(1, pad),
    )
    page = PAGE.replace(b"/Resources << >>", b"/Resources << /XObject << /Im1 5 0 R >> >>")
    return raw_pdf([CATALOG, PAGES, page, stream(TEXT), image])


def padded_pdf(size: int, seed: int = 0) -> bytes:
    """A sound one-page PDF of exactly `size` bytes (at least ~700): the padding is an image's random pixels."""
    pad = max(0, size - len(_padded(0, seed)))
    for _ in range(5):  # the numbers written around the padding grow with it; converge on the exact size
        data = _padded(pad, seed)
        if len(data) == size or pad == 0:
            return data
        pad = max(0, pad + size - len(data))
    return data


_TEXT_BYTES = bytes(b"abcdefghijklmnopqrstuvwxyz      "[i % 32] for i in range(256))  # random bytes -> words


def many_pages_pdf(pages: int, page_bytes: int = 0, annot_extra: bytes = b"") -> bytes:
    """A document of many pages, each with its own content stream, font and link annotation: many objects,
    like a real report (the check walks every object, so this is its costly case). `page_bytes` of seeded
    random words per page make a page weigh what a page of real text does (~2-4 KB compressed);
    `annot_extra` is added to every link annotation (e.g. a harmless /AA, which the pre-filter cannot skip)."""
    objects: list[bytes] = [CATALOG, b""]  # the page tree is filled in once the page numbers are known
    kids = []
    words = random.Random(pages)
    for i in range(pages):
        first = len(objects) + 1
        kids.append(first)
        text = b"BT /F1 11 Tf 72 760 Td (Page %d of the quarterly report) Tj ET" % i
        if page_bytes:
            line = words.randbytes(page_bytes).translate(_TEXT_BYTES)
            text += b" BT /F1 9 Tf 72 700 Td (" + line + b") Tj ET"
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R /Annots [%d 0 R]"
            b" /Resources << /Font << /F1 %d 0 R >> >> >>" % (first + 1, first + 2, first + 3)
        )
        objects.append(stream(text if page_bytes else text * 20, compress=True))
        objects.append(
            b"<< /Type /Annot /Subtype /Link /Rect [72 700 200 720] /A << /S /GoTo /D [%d 0 R /Fit] >>%s >>"
            % (first, annot_extra)
        )
        objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), pages)
    return raw_pdf(objects)
