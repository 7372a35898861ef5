"""Virus scanning against a real clamd (Debian's clamav-daemon, test-built EICAR signatures), and the attachment
checks through the composer's HTTP routes: refused drafts answer 422 with a Japanese reason naming the file."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from isseimail_composer.app import create_app
from isseimail_composer.attachment_safety import SCAN_FAILED
from isseimail_composer.clamd_client import ClamdAddress, ClamdClient, ScanFailed
from isseimail_composer.settings import ComposerSettings
from isseimail_testing.clamd import EICAR, ClamdServer
from isseimail_testing.process import free_port, running_app

from .conftest import HEADERS, FakeLists, sample_rows
from .pdfs import CATALOG, PAGE, PAGES, TEXT, padded_pdf, raw_pdf, stream
from .test_composer_drafts import fields, post

CLEAN = padded_pdf(20_000)
JS_PDF = raw_pdf(
    [CATALOG[:-2] + b" /OpenAction << /S /JavaScript /JS (app.alert\\(1\\)) >> >>", PAGES, PAGE, stream(TEXT)]
)


def eicar_pdf(*, compress: bool) -> bytes:
    """A sound, passive PDF whose second content stream holds the EICAR bytes (Flate-compressed: not in clear)."""
    page = PAGE.replace(b"/Contents 4 0 R", b"/Contents [4 0 R 5 0 R]")
    return raw_pdf([CATALOG, PAGES, page, stream(TEXT), stream(EICAR, compress=compress)])


# --- the client against the real daemon ---------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "unix"])
async def test_clamd_names_eicar_and_passes_a_clean_pdf(clamd_server: ClamdServer, transport: str) -> None:
    """INSTREAM over TCP and over the unix socket: EICAR gets its signature name, a clean PDF none."""
    url = clamd_server.tcp_url if transport == "tcp" else clamd_server.unix_url
    client = ClamdClient(url, timeout=30)
    assert await client.ping()
    assert (await client.scan(EICAR) or "").startswith("Isseimail.Test.EICAR")
    assert await client.scan(CLEAN) is None


@pytest.mark.parametrize("compress", [False, True], ids=["plain-stream", "flate-stream"])
async def test_clamd_finds_eicar_inside_a_pdf_stream(clamd_server: ClamdServer, compress: bool) -> None:
    """EICAR in a PDF content stream is found, also when Flate-compressed (clamd decodes PDF streams)."""
    data = eicar_pdf(compress=compress)
    assert (EICAR in data) is not compress
    assert (await ClamdClient(clamd_server.tcp_url, 30).scan(data) or "").startswith("Isseimail.Test.EICAR")


async def test_a_large_attachment_is_streamed_in_chunks(clamd_server: ClamdServer) -> None:
    """A 2 MB PDF (many INSTREAM chunks) is scanned clean; EICAR at its very end is still found."""
    client = ClamdClient(clamd_server.tcp_url, 30)
    big = padded_pdf(2_000_000)
    assert await client.scan(big) is None
    assert await client.scan(big + EICAR) is not None


async def test_stopped_clamd_raises_scan_failed(tmp_path: Path) -> None:
    """A clamd that was running and stopped: the scan fails loudly, it does not pass."""
    server = ClamdServer(tmp_path / "clamd")
    server.start()
    client = ClamdClient(server.tcp_url, timeout=5)
    assert await client.scan(CLEAN) is None
    server.stop()
    with pytest.raises(ScanFailed, match="unreachable"):
        await client.scan(CLEAN)
    with pytest.raises(ScanFailed):
        await ClamdClient(server.unix_url, timeout=5).scan(CLEAN)


@contextlib.asynccontextmanager
async def silent_server(reply: bytes | None = None) -> AsyncIterator[int]:
    """A TCP server that reads forever and never answers (reply=None), or answers `reply` at once."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if reply is not None:
            writer.write(reply)
            await writer.drain()
            writer.close()
            return
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_a_clamd_that_never_answers_times_out() -> None:
    """A scanner that accepts the stream but never answers fails within the configured deadline."""
    async with silent_server() as port:
        started = asyncio.get_running_loop().time()
        with pytest.raises(ScanFailed, match="did not answer"):
            await ClamdClient(f"tcp://127.0.0.1:{port}", timeout=0.5).scan(CLEAN)
        assert asyncio.get_running_loop().time() - started < 5


