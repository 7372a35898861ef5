"""Start a service process: `isseimail-<service> [serve]` runs its app under uvicorn."""

from __future__ import annotations

import logging
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from isseimail_shared.logs import setup_logging
from isseimail_shared.settings import ServiceSettings

HELP_FLAGS = frozenset({"-h", "--help"})


def exit_on_help(argv: list[str], usage: str) -> None:
    """`--help` prints the usage and exits 0 before any setting is read, so an image can prove it starts."""
    if any(arg in HELP_FLAGS for arg in argv):
        print(f"usage: {usage}")
        raise SystemExit(0)


def serve(name: str, settings: ServiceSettings, port: int, factory: Callable[[], FastAPI]) -> None:
    setup_logging(name, settings.log_level)
    logging.getLogger(__name__).info("starting %s on %s:%d", name, settings.http_host, port)
    uvicorn.run(
        factory(),
        # Named, not "auto": a missing uvloop must fail the start, not quietly cost more CPU per message.
        loop="uvloop",
        host=settings.http_host,
        port=port,
        log_config=None,  # keep our JSON handler
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        proxy_headers=False,  # the gateway decides itself which X-Forwarded-For to believe
    )
