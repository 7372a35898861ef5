"""The one way a service calls another's internal API: the service token, timeouts, bounded retries.

Only idempotent GETs are retried, and only when the other side never answered (a refused or dropped
connection) or a proxy said it could not reach it (502, 504): a 503 from a service is its own answer
("cannot now") and is returned as it is. Streams are never retried (the caller's event is redelivered).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from isseimail_shared.internal_auth import internal_headers

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
RETRIED_STATUS = frozenset({502, 504})
RETRIED_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError)
MAX_LINE = 64 * 1024  # one NDJSON row; the snapshot's header line is larger and says so


class Unavailable(Exception):
    """The service did not answer as its contract says (network failure, an unexpected status or body)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def acting_for(pass_id: int, user_id: str | None = None) -> dict[str, str]:
    """The headers naming the pass a call acts for (the other service answers only that pass's data)."""
    headers = {"X-Isseimail-Pass-Id": str(pass_id)}
    if user_id is not None:
        headers["X-Isseimail-User-Id"] = user_id
    return headers


class InternalClient:
    """A pooled httpx client for one service, every request carrying the internal token."""

    service = "service"

    def __init__(
        self,
        base_url: str,
        tokens: Sequence[SecretStr],
        *,
        timeout: float,
        connect_timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.1,
        transport: httpx.AsyncBaseTransport | None = None,  # tests: an app served in process
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=min(connect_timeout, timeout)),
            headers=internal_headers(tokens),
            transport=transport,
        )
        self.retries = retries
        self.backoff = backoff

    async def close(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The raw answer; raises httpx.HTTPError when there is none (GETs retried first, see the module)."""
        attempts = 1 + (self.retries if method.upper() == "GET" else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self.http.request(method, path, **kwargs)
            except RETRIED_ERRORS:
                if last:
                    raise
            else:
                if response.status_code not in RETRIED_STATUS or last:
                    return response
            log.info("retrying %s %s of the %s (attempt %d)", method, path[:120], self.service, attempt + 2)
            await asyncio.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    async def call(
        self,
        method: str,
        path: str,
        model: type[M],
        *,
        ok: int = 200,
        none_on: frozenset[int] = frozenset(),
        **kwargs: Any,
    ) -> M | None:
        """The answer parsed into `model`; None for a status in `none_on` (e.g. 404); Unavailable otherwise."""
        response = await self._answer(method, path, **kwargs)
        if response.status_code in none_on:
            return None
        return self.parse(response, model, ok=ok)

    async def fetch(self, method: str, path: str, model: type[M], *, ok: int = 200, **kwargs: Any) -> M:
        """The answer parsed into `model`; Unavailable for any other status or body."""
        return self.parse(await self._answer(method, path, **kwargs), model, ok=ok)

    def parse(self, response: httpx.Response, model: type[M], *, ok: int = 200) -> M:
        if response.status_code != ok:
            raise Unavailable(f"{self.service} answered {response.status_code}", response.status_code)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise Unavailable(f"{self.service} answered something that is not a {model.__name__}") from exc

    async def _answer(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(f"{self.service}: {exc.__class__.__name__}") from exc

    async def ndjson(
        self, path: str, model: type[M], *, headers: dict[str, str] | None = None, limit: int | None = None
    ) -> AsyncIterator[M]:
        """A streamed NDJSON answer, one model per line (one request however many lines)."""
        try:
            async with self.http.stream("GET", path, headers=headers) as response:
                if response.status_code != 200:
                    raise Unavailable(
                        f"{self.service} answered {response.status_code} for {path}", response.status_code
                    )
                count = 0
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    if len(line) > MAX_LINE:
                        raise Unavailable(f"{self.service}: line too long in {path}")
                    yield model.model_validate(json.loads(line))
                    count += 1
                    if limit is not None and count >= limit:
                        return
        except httpx.HTTPError as exc:
            raise Unavailable(f"{self.service}: {exc.__class__.__name__}") from exc
        except (ValueError, ValidationError) as exc:
            raise Unavailable(f"{self.service}: a line of {path} is not a {model.__name__}") from exc
