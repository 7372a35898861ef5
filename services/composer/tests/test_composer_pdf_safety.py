"""PDF structure and active-content checks (pdf_safety) on hand-made PDFs: every rule plain and obfuscated,
encryption, broken files, benign real-world shapes, and random mutations that must never crash the checker."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pikepdf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isseimail_composer.pdf_prefilter import may_name_active_content, object_streams
from isseimail_composer.pdf_safety import RULES, check_pdf

from .pdfs import (
    CATALOG,
    PAGE,
    PAGES,
    TEXT,
    many_pages_pdf,
    padded_pdf,
    page_objects,
    plain_pdf,
    raw_pdf,
    raw_pdf_with_object_stream,
    resave,
    stream,
)

JS_ACTION = b"<< /Type /Action /S /JavaScript /JS (app.alert\\('x'\\);) >>"
LAUNCH_ACTION = b"<< /S /Launch /F (C:\\\\Windows\\\\System32\\\\calc.exe) >>"


def _with_annot(annot: bytes) -> list[bytes]:
    """Catalog, pages, a page with one annotation (object 5), its content."""
    page = PAGE[:-2] + b" /Annots [5 0 R] >>"
    return [CATALOG, PAGES, page, stream(TEXT), annot]


def _catalog(extra: bytes, *more: bytes) -> list[bytes]:
    return [CATALOG[:-2] + b" " + extra + b" >>", PAGES, PAGE, stream(TEXT), *more]


# rule -> (objects, the other rules the same file necessarily breaks)
CASES: dict[str, list[tuple[str, list[bytes]]]] = {
    "javascript": [
        ("names tree", _catalog(b"/Names << /JavaScript 5 0 R >>", b"<< /Names [(init) 6 0 R] >>", JS_ACTION)),
        ("link action", _with_annot(b"<< /Type /Annot /Subtype /Link /Rect [0 0 9 9] /A " + JS_ACTION + b" >>")),
        (
            "script in a compressed stream",
            _catalog(
                b"/Names << /JavaScript << /Names [(a) 5 0 R] >> >>",
                b"<< /S /JavaScript /JS 6 0 R >>",
                stream(b"this.exportDataObject({cName: 'x'});", compress=True),
            ),
        ),
    ],
    "launch": [
        ("link action", _with_annot(b"<< /Type /Annot /Subtype /Link /Rect [0 0 9 9] /A " + LAUNCH_ACTION + b" >>")),
    ],
    "embedded_files": [
        (
            "names tree",
            _catalog(
                b"/Names << /EmbeddedFiles << /Names [(a.exe) 5 0 R] >> >>",
                b"<< /Type /Filespec /F (a.exe) /EF << /F 6 0 R >> >>",
                stream(b"MZ\x90\x00", b" /Type /EmbeddedFile"),
            ),
        ),
        (
            "file attachment annotation",
            _with_annot(b"<< /Type /Annot /Subtype /FileAttachment /Rect [0 0 9 9] /FS (a.txt) >>"),
        ),
    ],
    "auto_action": [
        ("open action", _catalog(b"/OpenAction " + JS_ACTION)),
        ("page AA launch", [CATALOG, PAGES, PAGE[:-2] + b" /AA << /O " + LAUNCH_ACTION + b" >> >>", stream(TEXT)]),
        (
            "script at the end of a /Next chain",
            _catalog(b"/OpenAction << /S /GoTo /D [3 0 R /Fit] /Next [5 0 R] >>", JS_ACTION),
        ),
    ],
    "xfa": [
        ("acroform", _catalog(b"/AcroForm << /Fields [] /XFA 5 0 R >>", stream(b"<xdp:xdp/>"))),
    ],
    "rich_media": [
        ("annotation", _with_annot(b"<< /Type /Annot /Subtype /RichMedia /Rect [0 0 9 9] /RichMediaContent << >> >>")),
    ],
}

ACTIVE_NAMES = rb"JavaScript|JS|S|Launch|EmbeddedFiles|EmbeddedFile|EF|FileAttachment|XFA|RichMedia|OpenAction|AA"


def hex_names(obj: bytes) -> bytes:
    """/JavaScript -> /J#61vaScript: every active name with its second character (or its only one) #-escaped."""

    def escape(m: re.Match[bytes]) -> bytes:
        name = m.group(1)
        i = 1 if len(name) > 1 else 0
        return b"/" + name[:i] + b"#%02X" % name[i] + name[i + 1 :]

    return re.sub(rb"/(" + ACTIVE_NAMES + rb")(?=[\s/<>\[\]()]|$)", escape, obj)


