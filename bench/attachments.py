"""What attachment safety adds to accepting a draft: 2 MB of PDFs through the structure and active-content check
(qpdf via pikepdf) and through clamd (INSTREAM), as the composer runs them.

    uv run python bench/attachments.py              # every document set, 30 rounds each
    uv run python bench/attachments.py --rounds 100

Document sets, each 5 files close to the 2 MB limit: "brochure" (one page each, the bytes in an image),
"report" (pages of ~3,000 characters of text, each with its content stream, font and a link: ~4 objects per
2.5 KB), the same packed into compressed object streams (as modern writers do) and linearised, and a "dense
worst case" of ~150-byte pages (~27,000 objects in 2 MB, ~40,000 with object streams): qpdf resolves every
object, so objects, not bytes, are what it costs. The same dense documents as one 2 MB file each, and with a
harmless /AA on every link (a name the byte pre-filter must not skip, so every object is walked in Python),
close the table; the "walk every object" column is the check without the pre-filter, and the last line names
the worst case. clamd is Debian's, started here with the
test signature database (two EICAR signatures): it shows the protocol and parsing cost, not the cost of a
full signature set (about 8 million signatures), which mainly adds memory and load time, not per-byte time
of this order; measure against the real daemon before relying on it. Prints one table.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pikepdf

from isseimail_composer.attachment_safety import AttachmentGuard
from isseimail_composer.clamd_client import ClamdClient
from isseimail_composer.form import MAX_ATTACHMENT_BYTES, Attachment
from isseimail_composer.pdf_safety import check_pdf
from isseimail_testing.clamd import ClamdServer

ROOT = Path(__file__).resolve().parent.parent


def _pdfs() -> ModuleType:
    """The composer tests' hand-made PDF builders (one source of test documents)."""
    spec = importlib.util.spec_from_file_location("composer_test_pdfs", ROOT / "services/composer/tests/pdfs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pdfs = _pdfs()


def objects_in(data: bytes) -> int:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return len(pdf.objects)


def fill(make: Callable[[int], bytes], count: int = 5, total: int = MAX_ATTACHMENT_BYTES - 4096) -> list[bytes]:
    """`count` files from `make(size_hint)` totalling close to `total` bytes."""
    return [make(total // count) for _ in range(count)]


def pages_to(size: int, page_bytes: int, packed: bool = False, annot_extra: bytes = b"") -> bytes:
    """A many-page report (see pdfs.many_pages_pdf) grown until it weighs about `size` bytes."""

    def make(pages: int) -> bytes:
        data: bytes = pdfs.many_pages_pdf(pages, page_bytes, annot_extra)
        if packed:
            data = pdfs.resave(data, object_stream_mode=pikepdf.ObjectStreamMode.generate)
        return data

    pages = 8
    data = make(pages)
    while len(data) < size * 0.97:
        pages = max(pages + 1, int(pages * size / len(data)))
        data = make(pages)
    while len(data) > size:
        pages = int(pages * 0.98)
        data = make(pages)
    return data


REAL_TEXT = 3000  # characters of text per page: ~2.5 KB compressed, like a page of a real report
SETS: dict[str, Callable[[], list[bytes]]] = {
    "brochure (images)": lambda: fill(lambda s: pdfs.padded_pdf(s, seed=s)),
    "report": lambda: fill(lambda s: pages_to(s, REAL_TEXT)),
    "report, object streams": lambda: fill(lambda s: pages_to(s, REAL_TEXT, packed=True)),
    "report, linearised": lambda: fill(lambda s: pdfs.resave(pages_to(s - 20_000, REAL_TEXT), linearize=True)),
    "dense worst case": lambda: fill(lambda s: pages_to(s, 0)),
    "dense worst case, object streams": lambda: fill(lambda s: pages_to(s, 0, packed=True)),
    "dense, one 2 MB file": lambda: fill(lambda s: pages_to(s, 0), count=1),
    "dense, object streams, one 2 MB file": lambda: fill(lambda s: pages_to(s, 0, packed=True), count=1),
    "dense, object streams, /AA on every link": lambda: fill(lambda s: pages_to(s, 0, True, BENIGN_AA), count=1),
    # Every page's link has an action: the walk cannot be skipped; as many objects as a walked file may hold.
    "/AA on every link, walked, near the allowance": lambda: fill(
        lambda s: pages_to(s, 420, False, BENIGN_AA), count=1
    ),
}
UNCAPPED = 10**9
BENIGN_AA = b" /AA << /E << /S /GoTo /D [0 /Fit] >> >>"  # an action on mouse-enter that runs nothing


def timed(fn: Callable[[], object], rounds: int) -> tuple[float, float, float]:
    """(median, max, median CPU time of this process) in milliseconds: on a busy machine the CPU time is the
    figure that does not include waiting for a core."""
    fn()  # warm-up
    samples, cpu = [], []
    for _ in range(rounds):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return statistics.median(samples), max(samples), statistics.median(cpu)


async def atimed(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    await fn()  # type: ignore[misc]
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await fn()  # type: ignore[misc]
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), max(samples)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = ClamdServer(Path(tmp) / "clamd")
        server.start()
        try:
            await run(server, args.rounds)
        finally:
            server.stop()


async def run(server: ClamdServer, rounds: int) -> None:
    clamd = ClamdClient(server.tcp_url, timeout=60)
    checker = AttachmentGuard(frozenset(), None)
    scanning = AttachmentGuard(frozenset(), clamd)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]},")
    print(f"# pikepdf {pikepdf.__version__} (qpdf {pikepdf.__libqpdf_version__}), clamd started in")
    print(f"# {server.startup_seconds * 1000:.0f} ms with the test signatures; {rounds} rounds, median / max in ms")
    print()
    header = (
        "| documents | files | bytes | objects | verdict | PDF check | PDF check, CPU | walk every object, CPU | "
        "clamd, one file at a time | clamd, files concurrently | whole guard (check + scans) |"
    )
    print(header)
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    worst = (0.0, "")
    for name, make in SETS.items():
        files = make()
        verdicts = [check_pdf(f) for f in files]
        # Accepted, or refused before any object is resolved for holding more objects than MAX_OBJECTS.
        assert all(v.ok or v.reasons == ("too_complex",) for v in verdicts), name
        refused = sum(not v.ok for v in verdicts)
        verdict = f"{refused} refused: too complex" if refused else "accepted"
        attachments = [Attachment(f"file{i}.pdf", data) for i, data in enumerate(files)]
        size = sum(map(len, files))
        objects = sum(objects_in(f) for f in files)
        check = timed(lambda files=files: [check_pdf(f) for f in files], rounds)
        # The column shows what the whole walk would cost without the object cap.
        walk = timed(lambda files=files: [check_pdf(f, prefilter=False, max_objects=UNCAPPED) for f in files], rounds)
        worst = max(worst, (check[2], name))

        async def sequential(files: list[bytes] = files) -> None:
            for f in files:
                assert await clamd.scan(f) is None

        async def concurrent(files: list[bytes] = files) -> None:
            assert not any(await asyncio.gather(*(clamd.scan(f) for f in files)))

        async def guard(attachments: list[Attachment] = attachments, refused: int = refused) -> None:
            assert len(await scanning.problems(attachments)) == refused

        seq = await atimed(sequential, rounds)
        conc = await atimed(concurrent, rounds)
        whole = await atimed(guard, rounds)
        assert len(await checker.problems(attachments)) == refused
        cells = [f"{m:.1f} / {x:.1f}" for m, x in (check[:2], seq, conc, whole)]
        cells[1:1] = [f"{check[2]:.1f}", f"{walk[2]:.1f}"]
        print(f"| {name} | {len(files)} | {size:,} | {objects:,} | {verdict} | " + " | ".join(cells) + " |")
    print()
    print(f"worst case: {worst[0]:.1f} ms of CPU to judge 2 MB of PDFs ({worst[1]}); aim: at most 200 ms")


if __name__ == "__main__":
    asyncio.run(main())
