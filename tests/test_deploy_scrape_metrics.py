"""Scrape-time gauges: /metrics itself reports readiness and the depth of the service's queues and DLQs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from isseimail_notifier.app import create_app as notifier_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_testing.metrics import samples
from isseimail_testing.process import running_app


async def test_metrics_scrape_reports_ready_and_queue_depths(make_settings: Callable[..., Any]) -> None:
    """Without any /readyz call, a scrape shows the service ready and a depth for each queue and its DLQ."""
    app = notifier_app(make_settings(NotifierSettings, bounce_listen_port=0))
    async with running_app(app) as client:
        queues = [c.queue.name for c in app.state.runtime.consumers]
        text = (await client.get("/metrics")).text
    assert queues, "the notifier consumes at least one queue"
    assert samples(text, "isseimail_ready")[(("service", "notifier"),)] == 1.0
    depths = {dict(k)["queue"]: v for k, v in samples(text, "isseimail_queue_messages").items()}
    for queue in queues:
        assert depths[queue] >= 0
        assert depths[f"{queue}.dlq"] == 0


async def test_metrics_scrape_still_answers_when_the_broker_is_gone(make_settings: Callable[..., Any]) -> None:
    """With the broker connection closed, /metrics answers 200 quickly and reports the service not ready."""
    app = notifier_app(make_settings(NotifierSettings, bounce_listen_port=0))
    async with running_app(app) as client:
        runtime = app.state.runtime
        await runtime.broker.connection.close()
        started = time.monotonic()
        response = await client.get("/metrics")
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed < 4
    assert samples(response.text, "isseimail_ready")[(("service", "notifier"),)] == 0.0
