"""HTTP clients for the services behind the gateway, one pooled httpx client each."""

from __future__ import annotations

from typing import Any, Literal

import httpx
from fastapi import HTTPException, Request

from isseimail_gateway.settings import GatewaySettings
from isseimail_shared.app import registered
from isseimail_shared.internal_auth import internal_client

Service = Literal["pass", "list_validator", "composer", "dispatcher", "notifier"]
UNAVAILABLE = "ただいま処理できません。しばらくしてから再度お試しください。"


class Upstreams:
    def __init__(self, settings: GatewaySettings) -> None:
        timeout = httpx.Timeout(settings.upstream_timeout_seconds, connect=5.0)
        tokens = settings.internal_tokens
        self.clients: dict[Service, httpx.AsyncClient] = {
            "pass": internal_client(settings.pass_url, tokens, timeout),
            "list_validator": internal_client(settings.list_validator_url, tokens, timeout),
            "composer": internal_client(settings.composer_url, tokens, timeout),
            "dispatcher": internal_client(settings.dispatcher_url, tokens, timeout),
            "notifier": internal_client(settings.notifier_url, tokens, timeout),
        }

    async def call(self, service: Service, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call a service; a network failure or a 5xx becomes a Japanese 503 for the user."""
        try:
            response = await self.clients[service].request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise HTTPException(503, UNAVAILABLE) from exc
        if response.status_code >= 500:
            raise HTTPException(503, UNAVAILABLE)
        return response

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()


def get_upstreams(request: Request) -> Upstreams:
    return registered(request, Upstreams)


def client_ip(request: Request) -> str:
    """The client address the intranet guard established (X-Forwarded-For resolved)."""
    return str(getattr(request.state, "client_ip", None) or (request.client.host if request.client else ""))
