"""The web UI's own guarantees that need no other service: headers, CSRF, escaping, the static assets."""

from __future__ import annotations

import re

from isseimail_gateway.app import create_app
from isseimail_gateway.settings import GatewaySettings
from isseimail_gateway.web.render import local_time
from isseimail_gateway.web.security import CSP
from isseimail_testing.fixtures import INTERNAL_TOKEN
from isseimail_testing.process import free_port, running_app

from .conftest import csrf_token


def settings() -> GatewaySettings:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: any upstream call fails fast
    return GatewaySettings(
        internal_tokens=INTERNAL_TOKEN,
        session_secret="web-test-secret",
        pass_url=dead,
        list_validator_url=dead,
        composer_url=dead,
        dispatcher_url=dead,
        notifier_url=dead,
    )


async def test_every_page_sends_the_security_headers() -> None:
    """Pages, static files and errors all carry the CSP without inline script, no framing, nosniff, no referrer."""
    async with running_app(create_app(settings())) as client:
        for path in ("/", "/apply", "/login", "/admin/login", "/static/style.css", "/static/app.js", "/nowhere"):
            response = await client.get(path)
            assert response.headers["content-security-policy"] == CSP, path
            assert "frame-ancestors 'none'" in CSP
            assert "'unsafe-inline'" not in CSP
            assert response.headers["x-content-type-options"] == "nosniff", path
            assert response.headers["referrer-policy"] == "no-referrer", path


async def test_refused_outsider_gets_the_headers_too() -> None:
    """The intranet guard's 403 is wrapped by the security headers as well."""
    async with running_app(create_app(settings()), client_ip="203.0.113.9") as client:
        response = await client.get("/apply")
    assert response.status_code == 403
    assert response.headers["content-security-policy"] == CSP


async def test_pages_are_japanese_html_without_inline_script() -> None:
    """Every applicant and admin page is lang=ja HTML whose only script is the external /static/app.js."""
    async with running_app(create_app(settings())) as client:
        for path in ("/", "/apply", "/login", "/admin/login"):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith("text/html")
            assert '<html lang="ja">' in response.text
            scripts = re.findall(r"<script([^>]*)>", response.text)
            assert scripts == [' src="/static/app.js" defer'], path
            assert " style=" not in response.text
            assert "onclick" not in response.text


async def test_post_without_csrf_token_is_refused_before_any_service_is_called() -> None:
    """A form post with a missing or forged token gets a Japanese 403 page; the upstream is never asked."""
    async with running_app(create_app(settings())) as client:
        await client.get("/apply")  # sets the CSRF cookie
        missing = await client.post("/apply", data={"applicant_name": "x"})
        forged = await client.post("/apply", data={"csrf_token": "abc.def", "applicant_name": "x"})
    for response in (missing, forged):
        assert response.status_code == 403
        assert "画面の有効期限が切れました" in response.text
        assert response.headers["content-type"].startswith("text/html")


async def test_token_from_another_browser_is_refused() -> None:
    """A token is bound to its own browser's cookie: another browser's valid token does not work."""
    app = create_app(settings())
    async with running_app(app) as alice, running_app(app) as mallory:
        token = csrf_token(await mallory.get("/login"))
        await alice.get("/login")
        response = await alice.post("/login", data={"csrf_token": token, "user_id": "123456"})
    assert response.status_code == 403


async def test_valid_token_reaches_the_api_and_an_outage_is_a_japanese_page() -> None:
    """With a valid token the form goes on to the API; a service that is down shows a 503 page, not a 500."""
    async with running_app(create_app(settings())) as client:
        token = csrf_token(await client.get("/login"))
        response = await client.post(
            "/login", data={"csrf_token": token, "user_id": "123456", "password": "x", "use_date": "2026-11-27"}
        )
    assert response.status_code in (401, 422, 503)
    assert "text/html" in response.headers["content-type"]
    assert "ただいま処理できません" in response.text or "ログイン" in response.text


