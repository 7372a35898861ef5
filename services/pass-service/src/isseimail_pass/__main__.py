"""`isseimail-pass [serve]` runs the pass-service; `isseimail-pass create-admin EMAIL` adds an administrator.

The administrator's password comes from ISSEIMAIL_ADMIN_PASSWORD or standard input (prompted without
echo on a terminal); it never appears on the command line, where `ps` would show it.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from isseimail_pass.admins import create_admin
from isseimail_pass.app import SPEC, create_app
from isseimail_pass.settings import PassSettings
from isseimail_shared.cli import serve
from isseimail_shared.db import create_pool, migrate


def _read_password() -> str:
    from_env = os.environ.get("ISSEIMAIL_ADMIN_PASSWORD")
    if from_env:
        return from_env
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise SystemExit("passwords do not match")
        return first
    return sys.stdin.readline().rstrip("\r\n")


async def _create_admin(settings: PassSettings, email: str, password: str) -> int | None:
    pool = await create_pool(settings.database_url.get_secret_value(), SPEC.schema, max_size=1)
    try:
        await migrate(pool, SPEC.schema, ["isseimail_shared.sql", "isseimail_pass.migrations"])
        async with pool.acquire() as conn:
            # admin.created goes to the outbox; the running service's relay publishes it.
            return await create_admin(conn, email, password)
    finally:
        await pool.close()


def create_admin_command(email: str) -> int:
    settings = PassSettings()
    try:
        admin_id = asyncio.run(_create_admin(settings, email, _read_password()))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if admin_id is None:
        print(f"error: an administrator {email.strip().lower()} already exists", file=sys.stderr)
        return 1
    print(f"administrator {admin_id} created: {email.strip().lower()}")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="isseimail-pass", description="isseimail pass-service")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the HTTP service (the default)")
    admin = commands.add_parser("create-admin", help="create an administrator (password from env or stdin)")
    admin.add_argument("email")
    args = parser.parse_args(argv)
    if args.command == "create-admin":
        raise SystemExit(create_admin_command(args.email))
    settings = PassSettings()
    serve("pass-service", settings, settings.port, lambda: create_app(settings))


if __name__ == "__main__":
    main()
