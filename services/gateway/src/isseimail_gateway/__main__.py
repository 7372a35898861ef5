"""`isseimail-gateway`: run the gateway."""

from __future__ import annotations

import sys

from isseimail_gateway.app import create_app
from isseimail_gateway.settings import GatewaySettings
from isseimail_shared.cli import exit_on_help, serve


def main() -> None:
    exit_on_help(
        sys.argv[1:], "isseimail-gateway  (serves the web UI and /api/v1; settings from ISSEIMAIL_* variables)"
    )
    settings = GatewaySettings()
    serve("gateway", settings, settings.port, lambda: create_app(settings))


if __name__ == "__main__":
    main()
