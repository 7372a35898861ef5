"""The list-validator app: its spec (schema, migrations, the domain-check work queue) and its routes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from fastapi import FastAPI

from isseimail_list_validator import lists, organisation_check
from isseimail_list_validator.address_check import AddressChecker
from isseimail_list_validator.domain_check import DomainChecker
from isseimail_list_validator.routes import Uploads, router
from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_list_validator.smtp_probe import SmtpProber
from isseimail_list_validator.work_messages import DOMAIN_QUEUE, TaskPublisher
from isseimail_list_validator.worker import ResultWriter, domain_handler, redispatch_stale
from isseimail_shared.app import create_app as create_service_app
from isseimail_shared.runtime import ConsumerSpec, Runtime, ServiceSpec

log = logging.getLogger(__name__)


async def open_checkers(runtime: Runtime[ListValidatorSettings]) -> None:
    s = runtime.settings
    parts = runtime.registry
    checker = DomainChecker(s.nameserver_strings(), timeout=s.dns_timeout_seconds, attempts=s.dns_attempts)
    parts.register(DomainChecker, checker, close=checker.close)
    parts.register(ResultWriter, ResultWriter(runtime.pool, s.result_flush_seconds))
    publisher = TaskPublisher(runtime.broker)
    parts.register(TaskPublisher, publisher)
    slots = asyncio.Semaphore(s.list_upload_concurrency)
    uploads = Uploads(AddressChecker(s.legacy_carrier_domains, smtputf8=s.smtputf8), slots, publisher)
    parts.register(Uploads, uploads, close=uploads.close)  # closed first: answered uploads finish publishing
    if s.smtp_probe:
        parts.register(SmtpProber, SmtpProber(runtime.pool, checker, s))


def consumers(runtime: Runtime[ListValidatorSettings]) -> Sequence[ConsumerSpec]:
    parts = runtime.registry
    concurrency = runtime.settings.domain_check_concurrency
    handler = domain_handler(parts.get(DomainChecker), parts.get(ResultWriter), parts.find(SmtpProber), concurrency)
    # A message is acked only when its slowest domain is answered: a window of as many messages as
    # checks keeps the slots busy behind slow domains (the handler's semaphore bounds the DNS load).
    # The broker deals a new list's messages round-robin, so every replica gets its share.
    prefetch = concurrency
    return [ConsumerSpec(DOMAIN_QUEUE, handler, prefetch=prefetch)]


async def result_writer(runtime: Runtime[ListValidatorSettings]) -> None:
    await runtime.registry.get(ResultWriter).run()


async def stale_list_sweeper(runtime: Runtime[ListValidatorSettings]) -> None:
    """Republish checks of lists stuck in 'validating'; once an hour, delete lists past their retention."""
    s = runtime.settings
    publisher = runtime.registry.get(TaskPublisher)
    interval = min(s.redispatch_after_seconds, 60.0)
    next_cleanup = 0.0
    while True:
        try:
            await redispatch_stale(runtime.pool, publisher, s.redispatch_after_seconds)
            if time.monotonic() >= next_cleanup:
                deleted = await lists.delete_expired(runtime.pool, s.list_retention_days)
                if deleted:
                    log.info("deleted %d lists older than %d days", deleted, s.list_retention_days)
                next_cleanup = time.monotonic() + 3600
        except Exception:
            log.exception("stale list sweep failed")
        await asyncio.sleep(interval)


SPEC = ServiceSpec(
    name="list-validator",
    schema="list_validator",
    migrations="isseimail_list_validator.migrations",
    uses_database=True,
    uses_broker=True,
    consumers=consumers,
    background=[result_writer, stale_list_sweeper],
    on_start=[open_checkers],
)


def create_app(settings: ListValidatorSettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or ListValidatorSettings(), [router, organisation_check.router])
