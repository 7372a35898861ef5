"""`isseimail-pass create-admin EMAIL`: the administrator is created from stdin or the environment."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest
from argon2 import PasswordHasher

from isseimail_pass.__main__ import _create_admin
from isseimail_pass.settings import PassSettings
from isseimail_testing.fixtures import CREDENTIALS_KEY


def _run(
    database_url: str, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ISSEIMAIL_")}
    environ.update(ISSEIMAIL_DATABASE_URL=database_url, ISSEIMAIL_CREDENTIALS_KEY=CREDENTIALS_KEY, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "isseimail_pass", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )


async def test_create_admin_from_stdin_then_env_then_duplicate(database_url: str) -> None:
    """stdin and ISSEIMAIL_ADMIN_PASSWORD both work; the password is hashed, never printed; duplicates fail."""
    first = await asyncio.to_thread(
        _run, database_url, "create-admin", "Chief@Example.JP", stdin="stdin-password-123\n"
    )
    assert first.returncode == 0, first.stderr
    assert "chief@example.jp" in first.stdout
    second = await asyncio.to_thread(
        _run, database_url, "create-admin", "deputy@example.jp", env={"ISSEIMAIL_ADMIN_PASSWORD": "env-password-4567"}
    )
    assert second.returncode == 0, second.stderr
    again = await asyncio.to_thread(
        _run, database_url, "create-admin", "chief@example.jp", stdin="another-password-1\n"
    )
    assert again.returncode == 1
    with pytest.raises(ValueError, match="at least 12"):  # what the CLI turns into exit code 2
        await _create_admin(PassSettings(database_url=database_url, credentials_key=CREDENTIALS_KEY), "x@e.jp", "short")
    for done in (first, second, again):
        assert "stdin-password-123" not in done.stdout + done.stderr
        assert "env-password-4567" not in done.stdout + done.stderr
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "pass"})
    try:
        rows = {r["email"]: r["password_hash"] for r in await conn.fetch("SELECT email, password_hash FROM admins")}
        assert set(rows) == {"chief@example.jp", "deputy@example.jp"}
        assert PasswordHasher().verify(rows["chief@example.jp"], "stdin-password-123")
        assert PasswordHasher().verify(rows["deputy@example.jp"], "env-password-4567")
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE routing_key = 'admin.created'") == 2
    finally:
        await conn.close()
