"""Fixtures and helpers shared by the gateway's administrator tests (the console API and the admin pages)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from isseimail_gateway.app import create_app
from isseimail_gateway.settings import GatewaySettings
from isseimail_notifier.app import create_app as notifier_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_pass.app import create_app as pass_app
from isseimail_pass.settings import PassSettings
from isseimail_testing.http import serving_service
from isseimail_testing.process import free_port, running_app

ADMIN_EMAIL = "admin@corp.example.jp"  # the administrator the pass-service creates at start
ADMIN_PASSWORD = "admin-password-for-tests"
CSRF_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(page: httpx.Response) -> str:
    """The CSRF token of the form on a page."""
    match = CSRF_TOKEN.search(page.text)
    assert match, "the form carries a CSRF token"
    return match.group(1)


async def admin_login(client: httpx.AsyncClient) -> None:
    """Log in on the admin pages as the administrator the pass-service creates at start."""
    page = await client.get("/admin/login")
    response = await client.post(
        "/admin/login", data={"csrf_token": csrf_token(page), "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin"


@pytest.fixture
async def admin_gateway(make_settings: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway (in-process client) in front of a real pass-service and notifier on loopback ports."""
    pass_port, notifier_port = free_port(), free_port()
    pass_settings = make_settings(PassSettings, admin_email=ADMIN_EMAIL, admin_password=ADMIN_PASSWORD)
    notifier_settings = make_settings(NotifierSettings, bounce_listen_port=free_port())
    settings = make_settings(
        GatewaySettings,
        session_secret="admin-tests-secret",
        pass_url=f"http://127.0.0.1:{pass_port}",
        notifier_url=f"http://127.0.0.1:{notifier_port}",
    )
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(serving_service(notifier_app(notifier_settings), port=notifier_port))
        await stack.enter_async_context(serving_service(pass_app(pass_settings), port=pass_port))
        yield await stack.enter_async_context(running_app(create_app(settings)))
