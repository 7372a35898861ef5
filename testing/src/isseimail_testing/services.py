"""The registry of services (services.toml at the repository root), for the tools that start, test or deploy them.

    from isseimail_testing.services import services, packages
    for s in services():       # every process kind, in start order (the dispatcher's worker included)
        print(s.name, s.module, s.port_env, s.port, s.args)
    for s in packages():       # one per service package (what gets an image and a settings class)
        print(s.package, s.settings)

It lives in the test-support package, not in a production one: no service may know the others, and the tools
that need the list (scripts/run.py, the system harness, the settings table, deployment generators) all run
from the development workspace, where this package is installed. Standard library only.
"""

from __future__ import annotations

import functools
import importlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# testing/src/isseimail_testing/services.py -> the repository root (the workspace installs this package editable)
REGISTRY = Path(__file__).resolve().parents[3] / "services.toml"

_OWN = ("package", "module", "directory", "settings", "entry_point")
_PROCESS = ("name", "port", "port_env", "args")


@dataclass(frozen=True)
class Service:
    """One kind of process: a service, or a second process of a service's package (`process_of`)."""

    name: str
    package: str  # distribution name, e.g. isseimail-dispatcher
    module: str  # import package; `python -m <module> <args>` runs the process
    directory: str  # the package's workspace member, relative to the repository root
    settings: str  # "module:Class" of its pydantic-settings class
    entry_point: str  # console script of the package
    port: int  # default HTTP port
    port_env: str  # the variable that sets the port
    args: tuple[str, ...] = ()
    process_of: str | None = None  # the service whose package this process runs (None: its own package)

    @property
    def image(self) -> str:
        """The service whose package (and image) runs this process."""
        return self.process_of or self.name

    @property
    def command(self) -> tuple[str, ...]:
        """The entry point and its arguments, as a container or a shell starts the process."""
        return (self.entry_point, *self.args)

    def settings_class(self) -> type[Any]:
        module, _, cls_name = self.settings.partition(":")
        cls: type[Any] = getattr(importlib.import_module(module), cls_name)
        return cls


def _require(entry: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in entry]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")


def load(path: Path = REGISTRY) -> tuple[Service, ...]:
    """Read and check the registry; a broken file names the entry and what is wrong with it."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no service registry at {path} (run from a checkout of the repository)") from None
    entries = raw.get("service")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: no [[service]] entries")
    by_name: dict[str, dict[str, Any]] = {}
    found: list[Service] = []
    for i, entry in enumerate(entries):
        where = f"{path}: [[service]] #{i + 1} ({entry.get('name', '?')})"
        _require(entry, _PROCESS, where)
        if entry["name"] in by_name:
            raise ValueError(f"{where}: duplicate name")
        owner = entry.get("process_of")
        if owner is not None:
            if owner not in by_name or by_name[owner].get("process_of") is not None:
                raise ValueError(f"{where}: process_of {owner!r} must name a service listed before it")
            if any(k in entry for k in _OWN):
                raise ValueError(f"{where}: a process_of entry inherits {', '.join(_OWN)}; do not repeat them")
            own = {k: by_name[owner][k] for k in _OWN}
        else:
            _require(entry, _OWN, where)
            own = {k: entry[k] for k in _OWN}
        unknown = set(entry) - {*_OWN, *_PROCESS, "process_of"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        by_name[entry["name"]] = entry
        found.append(
            Service(
                name=entry["name"],
                port=int(entry["port"]),
                port_env=entry["port_env"],
                args=tuple(entry["args"]),
                process_of=owner,
                **own,
            )
        )
    ports = [s.port for s in found]
    if len(set(ports)) != len(ports):
        raise ValueError(f"{path}: two processes share a default port: {ports}")
    return tuple(found)


@functools.cache
def services() -> tuple[Service, ...]:
    """Every process kind in start order (the services others call first, the gateway last)."""
    return load()


def packages() -> tuple[Service, ...]:
    """One entry per service package (no `process_of`): what has an image, a settings class, a pyproject."""
    return tuple(s for s in services() if s.process_of is None)


def service(name: str) -> Service:
    for s in services():
        if s.name == name:
            return s
    raise KeyError(f"no service {name!r} in {REGISTRY}")
