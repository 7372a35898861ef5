"""`isseimail-composer`: run the composer."""

from __future__ import annotations

from isseimail_composer.app import create_app
from isseimail_composer.settings import ComposerSettings
from isseimail_shared.cli import serve


def main() -> None:
    settings = ComposerSettings()
    serve("composer", settings, settings.port, lambda: create_app(settings))


if __name__ == "__main__":
    main()
