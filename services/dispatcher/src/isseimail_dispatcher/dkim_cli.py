"""`isseimail-dispatcher dkim generate|rotate|list`: the operator's DKIM key commands.

    isseimail-dispatcher dkim generate example.co.jp [--algorithm rsa|ed25519] [--selector s2026a]
    isseimail-dispatcher dkim rotate example.co.jp [--algorithm rsa|ed25519] [--force]
    isseimail-dispatcher dkim list [example.co.jp]
    isseimail-dispatcher dkim reencrypt      # after putting a new secret first in ISSEIMAIL_DKIM_KEY_SECRET
    isseimail-dispatcher dkim prune          # delete keys retired past ISSEIMAIL_DKIM_RETIRED_RETENTION_DAYS

Every command prints the TXT records to publish (prune: those that may be removed); no private key is ever
printed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO, TypeVar

import asyncpg

from isseimail_dispatcher import dkim_store
from isseimail_dispatcher.dkim_keys import DkimKeyError, normalize_domain, parse_algorithm
from isseimail_dispatcher.dkim_store import StoredKey
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_shared.db import create_pool, migrate

T = TypeVar("T")


def zone_line(key: StoredKey) -> str:
    """The record as a zone file writes it: strings of at most 255 characters (a 2048-bit key is longer)."""
    value = key.txt_value
    strings = " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
    return f"{key.txt_name} TXT {strings}"


def describe(key: StoredKey, keep: dt.timedelta = dt.timedelta(days=7)) -> str:
    if key.configured:
        note = "signing (configured in ISSEIMAIL_DKIM_PRIVATE_KEY); keep published"
    elif key.state == "next":
        note = f"not signing yet: publish the record, then run `isseimail-dispatcher dkim rotate {key.domain}`"
    elif key.state == "active":
        note = "signing; keep published"
    else:
        until = (key.retired_at + keep).strftime("%Y-%m-%d") if key.retired_at else "the retention ends"
        note = f"retired; keep published until {until} so mail already sent still verifies, then `dkim prune`"
    return f"  {key.selector}  {key.algorithm}  {key.state}  ({note})\n    {zone_line(key)}"


def print_keys(keys: list[StoredKey], out: TextIO, keep: dt.timedelta = dt.timedelta(days=7)) -> None:
    domain = None
    for key in keys:
        if key.domain != domain:
            domain = key.domain
            print(domain, file=out)
        print(describe(key, keep), file=out)


async def _with_pool(settings: DispatcherSettings, work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    pool = await create_pool(settings.database_url.get_secret_value(), "dispatcher", max_size=2)
    try:
        await migrate(pool, "dispatcher", ["isseimail_shared.sql", "isseimail_dispatcher.migrations"])
        return await work(pool)
    finally:
        await pool.close()


async def _list(pool: asyncpg.Pool, settings: DispatcherSettings, domain: str | None) -> list[StoredKey]:
    async with pool.acquire() as conn:
        if domain is not None:
            return await dkim_store.published_keys(conn, settings, normalize_domain(domain))
        return await dkim_store.list_keys(conn)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="isseimail-dispatcher dkim", description="DKIM signing keys")
    commands = p.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="make a new key (state next) and print its TXT record")
    gen.add_argument("domain")
    gen.add_argument("--algorithm", default="rsa", choices=["rsa", "ed25519"])
    gen.add_argument("--selector")
    rot = commands.add_parser("rotate", help="start signing with the next key(s); the active ones retire")
    rot.add_argument("domain")
    rot.add_argument("--algorithm", choices=["rsa", "ed25519"])
    rot.add_argument("--force", action="store_true", help="do not check that the TXT record resolves")
    lst = commands.add_parser("list", help="the keys and the TXT records to publish")
    lst.add_argument("domain", nargs="?")
    commands.add_parser("reencrypt", help="re-encrypt every stored key with the first ISSEIMAIL_DKIM_KEY_SECRET")
    commands.add_parser("prune", help="delete keys retired past the retention; print the records to remove")
    return p


def main(argv: list[str], settings: DispatcherSettings, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    args = parser().parse_args(argv)
    keep = dt.timedelta(days=settings.dkim_retired_retention_days)
    try:
        if args.command == "generate":
            algorithm = parse_algorithm(args.algorithm)
            key = asyncio.run(
                _with_pool(
                    settings, lambda p: dkim_store.generate_key(p, settings, args.domain, algorithm, args.selector)
                )
            )
            print(f"generated {key.algorithm} key {key.selector} for {key.domain}; publish:", file=out)
            print(zone_line(key), file=out)
            print(f"then run `isseimail-dispatcher dkim rotate {key.domain}` to start signing with it", file=out)
        elif args.command == "rotate":
            only = parse_algorithm(args.algorithm) if args.algorithm else None
            activated = asyncio.run(
                _with_pool(
                    settings,
                    lambda p: dkim_store.rotate(p, settings, args.domain, only, check_dns=not args.force),
                )
            )
            print(f"now signing with {', '.join(k.selector for k in activated)}", file=out)
            print_keys(asyncio.run(_with_pool(settings, lambda p: _list(p, settings, activated[0].domain))), out, keep)
        elif args.command == "reencrypt":
            count = asyncio.run(_with_pool(settings, lambda p: dkim_store.reencrypt_all(p, settings)))
            print(f"re-encrypted {count} stored private key(s) with the first ISSEIMAIL_DKIM_KEY_SECRET", file=out)
        elif args.command == "prune":
            pruned = asyncio.run(_with_pool(settings, lambda p: dkim_store.prune_retired(p, settings)))
            days = f"{settings.dkim_retired_retention_days:g}"
            print(f"deleted {len(pruned)} key(s) retired more than {days} day(s) ago", file=out)
            if pruned:
                print("these DNS records may now be removed:", file=out)
                for key in pruned:
                    print(zone_line(key), file=out)
        else:
            keys = asyncio.run(_with_pool(settings, lambda p: _list(p, settings, args.domain)))
            if not keys:
                print("no DKIM keys" + (f" for {args.domain}" if args.domain else ""), file=out)
            print_keys(keys, out, keep)
    except DkimKeyError as exc:
        print(f"error: {exc}", file=err)
        return 1 if exc.status == 409 else 2
    return 0
