"""The progress file a baseline agent rewrites now and then, which the harness reads to time it.

Free of faust and of the project's own dependencies beyond orjson, so that the Quix Streams
baseline (run from its own virtualenv) writes the same file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson

PROGRESS_EVERY = 5_000


class Progress:
    """Counts what the agent handled and rewrites a small JSON file now and then (atomically)."""

    def __init__(self) -> None:
        self.path = Path(os.environ["BENCH_PROGRESS"])
        self.total = int(os.environ["BENCH_TOTAL"])
        self.count = self.valid = self.invalid = 0
        self.first_count = 0
        self.first_time = 0.0
        self._next = PROGRESS_EVERY

    def add(self, valid: int, invalid: int) -> None:
        self.count += valid + invalid
        self.valid += valid
        self.invalid += invalid
        if not self.first_time:
            self.first_time, self.first_count = time.time(), self.count
            self._write()
        if self.count >= self._next or self.count >= self.total:
            self._next = self.count + PROGRESS_EVERY
            self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({"count": self.count, "valid": self.valid, "invalid": self.invalid,
                                      "first_count": self.first_count, "first_time": self.first_time,
                                      "time": time.time()}))
        tmp.replace(self.path)
