"""The FastAPI app every service starts from: lifespan-owned runtime, health, readiness, metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from isseimail_shared import scrape
from isseimail_shared.errors import install_error_handlers
from isseimail_shared.internal_auth import InternalOnly
from isseimail_shared.metrics import HTTP_LATENCY, HTTP_REQUESTS
from isseimail_shared.runtime import Runtime, ServiceSpec, SettingsT

log = logging.getLogger(__name__)

T = TypeVar("T")


def create_app(
    spec: ServiceSpec[SettingsT], settings: SettingsT, routers: Sequence[APIRouter] = (), **fastapi_kwargs: object
) -> FastAPI:
    runtime = Runtime(spec=spec, settings=settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await runtime.start()  # a start that fails half-way still closes what it opened
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title=f"isseimail {spec.name}", lifespan=lifespan, **fastapi_kwargs)  # type: ignore[arg-type]
    app.state.runtime = runtime
    install_error_handlers(app)  # one error shape for every service (isseimail_shared.errors)
    app.add_exception_handler(ClientDisconnect, client_disconnected)
    if spec.internal_api:
        app.add_middleware(InternalOnly, tokens=settings.internal_tokens, service=spec.name)
    app.add_middleware(MetricsMiddleware, service=spec.name)
    app.include_router(health_router())
    for router in routers:
        app.include_router(router)
    return app


async def client_disconnected(request: Request, exc: Exception) -> Response:
    """The client went away mid-request (an aborted upload): its doing, not an error of ours."""
    log.info("client disconnected before the request was read", extra={"path": request.url.path[:200]})
    return Response(status_code=400)  # nobody reads it; it only ends the request cleanly


def health_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        checks = await get_runtime(request).ready()
        ok = all(checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, 200 if ok else 503)

    @router.get("/metrics")
    async def metrics(request: Request) -> Response:
        await scrape.refresh(get_runtime(request))
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


class MetricsMiddleware:
    """Counts requests and latency by route template (not raw path, which would explode the labels)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            if template not in ("/metrics", "/healthz", "/readyz"):
                method = scope["method"]
                HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
                HTTP_LATENCY.labels(self.service, method, template).observe(time.perf_counter() - start)


def runtime_of(app: FastAPI) -> Runtime[Any]:
    runtime = app.state.runtime
    if not isinstance(runtime, Runtime):
        raise TypeError("app.state.runtime is not a Runtime: the app was not made by create_app")
    return runtime


def get_runtime(request: Request) -> Runtime[Any]:
    return runtime_of(request.app)


def get_pool(request: Request) -> asyncpg.Pool:
    return get_runtime(request).pool


def registered(request: Request, kind: type[T]) -> T:
    """What this service registered as `kind` (its settings, a client, ...), for code that has the request."""
    return get_runtime(request).registry.get(kind)


def held(kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency on what the service registered as `kind`: `Annotated[ListsClient, Depends(held(ListsClient))]`.

    A test swaps it through the registry (`runtime_of(app).registry.register(ListsClient, fake)`)."""

    async def dependency(request: Request) -> T:  # async: FastAPI runs a plain def in a worker thread
        return registered(request, kind)

    dependency.__name__ = f"held_{kind.__name__}"
    return dependency


Db = Annotated[asyncpg.Pool, Depends(get_pool)]
