"""Well-formed one-page PDFs of a chosen size, for tests and benchmarks that attach files.

The composer checks attachments with qpdf (pages, cross-reference table, no active content), so a
stand-in must be a real PDF: a catalog, one page, and a stream of seeded random bytes as ballast,
with an exact cross-reference table. The same seed gives the same bytes.
"""

from __future__ import annotations

import random


def sample_pdf(size: int, seed: int = 0, title: str = "isseimail test") -> bytes:
    """A valid PDF of about `size` bytes (at least ~600), different for each seed."""
    content = f"BT /F1 24 Tf 72 720 Td ({title}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    ballast = random.Random(seed).randbytes(max(size - 700, 0))  # noqa: S311 - test data, not secrets
    objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(ballast), ballast))
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
