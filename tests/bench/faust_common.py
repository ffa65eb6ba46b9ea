"""What the two faust baselines share: the app settings that matter on the embedded broker, and progress files.

The harness passes everything through the environment: ``BENCH_BOOTSTRAP`` (host:port),
``BENCH_APP_ID``, ``BENCH_TOTAL`` (records to expect), ``BENCH_PROGRESS`` (a file the
agent rewrites every few thousand events) and ``BENCH_DATADIR``.
"""

from __future__ import annotations

import os

import faust

from tests.bench.progress_file import Progress

__all__ = ["TOPICS", "Progress", "make_app"]

#: The input topics the workload fills.
TOPICS = ("clickstream", "orders", "chat")


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
