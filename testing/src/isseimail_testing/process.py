"""Start apps for tests: in-process (lifespan + httpx ASGI client) or as a real subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import httpx
from fastapi import FastAPI

from isseimail_shared.app import runtime_of
from isseimail_shared.internal_auth import internal_headers
from isseimail_testing.headers import API_CLIENT_HEADERS


@contextlib.asynccontextmanager
async def running_app(
    app: FastAPI, client_ip: str = "127.0.0.1", *, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and yield a client that talks to it without a socket.

    The client calls as another service does (with the app's own internal token, see internal_auth.py) and,
    for the gateway, as an API client does (the custom header that marks a call as not cross-site).
    `raise_app_exceptions=False` lets a test read the 500 answer instead of the exception behind it."""
    headers = {**internal_headers(runtime_of(app).settings.internal_tokens), **API_CLIENT_HEADERS}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(client_ip, 50000), raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as client:
            yield client


def _die_with_parent() -> None:
    """Linux: SIGKILL the child when the test process dies, so no service outlives a killed test run
    (holding ports and database connections that keep the test database from being dropped)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServiceProcess:
    """A service run as `python -m <module> [args]` with its own environment; killed or stopped by the test.

    `start()` again after `kill()` or `terminate()` runs it anew with the same environment and port (the
    log file is appended to, so one file tells the whole story of a restarted service).
    """

    def __init__(
        self,
        module: str,
        env: Mapping[str, str],
        port: int,
        log_path: Path | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.module = module
        self.env = {**os.environ, **env}
        self.port = port
        self.log_path = log_path
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        finally:
            if not isinstance(out, int):
                out.close()  # the child holds its own descriptor

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    where = f"; see {self.log_path}" if self.log_path else ""
                    raise RuntimeError(f"{self.module} {' '.join(self.args)} exited with {self.proc.returncode}{where}")
                with contextlib.suppress(httpx.HTTPError):
                    r = await client.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1)
                    if r.status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.module} not ready after {timeout}s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode
