"""What a replay read, emitted and skipped (with why): nothing is dropped silently."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ReplayStats:
    rows: int = 0
    emitted: Counter[str] = field(default_factory=Counter)  # event type -> records
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> rows

    def describe(self) -> str:
        parts = [f"{self.rows:,} rows read", f"{sum(self.emitted.values()):,} records"]
        if self.skipped:
            parts.append("skipped: " + ", ".join(f"{reason}={n:,}" for reason, n in sorted(self.skipped.items())))
        return "; ".join(parts)