@pytest.mark.parametrize(
    "reply", [b"INSTREAM size limit exceeded. ERROR\0", b"stream: garbage\0", b"", b"x" * 10_000 + b"\0"]
)
async def test_an_error_or_odd_reply_is_a_failed_scan(reply: bytes) -> None:
    """ERROR lines, closed sockets and nonsense are failures, never 'clean'."""
    async with silent_server(reply) as port:
        with pytest.raises(ScanFailed):
            await ClamdClient(f"tcp://127.0.0.1:{port}", timeout=5).scan(CLEAN)


@pytest.mark.parametrize("url", ["http://clamav:3310", "tcp://", "unix://relative/path", "clamav:3310"])
def test_bad_clamd_urls_are_refused_at_start(url: str) -> None:
    """A misconfigured ISSEIMAIL_CLAMD_URL stops the service at start with the accepted forms named."""
    with pytest.raises(ValueError, match=r"clamd URL|scheme"):
        ClamdAddress.parse(url)
    with pytest.raises(ValueError, match=r"clamd URL|scheme"):
        ComposerSettings(clamd_url=url)


def test_settings_parse_urls_and_rules() -> None:
    """tcp:// and unix:// parse; ISSEIMAIL_PDF_ALLOW takes known rule names only."""
    assert str(ClamdAddress.parse("tcp://clamav:3310")) == "tcp://clamav:3310"
    assert str(ClamdAddress.parse("tcp://clamav")) == "tcp://clamav:3310"
    assert ClamdAddress.parse("unix:///run/clamav/clamd.ctl").path == "/run/clamav/clamd.ctl"
    assert ComposerSettings(clamd_url=" ").clamd_url is None
    assert ComposerSettings(pdf_allow="JavaScript, xfa").pdf_allow == ["javascript", "xfa"]
    with pytest.raises(ValueError, match="unknown PDF rule"):
        ComposerSettings(pdf_allow="javascript,macros")


# --- through the composer's HTTP routes ---------------------------------------------------------------------


@pytest.fixture
def scanning_composer(
    composer_settings: Callable[..., ComposerSettings], clamd_server: ClamdServer
) -> Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]:
    def run(**overrides: Any) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
        values = {"clamd_url": clamd_server.tcp_url, **overrides}
        return running_app(create_app(composer_settings(**values)))

    return run


async def test_clean_pdf_is_accepted_with_scanning_on(scanning_composer: Any, fake_lists: FakeLists) -> None:
    """Scanning on, a clean sound PDF: the draft is stored; the policy route says scanning is on and working."""
    async with scanning_composer() as client:
        response = await post(client, fields(fake_lists.add(sample_rows(1))), [("見積書.pdf", CLEAN)])
        assert response.status_code == 201, response.text
        policy = (await client.get("/internal/attachment-policy")).json()
    assert policy == {"virus_scanning": True, "scanner_reachable": True, "pdf_allow": [], "attachments_required": False}


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("ご案内.pdf", eicar_pdf(compress=True)),
        ("ご案内.pdf", eicar_pdf(compress=False)),
        ("ご案内.pdf", EICAR),  # the whole attachment: not even a PDF, and the virus is named
    ],
    ids=["in-flate-stream", "in-plain-stream", "whole-file"],
)
async def test_infected_attachment_refuses_the_draft(
    scanning_composer: Any, fake_lists: FakeLists, name: str, data: bytes
) -> None:
    """An infected file: 422 on the attachments field, naming the file and the signature, in Japanese."""
    async with scanning_composer() as client:
        response = await post(client, fields(fake_lists.add(sample_rows(1))), [("表紙.pdf", CLEAN), (name, data)])
        assert response.status_code == 422
        body = response.json()
        assert set(body["errors"]) == {"attachments"}
        message = body["errors"]["attachments"]
        assert f"「{name}」: ウイルスが検出されました（Isseimail.Test.EICAR" in message
        assert "表紙.pdf" not in message
        metrics = (await client.get("/metrics")).text
    assert 'isseimail_composer_attachments_scanned_total{outcome="infected"}' in metrics
    assert 'isseimail_composer_attachments_refused_total{reason="infected"}' in metrics
    assert "isseimail_composer_attachment_scan_seconds_count" in metrics


