"""Each service installs alone and imports cleanly: what an image gets, checked without building one.

For every service package of services.toml (and shared, which they all carry), `uv sync --frozen --no-dev
--no-editable --package <it>` makes a fresh environment holding that package, built as a wheel, and only
what its pyproject declares (with the locked versions); then that environment's Python, in isolated mode
(no repository paths, no PYTHONPATH), imports every module of the package and reports the failures. A
dependency reached only by luck in the development environment (declared by another member, or by the
dev group) fails here as a ModuleNotFoundError naming it; `make deps` (deptry) names the same in the source.
No test support may ship: isseimail_testing and pytest must not be installed there. Every data file the
package keeps in git (SQL migrations, templates, static files) must be in the installed package too.

The environments are built in parallel once per run, from uv's cache (the developer's or CI's, filled by
the workspace's own `uv sync`), so the whole module takes seconds, not minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from isseimail_testing.services import packages

ROOT = Path(__file__).resolve().parent.parent

# Run inside the fresh environment: import every module of one package, print what failed as JSON.
PROBE = r"""
import importlib, importlib.metadata as md, importlib.resources as res, importlib.util, json, pkgutil, sys, traceback
name = sys.argv[1]
report = {"modules": [], "errors": {}, "files": {}}
def data_files(folder, prefix=""):
    found = []
    for entry in folder.iterdir():
        if entry.is_dir():
            found += data_files(entry, prefix + entry.name + "/") if entry.name != "__pycache__" else []
        elif not entry.name.endswith((".py", ".pyc")):
            found.append(prefix + entry.name)
    return found
report["data"] = sorted(data_files(res.files(name)))
root = importlib.import_module(name)
report["files"][name] = root.__file__
def failed(module_name):
    report["errors"][module_name] = traceback.format_exc(limit=-3)
for info in pkgutil.walk_packages(root.__path__, name + ".", onerror=failed):
    try:
        module = importlib.import_module(info.name)
    except BaseException:  # SystemExit included: a module must not exit on import
        failed(info.name)
    else:
        report["modules"].append(info.name)
        report["files"][info.name] = getattr(module, "__file__", None)
report["distributions"] = sorted(d.metadata["Name"].lower() for d in md.distributions())
report["test_support"] = {m: importlib.util.find_spec(m) is not None for m in ("isseimail_testing", "pytest")}
print(json.dumps(report))
"""


@dataclass(frozen=True)
class Target:
    package: str  # distribution, e.g. isseimail-composer
    module: str  # import package
    entry_point: str | None  # console script that must be installed
    directory: str  # workspace member: its source is <directory>/src/<module>

    def data_files(self) -> list[str]:
        """The package's files in git that are not Python (paths relative to the package)."""
        source = ROOT / self.directory / "src" / self.module
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--", "."], cwd=source, capture_output=True, text=True, check=True, timeout=60
        ).stdout
        return sorted(f for f in listed.split("\0") if f and not f.endswith(".py"))


TARGETS = [Target(s.package, s.module, s.entry_point, s.directory) for s in packages()] + [
    Target("isseimail-shared", "isseimail_shared", None, "shared")
]


@dataclass(frozen=True)
class Installed:
    env: Path
    sync: subprocess.CompletedProcess[str]
    probe: subprocess.CompletedProcess[str] | None

    def report(self) -> dict[str, object]:
        assert self.sync.returncode == 0, f"uv sync failed:\n{self.sync.stdout}\n{self.sync.stderr}"
        assert self.probe is not None
        assert self.probe.returncode == 0, f"import probe failed:\n{self.probe.stdout}\n{self.probe.stderr}"
        result: dict[str, object] = json.loads(self.probe.stdout)
        return result


