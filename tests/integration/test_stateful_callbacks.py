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
from streams.pseudonym import Pseudonymizer
from streams.stateful import StatefulWorker
from tests.callback_guard import guarded_consumer
from tests.conftest import Backend, produce
from tests.integration.test_redelivery import events
from tests.rebalancing import join_and_leave_twice, run_in_thread, wait

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
    thread, errors = run_in_thread(first, stop_first)
    try:
        wait(lambda: bool(assignments), "the first worker to be assigned", errors)
        join_and_leave_twice(backend.kafka, group, worker, [records[2000:4000], records[4000:6000]], ends,
                             lambda: len(assignments), errors)
    finally:
        stop_first.set()
        thread.join(60)
    assert not errors, f"the first worker failed: {errors[0]!r}"
    assert violations == []
    assert len(assignments) >= 5 and stats_seen
