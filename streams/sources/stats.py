"""What a replay read, emitted and skipped (with why): nothing is dropped silently."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ReplayStats:
    """Counters a replay fills as it reads.

    ``rows`` counts input rows (for Olist: order rows plus review rows); ``emitted`` counts
    records per event type (one row may give several, e.g. an order's lifecycle); ``skipped``
    counts what gave no record (a row, or one event of a row), per reason; ``left_out``
    counts mapped values left out of a record (``<type>.<field>``: the type has no such
    field), the record itself still emitted. A mapped replay also fills ``dead_letters`` (rows
    it sends to the dead-letter topic itself, per reason), ``time_formats`` (column -> the
    format its times were read in), ``unreadable_times`` (rows whose time that format does not
    read: ingestion dead-letters them) and ``hints`` (what an option would fix: one message per kind and column).
    """

    rows: int = 0
    emitted: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    left_out: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    time_formats: dict[str, str] = field(default_factory=dict)
    unreadable_times: int = 0
    hints: dict[str, str] = field(default_factory=dict)

    @property
    def records(self) -> int:
        """Records emitted, all types together."""
        return sum(self.emitted.values())

    def describe(self) -> str:
        """One line for logs and the command line."""
        parts = [f"{self.rows:,} rows read", f"{self.records:,} records"]
        if self.emitted:
            parts.append("by type: " + ", ".join(f"{kind}={n:,}" for kind, n in sorted(self.emitted.items())))
        if self.skipped:
            parts.append("skipped: " + ", ".join(f"{reason}={n:,}" for reason, n in sorted(self.skipped.items())))
        if self.dead_letters:
            parts.append("dead letters: " + ", ".join(f"{reason}={n:,}" for reason, n in
                                                      sorted(self.dead_letters.items())))
        if self.time_formats:
            parts.append("times read as " + ", ".join(f"{fmt} ({column})" for column, fmt in
                                                      self.time_formats.items()))
        if self.unreadable_times:
            parts.append(f"unreadable times: {self.unreadable_times:,} rows (dead letters: invalid_timestamp)")
        if self.left_out:
            parts.append("left out: " + ", ".join(f"{name}={n:,}" for name, n in sorted(self.left_out.items())))
        return "; ".join(parts)
