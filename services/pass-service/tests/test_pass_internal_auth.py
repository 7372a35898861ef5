"""The internal API needs the service token (issue 18 #7): a process that merely reaches the pass-service over
the network gets nothing, not even the list of passes with names and e-mails; the probes stay open."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import httpx

from isseimail_pass.app import create_app
from isseimail_pass.settings import PassSettings
from isseimail_shared.internal_auth import HEADER
from isseimail_testing.http import serving_service

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, FakeClock, issue


async def test_internal_routes_refuse_callers_without_the_token(
    make_settings: Callable[..., Any], clock: FakeClock, db: asyncpg.Connection
) -> None:
    """No token or a wrong one: 401 on every internal route; current and previous token both work; probes open."""
    settings: PassSettings = make_settings(
        PassSettings,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        internal_tokens="new-token-0123456789,old-token-0123456789",
    )
    async with serving_service(create_app(settings, clock=clock)) as url, httpx.AsyncClient(base_url=url) as http:
        for method, path in [
            ("GET", "/internal/passes"),
            ("GET", "/internal/applications"),
            ("POST", "/internal/admin/login"),
            ("GET", "/internal/passes/1"),
            ("GET", "/docs"),
            ("GET", "/openapi.json"),
        ]:
            for headers in ({}, {HEADER: "guess"}, {HEADER: ""}, {HEADER.lower(): "new-token-012345678"}):
                answer = await http.request(method, path, headers=headers)
                assert answer.status_code == 401, (method, path, headers, answer.text)
                assert answer.json() == {"detail": "内部APIの認証に失敗しました。"}
        for probe in ("/healthz", "/readyz", "/metrics"):
            assert (await http.get(probe)).status_code == 200, probe
        for token in ("new-token-0123456789", "old-token-0123456789"):  # rotation: both accepted meanwhile
            client = httpx.AsyncClient(base_url=url, headers={HEADER: token})
            async with client:
                issued = await issue(client, db)
                listed = (await client.get("/internal/passes")).json()
                assert any(item["pass_id"] == issued.pass_id for item in listed["items"])
