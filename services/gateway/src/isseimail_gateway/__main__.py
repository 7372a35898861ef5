"""`isseimail-gateway`: run the gateway."""

from __future__ import annotations

from isseimail_gateway.app import create_app
from isseimail_gateway.settings import GatewaySettings
from isseimail_shared.cli import serve


def main() -> None:
    settings = GatewaySettings()
    serve("gateway", settings, settings.port, lambda: create_app(settings))


if __name__ == "__main__":
    main()
