"""Start the readiness checker and the send-time gate with the composer's runtime (closed by its stop)."""

from __future__ import annotations

from isseimail_composer.deliverability.gate import DomainGate
from isseimail_composer.deliverability.report import ReadinessChecker
from isseimail_composer.settings import ComposerSettings
from isseimail_shared.runtime import Runtime


async def open_readiness(runtime: Runtime[ComposerSettings]) -> None:
    settings = runtime.settings
    checker = ReadinessChecker.from_settings(settings)
    runtime.registry.register(
        DomainGate, DomainGate(checker, runtime.pool, settings.sender_domains), close=checker.close
    )
