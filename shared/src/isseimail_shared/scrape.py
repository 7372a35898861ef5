"""Gauges brought up to date when Prometheus scrapes /metrics, not only when someone probes /readyz.

Without this, isseimail_ready only changes when a readiness probe happens to call /readyz (Compose and the
tests do not), and the depth of a service's queues and dead-letter queues would need RabbitMQ's own
exporter, which the local broker does not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from isseimail_shared.metrics import QUEUE_MESSAGES
from isseimail_shared.runtime import Runtime

log = logging.getLogger(__name__)


async def refresh(runtime: Runtime[Any], timeout: float = 3.0) -> None:
    """Refresh readiness and queue depths; a slow or broken dependency never fails the scrape."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(_refresh(runtime), timeout=timeout)


async def _refresh(runtime: Runtime[Any]) -> None:
    await runtime.ready()
    if not runtime.consumers or runtime.broker_ is None or not runtime.broker_.is_connected():
        return
    names = [c.queue.name for c in runtime.consumers]
    channel = await runtime.broker_.connection.channel()
    try:
        for name in [*names, *(f"{n}.dlq" for n in names)]:
            # passive: only asks for the counts, never creates or changes a queue
            declared = await channel.declare_queue(name, passive=True)
            count = declared.declaration_result.message_count
            QUEUE_MESSAGES.labels(runtime.spec.name, name).set(count or 0)
    except Exception:
        log.debug("queue depth sampling failed", exc_info=True)
    finally:
        if not channel.is_closed:
            await channel.close()
