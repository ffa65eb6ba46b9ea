"""No stateful worker calls its consumer from inside a rebalance or statistics callback (issue 17, item 1).

Its ``on_assign`` restores the changelog and catches up on privacy requests through consumers of
their own (safe: each client has its own call state) and reads committed offsets (no call state);
:mod:`tests.callback_guard` fails on anything else.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from pydantic import SecretStr

from processors.features.build import build_features
from schemas.registry import INPUT_TOPICS
from streams.progress import GroupProgress
from streams.pseudonym import Pseudonymizer
from streams.stateful import StatefulWorker
from tests.callback_guard import guarded_consumer
from tests.conftest import Backend, produce
from tests.integration.test_redelivery import events
from tests.integration.test_sink_callbacks import wait

pytestmark = pytest.mark.integration


def test_a_stateful_worker_rebalanced_several_times_never_calls_its_consumer_from_a_callback(
        backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    violations: list[str] = []
    monkeypatch.setattr("plumbing.batch_worker.Consumer", guarded_consumer(violations))
    group, changelog = f"sc-{uuid.uuid4().hex[:6]}", f"sc-{uuid.uuid4().hex[:6]}-changelog"
    stats_seen: list[int] = []
    assignments: list[int] = []

    def worker() -> StatefulWorker:
        made = StatefulWorker(backend.kafka, group, list(INPUT_TOPICS), changelog, build_features(), batch_rows=500,
                              flush_seconds=0.1, pseudonymizer=Pseudonymizer(SecretStr("k" * 32)),
                              consumer_overrides={"statistics.interval.ms": 100,
                                                  "stats_cb": lambda raw: stats_seen.append(len(raw))})
        on_assign = made.on_assign
        made.on_assign = lambda ps: (on_assign(ps), assignments.append(len(ps)))  # type: ignore[method-assign]
        return made

    records = events(6000, customers=200)
    ends = produce(backend.kafka, records[:2000]).end_offsets
    first, stop_first = worker(), threading.Event()
    errors: list[BaseException] = []

    def run(w: StatefulWorker, stop: threading.Event, failed: list[BaseException]) -> None:
        try:
            w.run(stop)
        except BaseException as exc:  # surfaced to the test
            failed.append(exc)

    thread = threading.Thread(target=run, args=(first, stop_first, errors), daemon=True)
    thread.start()
    try:
        wait(lambda: bool(assignments), "the first worker to be assigned", errors)
        for phase in (1, 2):
            joined = len(assignments)
            other, stop_other, other_errors = worker(), threading.Event(), []
            other_thread = threading.Thread(target=run, args=(other, stop_other, other_errors), daemon=True)
            other_thread.start()
            ends.update(produce(backend.kafka, records[phase * 2000:(phase + 1) * 2000]).end_offsets)
            wait(lambda j=joined: len(assignments) >= j + 2, "both workers to be assigned", errors + other_errors)
            stop_other.set()
            other_thread.join(60)
            assert not other_errors, f"the second worker failed: {other_errors[0]!r}"
        progress = GroupProgress(backend.kafka, group)
        wait(lambda: progress.remaining(ends) == 0, "the group to commit every record", errors, seconds=180)
        progress.close()
    finally:
        stop_first.set()
        thread.join(60)
    assert not errors, f"the first worker failed: {errors[0]!r}"
    assert violations == []
    assert len(assignments) >= 5 and stats_seen
