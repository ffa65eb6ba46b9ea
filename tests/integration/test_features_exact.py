"""Customer profiles after a replay equal an independent pandas computation over the same CSV.

Through the real path: replay -> broker -> features worker (stateful, changelog) ->
customer-features topic -> sink -> ClickHouse customer_profiles. And the same path for a late
event (to late-events and the late_events table, with its reason and bytes) and for a burst of
one customer's events (one coalesced profile).
"""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from processors.features.build import build_features
from processors.sentiment import sentiment
from schemas.registry import INPUT_TOPICS
from streams.progress import GroupProgress, end_offsets_by_eof
from streams.sources import open_source
from streams.sources.record import SourceRecord
from streams.stateful import StatefulWorker
from streams.topics import CHANGELOGS
from tests.conftest import Backend, produce, sink_until_caught_up
from tests.integration.test_scoring_pipeline import read_all
from tests.processors.features.compare import differences, flat
from tests.processors.features.reference import olist_features, taobao_features

pytestmark = pytest.mark.integration


def run_features(backend: Backend, ends: dict[tuple[str, int], int], group: str = "features-test",
                 watermark_ms: int | None = None, processor: Any = None,
                 **options: Any) -> StatefulWorker:  # type: ignore[type-arg]
    """A features worker until its group has committed ``ends`` and, given ``watermark_ms``, its clock has
    reached it (every input idle at its end), so every stage timer before it has fired; then stopped.
    ``processor``: the features processor to run (``build_features()`` by default); ``options``: more
    StatefulWorker arguments (``state_dir``, ``state_cache_customers``)."""
    worker = StatefulWorker(backend.kafka, group, list(INPUT_TOPICS), CHANGELOGS["features"],
                            processor or build_features(), flush_seconds=0.5, **options)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    progress = GroupProgress(backend.kafka, group)
    try:
        for _ in range(600):
            if not progress.remaining(ends) and (watermark_ms is None or worker.watermark_ms == watermark_ms) \
                    and len(worker.stores) == backend.partitions:  # assigned (and restored): not stopped before
                break
            assert thread.is_alive(), "features worker died"
            threading.Event().wait(0.2)
        assert progress.remaining(ends) == 0
        assert watermark_ms is None or worker.watermark_ms == watermark_ms
        assert thread.is_alive(), "features worker exited before it was stopped"
    finally:
        stop.set()  # the worker fires the timers its clock has passed, then flushes and commits them
        thread.join(60)
        progress.close()
    return worker


def newest_event_ms(records: list[SourceRecord]) -> int:
    return max(round(r.event_time.timestamp() * 1000) for r in records if r.event_time is not None)


def test_taobao_and_olist_profiles_equal_the_batch_computation(backend: Backend, datasets: Path) -> None:
    path = datasets / "taobao_userbehavior_sample.csv"
    records, _ = open_source(f"taobao:{path}")
    olist_records, _ = open_source(f"olist:{datasets / 'olist'}")
    producer = produce(backend.kafka, [(r.topic, r.key, r.value) for r in [*records, *olist_records]])
    end = newest_event_ms([*records, *olist_records])  # the worker's clock once every input is idle at its end
    worker = run_features(backend, producer.end_offsets, watermark_ms=end)
    assert worker.stats.timer_firings > 5000, "silent customers moved on by their stage timers"
    client = backend.client()
    outputs = end_offsets_by_eof(backend.kafka, ["customer-features", "late-events"])
    sink_until_caught_up(backend, client, {**producer.end_offsets, **outputs})

    result = client.query("SELECT customer_id, features, events_total, as_of, stage, stage_since, segments "
                          "FROM customer_profiles FINAL")
    rows = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
    streamed = {row["customer_id"]: flat(row) for row in rows}
    assert len(rows) == len(streamed), "customer_profiles FINAL holds one row per customer"
    taobao = taobao_features(path, watermark_ms=end)
    olist = olist_features(datasets / "olist", watermark_ms=end, sentiment=sentiment)
    assert sorted(streamed) == sorted([*taobao.index, *olist.index]), "one profile per customer"
    for name, expected in (("Taobao", taobao), ("Olist", olist)):
        mismatches = differences({c: streamed[c] for c in expected.index}, expected)
        assert not mismatches, f"{name}: {len(mismatches)} differences, first: {mismatches[:5]}"
    assert len(taobao) == 814 and len(olist) > 7000
    assert set(olist["stage"]) >= {"at_risk", "lapsed"}
    assert client.query("SELECT count() FROM late_events").result_rows[0][0] == 0


def test_a_late_event_goes_aside_with_its_bytes_and_a_burst_gives_one_profile(backend: Backend) -> None:
    start = datetime(2024, 5, 1, tzinfo=UTC)

    def view(customer: str, event_id: str, at: timedelta) -> tuple[str, bytes, bytes]:
        return ("clickstream", customer.encode(), orjson.dumps({
            "type": "product_view", "event_id": event_id, "customer_id": customer,
            "event_time": (start + at).isoformat(), "product_id": "p-1", "category_id": "c-1"}))

    late = view("late-1", "late-1-old", timedelta(minutes=10))  # older than the newest view less the lateness (1 h)
    records = [view("late-1", "late-1-a", timedelta(0)), view("late-1", "late-1-b", timedelta(hours=3)), late,
               *[view("burst-1", f"burst-1-{i}", timedelta(seconds=i)) for i in range(50)]]
    producer = produce(backend.kafka, records)
    run_features(backend, producer.end_offsets, group="features-late")
    client = backend.client()
    outputs = end_offsets_by_eof(backend.kafka, ["customer-features", "late-events"])
    sink_until_caught_up(backend, client, {**producer.end_offsets, **outputs})

    (aside,) = read_all(backend.kafka, "late-events", backend.partitions)
    assert (aside["event_id"], aside["reason"], aside["source_topic"], aside["processor"]) == \
        ("late-1-old", "late", "clickstream", "features")
    assert base64.b64decode(aside["original"]) == late[2], "the original bytes, whole"
    result = client.query("SELECT event_id, customer_id, reason, original, toUnixTimestamp64Milli(event_time), "
                          "toUnixTimestamp64Milli(newest_event_time), allowed_lateness_s FROM late_events")
    t0 = round(start.timestamp() * 1000)
    assert result.result_rows == [("late-1-old", "late-1", "late", late[2].decode(), t0 + 10 * 60_000,
                                   t0 + 3 * 3_600_000, 3600.0)]

    profiles: dict[str, list[dict[str, Any]]] = {}
    for record in read_all(backend.kafka, "customer-features", backend.partitions):
        profiles.setdefault(record["customer_id"], []).append(record)
    (burst,) = profiles["burst-1"]  # fifty events in one batch: one coalesced update
    assert (burst["events_total"], burst["features"]["product_views_total"], burst["features"]["session_depth"]) == \
        (50, 50, 50)
    assert burst["as_of"] == (start + timedelta(seconds=49)).isoformat().replace("+00:00", "Z")
    latest = profiles["late-1"][-1]
    assert (latest["events_total"], latest["features"]["product_views_total"], latest["features"]["late_events"]) == \
        (2, 2, 1), "the late event counts in no feature"
