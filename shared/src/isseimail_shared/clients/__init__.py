"""Typed HTTP clients of the services' internal APIs, one per service, on one base (`base.InternalClient`).

Each answers the models of `isseimail_shared.contracts.<service>`; credentials, timeouts and retries are
the base's. Services never import each other: a caller uses the client of the service it reads from.
"""
