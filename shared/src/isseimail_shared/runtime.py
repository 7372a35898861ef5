"""A service's runtime: it owns the pool, the broker, the outbox relay, consumers and background tasks,
and (its `registry`) what the service's start hooks built: clients, checkers, writers.

Started and stopped by the FastAPI lifespan (see `app.py`), closed in reverse order on SIGTERM:
stop consuming, let in-flight handlers finish, stop background tasks, close the registered parts (newest
first), flush the outbox once, close. `Runtime[ComposerSettings]` types `runtime.settings` as the
service's own settings class.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import asyncpg

from isseimail_shared.db import create_pool, migrate
from isseimail_shared.events import Event
from isseimail_shared.inbox import EventHandler, event_handler
from isseimail_shared.messaging import Broker, Consumer, MessageHandler
from isseimail_shared.metrics import READY
from isseimail_shared.outbox import OutboxRelay
from isseimail_shared.queue_policy import apply_delivery_limit_policy
from isseimail_shared.registry import Ping, Registry
from isseimail_shared.settings import ServiceSettings

log = logging.getLogger(__name__)

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


@dataclass(frozen=True)
class ConsumerSpec:
    queue: str
    handler: MessageHandler
    bindings: Sequence[str] = ()
    prefetch: int | None = None
    # False: another service owns (declares) the queue; wait for it (bounded) instead of declaring it.
    declare: bool = True


@dataclass
class ServiceSpec(Generic[SettingsT]):
    """What makes one service: its name and schema, migrations, consumers and background tasks.

    The on_start hooks build what the service holds and register it (`runtime.registry.register`) with its
    close and readiness ping: the stop closes the parts in reverse order, /readyz pings them.
    """

    name: str
    schema: str
    migrations: str | None
    uses_database: bool = True
    uses_broker: bool = True
    # Work queues this service declares at start, before its hooks and consumers run (it publishes to them;
    # another process consumes them and waits for them).
    owned_queues: Sequence[str] = ()
    consumers: Callable[[Runtime[SettingsT]], Sequence[ConsumerSpec]] = lambda _rt: ()
    background: Sequence[Callable[[Runtime[SettingsT]], Awaitable[None]]] = ()
    on_start: Sequence[Callable[[Runtime[SettingsT]], Awaitable[None]]] = ()
    # Run first on SIGTERM, before consumers are stopped: lets long handlers wind down early.
    on_stopping: Sequence[Callable[[Runtime[SettingsT]], Awaitable[None]]] = ()
    # False for a process whose outbox another process of the same service relays (dispatcher workers):
    # publishing thousands of events would cost the hot path CPU for no gain.
    outbox_relay: bool = True
    # An internal API (every service but the gateway): each call must carry the internal token.
    internal_api: bool = True


@dataclass
class Runtime(Generic[SettingsT]):
    spec: ServiceSpec[SettingsT]
    settings: SettingsT
    pool_: asyncpg.Pool | None = None
    broker_: Broker | None = None
    relay: OutboxRelay | None = None
    consumers: list[Consumer] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    registry: Registry = field(default_factory=Registry)

    def __post_init__(self) -> None:
        # Routes take the settings like any part: Annotated[ComposerSettings, Depends(held(ComposerSettings))].
        self.registry.register(type(self.settings), self.settings)

    @property
    def pool(self) -> asyncpg.Pool:
        if self.pool_ is None:
            raise RuntimeError(f"{self.spec.name} has no database")
        return self.pool_

    @property
    def broker(self) -> Broker:
        if self.broker_ is None:
            raise RuntimeError(f"{self.spec.name} has no broker")
        return self.broker_

    def event_consumer(
        self, queue: str, handlers: Mapping[type[Event], EventHandler], prefetch: int | None = None
    ) -> ConsumerSpec:
        """A consumer queue bound to the handlers' event types, idempotent on event_id."""
        return ConsumerSpec(
            queue=queue,
            handler=event_handler(self.pool, service=self.spec.name, queue=queue, handlers=handlers),
            bindings=[cls.event_type for cls in handlers],
            prefetch=prefetch,
        )

    async def start(self) -> None:
        s = self.settings
        if self.spec.uses_database:
            self.pool_ = await _retry(
                "database",
                lambda: create_pool(s.database_url.get_secret_value(), self.spec.schema, max_size=s.db_pool_size),
            )
            packages = ["isseimail_shared.sql"] + ([self.spec.migrations] if self.spec.migrations else [])
            await migrate(self.pool_, self.spec.schema, packages)
        if self.spec.uses_broker:
            broker = Broker(s.amqp_url.get_secret_value(), name=self.spec.name, delivery_limit=await _delivery_limit(s))
            await _retry("broker", broker.connect)
            self.broker_ = broker
            for queue in self.spec.owned_queues:
                await _retry(f"queue {queue}", functools.partial(broker.declare_owned, queue), attempts=5)
            if self.pool_ is not None and self.spec.outbox_relay:
                self.relay = OutboxRelay(
                    self.pool_,
                    broker,
                    service=self.spec.name,
                    schema=self.spec.schema,
                    poll=s.outbox_poll_seconds,
                )
                self._spawn(self.relay.run, "outbox-relay")
        for hook in self.spec.on_start:
            await hook(self)
        for spec in self.spec.consumers(self):
            # Replicas declaring the same quorum queue at the same instant can get a transient
            # INTERNAL_ERROR from RabbitMQ; declaring again succeeds.
            consumer = await _retry(
                f"queue {spec.queue}",
                functools.partial(
                    self.broker.consumer,
                    spec.queue,
                    spec.handler,
                    bindings=spec.bindings,
                    prefetch=spec.prefetch or s.prefetch,
                    declare=spec.declare,
                    wait=s.queue_wait_seconds,
                ),
                attempts=5,
            )
            await consumer.start()
            self.consumers.append(consumer)
        for job in self.spec.background:
            self._spawn(functools.partial(job, self), job.__name__)
        loop = type(asyncio.get_running_loop())
        log.info("%s started (event loop %s.%s)", self.spec.name, loop.__module__, loop.__qualname__)

    def _spawn(self, job: Callable[[], Awaitable[None]], name: str) -> None:
        # The coroutine is created inside the task, so a task cancelled before its first step leaves
        # no "coroutine was never awaited" behind.
        async def guarded() -> None:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task %s died", name)
                raise

        self.tasks.append(asyncio.create_task(guarded(), name=f"{self.spec.name}:{name}"))

    async def stop(self) -> None:
        grace = self.settings.shutdown_grace_seconds
        for hook in self.spec.on_stopping:
            try:
                await hook(self)
            except Exception:
                log.exception("stopping hook %s failed", hook.__name__)
        for consumer in self.consumers:
            await consumer.stop(grace)
        self.consumers.clear()
        for task in reversed(self.tasks):
            task.cancel()
        await _await_cancelled(self.tasks)
        self.tasks.clear()
        await self.registry.close()
        if self.relay is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.relay.publish_pending(), timeout=5)
            await _bounded(self.relay.close(), "outbox relay close")
        if self.broker_ is not None:
            await _bounded(self.broker_.close(), "broker connection close")
        if self.pool_ is not None and not await _bounded(self.pool_.close(), "database pool close"):
            self.pool_.terminate()
        log.info("%s stopped", self.spec.name)

    async def ready(self) -> dict[str, bool]:
        checks: dict[str, bool] = {}
        if self.spec.uses_database:
            checks["database"] = await _ping_database(self.pool_)
        if self.spec.uses_broker:
            checks["broker"] = self.broker_ is not None and self.broker_.is_connected()
        for name, ping in self.registry.pings():
            checks[name] = await _ping(ping)
        READY.labels(self.spec.name).set(1 if all(checks.values()) else 0)
        return checks


