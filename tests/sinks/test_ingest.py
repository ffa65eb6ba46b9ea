"""Pure parts of the ingestion sink: merging batches that waited for the insert thread."""

from __future__ import annotations

import pyarrow as pa
from confluent_kafka import TopicPartition

from sinks.ingest import _Batch, _merged


def _batch(rows: dict[str, pa.Table], offsets: dict[tuple[str, int], int], started: float) -> _Batch:
    return _Batch([(table, data, data.num_rows) for table, data in rows.items()], [], [],
                  [TopicPartition(t, p, o) for (t, p), o in offsets.items()], started)


def test_merged_batches_insert_each_table_once_and_commit_every_partition_at_its_furthest_offset() -> None:
    first = _batch({"clickstream_events": pa.table({"id": ["a", "b"]}), "order_events": pa.table({"n": [1]})},
                   {("clickstream", 0): 10, ("orders", 1): 4}, started=5.0)
    second = _batch({"clickstream_events": pa.table({"id": ["c"]})}, {("clickstream", 0): 12, ("clickstream", 1): 3},
                    started=7.0)
    merged = _merged([first, second])
    assert [(table, data.to_pydict(), rows) for table, data, rows in merged.inserts] == [
        ("clickstream_events", {"id": ["a", "b", "c"]}, 3), ("order_events", {"n": [1]}, 1)]
    assert sorted((tp.topic, tp.partition, tp.offset) for tp in merged.offsets) == [
        ("clickstream", 0, 12), ("clickstream", 1, 3), ("orders", 1, 4)]
    assert merged.started == 5.0


def test_tables_whose_columns_do_not_concatenate_are_inserted_one_by_one() -> None:
    first = _batch({"t": pa.table({"x": pa.array([1], pa.int64())})}, {("a", 0): 1}, 1.0)
    second = _batch({"t": pa.table({"x": pa.array(["y"], pa.string())})}, {("a", 0): 2}, 2.0)
    merged = _merged([first, second])
    assert [(table, data.to_pydict(), rows) for table, data, rows in merged.inserts] == [
        ("t", {"x": [1]}, 1), ("t", {"x": ["y"]}, 1)]
