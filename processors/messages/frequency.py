"""Cooldowns per customer and trigger, and frequency caps per channel over rolling windows.

Every message made is recorded with its send time (the end of quiet hours when it was
deferred, so deferred messages hold their place). A cap ``(n, window)`` on a channel
allows one more message at ``t`` only if every window of that length containing ``t``
(rolling, not calendar) already holds fewer than ``n`` messages on the channel; messages
scheduled after ``t`` count too. Service messages are exempt from caps; cooldowns apply
to every trigger.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sent:
    send_ms: int
    channel: str
    trigger: str
    message_id: str


def cooldown_left(last_ms: int | None, at_ms: int, cooldown_ms: int) -> int:
    """Milliseconds of cooldown still to run at ``at_ms`` after a message for the trigger at ``last_ms``."""
    if last_ms is None or cooldown_ms <= 0:
        return 0
    return max(0, last_ms + cooldown_ms - at_ms)


def cap_reached(sent: list[Sent], channel: str, at_ms: int, caps: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The first cap (max, window ms) that one more message on ``channel`` at ``at_ms`` would break."""
    times = sorted(s.send_ms for s in sent if s.channel == channel)
    for limit, window in caps:
        # The fullest window containing at_ms starts at at_ms or at an earlier send within the window.
        starts = [t for t in times if at_ms - window < t <= at_ms] + [at_ms]
        if any(sum(1 for t in times if start <= t < start + window) >= limit for start in starts):
            return limit, window
    return None


def prune(sent: list[Sent], at_ms: int, horizon_ms: int) -> list[Sent]:
    """Forget sends older than every window ending at ``at_ms`` (bounded state)."""
    return [s for s in sent if s.send_ms > at_ms - horizon_ms]
