"""`isseimail-notifier`: run the notifier."""

from __future__ import annotations

from isseimail_notifier.app import create_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.cli import serve


def main() -> None:
    settings = NotifierSettings()
    serve("notifier", settings, settings.port, lambda: create_app(settings))


if __name__ == "__main__":
    main()
