"""`isseimail-dispatcher [serve]` runs the dispatcher; `isseimail-dispatcher worker` runs an SMTP worker;
`isseimail-dispatcher dkim generate|rotate|list` manages the DKIM keys (dkim_cli.py)."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from isseimail_dispatcher import dkim_cli
from isseimail_dispatcher.app import create_app, create_worker_app
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_shared.cli import exit_on_help, serve


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    mode = args[0] if args else "serve"
    if mode != "dkim":
        exit_on_help(args, "isseimail-dispatcher [serve | worker | dkim generate|rotate|list|reencrypt|prune ...]")
    try:
        settings = DispatcherSettings()
    except ValidationError as exc:  # e.g. a broken ISSEIMAIL_DOMAIN_LIMITS or presets file: say which, and stop
        sys.exit(f"isseimail-dispatcher: invalid settings: {exc}")
    if mode == "serve":
        serve("dispatcher", settings, settings.port, lambda: create_app(settings))
    elif mode == "worker":
        serve("dispatcher-worker", settings, settings.worker_port, lambda: create_worker_app(settings))
    elif mode == "dkim":
        sys.exit(dkim_cli.main(args[1:], settings))
    else:
        sys.exit(f"usage: isseimail-dispatcher [serve|worker|dkim] (unknown mode {mode!r})")


if __name__ == "__main__":
    main()
