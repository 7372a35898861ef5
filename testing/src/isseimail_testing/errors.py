"""Assertions on the one error shape every service answers (isseimail_shared.errors), and a route that fails.

add_raising_route(app, "/internal/test-only/raise")   # before the app starts
body = assert_error(await client.get("/internal/test-only/raise"), 500)
"""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from isseimail_shared.errors import ErrorBody

# What the raising route's exception says: a test asserts none of it reaches the caller.
LEAK = "internal detail that must stay in the log: /srv/secret.conf"
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff01-\uff60]")
_INTERNALS = ("Traceback", 'File "', "RuntimeError", "Exception", LEAK)


def is_japanese(text: str) -> bool:
    """Whether the text is written for a Japanese reader (kana or kanji in it), not an English framework message."""
    return bool(_JAPANESE.search(text))


def assert_error(response: httpx.Response, status: int, detail: str | None = None) -> ErrorBody:
    """The answer is `status` with the one error body: a Japanese detail (and Japanese field messages), only
    the known fields, JSON, and nothing of the code or the exception behind it."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers["content-type"]
    raw = response.json()
    assert isinstance(raw, dict), raw
    assert set(raw) <= set(ErrorBody.model_fields), raw
    body = ErrorBody.model_validate(raw)
    assert is_japanese(body.detail), body.detail
    assert all(is_japanese(message) for message in (body.errors or {}).values()), body.errors
    if detail is not None:
        assert body.detail == detail, body.detail
    for internal in _INTERNALS:
        assert internal not in response.text, response.text
    return body


def add_raising_route(app: FastAPI, path: str) -> None:
    """A GET route that fails the way a bug does (an exception no handler expects), added before the app starts."""

    async def raising() -> None:
        raise RuntimeError(LEAK)

    app.add_api_route(path, raising, methods=["GET"], include_in_schema=False)