def _streams(objects: list[bytes]) -> dict[int, bytes]:
    return {n: body for n, body in enumerate(objects, start=1) if b"stream\n" in body}


VARIANTS: dict[str, Callable[[list[bytes]], bytes]] = {
    "plain": raw_pdf,
    "hex-escaped names": lambda objs: raw_pdf([hex_names(o) for o in objs]),
    "object stream": lambda objs: raw_pdf_with_object_stream(objs, _streams(objs)),
    "hex names in an object stream": lambda objs: raw_pdf_with_object_stream(
        [hex_names(o) for o in objs], _streams(objs)
    ),
    "qpdf object streams": lambda objs: resave(raw_pdf(objs), object_stream_mode=pikepdf.ObjectStreamMode.generate),
}

ACTIVE = [
    pytest.param(rule, objects, variant, id=f"{rule}-{label}-{variant}")
    for rule, cases in CASES.items()
    for label, objects in cases
    for variant in VARIANTS
]


def test_every_rule_has_cases() -> None:
    """Each configurable rule is exercised by at least one hand-made PDF."""
    assert set(CASES) == set(RULES)


@pytest.mark.parametrize(("rule", "objects", "variant"), ACTIVE)
def test_active_content_is_refused_however_written(rule: str, objects: list[bytes], variant: str) -> None:
    """The rule is found whether names are #-escaped, objects packed in a compressed object stream, or both."""
    data = VARIANTS[variant](objects)
    if "hex" in variant:
        assert b"#" in data or b"/ObjStm" in data
    if "object stream" in variant:
        assert b"/JS " not in data
        assert b"/Launch" not in data
        assert b"/XFA" not in data
    verdict = check_pdf(data)
    assert not verdict.ok
    assert rule in verdict.reasons
    assert RULES[rule] in verdict.message
    assert "添付できません" in verdict.message


@pytest.mark.parametrize("rule", [r for r in RULES if r != "auto_action"])
def test_a_rule_the_site_allows_passes(rule: str) -> None:
    """ISSEIMAIL_PDF_ALLOW=<rule> lets exactly that content through."""
    objects = CASES[rule][0][1]
    assert rule in check_pdf(raw_pdf(objects)).reasons
    allowed = frozenset({rule} | ({"javascript"} if rule == "launch" else set()))
    assert rule not in check_pdf(raw_pdf(objects), allowed).reasons


def test_allowing_javascript_still_refuses_scripts_run_on_open() -> None:
    """A site that allows JavaScript still refuses a script that runs by itself when the file opens."""
    data = raw_pdf(CASES["auto_action"][0][1])
    verdict = check_pdf(data, frozenset({"javascript"}))
    assert verdict.reasons == ("auto_action",)
    assert check_pdf(data, frozenset({"javascript", "auto_action"})).ok


def test_a_file_with_several_problems_names_them_all() -> None:
    """JavaScript and an embedded file in one PDF: both reasons are named."""
    objects = _catalog(
        b"/Names << /JavaScript << /Names [(a) 5 0 R] >> /EmbeddedFiles << /Names [(b) 6 0 R] >> >>",
        JS_ACTION,
        b"<< /Type /Filespec /F (b) /EF << /F 7 0 R >> >>",
        stream(b"data", b" /Type /EmbeddedFile"),
    )
    verdict = check_pdf(raw_pdf(objects))
    assert verdict.reasons == ("javascript", "embedded_files")
    assert RULES["javascript"] in verdict.message
    assert RULES["embedded_files"] in verdict.message


