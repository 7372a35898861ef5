"""`isseimail-composer [serve]`: run the composer; `isseimail-composer check-domain DOMAIN [--json]`: print a
sender domain's DNS readiness (SPF, DKIM, DMARC, bounce MX, PTR); exit status 1 on any error."""

from __future__ import annotations

import sys

from isseimail_composer.app import create_app
from isseimail_composer.deliverability import cli as domain_cli
from isseimail_composer.settings import ComposerSettings
from isseimail_shared.cli import exit_on_help, serve


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "check-domain":
        exit_on_help(args, "isseimail-composer [serve] | isseimail-composer check-domain DOMAIN [--json]")
    settings = ComposerSettings()
    if args and args[0] == "check-domain":
        sys.exit(domain_cli.main(args[1:], settings))
    if args and args[0] != "serve":
        sys.exit(f"usage: isseimail-composer [serve|check-domain DOMAIN] (unknown mode {args[0]!r})")
    serve("composer", settings, settings.port, lambda: create_app(settings))


if __name__ == "__main__":
    main()
