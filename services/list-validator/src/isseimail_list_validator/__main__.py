"""`isseimail-list-validator`: run the list-validator."""

from __future__ import annotations

import sys

from isseimail_list_validator.app import create_app
from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_shared.cli import exit_on_help, serve


def main() -> None:
    exit_on_help(
        sys.argv[1:], "isseimail-list-validator  (serves the list-validator; settings from ISSEIMAIL_* variables)"
    )
    settings = ListValidatorSettings()
    serve("list-validator", settings, settings.port, lambda: create_app(settings))


if __name__ == "__main__":
    main()
