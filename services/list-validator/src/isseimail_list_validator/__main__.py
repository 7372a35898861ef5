"""`isseimail-list-validator`: run the list-validator."""

from __future__ import annotations

from isseimail_list_validator.app import create_app
from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_shared.cli import serve


def main() -> None:
    settings = ListValidatorSettings()
    serve("list-validator", settings, settings.port, lambda: create_app(settings))


if __name__ == "__main__":
    main()
