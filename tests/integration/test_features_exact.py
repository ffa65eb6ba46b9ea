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
from tests.processors.features.reference import OLIST_COMPARED, olist_features, taobao_features

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


def test_taobao_and_olist_profiles_equal_the_batch_computation(backend: Backend, datasets: Path) -> None:
    path = datasets / "taobao_userbehavior_sample.csv"
    records, _ = open_source(f"taobao:{path}")
    olist_records, _ = open_source(f"olist:{datasets / 'olist'}")
    producer = produce(backend.kafka, [(r.topic, r.key, r.value) for r in [*records, *olist_records]])
    run_features(backend, producer.end_offsets)
    client = backend.client()
    outputs = end_offsets_by_eof(backend.kafka, ["customer-features", "late-events"])
    sink_until_caught_up(backend, client, {**producer.end_offsets, **outputs})

    rows = client.query("SELECT customer_id, features, events_total FROM customer_profiles FINAL").result_rows
    streamed = {cid: {**orjson.loads(features), "events_total": n} for cid, features, n in rows}
    assert len(rows) == len(streamed), "customer_profiles FINAL holds one row per customer"
    taobao = taobao_features(path)
    olist = olist_features(datasets / "olist")
    assert sorted(streamed) == sorted([*taobao.index, *olist.index]), "one profile per customer"
    taobao_streamed = {c: streamed[c] for c in taobao.index}
    mismatches = differences(taobao_streamed, taobao)
    assert not mismatches, f"Taobao: {len(mismatches)} differences, first: {mismatches[:5]}"
    olist_streamed = {c: streamed[c] for c in olist.index}
    mismatches = differences(olist_streamed, olist, OLIST_COMPARED)
    assert not mismatches, f"Olist: {len(mismatches)} differences, first: {mismatches[:5]}"
    assert len(taobao) == 814 and len(olist) > 7000
    assert client.query("SELECT count() FROM late_events").result_rows[0][0] == 0
