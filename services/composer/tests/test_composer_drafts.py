"""Composer draft API against real PostgreSQL/RabbitMQ: form rules over HTTP, attachments, reset, preview, ready."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from isseimail_composer.form import MAX_ATTACHMENT_BYTES

from .conftest import HEADERS, PASS_ID, FakeLists, sample_rows
from .pdfs import padded_pdf

PDF = padded_pdf(1000)


def fields(list_id: uuid.UUID | str, **overrides: str) -> dict[str, str]:
    values = {
        "list_id": str(list_id),
        "sender_email": "taro@example.co.jp",
        "sender_name": "株式会社サンプル 山田太郎",
        "subject": "新製品のご案内",
        "body": "いつもお世話になっております。\r\n新製品のご案内です。",
        "charset": "utf-8",
    }
    values.update(overrides)
    return values


async def post(
    client: httpx.AsyncClient,
    data: dict[str, str],
    files: list[tuple[str, bytes]] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    multipart = [("attachments", (name, content, "application/pdf")) for name, content in files or []]
    return await client.post(
        "/internal/campaigns", data=data, files=multipart or None, headers=HEADERS if headers is None else headers
    )


async def create(client: httpx.AsyncClient, list_id: uuid.UUID, files: list[tuple[str, bytes]] | None = None) -> str:
    response = await post(client, fields(list_id), files)
    assert response.status_code == 201, response.text
    campaign_id: str = response.json()["campaign_id"]
    return campaign_id


async def test_valid_draft_is_created_and_read_back(composer: httpx.AsyncClient, fake_lists: FakeLists) -> None:
    """A complete form gives 201 with an id; the stored draft has normalised text and the attachment."""
    list_id = fake_lists.add(sample_rows(2))
    campaign_id = await create(composer, list_id, [("見積書.pdf", PDF)])
    draft = (await composer.get(f"/internal/campaigns/{campaign_id}", headers=HEADERS)).json()
    assert draft["body"] == "いつもお世話になっております。\n新製品のご案内です。"
    assert draft["attachments"] == [{"name": "見積書.pdf", "size": len(PDF)}]
    assert draft["state"] == "draft"


async def test_all_errors_at_once_keyed_by_field(composer: httpx.AsyncClient) -> None:
    """An empty form names every required field in one 422, in Japanese."""
    response = await composer.post("/internal/campaigns", data={"charset": "latin-1"}, headers=HEADERS)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert set(errors) == {"list_id", "sender_email", "sender_name", "subject", "body", "charset"}
    assert errors["subject"] == "件名を入力してください。"
    assert response.json()["detail"].startswith("入力内容に誤りがあります")


LONG_NAME = "あ" * 296 + ".pdf"


BAD_ATTACHMENTS: list[tuple[list[tuple[str, bytes]], str]] = [
    ([("fake.pdf", b"MZ\x90\x00 not a pdf")], "PDFファイルではありません"),
    ([("report.txt", PDF)], "「.pdf」で終わる"),
    ([(f"f{i}.pdf", PDF) for i in range(6)], "5個まで"),
    ([("big.pdf", PDF[:5] + b"0" * (MAX_ATTACHMENT_BYTES - 5 + 1))], "合計2MB"),
    ([("empty.pdf", b"")], "空のファイル"),
    ([("../../x.pdf", PDF)], "フォルダの指定"),
    ([(LONG_NAME, PDF)], "100文字以内"),
    ([("\ue000.pdf", PDF)], "外字"),
    ([("invoice\u202efdp.exe.pdf", PDF)], "向きを変える"),
    ([("a.pdf", PDF), ("b.pdf", b"<html>")], "「b.pdf」: PDFファイルではありません"),
]


async def test_bad_attachments_are_refused(composer: httpx.AsyncClient, fake_lists: FakeLists) -> None:
    """Non-PDFs named .pdf, PDFs named otherwise, 6 files, 2 MB + 1 byte, empty files, paths, long names: 422."""
    list_id = fake_lists.add(sample_rows(1))
    for files, needle in BAD_ATTACHMENTS:
        response = await post(composer, fields(list_id), files)
        assert response.status_code == 422, (needle, response.text)
        assert set(response.json()["errors"]) == {"attachments"}
        assert needle in response.json()["errors"]["attachments"]


async def test_exactly_2_mb_in_five_files_is_accepted(composer: httpx.AsyncClient, fake_lists: FakeLists) -> None:
    """Five PDFs totalling exactly 2,097,152 bytes are within the limit."""
    size = MAX_ATTACHMENT_BYTES // 5
    files = [(f"資料{i}.pdf", padded_pdf(size, seed=i)) for i in range(4)]
    files.append(("残り.pdf", padded_pdf(MAX_ATTACHMENT_BYTES - 4 * size)))
    assert sum(len(d) for _, d in files) == MAX_ATTACHMENT_BYTES
    response = await post(composer, fields(fake_lists.add(sample_rows(1))), files)
    assert response.status_code == 201, response.text


async def test_grossly_oversized_upload_is_413_not_500(composer: httpx.AsyncClient) -> None:
    """An upload far beyond the limit is cut off early with a Japanese 413."""
    response = await post(composer, fields(uuid.uuid4()), [("huge.pdf", b"%PDF-" + b"0" * (5 * 1024 * 1024))])
    assert response.status_code == 413
    assert "2MB" in response.json()["detail"]


async def test_private_use_and_crlf_refused_in_every_text_field(
    composer: httpx.AsyncClient, fake_lists: FakeLists
) -> None:
    """外字 is refused in every text field with position and code point; CR/LF in header fields is refused."""
    list_id = fake_lists.add(sample_rows(1))
    for field in ("sender_name", "subject", "body"):
        value = "ご案内\U000f0001です" if field != "body" else "一行目\n二行目の\ue001です"
        response = await post(composer, fields(list_id, **{field: value}))
        assert response.status_code == 422
        message = response.json()["errors"][field]
        assert "外字" in message
        if field == "body":
            assert "2行目5文字目" in message
            assert "U+E001" in message
        else:
            assert "4文字目" in message
            assert "U+F0001" in message
    for field in ("sender_name", "subject"):
        response = await post(composer, fields(list_id, **{field: "件名\r\nBcc: all@evil.example"}))
        assert response.status_code == 422
        assert "改行" in response.json()["errors"][field]


async def test_emoji_allowed_in_utf8_refused_in_iso_2022_jp(composer: httpx.AsyncClient, fake_lists: FakeLists) -> None:
    """Emoji are standard Unicode: fine in UTF-8 mode; in ISO-2022-JP mode refused with positions (as are ① ㈱ 髙)."""
    list_id = fake_lists.add(sample_rows(1))
    ok = await post(composer, fields(list_id, subject="ご案内🎉", sender_name="山田😀", body="本文🙇"))
    assert ok.status_code == 201, ok.text
    bad = await post(
        composer,
        fields(list_id, charset="iso-2022-jp", subject="ご案内🎉", sender_name="髙橋", body="①の件\n㈱テスト"),
    )
    assert bad.status_code == 422
    errors = bad.json()["errors"]
    assert set(errors) == {"subject", "sender_name", "body"}
    assert "1行目1文字目" in errors["body"]
    assert "2行目1文字目" in errors["body"]
    assert "ISO-2022-JP" in errors["sender_name"]


async def test_sender_email_rules(composer_settings: Any, fake_lists: FakeLists) -> None:
    """One address, ≤50 characters, only the configured sender domains."""
    from isseimail_composer.app import create_app
    from isseimail_testing.process import running_app

    list_id = fake_lists.add(sample_rows(1))
    async with running_app(create_app(composer_settings(sender_domains="example.co.jp"))) as client:
        cases = {
            "a@example.co.jp, b@example.co.jp": "1つだけ",
            "x" * 40 + "@example.co.jp": "50文字以内",
            "taro@other.example": "example.co.jp",
            "taro@@example.co.jp": "1つだけ",
            "山田@example.co.jp": "形式",
            "taro@example.co.jp\r\nBcc: all@example.co.jp": "改行は使えません",
        }
        for value, needle in cases.items():
            response = await post(client, fields(list_id, sender_email=value))
            assert response.status_code == 422
            assert needle in response.json()["errors"]["sender_email"], value
        assert (await post(client, fields(list_id, sender_email="Taro@EXAMPLE.co.jp"))).status_code == 201


async def test_attachments_required_unless_the_setting_allows_none(
    composer_settings: Any, fake_lists: FakeLists
) -> None:
    """ISSEIMAIL_ATTACHMENTS_REQUIRED (the manual's 必須): a draft without a PDF is 422 on attachments, also when a
    PUT clears the stored ones; the policy route tells the compose page. Allowed, the same draft is stored."""
    from isseimail_composer.app import create_app
    from isseimail_composer.form import NO_ATTACHMENT
    from isseimail_testing.process import running_app

    list_id = fake_lists.add(sample_rows(1))
    async with running_app(create_app(composer_settings(attachments_required=True))) as client:
        refused = await post(client, fields(list_id))
        assert refused.status_code == 422
        assert refused.json()["errors"] == {"attachments": NO_ATTACHMENT}
        created = await post(client, fields(list_id), [("資料.pdf", PDF)])
        assert created.status_code == 201, created.text
        campaign_id = created.json()["campaign_id"]
        kept = await client.put(f"/internal/campaigns/{campaign_id}", data=fields(list_id), headers=HEADERS)
        assert kept.status_code == 200, kept.text  # the stored file still counts
        cleared = await client.put(
            f"/internal/campaigns/{campaign_id}", data={**fields(list_id), "clear_attachments": "1"}, headers=HEADERS
        )
        assert cleared.status_code == 422
        assert cleared.json()["errors"]["attachments"] == NO_ATTACHMENT
        assert (await client.get("/internal/attachment-policy")).json()["attachments_required"] is True
    async with running_app(create_app(composer_settings(attachments_required=False))) as client:
        assert (await post(client, fields(list_id))).status_code == 201
        assert (await client.get("/internal/attachment-policy")).json()["attachments_required"] is False


async def test_html_body_is_kept_as_text(composer: httpx.AsyncClient, fake_lists: FakeLists) -> None:
    """HTML in the body is accepted as plain text and shown verbatim in the preview (never interpreted)."""
    list_id = fake_lists.add(sample_rows(1))
    response = await post(composer, fields(list_id, body="<script>alert(1)</script><b>太字</b>"))
    assert response.status_code == 201
    preview = (
        await composer.get(f"/internal/campaigns/{response.json()['campaign_id']}/preview", headers=HEADERS)
    ).json()
    assert "<script>alert(1)</script><b>太字</b>" in preview["text"]


async def test_body_length_counts_crlf_as_one(composer: httpx.AsyncClient, fake_lists: FakeLists) -> None:
    """5,000 characters with CRLF line breaks pass; 5,001 fail with the count named."""
    list_id = fake_lists.add(sample_rows(1))
    body = ("あ" * 99 + "\r\n") * 49 + "あ" * 100  # 5,000 as the user sees them; 5,049 if CRLF counted twice
    assert (await post(composer, fields(list_id, body=body))).status_code == 201
    response = await post(composer, fields(list_id, body="い" * 5001))
    assert "5,000文字以内" in response.json()["errors"]["body"]
    assert "5,001文字" in response.json()["errors"]["body"]


async def test_put_keeps_or_replaces_attachments(composer: httpx.AsyncClient, fake_lists: FakeLists) -> None:
    """PUT without files keeps the stored ones, with files replaces them, with clear_attachments removes them."""
    list_id = fake_lists.add(sample_rows(1))
    campaign_id = await create(composer, list_id, [("a.pdf", PDF)])
    url = f"/internal/campaigns/{campaign_id}"
    assert (await composer.put(url, data=fields(list_id, subject="改訂"), headers=HEADERS)).status_code == 200
    draft = (await composer.get(url, headers=HEADERS)).json()
    assert draft["subject"] == "改訂"
    assert [a["name"] for a in draft["attachments"]] == ["a.pdf"]
    files = [("attachments", ("b.pdf", PDF, "application/pdf"))]
    assert (await composer.put(url, data=fields(list_id), files=files, headers=HEADERS)).status_code == 200
    assert [a["name"] for a in (await composer.get(url, headers=HEADERS)).json()["attachments"]] == ["b.pdf"]
    cleared = await composer.put(url, data={**fields(list_id), "clear_attachments": "1"}, headers=HEADERS)
    assert cleared.status_code == 200
    assert (await composer.get(url, headers=HEADERS)).json()["attachments"] == []
    bad = await composer.put(url, data=fields(list_id, subject=""), headers=HEADERS)
    assert bad.status_code == 422
    assert set(bad.json()["errors"]) == {"subject"}


async def test_reset_deletes_draft(composer: httpx.AsyncClient, fake_lists: FakeLists) -> None:
    """DELETE clears the draft: afterwards it is not found."""
    campaign_id = await create(composer, fake_lists.add(sample_rows(1)), [("a.pdf", PDF)])
    assert (await composer.delete(f"/internal/campaigns/{campaign_id}", headers=HEADERS)).status_code == 200
    assert (await composer.get(f"/internal/campaigns/{campaign_id}", headers=HEADERS)).status_code == 404
    assert (await composer.delete(f"/internal/campaigns/{campaign_id}", headers=HEADERS)).status_code == 404


async def test_other_pass_sees_nothing(composer: httpx.AsyncClient, fake_lists: FakeLists) -> None:
    """A draft is invisible to another pass and to callers without the pass headers."""
    campaign_id = await create(composer, fake_lists.add(sample_rows(1)))
    other = {"X-Isseimail-Pass-Id": str(PASS_ID + 1), "X-Isseimail-User-Id": "654321"}
    for method in ("GET", "DELETE"):
        assert (await composer.request(method, f"/internal/campaigns/{campaign_id}", headers=other)).status_code == 404
    assert (await composer.get(f"/internal/campaigns/{campaign_id}")).status_code == 401
    assert (await composer.get("/internal/campaigns/not-a-uuid", headers=HEADERS)).status_code == 404


async def test_preview_shows_first_recipient_view(composer: httpx.AsyncClient, fake_lists: FakeLists) -> None:
    """The preview is the first row's addressee block, the body and the sender block, plus From and attachments."""
    campaign_id = await create(composer, fake_lists.add(sample_rows(2)), [("見積書.pdf", PDF)])
    preview = (await composer.get(f"/internal/campaigns/{campaign_id}/preview", headers=HEADERS)).json()
    assert preview["from"] == "株式会社サンプル 山田太郎 <taro@example.co.jp>"
    assert preview["to"] == "hanako@example.com"
    assert preview["subject"] == "新製品のご案内"
    assert preview["text"] == (
        "株式会社テスト\n営業部\n第一課\n佐藤花子 様\n\n"
        "いつもお世話になっております。\n新製品のご案内です。\n\n"
        "株式会社サンプル 山田太郎\ntaro@example.co.jp\n"
    )
    assert preview["attachments"] == [{"name": "見積書.pdf", "size": len(PDF)}]


async def test_ready_check_refuses_unusable_list(composer: httpx.AsyncClient, fake_lists: FakeLists) -> None:
    """The ready-check passes only for a valid list of the same pass; otherwise 422 on list_id."""
    for status, owner, needle in (
        ("validating", PASS_ID, "確認が終わっていません"),
        ("invalid", PASS_ID, "送信できないアドレス"),
        ("valid", 999, "見つかりません"),
    ):
        campaign_id = await create(composer, fake_lists.add(sample_rows(2), status=status, pass_id=owner))
        response = await composer.post(f"/internal/campaigns/{campaign_id}/ready", headers=HEADERS)
        assert response.status_code == 422
        assert needle in response.json()["errors"]["list_id"]
    unknown = await create(composer, uuid.uuid4())
    response = await composer.post(f"/internal/campaigns/{unknown}/ready", headers=HEADERS)
    assert response.status_code == 422
    assert "見つかりません" in response.json()["errors"]["list_id"]


async def test_ready_check_names_list_cells_iso_2022_jp_cannot_carry(
    composer: httpx.AsyncClient, fake_lists: FakeLists
) -> None:
    """An ISO-2022-JP campaign is not ready while the list has cells outside JIS X 0208; the rows are named."""
    rows = sample_rows(3)
    rows[1]["company"] = "㈱髙橋商事"
    list_id = fake_lists.add(rows)
    response = await post(composer, fields(list_id, charset="iso-2022-jp"))
    assert response.status_code == 201
    ready = await composer.post(f"/internal/campaigns/{response.json()['campaign_id']}/ready", headers=HEADERS)
    assert ready.status_code == 422
    assert "2行目の会社名「㈱髙」" in ready.json()["errors"]["charset"]


async def test_ready_check_passes_for_valid_list(composer: httpx.AsyncClient, fake_lists: FakeLists) -> None:
    """A complete draft with a valid list is ready; the count includes the sender's copy."""
    campaign_id = await create(composer, fake_lists.add(sample_rows(2)))
    response = await composer.post(f"/internal/campaigns/{campaign_id}/ready", headers=HEADERS)
    assert response.status_code == 200
    assert response.json() == {"ready": True, "campaign_id": campaign_id, "recipient_count": 3}


async def test_garbage_bodies_are_4xx(composer: httpx.AsyncClient) -> None:
    """JSON, broken multipart and absurd field sizes get a Japanese 4xx, never a 500."""
    as_json = await composer.post("/internal/campaigns", json={"subject": "x"}, headers=HEADERS)
    assert as_json.status_code == 415
    broken = await composer.post(
        "/internal/campaigns",
        content=b'--xx\r\nContent-Disposition: form-data; name="subject"\r\n\r\nabc',
        headers={**HEADERS, "Content-Type": "multipart/form-data; boundary=yy"},
    )
    assert 400 <= broken.status_code < 500
    huge_field = await composer.post("/internal/campaigns", data={"body": "あ" * 200_000}, headers=HEADERS)
    assert 400 <= huge_field.status_code < 500
    no_boundary = await composer.post(
        "/internal/campaigns", content=b"abc", headers={**HEADERS, "Content-Type": "multipart/form-data"}
    )
    assert 400 <= no_boundary.status_code < 500
    odd = await composer.post(
        "/internal/campaigns",
        content=b"list_id=%ZZ&subject=%E3%81%82&body=%00%FF",
        headers={**HEADERS, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert odd.status_code == 422
    assert "list_id" in odd.json()["errors"]
    raw = (
        b'--b\r\nContent-Disposition: form-data; name="attachments"; filename="a\x00\x1bb.pdf"\r\n\r\n'
        + PDF
        + b"\r\n--b--\r\n"
    )
    nul_name = await composer.post(
        "/internal/campaigns", content=raw, headers={**HEADERS, "Content-Type": "multipart/form-data; boundary=b"}
    )
    assert nul_name.status_code == 422
    assert "attachments" in nul_name.json()["errors"]
    bad_headers = await composer.post("/internal/campaigns", data={}, headers={"X-Isseimail-Pass-Id": "-1"})
    assert bad_headers.status_code == 401
    for response in (as_json, broken, huge_field, no_boundary, odd, nul_name, bad_headers):
        assert not response.json()["detail"].isascii()
