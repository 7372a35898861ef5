"""HTTP clients for the services behind the gateway, one pooled httpx client each."""

from __future__ import annotations

from typing import Any, Literal

import httpx
from fastapi import HTTPException, Request

from isseimail_gateway.settings import GatewaySettings

Service = Literal["pass", "list_validator", "composer", "dispatcher", "notifier"]
UNAVAILABLE = "ただいま処理できません。しばらくしてから再度お試しください。"


class Upstreams:
    def __init__(self, settings: GatewaySettings) -> None:
        timeout = httpx.Timeout(settings.upstream_timeout_seconds, connect=5.0)
        self.clients: dict[Service, httpx.AsyncClient] = {
            "pass": httpx.AsyncClient(base_url=settings.pass_url, timeout=timeout),
            "list_validator": httpx.AsyncClient(base_url=settings.list_validator_url, timeout=timeout),
            "composer": httpx.AsyncClient(base_url=settings.composer_url, timeout=timeout),
            "dispatcher": httpx.AsyncClient(base_url=settings.dispatcher_url, timeout=timeout),
            "notifier": httpx.AsyncClient(base_url=settings.notifier_url, timeout=timeout),
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
    upstreams: Upstreams = request.app.state.runtime.state["upstreams"]
    return upstreams


def client_ip(request: Request) -> str:
    """The client address the intranet guard established (X-Forwarded-For resolved)."""
    return str(getattr(request.state, "client_ip", None) or (request.client.host if request.client else ""))
