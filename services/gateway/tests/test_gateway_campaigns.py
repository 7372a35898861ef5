"""The gateway's campaign API in front of the real pass-service and composer: session required, size cap
while streaming, ids checked, the composer's per-field errors relayed unchanged."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from isseimail_composer.app import create_app as composer_app
from isseimail_composer.settings import ComposerSettings
from isseimail_gateway.app import create_app as gateway_app
from isseimail_gateway.settings import GatewaySettings
from isseimail_pass.app import create_app as pass_app
from isseimail_pass.settings import PassSettings
from isseimail_testing.fixtures import INTERNAL_TOKEN
from isseimail_testing.http import serving_service
from isseimail_testing.passes import gateway_login, issue_pass
from isseimail_testing.process import free_port, running_app

DAY = dt.date(2026, 12, 3)
NOW = dt.datetime(2026, 12, 3, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
ADMIN = ("admin@example.jp", "admin-password-long-enough")


@pytest.fixture
async def gateway(make_settings: Callable[..., Any], database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway logged in with a fresh pass; pass-service and composer behind it on real ports."""
    pass_settings = make_settings(PassSettings, admin_email=ADMIN[0], admin_password=ADMIN[1])
    dead = f"http://127.0.0.1:{free_port()}"
    composer_settings = make_settings(ComposerSettings, list_validator_url=dead)
    async with (
        serving_service(pass_app(pass_settings, clock=lambda: NOW)) as pass_url,
        serving_service(composer_app(composer_settings)) as composer_url,
    ):
        settings = GatewaySettings(
            internal_tokens=INTERNAL_TOKEN,
            session_secret="campaigns-test-secret",
            pass_url=pass_url,
            list_validator_url=dead,
            composer_url=composer_url,
            dispatcher_url=dead,
            notifier_url=dead,
        )
        async with running_app(gateway_app(settings)) as client:
            for method, path in (
                ("POST", "/api/v1/campaigns"),
                ("PUT", f"/api/v1/campaigns/{uuid.uuid4()}"),
                ("DELETE", f"/api/v1/campaigns/{uuid.uuid4()}"),
                ("GET", f"/api/v1/campaigns/{uuid.uuid4()}/preview"),
                ("POST", f"/api/v1/campaigns/{uuid.uuid4()}/send"),
            ):
                response = await client.request(method, path)
                assert response.status_code == 401, (method, path)
                assert response.json()["detail"] == "ログインしてください。"
            await _login(client, pass_url, database_url)
            yield client


async def _login(client: httpx.AsyncClient, pass_url: str, database_url: str) -> None:
    issued = await issue_pass(pass_url, database_url, admin=ADMIN, applicant_email="taro@example.co.jp", use_date=DAY)
    await gateway_login(client, issued)


async def test_errors_relayed_size_capped_ids_checked(gateway: httpx.AsyncClient) -> None:
    """Per-field 422 from the composer arrives unchanged; >2.5 MB is cut off with 413; a bad id is 404."""
    r = await gateway.post(
        "/api/v1/campaigns",
        data={"list_id": str(uuid.uuid4()), "subject": "件名\r\nBcc: x@evil.example", "charset": "utf-8"},
        files=[("attachments", ("../../etc/passwd.pdf", b"%PDF-1.4", "application/pdf"))],
    )
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert set(errors) == {"sender_email", "sender_name", "subject", "body", "attachments"}
    assert "改行" in errors["subject"]
    assert "フォルダ" in errors["attachments"]

    huge = await gateway.post(
        "/api/v1/campaigns",
        data={"list_id": str(uuid.uuid4())},
        files=[("attachments", ("big.pdf", b"%PDF-" + b"0" * (3 * 1024 * 1024), "application/pdf"))],
    )
    assert huge.status_code == 413
    assert "2MB" in huge.json()["errors"]["attachments"]

    for method, path in (("GET", "/api/v1/campaigns/nope/preview"), ("POST", "/api/v1/campaigns/nope/send")):
        missing = await gateway.request(method, path)
        assert missing.status_code == 404
        assert missing.json()["detail"] == "指定された一斉メールが見つかりません。"
    unknown = await gateway.get(f"/api/v1/campaigns/{uuid.uuid4()}/preview")
    assert unknown.status_code == 404


async def test_openapi_documents_the_campaign_form(gateway: httpx.AsyncClient) -> None:
    """The OpenAPI schema names every form field, with the 2 MB attachment rule."""
    schema = (await gateway.get("/api/v1/openapi.json")).json()
    body = schema["paths"]["/api/v1/campaigns"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(body["properties"]) >= {
        "list_id",
        "sender_email",
        "sender_name",
        "subject",
        "body",
        "charset",
        "attachments",
    }
    assert "2,097,152" in body["properties"]["attachments"]["description"]
    assert "/api/v1/campaigns/{campaign_id}/send" in schema["paths"]
