"""The gateway's two error faces: the JSON API answers the one error shape, the pages answer Japanese HTML
error pages (never JSON, never a traceback), and an upstream's refusal is passed on as the upstream said it."""

from __future__ import annotations

import httpx
import pytest

from isseimail_gateway.app import create_app
from isseimail_gateway.upstream import UNAVAILABLE, relayed
from isseimail_gateway.web.security import CSP
from isseimail_shared.errors import INTERNAL, ROUTE_NOT_FOUND
from isseimail_testing.errors import LEAK, add_raising_route, assert_error
from isseimail_testing.process import running_app

from .test_web_pages import settings


def assert_page(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html"), response.headers["content-type"]
    assert response.headers["content-security-policy"] == CSP
    assert message in response.text
    assert "Traceback" not in response.text
    assert LEAK not in response.text


async def test_pages_answer_html_and_the_api_answers_json() -> None:
    """An unknown page, a wrong method on a page and a bug behind a page are HTML; the same under /api/ are JSON."""
    app = create_app(settings())
    add_raising_route(app, "/test-only/raise")
    add_raising_route(app, "/api/v1/test-only/raise")
    async with running_app(app, raise_app_exceptions=False) as client:
        assert_page(await client.get("/no-such-page"), 404, ROUTE_NOT_FOUND)
        wrong = await client.delete("/apply")
        assert_page(wrong, 405, "このURLではその操作はできません。")
        assert "GET" in wrong.headers["allow"]
        assert_page(await client.get("/test-only/raise"), 500, INTERNAL)
        # a page's own refusal (web/failure.py WebError) stays its rendered page
        assert_page(await client.get("/compose"), 400, "送信先CSVファイルのチェック")

        assert_error(await client.get("/api/v1/no-such-route"), 404, ROUTE_NOT_FOUND)
        assert_error(await client.delete("/api/v1/session/x"), 404, ROUTE_NOT_FOUND)
        assert_error(await client.get("/api/v1/test-only/raise"), 500, INTERNAL)


def upstream(status: int, body: bytes, **headers: str) -> httpx.Response:
    return httpx.Response(status, content=body, headers={"content-type": "application/json", **headers})


def test_an_upstream_refusal_is_passed_on_as_it_is() -> None:
    """Status, detail, field messages, reason code and a throttled login's Retry-After all reach the user."""
    body = '{"detail": "ファイルを読めません。", "errors": {"file": "空のファイルです。"}, "code": "empty"}'.encode()
    error = relayed(upstream(422, body, **{"retry-after": "30"}))
    assert (error.status, error.detail, error.errors, error.code) == (
        422,
        "ファイルを読めません。",
        {"file": "空のファイルです。"},
        "empty",
    )
    assert error.headers == {"Retry-After": "30"}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (422, b"<html>not json</html>"),
        (404, b'{"message": "no detail"}'),
        (409, b'{"detail": 42}'),
        (502, '{"detail": "上流の障害"}'.encode()),
        (200, '{"detail": "成功なのに誤り扱い"}'.encode()),
    ],
)
def test_an_upstream_answer_outside_the_shape_is_unavailable(status: int, body: bytes) -> None:
    """An answer not in the one error shape (or not an error at all) becomes the user's Japanese 503."""
    error = relayed(upstream(status, body))
    assert (error.status, error.detail, error.errors) == (503, UNAVAILABLE, None)