# --- structure ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encryption",
    [
        pikepdf.Encryption(user="", owner="owner-secret", R=4),
        pikepdf.Encryption(user="", owner="owner-secret", R=6),
        pikepdf.Encryption(user="", owner="owner-secret", R=6, allow=pikepdf.Permissions(extract=False)),
    ],
    ids=["rc4-aes128", "aes256", "aes256-no-copy"],
)
def test_encrypted_without_user_password_is_allowed(encryption: pikepdf.Encryption) -> None:
    """Encrypted with an empty user password (opens without asking): accepted."""
    data = resave(plain_pdf(), encryption=encryption)
    assert b"/Encrypt" in data
    assert check_pdf(data).ok


def test_encrypted_active_content_is_still_found() -> None:
    """Encryption (empty user password) does not hide JavaScript strings or names from the check."""
    data = resave(raw_pdf(CASES["javascript"][0][1]), encryption=pikepdf.Encryption(user="", owner="o", R=6))
    assert "javascript" in check_pdf(data).reasons


@pytest.mark.parametrize("r", [4, 6])
def test_password_protected_pdf_is_refused(r: int) -> None:
    """A PDF that asks for a password cannot be read by recipients: refused with that reason."""
    data = resave(plain_pdf(), encryption=pikepdf.Encryption(user="user-secret", owner="owner-secret", R=r))
    verdict = check_pdf(data)
    assert verdict.reasons == ("password",)
    assert "パスワード" in verdict.message


@pytest.mark.parametrize("keep", [0.2, 0.5, 0.9, 0.999])
def test_truncated_pdf_is_refused(keep: float) -> None:
    """A file cut short (an interrupted download or copy) is refused."""
    data = padded_pdf(50_000)
    verdict = check_pdf(data[: int(len(data) * keep)])
    assert verdict.reasons == ("truncated",)
    assert "途中で切れています" in verdict.message


def test_pdf_without_pages_is_refused() -> None:
    """An empty page tree: nothing for the recipient to see."""
    verdict = check_pdf(raw_pdf([CATALOG, b"<< /Type /Pages /Kids [] /Count 0 >>"]))
    assert verdict.reasons == ("no_pages",)
    assert verdict.message == "PDFにページがありません。"


def test_page_tree_count_is_not_trusted() -> None:
    """/Count 5 over an empty /Kids is no page; a first empty branch before a real page is fine; a loop is no page."""
    lying = raw_pdf([CATALOG, b"<< /Type /Pages /Kids [] /Count 5 >>"])
    assert check_pdf(lying).reasons == ("no_pages",)
    branch = b"<< /Type /Pages /Parent 2 0 R /Kids [] /Count 0 >>"
    nested = raw_pdf(
        [
            CATALOG,
            b"<< /Type /Pages /Kids [5 0 R 3 0 R] /Count 1 >>",
            PAGE,
            stream(TEXT),
            branch,
        ]
    )
    assert check_pdf(nested).ok
    looped = raw_pdf([CATALOG, b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"])
    assert check_pdf(looped).reasons[0] in {"no_pages", "damaged", "not_parsable"}


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n",
        b"%PDF-1.7\nthis is not a pdf at all\n%%EOF\n",
        b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
        b"%PDF-1.7\n" + b"0" * 1000 + b"\n%%EOF\n",
        plain_pdf().replace(b"\n%\xe2\xe3\xcf\xd3\n", b"\n%\xe2\xe3\xcf\xd3\n% shifted every offset\n"),
        plain_pdf().replace(b"startxref\n", b"startxref\n9"),
    ],
    ids=["header-only", "text", "no-root", "filler", "offsets-shifted", "bad-startxref"],
)
def test_unparsable_or_damaged_pdf_is_refused(data: bytes) -> None:
    """Files qpdf cannot read without rebuilding them are refused, never guessed at."""
    verdict = check_pdf(data)
    assert verdict.reasons
    assert verdict.reasons[0] in {"not_parsable", "damaged", "truncated"}
    assert verdict.message


