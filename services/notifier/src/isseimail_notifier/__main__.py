"""`isseimail-notifier [serve]` runs the notifier; `isseimail-notifier parse-bounce FILE...` explains bounces."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from isseimail_notifier.bounce_parser import MAX_PARSE_BYTES, parse_bounce


def parse_bounce_files(paths: Sequence[str], out: TextIO | None = None) -> int:
    """Print one JSON object per file (the listener's own parser); 1 if any file could not be read."""
    stream = out if out is not None else sys.stdout
    status = 0
    for name in paths:
        try:
            path = Path(name)
            if path.stat().st_size > MAX_PARSE_BYTES:
                data = path.open("rb").read(MAX_PARSE_BYTES + 1)
            else:
                data = path.read_bytes()
        except OSError as exc:
            print(json.dumps({"file": name, "error": exc.strerror or str(exc)}, ensure_ascii=False), file=stream)
            status = 1
            continue
        result = parse_bounce(data).as_json(name)
        print(json.dumps(result, ensure_ascii=False), file=stream)
    return status


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="isseimail-notifier", description="isseimail notifier")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the notifier service (the default)")
    explain = commands.add_parser("parse-bounce", help="print what the bounce parser makes of each file, as JSON")
    explain.add_argument("files", nargs="+", metavar="FILE")
    args = parser.parse_args(argv)
    if args.command == "parse-bounce":
        sys.exit(parse_bounce_files(args.files))
    serve_notifier()


def serve_notifier() -> None:
    from isseimail_notifier.app import create_app
    from isseimail_notifier.settings import NotifierSettings
    from isseimail_shared.cli import serve

    settings = NotifierSettings()  # credentials_key comes from the environment
    serve("notifier", settings, settings.port, lambda: create_app(settings))


if __name__ == "__main__":
    main()
