"""Start and stop the readiness checker and the send-time gate with the composer's runtime."""

from __future__ import annotations

from isseimail_composer.deliverability.gate import DomainGate
from isseimail_composer.deliverability.report import ReadinessChecker
from isseimail_composer.settings import ComposerSettings
from isseimail_shared.runtime import Runtime


async def open_readiness(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, ComposerSettings)
    checker = ReadinessChecker.from_settings(settings)
    runtime.state["domain_gate"] = DomainGate(checker, runtime.pool, settings.sender_domains)


async def close_readiness(runtime: Runtime) -> None:
    gate: DomainGate | None = runtime.state.pop("domain_gate", None)
    if gate is not None:
        await gate.checker.close()
