"""The Arrow build: every column of every row comes from its own event, whatever the mix of classes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from schemas.registry import INPUT_TOPICS
from schemas.validation import Limits, validate
from sinks.batches import COLUMNS, Staged, events_table
from streams.sources.generator import generate


def test_rows_keep_their_own_values_and_source_positions() -> None:
    records = [r for r in generate(customers=40, days=10, seed=5) if r.topic in ("clickstream", "orders")]
    for topic in ("clickstream", "orders"):
        staged = Staged()
        expected = {}
        for offset, record in enumerate(r for r in records if r.topic == topic):
            event = validate(topic, record.value, record.key, Limits(max_future=timedelta(days=36500)))
            staged.add(event, offset % 3, 1000 + offset)
            expected[event.event_id] = (INPUT_TOPICS[topic].adapter.validate_json(record.value), offset)
        assert len({type(e) for e in staged.events}) > 2, "the sample must mix event classes"
        rows = events_table(topic, staged, datetime.now(UTC)).to_pylist()
        assert [c.name for c in COLUMNS[topic]] + ["ingested_at"] == list(rows[0])
        assert sorted(r["event_id"] for r in rows) == sorted(expected)
        for row in rows:
            model, offset = expected[row["event_id"]]
            assert (row["source_partition"], row["source_offset"]) == (offset % 3, 1000 + offset)
            assert row["customer_id"] == model.customer_id and row["type"] == model.type
            millis = model.event_time.microsecond // 1000 * 1000  # the column holds milliseconds
            assert row["event_time"] == model.event_time.replace(microsecond=millis)
            dumped = orjson.loads(model.model_dump_json())
            for name in ("product_id", "price", "quantity", "session_id", "order_id", "amount", "currency"):
                if name in row:
                    assert row[name] == dumped.get(name), (name, row)
            if topic == "orders":
                assert row["item_product_ids"] == [i["product_id"] for i in dumped.get("items") or []]
