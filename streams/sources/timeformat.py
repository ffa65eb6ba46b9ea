"""The time format of a replayed column, decided once from the file's values, never row by row.

A shop's export writes every row of a column the same way, so the format is a property of the
column: reading each row on its own guessed ``19970101`` as unix seconds (1970-08-20) and read
``dd/mm/yyyy`` month-first whenever the day was 12 or less. :func:`decide` looks at a sample of
the column's distinct values (spread over the whole file), keeps the formats that read every
readable value, and:

- prefers a date reading (ISO 8601, compact ``YYYYMMDD``/``YYYYMMDDHHMM``/``YYYYMMDDHHMMSS``,
  ``dd/mm/yyyy``, ``m/d/yy h:mm AM`` ...) to unix seconds or milliseconds, which are accepted
  only within :data:`PLAUSIBLE` (1980 to 2100);
- when two readings disagree on the sample (day-first against month-first), checks every distinct
  value of the column; still undecided, it stops with :class:`TimeFormatError` (ambiguous);
- when no one format reads all the readable values, it stops (a mix of formats).

Every error is one line naming the file, the column, examples and ``--time-format`` (a strftime
format, or ``iso``, ``unix``, ``unix-ms``), which settles it. Values no format reads are left
unread: their rows go out for ingestion to dead-letter (``invalid_timestamp``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

#: Unix times are accepted in this range only (1980-01-01 to 2100-01-01 UTC), in seconds.
PLAUSIBLE = (315_532_800.0, 4_102_444_800.0)
#: Distinct values looked at to decide (spread over the file); every value when undecided.
SAMPLE_SIZE = 400
#: Years a compact date (``YYYYMMDD``) may have.
COMPACT_YEARS = (1900, 2100)

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_DATES = ("%d/%m/%Y", "%m/%d/%Y", "%d/%m/%y", "%m/%d/%y", "%d.%m.%Y", "%d.%m.%y", "%d-%m-%Y", "%m-%d-%Y",
          "%Y/%m/%d", "%d %b %Y", "%b %d %Y", "%d-%b-%Y")
_TIMES = ("", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p", " %H:%M:%S.%f")
#: Formats with no place in the grid above (Twitter's ``Tue Oct 31 22:10:47 +0000 2017``).
_OTHERS = ("%a %b %d %H:%M:%S %z %Y",)


class TimeFormatError(ValueError):
    """A column's format cannot be decided (ambiguous, mixed, unreadable); the message says how to settle it."""


@dataclass(frozen=True, slots=True)
class TimeFormat:
    """One way of writing times: ``parse`` gives a naive or aware datetime, or None when the text does not fit."""

    name: str
    parse: Callable[[str], datetime | None]
    is_date: bool = True

    def read(self, value: object, zone: ZoneInfo) -> datetime | None:
        """``value`` as an aware UTC datetime (naive times are in ``zone``), or None when it does not fit."""
        text = as_text(value)
        parsed = self.parse(text) if text else None
        if parsed is None:
            return None
        try:
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)
        except (OverflowError, ValueError):
            return None


