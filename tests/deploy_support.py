"""Helpers of the deploy checks (tests/test_deploy_*.py): the repo's paths, its deploy scripts, its CLI tools."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from isseimail_testing.services import Service, packages

ROOT = Path(__file__).resolve().parents[1]


def load_script(relative: str) -> ModuleType:
    """Import one of the deploy/ generator scripts (they are plain files, not an installed package)."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def tool(name: str, debian_package: str | None = None) -> str:
    """Path of a CLI tool: the workspace venv first (PyPI tools), then PATH (Debian packages).

    Missing outside CI: skipped with the install hint; missing in CI: a failure, never a silent skip.
    """
    venv_bin = Path(sys.executable).parent / name
    found = str(venv_bin) if venv_bin.exists() else shutil.which(name)
    if found:
        return found
    hint = f"apt-get install {debian_package}" if debian_package else "uv sync"
    if os.environ.get("CI"):
        pytest.fail(f"{name} is missing in CI ({hint}; scripts/debian-packages.txt lists it)")
    pytest.skip(f"{name} not installed: {hint}")


def run(args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def image_services() -> tuple[Service, ...]:
    """The services with an image of their own (services.toml; a `process_of` entry runs from another's image)."""
    return packages()
