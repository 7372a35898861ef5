"""The services behind the gateway: one typed internal client each (isseimail_shared.clients)."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import httpx
from fastapi import Request
from pydantic import BaseModel, ValidationError

from isseimail_gateway.settings import GatewaySettings
from isseimail_shared.app import registered
from isseimail_shared.clients.base import InternalClient, Unavailable
from isseimail_shared.clients.composer import ComposerClient
from isseimail_shared.clients.dispatcher import DispatcherClient
from isseimail_shared.clients.list_validator import ListsClient
from isseimail_shared.clients.notifier import NotifierClient
from isseimail_shared.clients.pass_service import PassClient
from isseimail_shared.errors import ApiError, ErrorBody

Service = Literal["pass", "list_validator", "composer", "dispatcher", "notifier"]
UNAVAILABLE = "ただいま処理できません。しばらくしてから再度お試しください。"
M = TypeVar("M", bound=BaseModel)


class Upstreams:
    def __init__(self, settings: GatewaySettings) -> None:
        tokens = settings.internal_tokens
        timeout = settings.upstream_timeout_seconds
        self.pass_service = PassClient(settings.pass_url, tokens, timeout=timeout)
        self.lists = ListsClient(settings.list_validator_url, tokens, timeout=timeout)
        self.composer = ComposerClient(settings.composer_url, tokens, timeout=timeout)
        self.dispatcher = DispatcherClient(settings.dispatcher_url, tokens, timeout=timeout)
        self.notifier = NotifierClient(settings.notifier_url, tokens, timeout=timeout)
        self.clients: dict[Service, InternalClient] = {
            "pass": self.pass_service,
            "list_validator": self.lists,
            "composer": self.composer,
            "dispatcher": self.dispatcher,
            "notifier": self.notifier,
        }

    async def call(self, service: Service, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call a service; a network failure or a 5xx becomes a Japanese 503 for the user."""
        try:
            response = await self.clients[service].request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(503, UNAVAILABLE) from exc
        if response.status_code >= 500:
            raise ApiError(503, UNAVAILABLE)
        return response

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()


def parsed(response: httpx.Response, model: type[M], ok: int = 200) -> M:
    """A successful answer read as its contract model; anything else is the user's 503."""
    if response.status_code != ok:
        raise ApiError(503, UNAVAILABLE)
    try:
        return model.model_validate_json(response.content)
    except ValueError:
        raise ApiError(503, UNAVAILABLE) from None


def unavailable(exc: Unavailable) -> ApiError:
    return ApiError(503, UNAVAILABLE)


def relayed(response: httpx.Response) -> ApiError:
    """An upstream's 4xx passed on to the user as it is: status, Japanese detail, field errors, reason code and
    Retry-After (a throttled login). An answer not in the one error shape is the user's 503."""
    try:
        body = ErrorBody.model_validate_json(response.content)
    except ValidationError:
        return ApiError(503, UNAVAILABLE)
    if response.status_code < 400 or response.status_code >= 500:
        return ApiError(503, UNAVAILABLE)
    retry = response.headers.get("retry-after", "")
    headers = {"Retry-After": retry} if retry.isdigit() else None
    return ApiError(response.status_code, body.detail, body.errors, code=body.code, headers=headers)


def get_upstreams(request: Request) -> Upstreams:
    return registered(request, Upstreams)


def client_ip(request: Request) -> str:
    """The client address the intranet guard established (X-Forwarded-For resolved)."""
    return str(getattr(request.state, "client_ip", None) or (request.client.host if request.client else ""))