async def test_stopped_clamd_refuses_the_draft(
    composer_settings: Callable[..., ComposerSettings], fake_lists: FakeLists, tmp_path: Path
) -> None:
    """clamd stopped: nothing passes unscanned; the user is told the file could not be checked."""
    server = ClamdServer(tmp_path / "clamd")
    server.start()
    server.stop()
    async with running_app(create_app(composer_settings(clamd_url=server.tcp_url, clamd_timeout_seconds=2))) as client:
        response = await post(client, fields(fake_lists.add(sample_rows(1))), [("資料.pdf", CLEAN)])
        policy = (await client.get("/internal/attachment-policy")).json()
        metrics = (await client.get("/metrics")).text
    assert response.status_code == 422
    assert response.json()["errors"]["attachments"] == f"「資料.pdf」: {SCAN_FAILED}"
    assert policy["virus_scanning"] is True
    assert policy["scanner_reachable"] is False
    assert 'isseimail_composer_attachments_refused_total{reason="scan_failed"}' in metrics


async def test_scripted_pdf_is_refused_over_http(composer: httpx.AsyncClient, fake_lists: FakeLists) -> None:
    """Without clamd the PDF rules still apply: JavaScript run on open is refused with the reasons named."""
    response = await post(composer, fields(fake_lists.add(sample_rows(1))), [("申込書.pdf", JS_PDF)])
    assert response.status_code == 422
    message = response.json()["errors"]["attachments"]
    assert message.startswith("「申込書.pdf」: JavaScript（スクリプト）、開いたときなどに自動で実行される")
    assert message.endswith("安全のため、このPDFは添付できません。")
    policy = (await composer.get("/internal/attachment-policy")).json()
    assert policy == {
        "virus_scanning": False,
        "scanner_reachable": None,
        "pdf_allow": [],
        "attachments_required": False,
    }


async def test_site_policy_allows_a_rule(
    composer_settings: Callable[..., ComposerSettings], fake_lists: FakeLists
) -> None:
    """ISSEIMAIL_PDF_ALLOW=javascript,auto_action accepts the scripted PDF that is refused by default."""
    settings = composer_settings(pdf_allow="javascript,auto_action")
    async with running_app(create_app(settings)) as client:
        response = await post(client, fields(fake_lists.add(sample_rows(1))), [("申込書.pdf", JS_PDF)])
    assert response.status_code == 201, response.text


async def test_broken_pdf_errors_come_with_the_other_field_errors(composer: httpx.AsyncClient) -> None:
    """A truncated PDF is reported together with the form's other errors (all at once)."""
    response = await post(composer, fields(uuid.uuid4(), subject=""), [("途中.pdf", CLEAN[: len(CLEAN) // 2])])
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors["subject"] == "件名を入力してください。"
    assert errors["attachments"].startswith("「途中.pdf」: PDFファイルが途中で切れています")


async def test_ready_check_scans_again(
    composer_settings: Callable[..., ComposerSettings], clamd_server: ClamdServer, fake_lists: FakeLists
) -> None:
    """A draft stored while scanning was off is scanned at the ready-check, before the pass can be consumed."""
    list_id = fake_lists.add(sample_rows(1))
    async with running_app(create_app(composer_settings())) as client:
        response = await post(client, fields(list_id), [("ご案内.pdf", eicar_pdf(compress=True))])
        assert response.status_code == 201
        campaign_id = response.json()["campaign_id"]
    async with running_app(create_app(composer_settings(clamd_url=clamd_server.unix_url))) as client:
        ready = await client.post(f"/internal/campaigns/{campaign_id}/ready", headers=HEADERS)
    assert ready.status_code == 422
    assert "ウイルスが検出されました" in ready.json()["errors"]["attachments"]


async def test_free_port_without_clamd_is_refused_quickly(
    composer_settings: Callable[..., ComposerSettings], fake_lists: FakeLists
) -> None:
    """A port where nothing listens (connection refused) answers at once, not after the timeout."""
    settings = composer_settings(clamd_url=f"tcp://127.0.0.1:{free_port()}", clamd_timeout_seconds=30)
    async with running_app(create_app(settings)) as client:
        started = asyncio.get_running_loop().time()
        response = await post(client, fields(fake_lists.add(sample_rows(1))), [("a.pdf", CLEAN)])
        assert asyncio.get_running_loop().time() - started < 10
    assert response.status_code == 422
    assert SCAN_FAILED in response.json()["errors"]["attachments"]
