"""Customer profiles after a replay equal an independent pandas computation over the same CSV.

Through the real path: replay -> broker -> features worker (stateful, changelog) ->
customer-features topic -> sink -> ClickHouse customer_profiles.
"""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import pytest

from processors.features.build import build_features
from schemas.registry import INPUT_TOPICS
from streams.progress import GroupProgress, end_offsets_by_eof
from streams.sources import open_source
from streams.stateful import StatefulWorker
from streams.topics import CHANGELOGS
from tests.conftest import Backend, produce, sink_until_caught_up
from tests.processors.features.compare import differences
from tests.processors.features.reference import taobao_features

pytestmark = pytest.mark.integration

def run_features(backend: Backend, ends: dict[tuple[str, int], int], group: str = "features-test") -> None:
    worker = StatefulWorker(backend.kafka, group, list(INPUT_TOPICS), CHANGELOGS["features"], build_features(),
                            flush_seconds=0.5)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    progress = GroupProgress(backend.kafka, group)
    try:
        for _ in range(600):
            if not progress.remaining(ends):
                break
            assert thread.is_alive(), "features worker died"
            threading.Event().wait(0.2)
        assert progress.remaining(ends) == 0
    finally:
        stop.set()
        thread.join(60)
        progress.close()


def test_taobao_profiles_equal_the_batch_computation(backend: Backend, datasets: Path) -> None:
    path = datasets / "taobao_userbehavior_sample.csv"
    records, _ = open_source(f"taobao:{path}")
    producer = produce(backend.kafka, [(r.topic, r.key, r.value) for r in records])
    run_features(backend, producer.end_offsets)
    client = backend.client()
    outputs = end_offsets_by_eof(backend.kafka, ["customer-features", "late-events"])
    sink_until_caught_up(backend, client, {**producer.end_offsets, **outputs})

    rows = client.query("SELECT customer_id, features, events_total FROM customer_profiles FINAL").result_rows
    streamed = {cid: {**orjson.loads(features), "events_total": n} for cid, features, n in rows}
    expected = taobao_features(path)
    mismatches = differences(streamed, expected)
    assert not mismatches, f"{len(mismatches)} differences, first: {mismatches[:5]}"
    assert len(streamed) == len(expected) == 814
    assert client.query("SELECT count() FROM late_events").result_rows[0][0] == 0
