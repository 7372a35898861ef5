"""Migrations: applied in order, recorded, never twice, safe when replicas start together."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest

from isseimail_shared.db import create_pool, ensure_database, migrate


def make_package(root: Path, files: dict[str, str]) -> str:
    name = f"mig_{uuid.uuid4().hex[:8]}"
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for file, sql in files.items():
        (pkg / file).write_text(sql)
    return name


async def test_concurrent_replicas_apply_each_file_once(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five replicas migrating at once apply every file exactly once, in order."""
    monkeypatch.syspath_prepend(str(tmp_path))
    package = make_package(
        tmp_path,
        {
            "001_a.sql": "CREATE TABLE a (id int); INSERT INTO a VALUES (1);",
            "002_b.sql": "INSERT INTO a VALUES (2);",
            "notes.txt": "ignored",
        },
    )
    pools = [await create_pool(database_url, "m") for _ in range(5)]
    try:
        results = await asyncio.gather(*(migrate(p, "m", [package]) for p in pools))
        applied = [name for result in results for name in result]
        assert applied == [f"{package}:001_a.sql", f"{package}:002_b.sql"]
        assert await pools[0].fetchval("SELECT array_agg(id ORDER BY id) FROM a") == [1, 2]
        assert await migrate(pools[0], "m", [package]) == []
    finally:
        for p in pools:
            await p.close()


async def test_failed_migration_leaves_nothing_half_applied(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that fails is rolled back with its record, so the next start tries it again."""
    monkeypatch.syspath_prepend(str(tmp_path))
    package = make_package(tmp_path, {"001_bad.sql": "CREATE TABLE x (id int); SELECT no_such_function();"})
    pool = await create_pool(database_url, "m")
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await migrate(pool, "m", [package])
        assert await pool.fetchval("SELECT to_regclass('m.x')") is None
        assert await pool.fetchval("SELECT count(*) FROM m.schema_migrations") == 0
    finally:
        await pool.close()


async def test_schemas_are_isolated(database_url: str) -> None:
    """Each service's pool sees its own schema: the same table name in two schemas does not collide."""
    first = await create_pool(database_url, "svc_one")
    second = await create_pool(database_url, "svc_two")
    try:
        await first.execute("CREATE TABLE things (v text); INSERT INTO things VALUES ('one')")
        await second.execute("CREATE TABLE things (v text)")
        assert await second.fetchval("SELECT count(*) FROM things") == 0
        assert await first.fetchval("SELECT v FROM things") == "one"
    finally:
        await first.close()
        await second.close()


def test_invalid_schema_name_is_refused() -> None:
    """Schema names go into SQL text, so only plain identifiers are allowed."""
    with pytest.raises(ValueError, match="invalid schema"):
        asyncio.run(create_pool("postgresql://x/y", 'bad"; DROP'))


async def test_ensure_database_creates_once(database_url: str) -> None:
    """ensure_database creates a missing database and leaves an existing one alone."""
    name = f"isseimail_test_{uuid.uuid4().hex[:10]}"
    url = database_url.rsplit("/", 1)[0] + "/" + name
    try:
        assert await ensure_database(url) is True
        assert await ensure_database(url) is False
    finally:
        conn = await asyncpg.connect(database_url)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
