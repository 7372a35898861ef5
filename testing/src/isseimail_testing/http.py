"""Serve an ASGI app on a real loopback port inside the test's event loop (an HTTP peer, not a mock)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Protocol, TypeVar

import uvicorn
from fastapi import FastAPI

from isseimail_testing.process import free_port


class Peer(Protocol):
    """A stand-in for another service: builds its app and is told the URL it is served at."""

    url: str

    def app(self) -> FastAPI: ...


P = TypeVar("P", bound=Peer)


@contextlib.asynccontextmanager
async def serving(
    app: FastAPI, *, lifespan: bool = False, port: int | None = None, timeout: float = 30.0
) -> AsyncIterator[str]:
    """Yield the base URL (http://127.0.0.1:port) while uvicorn serves `app`.

    `lifespan=True` also starts and stops the app's runtime (a whole service other services call over
    HTTP); the default serves an app whose lifespan already runs elsewhere (e.g. inside `running_app`).
    """
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        log_level="warning",
        lifespan="on" if lifespan else "off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + timeout
    try:
        while not server.started:
            if task.done():
                task.result()  # raises what stopped the server
                raise RuntimeError("server stopped before it started")
            if time.monotonic() > deadline:
                raise TimeoutError(f"app on port {port} not serving after {timeout}s")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout)


def serving_service(app: FastAPI, port: int | None = None) -> contextlib.AbstractAsyncContextManager[str]:
    """A whole service (lifespan included) on a loopback port, for services that others call over HTTP."""
    return serving(app, lifespan=True, port=port)


@contextlib.asynccontextmanager
async def serving_peer(peer: P) -> AsyncIterator[P]:
    """Serve a stand-in peer's app on a loopback port, with `peer.url` set to where it answers."""
    async with serving(peer.app()) as url:
        peer.url = url
        yield peer
