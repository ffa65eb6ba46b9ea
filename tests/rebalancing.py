"""Rebalancing a consumer group on purpose: a second worker joins, then leaves, twice (the callback tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from streams.progress import GroupProgress
from tests.conftest import produce


def wait(done: Callable[[], bool], what: str, errors: list[BaseException], seconds: float = 120) -> None:
    """Wait until ``done`` (a loaded machine is slower, never failing sooner), failing on a worker error."""
    deadline = time.monotonic() + seconds
    while not done():
        assert not errors, f"a worker failed: {errors[0]!r}"
        assert time.monotonic() < deadline, f"not within {seconds}s: {what}"
        time.sleep(0.05)


def run_in_thread(worker: Any, stop: threading.Event) -> tuple[threading.Thread, list[BaseException]]:
    """``worker.run(stop)`` in a daemon thread; its exception, if any, lands in the returned list."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            worker.run(stop)
        except BaseException as exc:  # surfaced to the test
            errors.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, errors


def join_and_leave_twice(kafka: dict[str, str], group: str, make: Callable[[], Any], chunks: Sequence[list[Any]],
                         ends: dict[tuple[str, int], int], assignments: Callable[[], int],
                         errors: list[BaseException]) -> None:
    """With a first worker running: twice, a second one (``make()``) joins while the next chunk of records is
    produced, both get assigned (``assignments()`` counts assignments), and it leaves; then wait until the group
    has committed every record (``ends`` gains the chunks' end offsets)."""
    for chunk in chunks:
        joined = assignments()
        stop_other = threading.Event()
        other_thread, other_errors = run_in_thread(make(), stop_other)
        ends.update(produce(kafka, chunk).end_offsets)
        wait(lambda j=joined: assignments() >= j + 2, "both workers to be assigned", errors + other_errors)
        stop_other.set()
        other_thread.join(60)
        assert not other_errors, f"the second worker failed: {other_errors[0]!r}"
    progress = GroupProgress(kafka, group)
    wait(lambda: progress.remaining(ends) == 0, "the group to commit every record", errors, seconds=180)
    progress.close()
