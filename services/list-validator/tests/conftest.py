"""Fixtures for the list-validator's tests: the service against the real DNS server, database and broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from isseimail_list_validator.app import create_app
from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_testing.dns import DnsServer
from isseimail_testing.process import free_port, running_app


@pytest.fixture
def lv_settings(make_settings: Callable[..., Any], dns_server: DnsServer) -> Callable[..., ListValidatorSettings]:
    """Settings pointed at this test's DNS server; the notifier is unreachable unless a test says otherwise."""

    def build(**overrides: Any) -> ListValidatorSettings:
        values: dict[str, Any] = {
            "dns_nameservers": dns_server.nameserver,
            "dns_timeout_seconds": 0.3,
            "dns_attempts": 2,
            "result_flush_seconds": 0.02,
            "notifier_url": f"http://127.0.0.1:{free_port()}",
            "suppression_timeout_seconds": 2,
        }
        values.update(overrides)
        settings: ListValidatorSettings = make_settings(ListValidatorSettings, **values)
        return settings

    return build


@pytest.fixture
async def lv(lv_settings: Callable[..., ListValidatorSettings]) -> AsyncIterator[httpx.AsyncClient]:
    """The list-validator with default test settings, as an in-process client."""
    async with running_app(create_app(lv_settings())) as client:
        yield client
