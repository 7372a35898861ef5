"""Is a PDF sound and passive? Structure and active-content checks with qpdf (pikepdf).

qpdf reads every object the cross-reference table names, including those packed in compressed object
streams, and decodes `#xx` escapes in names, so `/J#61vaScript` or a `/JS` inside an object stream is
seen as what a reader sees. Every object is walked, referenced or not: "JavaScript anywhere" means
anywhere. A file qpdf could only open by reconstructing its cross-reference table is refused as damaged
rather than trusted: a reader might rebuild it differently and see objects we did not.

Before that walk, a pre-filter reads the bytes (pdf_prefilter.py): when no name a rule looks at occurs in
the file or in its decoded object streams, in any #-escaped spelling, the walk cannot find anything and is
skipped; every object is still resolved by qpdf, so a damaged file is refused exactly as before.

`check_pdf()` is synchronous and never raises on bad input. Its cost follows the number of objects, not bytes
(docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pikepdf
import pikepdf.settings

from isseimail_composer.pdf_prefilter import may_name_active_content, object_streams

log = logging.getLogger(__name__)

# qpdf decodes object streams to read the objects in them: a 2 MB file could inflate to 2 GB (Flate's ~1000:1).
# No honest object stream of a 2 MB file comes near this; beyond it qpdf fails the stream and the file is refused.
DECODE_MAX_BYTES = 32 * 1024 * 1024
pikepdf.settings.set_qpdf_limits(
    flate_max_memory=DECODE_MAX_BYTES, run_length_max_memory=DECODE_MAX_BYTES, png_max_memory=DECODE_MAX_BYTES
)

# Active-content rules, each refused unless the site allows it (ISSEIMAIL_PDF_ALLOW).
RULES: dict[str, str] = {
    "javascript": "JavaScript（スクリプト）",
    "launch": "他のプログラムやファイルを起動する動作（Launch）",
    "embedded_files": "埋め込まれたファイル",
    "auto_action": "開いたときなどに自動で実行されるスクリプトまたはプログラム起動（OpenAction / AA）",
    "xfa": "XFAフォーム",
    "rich_media": "動画・Flashなどのリッチメディア（RichMedia）",
}
# Structure problems: never configurable.
STRUCTURE: dict[str, str] = {
    "not_parsable": (
        "PDFとして読み込めません。ファイルが壊れているか構造に誤りがあります。PDFを保存し直してから添付してください。"
    ),
    "damaged": "PDFの構造が壊れています（相互参照表が正しくありません）。PDFを作成し直してください。",
    "truncated": "PDFファイルが途中で切れています（%%EOF がありません）。もう一度保存し直してください。",
    "no_pages": "PDFにページがありません。",
    "password": "パスワードを入力しないと開けないPDFです。受信者が開けないため、パスワードを外してください。",
    "too_complex": (
        "PDFの内部構造が複雑すぎるため確認できません（オブジェクト数が多すぎます）。"
        "PDFを保存し直すか、ファイルを分けてから添付してください。"
    ),
}

EOF_WINDOW = 1024  # readers accept %%EOF within the last KiB (Acrobat's tolerance)
MAX_DEPTH = 64  # nesting of direct objects; deeper is hostile, not a document
MAX_ACTION_CHAIN = 64
# The check costs per object (qpdf resolves each one, ~7 µs): a density cap keeps every 2 MB of attachments,
# in one file or five, judged in about 150 ms of CPU. Real documents hold 500 bytes or more per object (a 2 MB
# text report ~4,000 objects, with object streams too); 10,000 objects per MB (~100 bytes each) is a crafted
# file. Small files always get MIN_OBJECTS; a file the pre-filter cannot clear (it must be walked) half of
# the allowance. The count is max(trailer /Size, the "obj" keywords in the bytes that are not "endobj"),
# read before any object is resolved (bytes.count: ~1 ms for 2 MB), so an understated /Size hides no object
# written in the open.
MAX_OBJECTS_PER_MB = 10_000
MIN_OBJECTS = 2_000


def object_allowance(size: int) -> int:
    return max(MIN_OBJECTS, MAX_OBJECTS_PER_MB * size // 1_048_576)


@dataclass(frozen=True)
class Verdict:
    """ok, or the reason codes (metrics labels) and the Japanese sentence for the user."""

    reasons: tuple[str, ...] = ()
    message: str = ""

    @property
    def ok(self) -> bool:
        return not self.reasons


OK = Verdict()


def _refused(*reasons: str) -> Verdict:
    if reasons[0] in STRUCTURE:
        return Verdict(reasons[:1], STRUCTURE[reasons[0]])
    named = "、".join(RULES[r] for r in reasons)
    return Verdict(reasons, f"{named}が含まれています。安全のため、このPDFは添付できません。")


_CONTAINERS = (pikepdf.Dictionary, pikepdf.Stream, pikepdf.Array)


def _children(obj: pikepdf.Object) -> Iterator[pikepdf.Object]:
    """Direct container children (indirect ones are walked as objects of their own; scalars hold nothing)."""
    values = obj if isinstance(obj, pikepdf.Array) else obj.values()
    for child in values:
        if isinstance(child, _CONTAINERS) and not child.is_indirect:
            yield child


def _dicts(root: pikepdf.Object) -> Iterator[pikepdf.Object]:
    """The object (a stream's dictionary included) and every dictionary nested in it directly."""
    stack = [(root, 0)]
    while stack:
        obj, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError("objects nested too deeply")
        if isinstance(obj, (pikepdf.Dictionary, pikepdf.Stream)):
            yield obj
        if isinstance(obj, _CONTAINERS):
            stack.extend((child, depth + 1) for child in _children(obj))


def _name(obj: pikepdf.Object, key: str) -> str | None:
    value = obj.get(key)
    return str(value) if isinstance(value, pikepdf.Name) else None


def _runs_code(action: pikepdf.Object) -> bool:
    """An action (following its /Next chain) that runs JavaScript or launches something."""
    seen: set[tuple[int, int]] = set()
    todo = [action]
    while todo and len(seen) < MAX_ACTION_CHAIN:
        a = todo.pop()
        if a.is_indirect:
            if a.objgen in seen:
                continue
            seen.add(a.objgen)
        if isinstance(a, pikepdf.Array):
            todo.extend(a)
            continue
        if not isinstance(a, pikepdf.Dictionary):
            continue
        if _name(a, "/S") in ("/JavaScript", "/Launch") or "/JS" in a:
            return True
        nxt = a.get("/Next")
        if nxt is not None:
            todo.append(nxt)
    return bool(todo)  # a chain longer than any document needs is treated as hostile


def _findings(d: pikepdf.Object) -> Iterator[str]:
    """The active-content rules one dictionary breaks."""
    keys = set(d.keys())
    # A value is fetched only for a key that is there: each lookup crosses into qpdf (the walk's main cost).
    s = _name(d, "/S") if "/S" in keys else None
    typ = _name(d, "/Type") if "/Type" in keys else None
    subtype = _name(d, "/Subtype") if "/Subtype" in keys else None
    if "/JS" in keys or "/JavaScript" in keys or s == "/JavaScript":
        yield "javascript"
    if s == "/Launch":
        yield "launch"
    if "/EmbeddedFiles" in keys or "/EF" in keys or typ == "/EmbeddedFile" or subtype == "/FileAttachment":
        yield "embedded_files"
    if "/XFA" in keys:
        yield "xfa"
    if subtype == "/RichMedia" or "/RichMediaContent" in keys or "/RichMediaSettings" in keys:
        yield "rich_media"
    if "/OpenAction" in keys and _runs_code(d["/OpenAction"]):
        yield "auto_action"
    if "/AA" in keys:
        triggers = d["/AA"]
        if isinstance(triggers, pikepdf.Dictionary) and any(_runs_code(a) for a in triggers.values()):
            yield "auto_action"


# Any name a rule looks at, as qpdf writes it back (canonical: escapes decoded, so /J#61vaScript shows as
# /JavaScript). An object whose text has none of them cannot break a rule and is not walked in Python.
_TRIGGER = re.compile(
    rb"/(?:JS|JavaScript|Launch|EmbeddedFiles?|EF|FileAttachment|XFA|RichMedia\w*|OpenAction|AA)(?![^\s/<>\[\]()%{}])"
)


def _text(obj: pikepdf.Object) -> bytes | None:
    """The object serialised by qpdf (a stream: its dictionary only), or None for scalars."""
    if isinstance(obj, pikepdf.Stream):
        return bytes(obj.stream_dict.unparse(resolved=True))
    if isinstance(obj, (pikepdf.Dictionary, pikepdf.Array)):
        return bytes(obj.unparse(resolved=True))
    return None


def _scan(pdf: pikepdf.Pdf, allowed: frozenset[str]) -> tuple[str, ...]:
    """Every refused rule found, in the order of RULES."""
    found: set[str] = set()
    for obj in pdf.objects:
        text = _text(obj)
        if text is None or not _TRIGGER.search(text):
            continue
        for d in _dicts(obj):
            found.update(_findings(d))
    return tuple(r for r in RULES if r in found and r not in allowed)


MAX_PAGE_TREE_NODES = 10_000


def _has_a_page(pdf: pikepdf.Pdf) -> bool:
    """At least one real /Page leaf under the catalog's page tree (a /Count can lie). Depth-first, it stops
    at the first leaf: listing every page (pdf.pages) would cost far more on a long document, and so would
    listing every kid of a flat tree (each becomes a Python object): kids are taken one at a time."""
    stack: list[Iterator[pikepdf.Object | None]] = [iter([pdf.Root.get("/Pages")])]
    seen: set[tuple[int, int]] = set()
    while stack and len(seen) < MAX_PAGE_TREE_NODES:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
            continue
        if not isinstance(node, pikepdf.Dictionary):
            continue
        if node.is_indirect:
            if node.objgen in seen:
                continue
            seen.add(node.objgen)
        kids = node.get("/Kids")
        if _name(node, "/Type") == "/Page" or (kids is None and "/MediaBox" in node):
            return True
        if isinstance(kids, pikepdf.Array):
            stack.append(iter(kids))
    return False


def _has_eof(data: bytes) -> bool:
    return b"%%EOF" in data[-EOF_WINDOW:]


def check_pdf(
    data: bytes, allowed: frozenset[str] = frozenset(), *, prefilter: bool = True, max_objects: int | None = None
) -> Verdict:
    """The verdict on one PDF: OK, or the first structure problem or refused active content found.
    prefilter=False always walks every object (tests hold that the pre-filter changes no verdict)."""
    # qpdf reads a real file several times faster than a BytesIO (which it can only read through Python
    # callbacks, a few bytes at a time while it parses the cross-reference table).
    with tempfile.NamedTemporaryFile(prefix="isseimail-pdf-", suffix=".pdf") as file:
        file.write(data)
        file.flush()
        allowance = object_allowance(len(data)) if max_objects is None else max_objects
        return _check_file(file.name, data, allowed, prefilter, allowance)


def _walk_needed(pdf: pikepdf.Pdf, data: bytes) -> bool:
    """False only when the pre-filter proves that no object names anything a rule looks at."""
    if may_name_active_content(data):
        return True
    streams = object_streams(data)
    if streams is None:
        return True  # object streams the pre-filter cannot account for: walk
    for objgen in streams:
        try:
            obj = pdf.get_object(objgen)
            if not isinstance(obj, pikepdf.Stream) or _name(obj.stream_dict, "/Type") != "/ObjStm":
                return True
            if may_name_active_content(obj.read_bytes()):
                return True
        except (pikepdf.PdfError, ValueError, RuntimeError):
            return True  # the walk decides (and refuses what it cannot read), not the pre-filter
    return False


def _object_count(pdf: pikepdf.Pdf, data: bytes) -> int:
    """Objects the file declares, without resolving any: its trailer's /Size or its object headers."""
    try:
        size = int(pdf.trailer.get("/Size", 0))
    except (TypeError, ValueError):
        size = 0
    return max(size, data.count(b"obj") - data.count(b"endobj"))


def _check_file(path: str, data: bytes, allowed: frozenset[str], prefilter: bool, max_objects: int) -> Verdict:
    try:
        # inherit_page_attributes would rewrite every page up front (most of the cost on a long document).
        pdf = pikepdf.open(path, attempt_recovery=False, suppress_warnings=True, inherit_page_attributes=False)
    except pikepdf.PasswordError:
        return _refused("password")
    except (pikepdf.PdfError, ValueError, RuntimeError, OSError):
        return _refused("not_parsable" if _has_eof(data) else "truncated")
    with pdf:
        try:
            if not _has_eof(data):
                return _refused("truncated")
            count = _object_count(pdf, data)
            if count > max_objects:
                return _refused("too_complex")
            if not _has_a_page(pdf):
                return _refused("no_pages")
            # Walking costs about three times resolving: a file that must be walked gets half the allowance.
            # Decided by the pre-filter's answer whatever `prefilter` says, so that the flag changes no verdict.
            needed = _walk_needed(pdf, data)
            if needed and count > max(min(MIN_OBJECTS, max_objects), max_objects // 2):
                return _refused("too_complex")
            if not prefilter or needed:
                rules = _scan(pdf, allowed)
            else:
                rules = ()
                len(pdf.objects)  # qpdf resolves every object, as the walk would: its warnings mean damage
            if pdf.get_warnings():
                # qpdf repaired something while resolving objects: what a reader sees may differ.
                return _refused("damaged")
        except (pikepdf.PdfError, ValueError, RuntimeError, RecursionError, KeyError, TypeError) as exc:
            log.info("pdf check: unreadable structure: %s", exc)
            return _refused("damaged")
        return _refused(*rules) if rules else OK
