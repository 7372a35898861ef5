"""The dispatcher apps: `serve` (campaign.accepted, scheduler, progress API) and `worker` (SMTP sending)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from isseimail_dispatcher import campaign_control, dkim_api, estimate, progress
from isseimail_dispatcher.accept import campaign_accepted
from isseimail_dispatcher.bounces import delivery_bounced, delivery_delayed
from isseimail_dispatcher.rate_gauges import run_rate_gauges
from isseimail_dispatcher.scheduler import run_scheduler
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_dispatcher.work_messages import BATCH_QUEUE
from isseimail_dispatcher.worker import BatchWorker
from isseimail_shared.app import create_app as create_service_app
from isseimail_shared.clients.composer import ComposerClient
from isseimail_shared.events import CampaignAccepted, DeliveryBounced, DeliveryDelayed, Event
from isseimail_shared.inbox import EventHandler
from isseimail_shared.runtime import ConsumerSpec, Runtime, ServiceSpec

EVENTS_QUEUE = "dispatcher.events"
SNAPSHOT_TIMEOUT = 120.0  # a 50,000-row snapshot with its template streams well within this


async def open_composer(runtime: Runtime[DispatcherSettings]) -> None:
    s = runtime.settings
    client = ComposerClient(s.composer_url, s.internal_tokens, timeout=SNAPSHOT_TIMEOUT)
    runtime.registry.register(ComposerClient, client, close=client.close)


def serve_consumers(runtime: Runtime[DispatcherSettings]) -> Sequence[ConsumerSpec]:
    handlers: dict[type[Event], EventHandler] = {
        CampaignAccepted: campaign_accepted(runtime.settings, runtime.registry.get(ComposerClient)),
        DeliveryBounced: delivery_bounced,
        DeliveryDelayed: delivery_delayed,
    }
    return [runtime.event_consumer(EVENTS_QUEUE, handlers, prefetch=4)]


async def scheduler(runtime: Runtime[DispatcherSettings]) -> None:
    s = runtime.settings
    await run_scheduler(runtime.pool, runtime.broker, s.batch_size, s.scheduler_seconds)


async def rate_gauges(runtime: Runtime[DispatcherSettings]) -> None:
    s = runtime.settings
    await run_rate_gauges(runtime.pool, s, max(1.0, s.scheduler_seconds * 5))


SPEC = ServiceSpec(
    name="dispatcher",
    schema="dispatcher",
    migrations="isseimail_dispatcher.migrations",
    owned_queues=[BATCH_QUEUE],  # declared before the scheduler publishes and before workers consume
    consumers=serve_consumers,
    background=[scheduler, rate_gauges],
    on_start=[open_composer],
)


async def open_worker(runtime: Runtime[DispatcherSettings]) -> None:
    s = runtime.settings
    worker = BatchWorker(runtime.pool, s, claim_ttl=s.claim_seconds)
    async with runtime.pool.acquire() as conn:
        await worker.dkim.check(conn)  # a wrong ISSEIMAIL_DKIM_KEY_SECRET stops the worker here, clearly
    runtime.registry.register(BatchWorker, worker, close=worker.close)


async def stop_sending(runtime: Runtime[DispatcherSettings]) -> None:
    runtime.registry.get(BatchWorker).stopping = True


def worker_consumers(runtime: Runtime[DispatcherSettings]) -> Sequence[ConsumerSpec]:
    worker = runtime.registry.get(BatchWorker)
    # The dispatcher owns (declares) the batch queue; a worker started first waits for it (bounded).
    return [ConsumerSpec(BATCH_QUEUE, worker.on_message, prefetch=runtime.settings.worker_prefetch, declare=False)]


WORKER_SPEC = ServiceSpec(
    name="dispatcher-worker",
    schema="dispatcher",
    migrations="isseimail_dispatcher.migrations",
    consumers=worker_consumers,
    outbox_relay=False,  # the serve process relays the workers' events (see docs/benchmarks.md)
    on_start=[open_worker],
    on_stopping=[stop_sending],
)


def create_app(settings: DispatcherSettings | None = None) -> FastAPI:
    routers = [progress.router, estimate.router, dkim_api.router, campaign_control.router]
    return create_service_app(SPEC, settings or DispatcherSettings(), routers)


def create_worker_app(settings: DispatcherSettings | None = None) -> FastAPI:
    """A worker process: the batch consumer, plus /healthz, /readyz and /metrics on worker_port."""
    return create_service_app(WORKER_SPEC, settings or DispatcherSettings())