# --- benign real-world shapes --------------------------------------------------------------------------------

JAPANESE_FONT = (
    b"<< /Type /Font /Subtype /Type0 /BaseFont /HeiseiKakuGo-W5 /Encoding /UniJIS-UCS2-H"
    b" /DescendantFonts [<< /Type /Font /Subtype /CIDFontType0 /BaseFont /HeiseiKakuGo-W5"
    b" /CIDSystemInfo << /Registry (Adobe) /Ordering (Japan1) /Supplement 2 >>"
    b" /FontDescriptor << /Type /FontDescriptor /FontName /HeiseiKakuGo-W5 /Flags 4"
    b" /FontBBox [-92 -250 1010 922] /ItalicAngle 0 /Ascent 752 /Descent -221 /CapHeight 737 /StemV 114 >>"
    b" /DW 1000 >>] >>"
)


def japanese_pdf() -> bytes:
    text = "新製品のご案内（株式会社サンプル）".encode("utf-16-be")
    content = b"BT /F1 14 Tf 72 760 Td <" + text.hex().encode() + b"> Tj ET"
    page = PAGE.replace(b"/Resources << >>", b"/Resources << /Font << /F1 5 0 R >> >>")
    info = "見積書".encode("utf-16-be")
    return raw_pdf(
        [
            CATALOG,
            PAGES,
            page,
            stream(content, compress=True),
            JAPANESE_FONT,
            b"<< /Title <FEFF" + info.hex().encode() + b"> >>",
        ],
        trailer_extra=b" /Info 6 0 R",
    )


def form_pdf() -> bytes:
    """An AcroForm with a text field and a checkbox, a URI link and a GoTo OpenAction: common, passive."""
    page = PAGE[:-2] + b" /Annots [5 0 R 6 0 R 7 0 R] >>"
    catalog = CATALOG[:-2] + b" /AcroForm << /Fields [5 0 R 6 0 R] /NeedAppearances true >> /OpenAction [3 0 R /Fit] >>"
    return raw_pdf(
        [
            catalog,
            PAGES,
            page,
            stream(TEXT),
            b"<< /Type /Annot /Subtype /Widget /FT /Tx /T (name) /V (Taro) /Rect [72 600 300 620] /P 3 0 R >>",
            b"<< /Type /Annot /Subtype /Widget /FT /Btn /T (agree) /V /Off /Rect [72 560 90 578] /P 3 0 R >>",
            b"<< /Type /Annot /Subtype /Link /Rect [72 500 300 520] /A << /S /URI /URI (https://example.jp/) >> >>",
        ]
    )


def chromium_pdf(tmp: Path) -> bytes:
    """Chromium's print-to-PDF of a Japanese page with a form: a real producer's tagged PDF, subset fonts."""
    html = tmp / "page.html"
    html.write_text(
        '<html lang="ja"><meta charset="utf-8"><body><h1>新製品発表会のご案内</h1>'
        "<p>拝啓 時下ますますご清栄のこととお慶び申し上げます。</p>"
        '<table border="1"><tr><td>日時</td><td>2026年12月1日</td></tr></table>'
        '<a href="https://example.jp/">詳細</a></body></html>',
        encoding="utf-8",
    )
    out = tmp / "page.pdf"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--print-to-pdf={out}",
            str(html),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out.read_bytes()


