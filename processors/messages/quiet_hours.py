"""Quiet hours in the customer's time zone: a message due inside them is deferred to their end.

The period is local wall time ``[start, end)``; when ``start > end`` it crosses midnight
(21:00-08:00). The end is computed in the customer's zone on the right local day, so
daylight-saving changes move it correctly in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=1024)
def zone(name: str | None, default: str = "UTC") -> ZoneInfo:
    """The zone called ``name``; the default when it is missing or unknown."""
    for candidate in (name, default):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def quiet_until(t_ms: int, tz: ZoneInfo, start: time, end: time) -> int | None:
    """The end of the quiet period containing ``t_ms`` (epoch ms), or None when ``t_ms`` is not quiet."""
    if start == end:
        return None
    local = datetime.fromtimestamp(t_ms / 1000, UTC).astimezone(tz)
    now = local.time().replace(tzinfo=None)
    if start < end:
        if not start <= now < end:
            return None
        day = local.date()
    else:
        if end <= now < start:
            return None
        day = local.date() + timedelta(days=1) if now >= start else local.date()
    ends = datetime.combine(day, end, tzinfo=tz)
    return round(ends.astimezone(UTC).timestamp() * 1000)
