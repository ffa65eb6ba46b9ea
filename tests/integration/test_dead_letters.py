"""Bad input lands in dead_letters with the right reason; the good events around it go through."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from plumbing.batch_worker import consumer_config
from tests.conftest import Backend, produce, sink_until_caught_up

pytestmark = pytest.mark.integration


def good(i: int, customer: str = "c1", **extra: object) -> bytes:
    return orjson.dumps({"event_id": f"good-{i}", "customer_id": customer, "event_time": "2024-05-01T10:00:00Z",
                         "type": "page_view", **extra})


FUTURE = (datetime.now(UTC) + timedelta(days=2)).isoformat()

#: (topic, key, value, expected reason)
BAD: list[tuple[str, bytes | None, bytes | None, str]] = [
    ("clickstream", b"c1", b'{"event_id": "x", "customer_id": ', "malformed_json"),
    ("clickstream", b"c1", b"[1, 2, 3]", "not_an_object"),
    ("clickstream", b"c1", b"", "empty_value"),
    ("clickstream", b"c1", orjson.dumps({"event_id": "b1", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z",
                                          "type": "teleport"}), "unknown_event_type"),
    ("clickstream", b"c1", orjson.dumps({"event_id": "b2", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z",
                                          "type": "order_placed", "order_id": "o1"}), "wrong_topic"),
    ("clickstream", b"c1", orjson.dumps({"customer_id": "c1", "event_time": "2024-05-01T10:00:00Z",
                                          "type": "page_view"}), "missing_id"),
    ("orders", b"c1", orjson.dumps({"event_id": "b3", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z",
                                     "type": "order_placed", "order_id": "", "amount": 3}), "missing_id"),
    ("orders", b"c1", orjson.dumps({"event_id": "b4", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z",
                                     "type": "order_placed", "order_id": "o2", "amount": "lots"}), "invalid_field"),
    ("orders", b"c1", orjson.dumps({"event_id": "b9", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z",
                                     "type": "order_paid", "order_id": "o3", "amount": "12.5"}), "invalid_field"),
    ("clickstream", b"c1", good(1002)[:-1] + b', "event_id": "other"}', "duplicate_key"),
    ("clickstream", b"c1", orjson.dumps({"event_id": "b10", "customer_id": "c1", "event_time": "1970-01-01T00:00:00Z",
                                          "type": "page_view"}), "event_time_out_of_range"),
    ("clickstream", b"c1", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "malformed_json"),  # crashed the sink
    ("clickstream", b"c1", orjson.dumps({"event_id": "b5", "customer_id": "c1", "event_time": "2024-05-01 10:00:00",
                                          "type": "page_view"}), "invalid_timestamp"),
    ("clickstream", b"c1", orjson.dumps({"event_id": "b6", "customer_id": "c1", "event_time": FUTURE,
                                          "type": "page_view"}), "future_timestamp"),
    ("clickstream", b"c1", good(999)[:-1] + b', "padding": "' + b"x" * 70_000 + b'"}', "oversized"),
    ("chat", b"c1", orjson.dumps({"event_id": "b7", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z",
                                   "type": "chat_message", "conversation_id": "k", "sender_role": "robot",
                                   "channel": "live_chat", "text": "hi"}), "invalid_field"),
    ("consent", b"c1", orjson.dumps({"event_id": "b8", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z",
                                      "type": "consent_changed", "channel": "email", "status": "granted",
                                      "schema_version": 9}), "unsupported_schema_version"),
    ("clickstream", b"c1", good(1000, nickname="x"), "unknown_field"),
    ("clickstream", b"someone-else", good(1001), "key_mismatch"),
]


def positions(kafka: dict[str, str], ends: dict[tuple[str, int], int]) -> dict[tuple[str, bytes], tuple[int, int]]:
    """Where each produced value landed, read back from the broker: (topic, value) -> (partition, offset)."""
    from confluent_kafka import Consumer, TopicPartition

    reader = Consumer(consumer_config(kafka, "dlq-positions"))
    reader.assign([TopicPartition(topic, partition, 0) for topic, partition in ends])
    found: dict[tuple[str, bytes], tuple[int, int]] = {}
    remaining = sum(ends.values())
    for _ in range(120):
        for m in reader.consume(1000, 1.0):
            if m.error() is None:
                found[(m.topic(), m.value() or b"")] = (m.partition(), m.offset())
                remaining -= 1
        if remaining <= 0:
            break
    reader.close()
    assert remaining == 0, f"{remaining} records not read back"
    return found


def test_bad_input_is_dead_lettered_with_reason_and_good_input_flows(backend: Backend) -> None:
    records: list[tuple[str, bytes | None, bytes | None]] = []
    for i, (topic, key, value, _) in enumerate(BAD):
        records.append(("clickstream", b"c1", good(2 * i)))
        records.append((topic, key, value))
        records.append(("clickstream", b"c1", good(2 * i + 1)))
    records.append(("clickstream", b"c1", good(0)))  # a duplicate event id: stored once
    producer = produce(backend.kafka, records)

    client = backend.client()
    stats = sink_until_caught_up(backend, client, producer.end_offsets)

    assert client.query("SELECT count() FROM clickstream_events").result_rows[0][0] == 2 * len(BAD)
    assert stats.duplicates["clickstream"] == 1
    rows = client.query(
        "SELECT source_topic, reason, original, detail, source_offset, source_partition FROM dead_letters "
        "ORDER BY source_topic, source_offset"
    ).result_rows
    where = positions(backend.kafka, producer.end_offsets)
    for topic, _, original, _, offset, partition in rows:
        value = original if isinstance(original, bytes) else original.encode()
        assert (partition, offset) == where[(topic, value)], f"{topic} dead letter points at the wrong record"
    got = sorted((r[0], r[1], bytes(r[2]) if isinstance(r[2], bytes) else r[2].encode()) for r in rows)
    want = sorted((topic, reason, value or b"") for topic, _, value, reason in BAD)
    assert [(t, r) for t, r, _ in got] == [(t, r) for t, r, _ in want]
    assert [v for *_, v in got] == [v for *_, v in want], "original bytes are kept"
    assert all(r[3] for r in rows), "every dead letter says what was wrong"
    # the rollup of dead letters agrees with the table
    assert client.query("SELECT sum(dead_letters) FROM dead_letters_per_minute").result_rows[0][0] == len(BAD)


def test_dead_letter_topic_carries_reason_and_original_bytes(backend: Backend) -> None:
    from confluent_kafka import Consumer

    bad = b"{not json"
    producer = produce(backend.kafka, [("clickstream", b"c1", good(1)), ("clickstream", b"c1", bad)])
    sink_until_caught_up(backend, backend.client(), producer.end_offsets)
    consumer = Consumer(consumer_config(backend.kafka, "dlq-reader"))
    consumer.subscribe(["dead-letters"])
    letters = []
    for _ in range(60):
        letters += [m for m in consumer.consume(10, 1.0) if m.error() is None]
        if letters:
            break
    consumer.close()
    assert len(letters) == 1
    letter = orjson.loads(letters[0].value())
    assert letter["reason"] == "malformed_json"
    assert letter["source_topic"] == "clickstream"
    assert base64.b64decode(letter["original"]) == bad
    where = positions(backend.kafka, producer.end_offsets)
    assert (letter["source_partition"], letter["source_offset"]) == where[("clickstream", bad)]


def trigger_record(i: int, **change: object) -> bytes:
    """A ``triggers`` record as the trigger processor writes it."""
    body: dict[str, object] = {"trigger_id": f"trg-{i}", "customer_id": "c1", "trigger": "cart_abandoned",
                               "fired_at": "2024-05-01T10:30:00Z", "reason": "test", "service": False,
                               "context": {}, "products": ["p1"], **change}
    return orjson.dumps({k: v for k, v in body.items() if v is not None})


#: Bad records on an output topic (written by anyone with access to it), with their reasons.
BAD_OUTPUTS: list[tuple[bytes, str]] = [
    (b"{not json", "malformed_json"),
    (b"[1, 2]", "not_an_object"),
    (trigger_record(90, customer_id=None), "missing_id"),
    (trigger_record(91, fired_at="yesterday"), "invalid_timestamp"),
    # A unix time: the contracts take ISO 8601 text only, on output topics as on input (no coercion).
    (trigger_record(92, fired_at=1714559400), "invalid_timestamp"),
]


def test_bad_records_on_an_output_topic_are_dead_lettered_and_the_good_ones_stored(backend: Backend) -> None:
    records: list[tuple[str, bytes | None, bytes | None]] = []
    for i, (value, _) in enumerate(BAD_OUTPUTS):
        records += [("triggers", b"c1", trigger_record(2 * i)), ("triggers", b"c1", value),
                    ("triggers", b"c1", trigger_record(2 * i + 1))]
    producer = produce(backend.kafka, records)
    client = backend.client()
    sink_until_caught_up(backend, client, producer.end_offsets)

    stored = dict(client.query("SELECT trigger_id, toString(fired_at) FROM triggers FINAL").result_rows)
    assert set(stored) == {f"trg-{i}" for i in range(2 * len(BAD_OUTPUTS))}
    assert stored["trg-0"] == "2024-05-01 10:30:00.000"
    letters = client.query("SELECT reason, original, source_partition, source_offset FROM dead_letters "
                           "WHERE source_topic = 'triggers'").result_rows
    got = sorted((reason, original if isinstance(original, bytes) else original.encode())
                 for reason, original, *_ in letters)
    assert got == sorted((reason, value) for value, reason in BAD_OUTPUTS)
    where = positions(backend.kafka, producer.end_offsets)
    for _, original, partition, offset in letters:
        value = original if isinstance(original, bytes) else original.encode()
        assert (partition, offset) == where[("triggers", value)]
