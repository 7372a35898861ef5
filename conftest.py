"""Root conftest: the shared fixtures (real PostgreSQL, RabbitMQ, SMTP, DNS) for every test folder."""

pytest_plugins = ["isseimail_shared.testing.fixtures"]