BENIGN: dict[str, Callable[[], bytes]] = {
    **{
        f"version-{v}": (lambda v=v: resave(plain_pdf(), force_version=v))
        for v in ("1.3", "1.4", "1.5", "1.6", "1.7", "2.0")
    },
    "linearised": lambda: resave(padded_pdf(300_000), linearize=True),
    "linearised-object-streams": lambda: resave(
        form_pdf(), linearize=True, object_stream_mode=pikepdf.ObjectStreamMode.generate
    ),
    "form-without-javascript": form_pdf,
    "japanese-cid-font": japanese_pdf,
    "japanese-cid-font-compressed": lambda: resave(
        japanese_pdf(), compress_streams=True, object_stream_mode=pikepdf.ObjectStreamMode.generate
    ),
    "hand-written-object-stream": lambda: raw_pdf_with_object_stream(page_objects(), {4: stream(TEXT)}),
    "incremental-update": lambda: _incremental(plain_pdf()),
}


def _incremental(data: bytes) -> bytes:
    buf = io.BytesIO()
    with pikepdf.open(io.BytesIO(data)) as pdf:
        pdf.docinfo["/Title"] = "改訂版"
        pdf.save(buf)
    return buf.getvalue()


@pytest.mark.parametrize("name", list(BENIGN))
def test_benign_pdfs_pass(name: str) -> None:
    """Ordinary documents in their usual shapes are accepted."""
    verdict = check_pdf(BENIGN[name]())
    assert verdict.ok, verdict


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is installed by make test (debian-packages)")
def test_chromium_printed_japanese_pdf_passes(tmp_path: Path) -> None:
    """A PDF from a real producer (Chromium's print to PDF, tagged, subset fonts, links) is accepted."""
    data = chromium_pdf(tmp_path)
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert len(pdf.pages) >= 1
        assert "/StructTreeRoot" in pdf.Root
    assert check_pdf(data).ok


def test_two_megabytes_of_pdfs_check_quickly() -> None:
    """2 MB of ordinary PDFs (text reports of ~3,000 characters a page, plain, in object streams, linearised;
    an image-heavy one) cost under 200 ms of CPU to check (CPU time: other tests may be running)."""
    report = many_pages_pdf(120, page_bytes=3000)
    files = [
        report,
        resave(many_pages_pdf(125, page_bytes=3000), object_stream_mode=pikepdf.ObjectStreamMode.generate),
        resave(many_pages_pdf(110, page_bytes=3000), linearize=True),
        padded_pdf(400_000),
    ]
    files.append(many_pages_pdf(max(1, (2_000_000 - sum(map(len, files))) // 3100), page_bytes=3000))
    assert 1_800_000 < sum(map(len, files)) <= 2_097_152
    started = time.process_time()
    assert all(check_pdf(f).ok for f in files)
    assert time.process_time() - started < 0.2


# --- hostile bytes ---------------------------------------------------------------------------------------------

SEEDS = [plain_pdf(), form_pdf(), raw_pdf_with_object_stream(page_objects(), {4: stream(TEXT)})]

mutation = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "truncate"]),
    st.floats(min_value=0, max_value=1, allow_nan=False),
    st.binary(min_size=1, max_size=16),
)


def mutate(data: bytes, edits: list[tuple[str, float, bytes]]) -> bytes:
    out = bytearray(data)
    for kind, where, payload in edits:
        i = int(where * (len(out) - 1)) if out else 0
        if kind == "flip":
            out[i : i + len(payload)] = payload
        elif kind == "insert":
            out[i:i] = payload
        elif kind == "delete":
            del out[i : i + len(payload)]
        else:
            del out[i:]
    return bytes(out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(range(len(SEEDS))), edits=st.lists(mutation, min_size=1, max_size=6))
def test_random_mutations_never_crash_the_checker(seed: int, edits: list[tuple[str, float, bytes]]) -> None:
    """Any byte mutation of a valid PDF gets a verdict: accepted, or refused with a known reason and a message."""
    verdict = check_pdf(mutate(SEEDS[seed], edits))
    assert verdict.ok or (verdict.reasons and verdict.message)
    assert all(
        r in RULES or r in {"not_parsable", "damaged", "truncated", "no_pages", "password"} for r in verdict.reasons
    )


