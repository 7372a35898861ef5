"""`isseimail-dispatcher`: run the dispatcher."""

from __future__ import annotations

from isseimail_shared.cli import serve

from isseimail_dispatcher.app import create_app
from isseimail_dispatcher.settings import DispatcherSettings


def main() -> None:
    settings = DispatcherSettings()
    serve("dispatcher", settings, settings.port, lambda: create_app(settings))


if __name__ == "__main__":
    main()
