"""What the two faust baselines share: the app settings that matter on the embedded broker, and progress files.

The harness passes everything through the environment: ``BENCH_BOOTSTRAP`` (host:port),
``BENCH_APP_ID``, ``BENCH_TOTAL`` (records to expect), ``BENCH_PROGRESS`` (a file the
agent rewrites every few thousand events) and ``BENCH_DATADIR``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import faust
import orjson

#: The input topics the workload fills.
TOPICS = ("clickstream", "orders", "chat")
PROGRESS_EVERY = 5_000


def make_app() -> faust.App:
    """A faust app configured as DESIGN.md says matters on Tansu (eager assignment via faust's own assignor)."""
    return faust.App(
        os.environ["BENCH_APP_ID"],
        broker=f"kafka://{os.environ['BENCH_BOOTSTRAP']}",
        store="memory://",
        topic_partitions=4,
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        stream_wait_empty=False,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        datadir=os.environ["BENCH_DATADIR"],
    )


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