@given(data=st.binary(max_size=4096))
@settings(max_examples=200, deadline=None)
def test_arbitrary_bytes_after_a_pdf_header_get_a_verdict(data: bytes) -> None:
    """Random bytes behind %PDF- (what an attacker controls fully) never raise."""
    verdict = check_pdf(b"%PDF-1.7\n" + data + b"\n%%EOF\n")
    assert verdict.ok or verdict.message


def test_deeply_nested_objects_get_a_verdict() -> None:
    """Thousands of nested arrays (a parser stack attack) are refused as a broken file, not a crash."""
    deep = b"[" * 5000 + b"]" * 5000
    data = raw_pdf([CATALOG, PAGES, PAGE[:-2] + b" /X " + deep + b" >>", stream(TEXT)])
    verdict = check_pdf(data)
    assert verdict.reasons
    assert verdict.reasons[0] in {"not_parsable", "damaged", "no_pages"}


def test_a_flate_bomb_object_stream_is_refused_without_inflating_it() -> None:
    """A sound file whose object stream inflates ~1000:1 to 64 MB (past the 32 MB decode limit) is refused
    quickly; the same file with a small object stream passes."""
    objects = page_objects()
    small = raw_pdf_with_object_stream(objects, {4: stream(TEXT)})
    assert check_pdf(small).ok
    objects[2] = PAGE + b" " * (64 * 1024 * 1024)  # padding inside the page object, in the object stream
    bomb = raw_pdf_with_object_stream(objects, {4: stream(TEXT)})
    assert len(bomb) < 200_000
    started = time.perf_counter()
    verdict = check_pdf(bomb)
    assert time.perf_counter() - started < 10
    assert verdict.reasons
    assert verdict.reasons[0] in {"damaged", "not_parsable", "no_pages"}


# --- the byte pre-filter (pdf_prefilter) ------------------------------------------------------------------------

ACTIVE_SEEDS = [make(cases[0][1]) for make in VARIANTS.values() for cases in CASES.values()]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(range(len(SEEDS) + len(ACTIVE_SEEDS))),
    edits=st.lists(mutation, min_size=0, max_size=4),
)
def test_the_prefilter_changes_no_verdict(seed: int, edits: list[tuple[str, float, bytes]]) -> None:
    """For any mutation of benign and active, plain, #-escaped and object-stream PDFs, the verdict with the
    pre-filter is the verdict of walking every object."""
    data = mutate((SEEDS + ACTIVE_SEEDS)[seed], edits)
    assert check_pdf(data) == check_pdf(data, prefilter=False)


@pytest.mark.parametrize(
    "name",
    [b"/JavaScript", b"/J#61vaScript", b"/#4A#53", b"/#4a#53", b"/Open#41ction", b"/RichMediaSettings", b"/E#46"],
)
def test_prefilter_sees_every_spelling_of_an_active_name(name: bytes) -> None:
    assert may_name_active_content(b"<< /Type /Annot " + name + b" 5 0 R >>")


def test_prefilter_passes_names_that_only_look_alike() -> None:
    assert not may_name_active_content(b"<< /Type /Page /Jx 1 /J#62 2 /Kids [] /Font << /F1 4 0 R >> (JavaScript) >>")


def test_object_streams_are_located_or_refused_to_locate() -> None:
    """Each /ObjStm occurrence belongs to the object whose header precedes it; two in objects of one number (an
    object stream hidden behind a header the pre-filter cannot read) are not accounted for (None)."""
    packed = raw_pdf_with_object_stream(page_objects(), {4: stream(TEXT)})
    located = object_streams(packed)
    assert located
    with pikepdf.open(io.BytesIO(packed)) as pdf:
        assert all(pdf.get_object(og).stream_dict.Type == "/ObjStm" for og in located)
    assert object_streams(b"7 0 obj << /Type /ObjStm >> stream\nx\nendstream endobj 8 0 obj << /Type /Obj#53tm >>") == [
        (7, 0),
        (8, 0),
    ]
    assert object_streams(b"7 0 obj << /Type /ObjStm >> endobj 8 0 %c\nobj << /Type /ObjStm >>") is None
    assert object_streams(b"<< /Type /ObjStm >>") is None
    assert object_streams(plain_pdf()) == []


