"""The README and the generated docs tell the truth: two commands first, the settings table matches the settings
classes, docs/internal-api.md matches the wire contracts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _script(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_starts_with_the_two_commands() -> None:
    """A new user finds `make run` and `make test` at the top."""
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:10])
    assert "make run" in head
    assert "make test" in head


def test_settings_table_is_current() -> None:
    """Every setting of every service is in the README table, with the default the code has."""
    module = _script("settings_table")
    readme = (ROOT / "README.md").read_text()
    table = readme.split(module.START)[1].split(module.END)[0].strip()
    assert table == module.render(), "run: uv run python scripts/settings_table.py --write"


def test_internal_api_doc_is_current() -> None:
    """A contract model or endpoint changed without regenerating docs/internal-api.md fails here."""
    module = _script("internal_api_doc")
    assert (ROOT / "docs" / "internal-api.md").read_text() == module.render(), (
        "run: uv run python scripts/internal_api_doc.py --write"
    )
