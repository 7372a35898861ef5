"""What a service holds: registered by type at start, reached typed from routes, pinged, closed newest first."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends

from isseimail_shared.app import create_app, held, runtime_of
from isseimail_shared.registry import Registry, check_name
from isseimail_shared.runtime import Runtime, ServiceSpec
from isseimail_shared.settings import ServiceSettings
from isseimail_testing.process import running_app


class Greeter:
    def __init__(self, word: str, closed: list[str]) -> None:
        self.word = word
        self.closed = closed
        self.serving = True

    async def close(self) -> None:
        self.closed.append(self.word)

    def is_serving(self) -> bool:
        return self.serving


class Counter:
    def __init__(self) -> None:
        self.calls = 0


router = APIRouter()


@router.get("/greet")
async def greet(
    greeter: Annotated[Greeter, Depends(held(Greeter))],
    settings: Annotated[ServiceSettings, Depends(held(ServiceSettings))],
) -> dict[str, str]:
    return {"word": greeter.word, "timezone": settings.timezone}


def no_infra() -> ServiceSettings:
    return ServiceSettings(database_url="postgresql://unused/unused", amqp_url="amqp://unused/")


def spec(
    closed: list[str], made: list[Greeter] | None = None, fail_close: bool = False
) -> ServiceSpec[ServiceSettings]:
    made = [] if made is None else made

    async def open_parts(runtime: Runtime[ServiceSettings]) -> None:
        made.append(Greeter("first", closed))
        runtime.registry.register(Greeter, made[0], close=made[0].close, ping=made[0].is_serving)
        runtime.registry.register(Counter, Counter(), close=_broken if fail_close else None)
        made.append(Greeter("last", closed))
        runtime.registry.register(Greeter, made[1], close=made[1].close)  # replaces "first" for lookups

    return ServiceSpec(
        name="probe",
        schema="probe",
        migrations=None,
        uses_database=False,
        uses_broker=False,
        internal_api=False,
        on_start=[open_parts],
    )


async def _broken() -> None:
    raise RuntimeError("close failed")


async def test_route_gets_the_registered_part_and_the_settings() -> None:
    """A route's `held(X)` dependency answers the part registered last as X, and the service's settings."""
    app = create_app(spec([]), no_infra(), [router])
    async with running_app(app) as client:
        assert (await client.get("/greet")).json() == {"word": "last", "timezone": "Asia/Tokyo"}


async def test_a_test_swaps_a_part_through_the_registry() -> None:
    """Registering another object under the type changes what the route gets, without touching the route."""
    app = create_app(spec([]), no_infra(), [router])
    async with running_app(app) as client:
        runtime_of(app).registry.register(Greeter, Greeter("fake", []))
        assert (await client.get("/greet")).json()["word"] == "fake"


async def test_stop_closes_parts_newest_first_and_past_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    """Closes run in reverse order of registration; one that raises is logged and the older ones still close."""
    closed: list[str] = []
    async with running_app(create_app(spec(closed, fail_close=True), no_infra(), [router])):
        assert closed == []
    assert closed == ["last", "first"]
    assert any("closing counter failed" in r.getMessage() for r in caplog.records)


async def test_a_part_ping_is_a_readiness_check() -> None:
    """/readyz runs each registered ping under the part's name: a part that stops serving makes it 503."""
    made: list[Greeter] = []
    async with running_app(create_app(spec([], made), no_infra(), [router])) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"greeter": True}
        made[0].serving = False  # the ping is the first greeter's, though the second replaced it for lookups
        down = await client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["checks"] == {"greeter": False}


def test_lookups_of_what_was_not_registered() -> None:
    """`get` of a missing part says which; `find` answers None for an optional one."""
    registry = Registry()
    assert registry.find(Counter) is None
    with pytest.raises(LookupError, match="no Counter registered"):
        registry.get(Counter)
    counter = registry.register(Counter, Counter())
    assert registry.get(Counter) is counter


def test_check_names() -> None:
    assert check_name(Greeter) == "greeter"
    assert check_name(Registry) == "registry"
    assert check_name(type("BounceListener", (), {})) == "bounce_listener"


async def test_a_failed_start_closes_the_parts_registered_before_it() -> None:
    """A start hook that raises still closes what the hooks before it registered."""
    closed: list[str] = []

    async def broken(_rt: Runtime[ServiceSettings]) -> None:
        raise RuntimeError("broken configuration")

    probe = spec(closed)
    probe.on_start = [*probe.on_start, broken]
    with pytest.raises(RuntimeError, match="broken configuration"):
        async with running_app(create_app(probe, no_infra())):
            pass
    assert closed == ["last", "first"]
