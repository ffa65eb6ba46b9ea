"""Rule-based behavioural segments, defined in a TOML settings file and recomputed with the profile.

A segment is a list of conditions ``"<feature> <op> <value>"`` that must all hold, with
``op`` one of ``>= > <= < == !=``; the value is a number, ``true``/``false`` or a word.
A missing (null) feature fails every condition. Example::

    [segments.high_value]
    description = "Spent a lot in the last year"
    when = ["revenue_365d >= 500", "orders_365d >= 2"]
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from processors.config_file import ConfigError, read_toml

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt,
}


class SegmentError(ConfigError):
    """A segment definition that cannot be understood; the message names the segment and the condition."""


@dataclass(frozen=True)
class Condition:
    feature: str
    op: str
    value: Any



@dataclass(frozen=True)
class Segment:
    name: str
    description: str
    conditions: tuple[Condition, ...]
    #: (feature, operator function, value) per condition: what :meth:`matches` runs for every profile.
    _checks: tuple[tuple[str, Callable[[Any, Any], bool], Any], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_checks", tuple((c.feature, _OPS[c.op], c.value) for c in self.conditions))

    def matches(self, values: dict[str, Any]) -> bool:
        """Whether every condition holds: its feature is present (not null) and compares as asked.

        A comparison between incompatible types (a number against a word) does not hold. One loop
        over prepared tuples, since this runs for every segment of every profile.
        """
        get = values.get
        for feature, op, value in self._checks:
            actual = get(feature)
            if actual is None:
                return False
            try:
                if not op(actual, value):
                    return False
            except TypeError:
                return False
        return True


def _literal(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text.strip("\"'")


def parse_condition(segment: str, text: str, known: set[str] | None) -> Condition:
    for op in sorted(_OPS, key=len, reverse=True):
        if op in text:
            feature, _, value = (part.strip() for part in text.partition(op))
            if not feature or not value:
                break
            if known is not None and feature not in known:
                raise SegmentError(f"segment {segment!r}: unknown feature {feature!r} in {text!r}")
            return Condition(feature, op, _literal(value))
    raise SegmentError(f"segment {segment!r}: cannot read condition {text!r} (expected '<feature> <op> <value>')")


def load_segments(path: Path | None = None, known_features: set[str] | None = None) -> list[Segment]:
    """Segments from ``path``, or the defaults shipped in ``processors/features/segments.toml``."""
    data = read_toml(path, "processors.features", "segments.toml")
    segments = []
    for name, body in data.get("segments", {}).items():
        when = body.get("when")
        if not isinstance(when, list) or not when:
            raise SegmentError(f"segment {name!r}: 'when' must be a non-empty list of conditions")
        conditions = tuple(parse_condition(name, str(c), known_features) for c in when)
        segments.append(Segment(name, str(body.get("description", "")), conditions))
    return segments
