"""A replay's dry run: what a source gives before anything starts, and which rows will be dead letters, and why.

Every record is validated exactly as ingestion will (:func:`schemas.validation.validate`), so the
reasons are the ones the dead-letter table will hold. :func:`mostly_dead` looks at a sample only,
for the warning ``journey run --replay`` prints before it starts (a mapping that can never
succeed, e.g. ``quantity`` without ``product_id``, dead-letters every row).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from schemas.registry import DEAD_LETTERS
from schemas.validation import Limits, Rejected, validate
from streams.sources.record import SourceRecord
from streams.sources.stats import ReplayStats
from streams.sources.timeformat import spread

#: Examples kept per dead-letter reason.
EXAMPLES = 3
#: Records :func:`mostly_dead` validates.
WARNING_SAMPLE = 1000


@dataclass
class CheckReport:
    """What a dry run found: records, time range, formats, and the dead letters to come per reason."""

    rows: int
    records: int
    time_formats: dict[str, str]
    first: datetime | None = None
    last: datetime | None = None
    dead_letters: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    hints: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report as lines for the terminal."""
        out = [f"{self.rows:,} rows read, {self.records:,} records"]
        out += [f"column {column!r}: times read as {fmt}" for column, fmt in self.time_formats.items()]
        if self.first is not None and self.last is not None:
            out.append(f"event time from {self.first.isoformat()} to {self.last.isoformat()}")
        dead = sum(self.dead_letters.values())
        out.append(f"{self.records - dead:,} records will be accepted, {dead:,} will be dead letters"
                   + (":" if dead else ""))
        for reason, count in self.dead_letters.most_common():
            out.append(f"  {reason}: {count:,}")
            out += [f"    {example}" for example in self.examples[reason]]
        out += [f"hint: {hint}" for hint in self.hints]
        return out


def rejection(record: SourceRecord, limits: Limits, now: datetime | None = None) -> tuple[str, str] | None:
    """(reason, detail) of the dead letter ``record`` will become, or None when ingestion accepts it."""
    if record.topic == DEAD_LETTERS:  # the source dead-lettered the row itself
        letter = orjson.loads(record.value)
        return str(letter["reason"]), str(letter["detail"])
    try:
        validate(record.topic, record.value, record.key, limits, now)
    except Rejected as rejected:
        return rejected.reason, rejected.detail
    return None


def check(records: Sequence[SourceRecord], stats: ReplayStats, limits: Limits,
          now: datetime | None = None) -> CheckReport:
    """Validate every record as ingestion will and report (see :class:`CheckReport`)."""
    report = CheckReport(stats.rows, len(records), dict(stats.time_formats), hints=list(stats.hints.values()))
    times = [r.event_time for r in records if r.event_time is not None]
    if times:
        report.first, report.last = min(times), max(times)
    for record in records:
        found = rejection(record, limits, now)
        if found is None:
            continue
        reason, detail = found
        report.dead_letters[reason] += 1
        examples = report.examples.setdefault(reason, [])
        if len(examples) < EXAMPLES:
            where = f"line {record.line}: " if record.line is not None and f"line {record.line}:" not in detail else ""
            examples.append(f"{where}{detail}")
    return report


def mostly_dead(records: Sequence[SourceRecord], limits: Limits, now: datetime | None = None) -> str | None:
    """A warning when most of a sample of ``records`` would be dead letters (with the main reason), else None."""
    sample = spread(records, WARNING_SAMPLE)
    found = [r for r in (rejection(record, limits, now) for record in sample) if r is not None]
    if not sample or len(found) * 2 <= len(sample):
        return None
    reason, count = Counter(r for r, _ in found).most_common(1)[0]
    detail = next(d for r, d in found if r == reason)
    return (f"{len(found):,} of {len(sample):,} records sampled would be dead letters, most as {reason} "
            f"({count:,}: {detail}); check the mapping (`--check` shows every reason)")
