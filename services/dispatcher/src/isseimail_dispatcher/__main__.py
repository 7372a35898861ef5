"""`isseimail-dispatcher [serve]` runs the dispatcher; `isseimail-dispatcher worker` runs an SMTP worker."""

from __future__ import annotations

import sys

from isseimail_dispatcher.app import create_app, create_worker_app
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_shared.cli import serve


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    mode = args[0] if args else "serve"
    settings = DispatcherSettings()
    if mode == "serve":
        serve("dispatcher", settings, settings.port, lambda: create_app(settings))
    elif mode == "worker":
        serve("dispatcher-worker", settings, settings.worker_port, lambda: create_worker_app(settings))
    else:
        sys.exit(f"usage: isseimail-dispatcher [serve|worker] (unknown mode {mode!r})")


if __name__ == "__main__":
    main()
