"""docs/internal-api.md is generated from the wire contracts: it must be what the generator writes now."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("internal_api_doc", ROOT / "scripts" / "internal_api_doc.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_internal_api_doc_is_current() -> None:
    """A model or endpoint changed without regenerating the document fails here."""
    module = _generator()
    assert (ROOT / "docs" / "internal-api.md").read_text() == module.render(), (
        "run: uv run python scripts/internal_api_doc.py --write"
    )
