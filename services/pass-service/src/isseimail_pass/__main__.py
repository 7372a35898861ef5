"""`isseimail-pass`: run the pass-service."""

from __future__ import annotations

from isseimail_shared.cli import serve

from isseimail_pass.app import create_app
from isseimail_pass.settings import PassSettings


def main() -> None:
    settings = PassSettings()
    serve("pass-service", settings, settings.port, lambda: create_app(settings))


if __name__ == "__main__":
    main()