async def _delivery_limit(s: ServiceSettings) -> int | None:
    """The x-delivery-limit queue argument, or None once the policy carries the limit (management API set)."""
    if s.rabbitmq_management_url is None:
        return s.delivery_limit
    url = s.rabbitmq_management_url.get_secret_value()
    amqp = s.amqp_url.get_secret_value()
    await _retry("RabbitMQ management API", lambda: apply_delivery_limit_policy(url, amqp, s.delivery_limit))
    return None


async def _ping(ping: Ping) -> bool:
    try:
        answer = ping()
        if inspect.isawaitable(answer):
            answer = await asyncio.wait_for(answer, timeout=2)
        return bool(answer)
    except Exception:
        return False


async def _ping_database(pool: asyncpg.Pool | None) -> bool:
    if pool is None:
        return False
    try:
        return bool(await asyncio.wait_for(pool.fetchval("SELECT 1"), timeout=2))
    except Exception:
        return False


async def _retry(what: str, connect: Callable[[], Awaitable[Any]], attempts: int = 15) -> Any:
    """Connect with backoff: services started together must not die because a dependency is slow."""
    for attempt in range(1, attempts + 1):
        try:
            return await connect()
        except Exception as exc:
            if attempt == attempts:
                raise
            delay = min(0.5 * attempt, 3.0)
            log.warning("%s not reachable (%s); retrying in %.1fs", what, exc.__class__.__name__, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


# A stop must end even when a step hangs (a connection in a reconnect loop, a task that ignores
# cancellation): each step gets this long, then the stop goes on and says which step it gave up on.
STOP_STEP_SECONDS = 10.0


async def _await_cancelled(tasks: list[asyncio.Task[Any]]) -> None:
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=STOP_STEP_SECONDS)
    for task in done:
        if not task.cancelled():
            task.exception()  # retrieved: it was logged where it happened
    for task in pending:
        log.warning("background task %s did not stop within %g s", task.get_name(), STOP_STEP_SECONDS)


async def _bounded(step: Coroutine[Any, Any, Any], what: str) -> bool:
    """Run one stop step with a time limit; False (and a warning) when it had to be abandoned."""
    try:
        await asyncio.wait_for(step, timeout=STOP_STEP_SECONDS)
    except TimeoutError:
        log.warning("%s did not finish within %g s; going on", what, STOP_STEP_SECONDS)
        return False
    return True