def install_alone(target: Target, env: Path) -> Installed:
    uv = shutil.which("uv")
    assert uv is not None, "uv is not on PATH (run the tests with `uv run pytest`)"
    # Nothing of the development environment may leak in: no active venv, no extra import paths.
    base = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}}
    sync = subprocess.run(
        [
            *(uv, "sync", "--frozen", "--no-dev", "--no-editable", "--package", target.package, "--quiet"),
            # Built anew from the source tree: uv keys its cached wheel of a local package on pyproject.toml
            # alone, so a change to a module would otherwise be tested as the last build before it.
            *("--reinstall-package", target.package, "--reinstall-package", "isseimail-shared"),
        ],
        cwd=ROOT,
        env={**base, "UV_PROJECT_ENVIRONMENT": str(env)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if sync.returncode != 0:
        return Installed(env, sync, None)
    probe = subprocess.run(
        [str(env / "bin" / "python"), "-I", "-c", PROBE, target.module],
        cwd=env,  # not the repository: nothing importable from the working directory
        env=base,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return Installed(env, sync, probe)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Installed]]:
    where = tmp_path_factory.mktemp("alone")
    # Two at a time: uv is mostly linking files from its cache, and the machine may be shared.
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {t.package: pool.submit(install_alone, t, where / t.package) for t in TARGETS}
        yield {package: future.result() for package, future in futures.items()}


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.package)
def test_package_installs_alone_and_every_module_imports(target: Target, installed: dict[str, Installed]) -> None:
    alone = installed[target.package]
    report = alone.report()
    errors = report["errors"]
    assert isinstance(errors, dict)
    assert not errors, f"{target.package} alone cannot import:\n" + "\n".join(
        f"--- {name}\n{trace}" for name, trace in errors.items()
    )
    modules = report["modules"]
    assert isinstance(modules, list)
    assert len(modules) >= 3, f"too few modules found in {target.module}: {modules}"
    # The modules came from the environment's own (non-editable) install, not from the repository.
    files = report["files"]
    assert isinstance(files, dict)
    outside = {m: f for m, f in files.items() if f is not None and not str(f).startswith(str(alone.env))}
    assert not outside, f"modules loaded from outside the fresh environment: {outside}"
    if target.entry_point is not None:
        script = alone.env / "bin" / target.entry_point
        assert script.is_file(), f"no console script {target.entry_point}"
        # `--help` answers with no ISSEIMAIL_* setting at all (what `make images` runs in each image).
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("ISSEIMAIL_", "VIRTUAL_ENV", "PYTHON"))}
        helped = subprocess.run(
            [str(script), "--help"], cwd=alone.env, env=clean, capture_output=True, text=True, timeout=60, check=False
        )
        assert helped.returncode == 0, f"{target.entry_point} --help failed:\n{helped.stdout}\n{helped.stderr}"
        assert "usage:" in helped.stdout


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.package)
def test_package_data_ships(target: Target, installed: dict[str, Installed]) -> None:
    """Templates, migrations and static files are in the built wheel, not only in the source tree."""
    shipped = installed[target.package].report()["data"]
    assert isinstance(shipped, list)
    missing = sorted(set(target.data_files()) - set(shipped))
    assert not missing, f"{target.package}: files in git but not in the installed package: {missing}"


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.package)
def test_no_test_support_ships(target: Target, installed: dict[str, Installed]) -> None:
    report = installed[target.package].report()
    assert report["test_support"] == {"isseimail_testing": False, "pytest": False}
    distributions = report["distributions"]
    assert isinstance(distributions, list)
    assert target.package in distributions
    shipped = {"isseimail-testing", "pytest", "hypothesis", "dnslib", "deptry", "mypy", "ruff"} & set(distributions)
    assert not shipped, f"{target.package} alone installs development packages: {shipped}"
    others = {t.package for t in TARGETS} - {target.package, "isseimail-shared"}
    assert not others & set(distributions), "a service's install pulls in another service"


def test_probe_reports_a_missing_dependency(tmp_path: Path) -> None:
    """The probe itself can fail: a module importing something absent is reported by name, not skipped."""
    package = tmp_path / "probe_me"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "fine.py").write_text("import json\n")
    (package / "broken.py").write_text("import not_installed_anywhere\n")
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "probe_me"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["modules"] == ["probe_me.fine"]
    assert "not_installed_anywhere" in report["errors"]["probe_me.broken"]
