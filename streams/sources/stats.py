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
    field), the record itself still emitted.
    """

    rows: int = 0
    emitted: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    left_out: Counter[str] = field(default_factory=Counter)

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
        if self.left_out:
            parts.append("left out: " + ", ".join(f"{name}={n:,}" for name, n in sorted(self.left_out.items())))
        return "; ".join(parts)
