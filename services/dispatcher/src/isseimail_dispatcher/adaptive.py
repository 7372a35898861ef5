"""Adaptive shaping: a domain that answers with rate-limit replies is sent to more slowly, fleet-wide.

Additive increase, multiplicative decrease. A rate-limit reply multiplies the domain's rate by `factor`
(not below `floor`) and restarts its quiet window; replies arriving within `hold` of the last decrease only
restart the window, so one burst of replies from many connections counts as one signal. After each full
window without such a reply the rate rises by `increase_fraction` of the configured rate, up to it.

The state lives in the domain's token bucket row (migration 003), so every worker obeys it at once. The
effective rate is a pure function of that state and the time: `effective_per_minute` here and the SQL
function `shaped_per_minute` (used by `limits.take_tokens`) compute the same thing; a test holds them equal.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# Rate-limit wording of the large providers (Gmail 4.7.28 "unusual rate", Yahoo "[TS01]".."[TSS04]"
# "temporarily deferred", Microsoft "RP-001".."RP-003" / 4.7.650 "rate limited", carriers' "too many").
_THROTTLE_TEXT = re.compile(
    r"rate[ -]?limit|too many (?:connections|concurrent|simultaneous|sessions|messages|mails|e-?mails|requests)"
    r"|try again later|temporarily deferred|throttl|unusual rate|exceeded the (?:rate|limit)|slow down"
    r"|sending rate|too fast|reduce (?:the )?(?:rate|volume)",
    re.IGNORECASE,
)
_THROTTLE_CODE = re.compile(r"\b(?:TSS?0\d|RP-00\d)\b")  # provider codes are upper case
_NOT_THROTTLE_TEXT = re.compile(r"gr[ae]y-?list", re.IGNORECASE)
THROTTLE_CODES = (421, 450, 451)


def is_rate_limit(code: int | None, enhanced: str | None, text: str) -> bool:
    """Whether an SMTP reply asks us to slow down. Only 421/450/451; a 5xx is never a rate limit here.

    A 4.7.x enhanced status on those codes counts (policy deferral, Gmail's and Outlook's rate limits),
    greylisting excepted (it asks for one retry, not a slower pace); otherwise the usual texts decide.
    """
    if code not in THROTTLE_CODES:
        return False
    text = text[:2000]
    if _NOT_THROTTLE_TEXT.search(text):
        return False
    if enhanced is not None and enhanced.startswith("4.7."):
        return True
    return _THROTTLE_TEXT.search(text) is not None or _THROTTLE_CODE.search(text) is not None


@dataclass(frozen=True)
class Adaptation:
    window: float = 300.0  # seconds a lowered rate holds, and between increase steps
    factor: float = 0.5  # multiplicative decrease per rate-limit signal
    floor: float = 6.0  # per minute
    increase_fraction: float = 0.1  # of the configured rate, per quiet window

    @property
    def hold(self) -> float:
        """Replies within this long after a decrease do not decrease again (one burst, one signal)."""
        return self.window / 5


@dataclass(frozen=True)
class ThrottleState:
    """A domain's adaptive state; times are seconds on the database clock (epoch)."""

    lowered: float | None = None  # per minute, set by the last decrease; None: never throttled
    throttled_at: float | None = None  # last rate-limit reply; the quiet window counts from here
    decreased_at: float | None = None


def step(ceiling: float, adapt: Adaptation) -> float:
    return ceiling * adapt.increase_fraction


def effective_per_minute(state: ThrottleState, ceiling: float, adapt: Adaptation, now: float) -> float:
    """The rate in force: the configured one, or the lowered one plus one step per full quiet window."""
    if state.lowered is None or state.throttled_at is None:
        return ceiling
    windows = math.floor(max(0.0, now - state.throttled_at) / adapt.window)
    return min(ceiling, state.lowered + step(ceiling, adapt) * windows)


def after_rate_limit(state: ThrottleState, ceiling: float, adapt: Adaptation, now: float) -> ThrottleState:
    """The state after a rate-limit reply at `now`."""
    if state.decreased_at is not None and state.lowered is not None and now - state.decreased_at < adapt.hold:
        return ThrottleState(state.lowered, now, state.decreased_at)  # same burst: the window restarts only
    current = effective_per_minute(state, ceiling, adapt, now)
    lowered = max(min(adapt.floor, ceiling), current * adapt.factor)
    return ThrottleState(lowered, now, now)


def is_recovered(state: ThrottleState, ceiling: float, adapt: Adaptation, now: float) -> bool:
    return effective_per_minute(state, ceiling, adapt, now) >= ceiling