def test_a_stream_named_objstm_that_is_not_one_means_a_walk() -> None:
    """/ObjStm inside a string of a page: the object it falls in is no object stream, so every object is walked
    (and the file, benign, passes)."""
    data = raw_pdf([CATALOG, PAGES, PAGE[:-2] + b" /Note (/ObjStm) >>", stream(TEXT)])
    assert object_streams(data) is not None
    assert check_pdf(data).ok


@given(st.binary(max_size=200), st.sampled_from([b"/JavaScript", b"/J#61vaScript", b"/AA", b"/#41A", b"/Ob", b""]))
def test_prefilter_shortcut_agrees_with_the_escape_aware_search(noise: bytes, name: bytes) -> None:
    """With or without a '#' in the bytes, the answer is the escape-aware regex's."""
    from isseimail_composer.pdf_prefilter import _ACTIVE

    data = noise[:100] + name + noise[100:]
    assert may_name_active_content(data) == (_ACTIVE.search(data) is not None)


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "object streams"])
def test_a_pdf_of_too_many_objects_is_refused_before_they_are_resolved(packed: bool) -> None:
    """Past the object cap the verdict is 'too complex', whether the objects are plain or packed in streams."""
    objects = [*page_objects(), *(b"<< /N %d >>" % i for i in range(300))]
    data = raw_pdf_with_object_stream(objects) if packed else raw_pdf(objects)
    assert check_pdf(data).ok  # under the default cap: judged as before
    verdict = check_pdf(data, max_objects=250)
    assert verdict.reasons == ("too_complex",)
    assert "複雑すぎる" in verdict.message


def test_an_understated_size_does_not_hide_objects_from_the_cap() -> None:
    """The count is the larger of the trailer's /Size and the object keywords written in the file."""
    objects = [*page_objects(), *(b"<< /N %d >>" % i for i in range(300))]
    data = raw_pdf(objects)
    lying = re.sub(rb"/Size \d+", b"/Size 5", data)
    assert lying != data
    assert check_pdf(lying, max_objects=250).reasons == ("too_complex",)


def test_the_default_allowance_follows_the_file_size() -> None:
    """Thousands of tiny objects in a small file are refused by default; the allowance grows with the bytes."""
    from isseimail_composer.pdf_safety import MIN_OBJECTS, object_allowance

    objects = [*page_objects(), *(b"<< /N %d >>" % i for i in range(MIN_OBJECTS + 500))]
    data = raw_pdf_with_object_stream(objects)
    assert len(data) < 200_000
    assert check_pdf(data).reasons == ("too_complex",)
    assert object_allowance(2 * 1_048_576) == 20_000  # a whole 2 MB file may hold ten times more
    assert check_pdf(data, max_objects=object_allowance(2 * 1_048_576)).ok


def test_a_file_that_must_be_walked_gets_half_the_allowance() -> None:
    """Active-content names make the walk necessary; past half the allowance such a file is too complex."""
    link = b"<< /Type /Annot /Subtype /Link /AA << /E << /S /GoTo /D [0 /Fit] >> >> >>"
    walked = raw_pdf([*page_objects(), *([link] * 2_100)])  # 2,104 objects
    assert check_pdf(walked, max_objects=4_500).ok  # half of 4,500 is 2,250: still within
    assert check_pdf(walked, max_objects=4_100).reasons == ("too_complex",)  # half is 2,050
    plain = raw_pdf([*page_objects(), *([b"<< /N 1 >>"] * 2_100)])
    assert check_pdf(plain, max_objects=4_100).ok  # nothing to walk for: the whole allowance
