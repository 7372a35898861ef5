"""Every service answers errors in the one shape (isseimail_shared.errors): an unknown route, a wrong method,
a request that fails validation, a domain refusal and a bug (500) — Japanese, JSON, no traceback."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI

from isseimail_composer.app import create_app as composer_app
from isseimail_composer.settings import ComposerSettings
from isseimail_dispatcher.app import create_app as dispatcher_app
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_gateway.app import create_app as gateway_app
from isseimail_gateway.settings import GatewaySettings
from isseimail_list_validator.app import create_app as list_validator_app
from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_notifier.app import create_app as notifier_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_pass.app import create_app as pass_app
from isseimail_pass.settings import PassSettings
from isseimail_shared.errors import INTERNAL, INVALID_INPUT, ROUTE_NOT_FOUND
from isseimail_testing.errors import LEAK, add_raising_route, assert_error
from isseimail_testing.process import running_app

UNKNOWN = str(uuid.uuid4())
PASS_HEADERS = {"X-Isseimail-Pass-Id": "1", "X-Isseimail-User-Id": "123456"}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Callable[..., Any]], FastAPI]  # make_settings -> the service's app
    prefix: str  # where its routes live (/internal, or the gateway's /api/v1)
    invalid: Call  # fails request validation: 422 with per-field messages
    refused: Call  # a domain error the service raises itself
    refused_status: int
    refused_detail: str
    wrong_method: Call  # an existing route with a method it does not take


CASES = [
    Case(
        "pass-service",
        lambda make: pass_app(make(PassSettings)),
        "/internal",
        Call("POST", "/internal/applications", {"json": {}}),
        Call("GET", "/internal/passes/424242"),
        404,
        "1DayPassが見つかりません。",
        Call("DELETE", "/internal/applications"),
    ),
    Case(
        "list-validator",
        lambda make: list_validator_app(make(ListValidatorSettings)),
        "/internal",
        Call("GET", "/internal/lists/not-a-list-id", {"headers": PASS_HEADERS}),
        Call("GET", f"/internal/lists/{UNKNOWN}", {"headers": PASS_HEADERS}),
        404,
        "送信先リストが見つかりません。",
        Call("DELETE", "/internal/lists/limits"),
    ),
    Case(
        "composer",
        lambda make: composer_app(make(ComposerSettings)),
        "/internal",
        Call("POST", "/internal/domains/example.jp/override", {"json": {}}),
        Call("GET", f"/internal/campaigns/{UNKNOWN}", {"headers": PASS_HEADERS}),
        404,
        "指定された一斉メールが見つかりません。",
        Call("PATCH", "/internal/attachment-policy"),
    ),
    Case(
        "dispatcher",
        lambda make: dispatcher_app(make(DispatcherSettings)),
        "/internal",
        Call("GET", f"/internal/campaigns/{UNKNOWN}/progress"),  # the acting pass header is required
        Call("GET", f"/internal/campaigns/{UNKNOWN}/progress", {"headers": PASS_HEADERS}),
        404,
        "指定された一斉メールは見つかりません。",
        Call("DELETE", f"/internal/campaigns/{UNKNOWN}/progress"),
    ),
    Case(
        "notifier",
        lambda make: notifier_app(make(NotifierSettings)),
        "/internal",
        Call("POST", "/internal/suppressions", {"json": {}}),
        Call(
            "DELETE",
            "/internal/suppressions/nobody@example.jp",
            {"json": {"reason": "テスト", "actor": "admin@example.jp", "scope": "global"}},
        ),
        404,
        "この送信先は配信停止リストに登録されていません。",
        Call("PUT", "/internal/suppressions"),
    ),
    Case(
        "gateway",
        lambda make: gateway_app(make(GatewaySettings, session_secret="error-shape-secret")),
        "/api/v1",
        Call("POST", "/api/v1/session", {"json": {"user_id": "1234567"}}),
        Call("GET", "/api/v1/session"),  # no session cookie
        401,
        "ログインしてください。",
        Call("PATCH", "/api/v1/session"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_errors_have_one_shape(
    case: Case, make_settings: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """404, 405, 422, the service's own refusal and a 500: each the one JSON body with a Japanese detail."""
    app = case.build(make_settings)
    raising = f"{case.prefix}/test-only/raise"
    add_raising_route(app, raising)
    async with running_app(app, raise_app_exceptions=False) as client:
        missing = await client.get(f"{case.prefix}/no-such-route")
        wrong = await client.request(case.wrong_method.method, case.wrong_method.path, **case.wrong_method.kwargs)
        invalid = await client.request(case.invalid.method, case.invalid.path, **case.invalid.kwargs)
        refused = await client.request(case.refused.method, case.refused.path, **case.refused.kwargs)
        with caplog.at_level(logging.ERROR, logger="isseimail_shared.errors"):
            failed = await client.get(raising)

    assert_error(missing, 404, ROUTE_NOT_FOUND)
    assert_error(wrong, 405)
    assert wrong.headers["allow"]  # the methods the route does take, as HTTP says
    body = assert_error(invalid, 422, INVALID_INPUT)
    assert body.errors, invalid.text  # the field(s) at fault, each with its own message
    assert_error(refused, case.refused_status, case.refused_detail)
    assert_error(failed, 500, INTERNAL)
    logged = [r for r in caplog.records if r.name == "isseimail_shared.errors" and r.exc_info]
    assert logged, "the 500's traceback must reach the log"
    assert logged[0].getMessage() == f"unhandled error on GET {raising}"
    assert LEAK in str(logged[0].exc_info[1])  # type: ignore[index]
