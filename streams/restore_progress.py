"""How far a stateful worker's changelog restore has got, for /readyz, /healthz and /metrics.

A restore runs inside the consumer's assignment callback, so the worker loop does not turn
while it reads: liveness cannot be "the loop turned lately" then. The restore notes each
batch it applies here instead; the health endpoint counts a restore that moved within the
liveness timeout as alive, and answers /readyz with what it has read so far.

The total is librdkafka's high watermark of each changelog partition at the start: the
embedded broker can report it a little wrong (DESIGN.md), so it is "about" and the restore
itself still ends at partition EOF.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class RestoreProgress:
    """One worker's restore: set by the worker's thread, read by the health server's (plain attributes)."""

    active: bool = False
    partitions: list[int] = field(default_factory=list)
    records: int = 0  # changelog records read in the current restore
    total: int | None = None  # about how many there are to read (high watermarks minus low), when known
    started: float = 0.0  # monotonic
    moved: float = 0.0  # monotonic time of the last batch applied
    restores: int = 0  # restores finished over the worker's life

    def begin(self, partitions: list[int], total: int | None) -> None:
        now = time.monotonic()
        self.partitions, self.records, self.total = list(partitions), 0, total
        self.started = self.moved = now
        self.active = True

    def advance(self, records: int = 1) -> None:
        """``records`` more read (called per record: ~0.1 us, so a slow batch still shows it moving)."""
        self.records += records
        self.moved = time.monotonic()

    def end(self) -> None:
        self.active = False
        self.moved = time.monotonic()
        self.restores += 1

    def describe(self) -> str:
        """One line for /readyz: what has been read, of about how much, for how long."""
        done = f"{self.records:,}"
        if self.total:
            done += f" of about {self.total:,} changelog records ({min(self.records / self.total, 1.0):.0%})"
        else:
            done += " changelog records"
        return (f"restoring partitions {','.join(map(str, self.partitions))}: {done} in "
                f"{time.monotonic() - self.started:.0f}s")