def as_text(value: object) -> str:
    """A cell as text: JSON numbers as written, bool and null as nothing."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _strptime(fmt: str) -> Callable[[str], datetime | None]:
    def parse(text: str) -> datetime | None:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            return None
    return parse


def _iso(text: str) -> datetime | None:
    if not _ISO.match(text):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _compact(digits: int, fmt: str) -> Callable[[str], datetime | None]:
    def parse(text: str) -> datetime | None:
        if len(text) != digits or not text.isdigit() or not COMPACT_YEARS[0] <= int(text[:4]) < COMPACT_YEARS[1]:
            return None
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            return None
    return parse


def _unix(scale: float) -> Callable[[str], datetime | None]:
    def parse(text: str) -> datetime | None:
        if not _NUMBER.fullmatch(text):
            return None
        seconds = float(text) / scale
        if not (math.isfinite(seconds) and PLAUSIBLE[0] <= seconds < PLAUSIBLE[1]):
            return None
        return datetime.fromtimestamp(seconds, UTC)
    return parse


ISO = TimeFormat("ISO 8601", _iso)
UNIX_SECONDS = TimeFormat("unix seconds", _unix(1.0), is_date=False)
UNIX_MILLISECONDS = TimeFormat("unix milliseconds", _unix(1000.0), is_date=False)
#: Every reading tried, dates first.
CANDIDATES: tuple[TimeFormat, ...] = (
    ISO,
    TimeFormat("YYYYMMDD", _compact(8, "%Y%m%d")),
    TimeFormat("YYYYMMDDHHMM", _compact(12, "%Y%m%d%H%M")),
    TimeFormat("YYYYMMDDHHMMSS", _compact(14, "%Y%m%d%H%M%S")),
    *(TimeFormat(d + t, _strptime(d + t)) for d in _DATES for t in _TIMES),
    *(TimeFormat(f, _strptime(f)) for f in _OTHERS),
    UNIX_SECONDS,
    UNIX_MILLISECONDS,
)
#: ``--time-format`` names for the readings that are not strftime formats.
NAMED = {"iso": ISO, "unix": UNIX_SECONDS, "unix-ms": UNIX_MILLISECONDS}


def given(time_format: str) -> TimeFormat:
    """The format of ``--time-format``: ``iso``, ``unix``, ``unix-ms`` or a strftime format (ValueError otherwise)."""
    if time_format in NAMED:
        return NAMED[time_format]
    if "%" not in time_format:
        raise ValueError(f"--time-format {time_format!r} is not a strftime format (e.g. '%d/%m/%Y %H:%M') "
                         f"nor one of {', '.join(NAMED)}")
    return TimeFormat(time_format, _strptime(time_format))


def decide(values: Sequence[str], column: str, where: str, time_format: str | None = None) -> TimeFormat:
    """The one format of ``column`` (``values``: its distinct non-empty texts in file order).

    ``where`` names the file in errors. With ``time_format`` that format is used as it is.
    """
    if time_format is not None:
        return given(time_format)
    if not values:
        return ISO  # nothing to read: any format reads nothing
    sample = spread(values, SAMPLE_SIZE)
    readings = {c: [c.parse(v) for v in sample] for c in CANDIDATES}
    readable = {i for parsed in readings.values() for i, p in enumerate(parsed) if p is not None}
    if not readable:
        raise TimeFormatError(f"{where}: column {column!r} has no value read as a time (e.g. {_examples(sample)}); "
                              "pass --time-format with its strftime format (e.g. --time-format '%d %B %Y %H:%M')")
    covering = [c for c, parsed in readings.items() if all(parsed[i] is not None for i in readable)]
    if not covering:
        raise TimeFormatError(f"{where}: column {column!r} mixes time formats: {_mix(sample, readings)}; "
                              "pass --time-format with the one to read (rows in the others become dead letters)")
    if any(c.is_date for c in covering):
        covering = [c for c in covering if c.is_date]
    if _agree(covering, readings):
        return covering[0]
    # The sample cannot tell (day-first against month-first): every value decides.
    everything = {c: [c.parse(v) for v in values] for c in covering}
    fewest = min(sum(p is None for p in parsed) for parsed in everything.values())
    covering = [c for c in covering if sum(p is None for p in everything[c]) == fewest]
    if _agree(covering, everything):
        return covering[0]
    names = " or ".join(f"{c.name!r}" for c in covering[:3])
    differ = [v for v, *parsed in zip(values, *(everything[c] for c in covering), strict=True)
              if len(set(parsed)) > 1]
    raise TimeFormatError(f"{where}: column {column!r} is ambiguous: its values (e.g. {_examples(differ)}) read "
                          f"as {names} (day and month both 12 or less everywhere); pass --time-format {names} "
                          "(strftime) to settle it")


def check_rest(chosen: TimeFormat, unread: Sequence[str], column: str, where: str) -> None:
    """Stop when a value the chosen format did not read is a time in another format (a mix the sample missed)."""
    for value in unread[:SAMPLE_SIZE]:
        other = next((c for c in CANDIDATES if c is not chosen and c.parse(value) is not None), None)
        if other is not None:
            raise TimeFormatError(f"{where}: column {column!r} mixes time formats: most values are {chosen.name!r}, "
                                  f"but {value!r} is {other.name!r}; pass --time-format with the one to read "
                                  "(rows in the others become dead letters)")


def _agree(formats: list[TimeFormat], readings: dict[TimeFormat, list[datetime | None]]) -> bool:
    first = readings[formats[0]]
    return all(readings[c] == first for c in formats[1:])


def spread(values: Sequence[str], n: int) -> list[str]:
    """At most ``n`` values taken evenly over ``values`` (the first and the last among them)."""
    if len(values) <= n:
        return list(values)
    step = (len(values) - 1) / (n - 1)
    return [values[round(i * step)] for i in range(n)]


def _examples(values: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in values[:3])


def _mix(sample: list[str], readings: dict[TimeFormat, list[datetime | None]]) -> str:
    """``'v' (format), ...`` for values read by different formats, the most common format first."""
    groups: dict[str, str] = {}
    for i, value in enumerate(sample):
        name = next((c.name for c in CANDIDATES if readings[c][i] is not None), None)
        if name is not None and name not in groups:
            groups[name] = value
    return ", ".join(f"{value!r} ({name})" for name, value in list(groups.items())[:4])
