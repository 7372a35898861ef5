"""Attachment safety through the gateway: the compose page says whether virus scanning is on, and a draft with
an infected or scripted PDF is refused at compose time with a Japanese reason (real services, real clamd)."""

from __future__ import annotations

import io
from collections.abc import Callable

import pikepdf
import pytest
from tests.flow_support import upload_valid_list
from tests.test_compose_send_flow import ROWS, Stack, form, login, stack  # noqa: F401 - fixture

from isseimail_testing.clamd import EICAR
from isseimail_testing.pdfs import sample_pdf

SCAN_ON = "添付ファイルはウイルス検査（ClamAV）とPDFの安全性チェックを行ってから受け付けます。"
SCAN_OFF = "ウイルス検査は行われていません（PDFの安全性チェックのみ行います）。"


def edited(pdf: bytes, edit: Callable[[pikepdf.Pdf], None]) -> bytes:
    """sample_pdf changed by qpdf (which writes a correct cross-reference table and compresses streams)."""
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        edit(doc)
        doc.save(out, compress_streams=True)
    return out.getvalue()


def add_eicar_stream(doc: pikepdf.Pdf) -> None:
    doc.pages[0].Contents = doc.make_indirect(pikepdf.Array([doc.pages[0].Contents, pikepdf.Stream(doc, EICAR)]))


def add_open_script(doc: pikepdf.Pdf) -> None:
    doc.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)"))


@pytest.mark.parametrize("stack", [{"clamd": True}], indirect=True)
async def test_scanning_on_is_shown_and_an_infected_pdf_is_refused(stack: Stack) -> None:  # noqa: F811
    """With clamd: the compose page says so; EICAR inside a compressed PDF stream is refused with its name."""
    async with stack.gateway() as client:
        await login(stack, client, "taro@example.co.jp")
        list_id = await upload_valid_list(client, ROWS)
        page = await client.get(f"/compose?list_id={list_id}")
        assert page.status_code == 200
        assert SCAN_ON in page.text
        infected = edited(sample_pdf(4000), add_eicar_stream)
        assert EICAR not in infected  # compressed: only a scanner that decodes PDF streams sees it
        files = [
            ("attachments", ("会社案内.pdf", sample_pdf(5000), "application/pdf")),
            ("attachments", ("発表会のご案内.pdf", infected, "application/pdf")),
        ]
        refused = await client.post("/api/v1/campaigns", data=form(list_id), files=files)
        assert refused.status_code == 422
        message = refused.json()["errors"]["attachments"]
        assert message.startswith("「発表会のご案内.pdf」: ウイルスが検出されました（Isseimail.Test.EICAR")
        assert "会社案内" not in message
        clean = await client.post("/api/v1/campaigns", data=form(list_id), files=files[:1])
        assert clean.status_code == 201, clean.text


async def test_scanning_off_is_shown_and_a_scripted_pdf_is_refused(stack: Stack) -> None:  # noqa: F811
    """Without clamd: the page says scanning is off; a PDF that runs JavaScript on open is still refused."""
    async with stack.gateway() as client:
        await login(stack, client, "hanako@example.co.jp")
        list_id = await upload_valid_list(client, ROWS)
        page = await client.get(f"/compose?list_id={list_id}")
        assert SCAN_OFF in page.text
        files = [("attachments", ("申込書.pdf", edited(sample_pdf(3000), add_open_script), "application/pdf"))]
        refused = await client.post("/api/v1/campaigns", data=form(list_id), files=files)
        assert refused.status_code == 422
        message = refused.json()["errors"]["attachments"]
        assert message.startswith("「申込書.pdf」: JavaScript（スクリプト）")
        assert "添付できません" in message
