"""services.toml is the one list of services: check it against the code it describes, and its loader's errors."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest
from pydantic import AliasChoices

from isseimail_testing.services import REGISTRY, Service, load, packages, service, services

ROOT = Path(__file__).resolve().parent.parent


def port_fields(entry: Service) -> dict[str, object]:
    """env variable -> default of every field of the settings class (the same naming the services use)."""
    found: dict[str, object] = {}
    for name, info in entry.settings_class().model_fields.items():
        alias = info.validation_alias
        env = alias.choices[0] if isinstance(alias, AliasChoices) else f"ISSEIMAIL_{name.upper()}"
        found[str(env)] = info.default
    return found


def test_registry_is_at_the_root_and_lists_every_service_directory() -> None:
    assert REGISTRY == ROOT / "services.toml"
    directories = {str(p.parent.relative_to(ROOT)) for p in ROOT.glob("services/*/pyproject.toml")}
    assert {s.directory for s in packages()} == directories


@pytest.mark.parametrize("entry", services(), ids=lambda s: s.name)
def test_entry_matches_its_package(entry: Service) -> None:
    project = tomllib.loads((ROOT / entry.directory / "pyproject.toml").read_text())["project"]
    assert project["name"] == entry.package
    assert project["scripts"][entry.entry_point] == f"{entry.module}.__main__:main"
    assert (ROOT / entry.directory / "src" / entry.module / "__main__.py").is_file()
    importlib.import_module(entry.module)
    fields = port_fields(entry)
    assert entry.port_env in fields, f"{entry.settings} has no field read from {entry.port_env}"
    assert fields[entry.port_env] == entry.port, f"{entry.name}: registry port {entry.port} is not the default"


def test_the_worker_is_a_process_of_the_dispatcher_package() -> None:
    worker, dispatcher = service("dispatcher-worker"), service("dispatcher")
    assert worker.process_of == "dispatcher"
    assert worker.image == "dispatcher"
    inherited = ("package", "module", "directory", "settings", "entry_point")
    assert [getattr(worker, k) for k in inherited] == [getattr(dispatcher, k) for k in inherited]
    assert worker.command == ("isseimail-dispatcher", "worker")
    assert worker not in packages()
    assert services()[-1].name == "gateway", "the gateway starts last (it calls every other service)"


WORKER = '[[service]]\nname = "w"\nprocess_of = "{owner}"\nport = 2\nport_env = "W"\nargs = ["x"]\n'
GOOD = """
[[service]]
name = "a"
package = "p-a"
module = "m_a"
directory = "services/a"
settings = "m_a.settings:S"
entry_point = "p-a"
port = 1
port_env = "A_PORT"
args = []
"""


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "no \\[\\[service\\]\\] entries"),
        ("service = 3", "no \\[\\[service\\]\\] entries"),
        (GOOD.replace('port_env = "A_PORT"\n', ""), "missing port_env"),
        (GOOD.replace('module = "m_a"\n', ""), "missing module"),
        (GOOD + GOOD, "duplicate name"),
        (GOOD + GOOD.replace('name = "a"', 'name = "b"'), "share a default port"),
        (GOOD + WORKER.format(owner="x"), "process_of 'x'"),
        (GOOD + WORKER.format(owner="a").replace("port = 2", 'port = 2\nmodule = "m"'), "inherits"),
        (GOOD.replace("args = []", "args = []\ncolour = 1"), "unknown keys colour"),
    ],
)
def test_broken_registry_says_what_is_wrong(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "services.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=error):
        load(path)


def test_process_of_inherits_the_package(tmp_path: Path) -> None:
    path = tmp_path / "services.toml"
    path.write_text(GOOD + WORKER.format(owner="a"))
    _, w = load(path)
    assert (w.package, w.module, w.settings, w.entry_point, w.image) == ("p-a", "m_a", "m_a.settings:S", "p-a", "a")
    assert w.command == ("p-a", "x")


def test_missing_registry_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no service registry"):
        load(tmp_path / "nope.toml")
