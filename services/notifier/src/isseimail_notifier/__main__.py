"""`isseimail-notifier [serve]` runs the notifier; `isseimail-notifier parse-bounce [--summary] FILE...` explains
bounces (one JSON object per file: is_bounce, recipient, status, reason, hard, action, diagnostic, ...)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from isseimail_notifier.bounce_parser import MAX_PARSE_BYTES, parse_bounce


def parse_bounce_files(paths: Sequence[str], out: TextIO | None = None, summary: bool = False) -> int:
    """Print one JSON object per file (the listener's own parser); 1 if any file could not be read.

    With `summary`, print instead one line per reason with how many files had it (bounces and not), most first.
    """
    stream = out if out is not None else sys.stdout
    status = 0
    counts: Counter[tuple[str, bool]] = Counter()
    for name in paths:
        try:
            path = Path(name)
            if path.stat().st_size > MAX_PARSE_BYTES:
                data = path.open("rb").read(MAX_PARSE_BYTES + 1)
            else:
                data = path.read_bytes()
        except OSError as exc:
            counts[("unreadable", False)] += 1
            if not summary:
                print(json.dumps({"file": name, "error": exc.strerror or str(exc)}, ensure_ascii=False), file=stream)
            status = 1
            continue
        result = parse_bounce(data)
        counts[(result.reason, result.is_bounce)] += 1
        if not summary:
            print(json.dumps(result.as_json(name), ensure_ascii=False), file=stream)
    if summary:
        _print_summary(counts, stream)
    return status


def _print_summary(counts: Counter[tuple[str, bool]], stream: TextIO) -> None:
    """reason, bounce or not, count: a table a person reads and `sort`/`awk` can use."""
    total = sum(counts.values())
    print(f"{'reason':<16} {'bounce':<6} {'count':>7}", file=stream)
    for (reason, is_bounce), count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        print(f"{reason:<16} {'yes' if is_bounce else 'no':<6} {count:>7}", file=stream)
    print(f"{'total':<16} {'':<6} {total:>7}", file=stream)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="isseimail-notifier", description="isseimail notifier")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the notifier service (the default)")
    explain = commands.add_parser("parse-bounce", help="print what the bounce parser makes of each file, as JSON")
    explain.add_argument("files", nargs="+", metavar="FILE")
    explain.add_argument("--summary", action="store_true", help="print counts per reason instead of JSON lines")
    args = parser.parse_args(argv)
    if args.command == "parse-bounce":
        sys.exit(parse_bounce_files(args.files, summary=args.summary))
    serve_notifier()


def serve_notifier() -> None:
    from isseimail_notifier.app import create_app
    from isseimail_notifier.settings import NotifierSettings
    from isseimail_shared.cli import serve

    settings = NotifierSettings()  # credentials_key comes from the environment
    serve("notifier", settings, settings.port, lambda: create_app(settings))


if __name__ == "__main__":
    main()