async def test_malformed_ids_in_urls_are_404_pages() -> None:
    """Ids in page URLs that are neither UUIDs nor numbers are refused as 404 pages before any call."""
    async with running_app(create_app(settings())) as client:
        for path in (
            "/lists/..%2F..%2Fetc",
            "/lists/<script>",
            "/campaigns/abc/confirm",
            "/campaigns/1%0d%0a/accepted",
        ):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert "<script>" not in response.text


async def test_sample_csv_has_the_documented_columns() -> None:
    """The sample CSV linked from step 3 has the five columns in the manual's order, as UTF-8 with BOM."""
    async with running_app(create_app(settings())) as client:
        response = await client.get("/static/sample.csv")
    assert response.status_code == 200
    assert response.content.startswith(b"\xef\xbb\xbf")
    header = response.content.decode("utf-8-sig").splitlines()[0]
    assert header == "メールアドレス,会社名,部署名1,部署名2,ご担当者名"


def test_service_timestamps_are_shown_in_the_users_time_zone() -> None:
    """A UTC timestamp from a service is shown in Asia/Tokyo; a naive one counts as UTC; junk stays as text."""
    assert local_time("2026-11-27T21:31:05.123+00:00", "Asia/Tokyo") == "2026-11-28 06:31"
    assert local_time("2026-11-27T21:31:05", "Asia/Tokyo") == "2026-11-28 06:31"
    assert local_time("not a time", "Asia/Tokyo") == "not a time"
    assert local_time(None, "Asia/Tokyo") == ""


async def test_csv_upload_checks_the_token_in_the_url_before_reading_the_body() -> None:
    """The upload page streams the body on untouched, so its CSRF token travels in the URL and is checked first."""
    async with running_app(create_app(settings())) as client:
        await client.get("/login")
        token = csrf_token(await client.get("/login"))
        files = {"file": ("a.csv", b"a@example.jp,,,,\\u5404\\u4f4d\\r\\n", "text/csv")}
        no_token = await client.post("/lists", files=files)
        wrong = await client.post("/lists", params={"csrf_token": token + "x"}, files=files)
        not_multipart = await client.post("/lists", params={"csrf_token": token}, content=b"x=1")
    assert no_token.status_code == 403
    assert wrong.status_code == 403
    assert not_multipart.status_code == 400
    assert "送信された内容を読み取れませんでした" in not_multipart.text


def test_sample_csv_reads_cleanly_with_the_validators_reader() -> None:
    """The sample CSV offered in step 3 is read by the list validator's own reader without a problem."""
    from isseimail_gateway.web.render import STATIC_DIR
    from isseimail_list_validator.csv_reader import read_csv

    parsed = read_csv((STATIC_DIR / "sample.csv").read_bytes(), max_rows=100, max_columns=10)
    assert parsed.has_header
    assert [r.row for r in parsed.rows] == [2, 3, 4]
    assert parsed.rows[2].contact == "各位"


def test_compose_page_says_whether_attachments_are_required() -> None:
    """The attachments legend follows the composer's policy: 必須 by default, （任意） with a note when allowed."""
    from isseimail_gateway.web.render import _env  # the page alone; the whole flow is in the browser tests

    def page(required: bool) -> str:
        template = _env.get_template("compose.html")
        return template.render(
            csrf_field="csrf_token", csrf_token="t", errors={}, values={}, list_id="1", attachments_required=required
        )

    required = re.search(r"<legend>添付ファイル(.*?)</legend>", page(True))
    optional = re.search(r"<legend>添付ファイル(.*?)</legend>", page(False))
    assert required is not None
    assert "必須" in required.group(1)
    assert optional is not None
    assert optional.group(1) == "（任意）"
    assert "添付ファイルのないメールも送信できます。" in page(False)
    assert "1つ以上添付してください。" in page(True)
