"""`journey privacy erase` and `export` find a customer's dead letters (issue 17, item 5).

The dead-letter table stores ``key`` and ``original`` as the raw bytes; the matcher compared
them with base64 text and so never found one, while the audit said "rows left: 0".
"""

from __future__ import annotations

import re

import orjson
import pytest

from sinks.access import Reader
from sinks.privacy import Erasure, erase_many, export, holdings
from tests.conftest import Backend, produce, sink_until_caught_up
from tests.integration.test_large_dead_letters import read_letters

pytestmark = pytest.mark.integration

CUSTOMER = "cust-17"


def event(customer: str, i: int, **extra: object) -> bytes:
    return orjson.dumps({"event_id": f"{customer}-{i}", "customer_id": customer,
                         "event_time": "2024-05-01T10:00:00Z", "type": "page_view", **extra})


def test_erase_and_export_find_the_dead_letters_a_running_sink_made_for_a_customer(backend: Backend) -> None:
    ours = [
        ("clickstream", CUSTOMER.encode(), b'{"customer_id": "cust-17", "event_id": '),  # malformed, keyed
        ("clickstream", CUSTOMER.encode(), event(CUSTOMER, 1, nickname="x")),  # unknown field, compact JSON
        ("orders", None, b'{"customer_id" :  "cust-17", "type": "order_placed"'),  # keyless, odd spacing
        ("clickstream", b"someone-else", event(CUSTOMER, 2)),  # key_mismatch: found by its original
    ]
    theirs = [
        ("clickstream", b"cust-170", b'{"customer_id": "cust-170", '),  # an id that starts like ours
        ("clickstream", b"other", event("other", 1, nickname="y")),
        ("chat", None, b'{"customer_id": "other", "text": "cust-17"'),  # our id, but not as customer_id
    ]
    producer = produce(backend.kafka, [*ours, *theirs, ("clickstream", CUSTOMER.encode(), event(CUSTOMER, 3))])
    client = backend.client()
    sink_until_caught_up(backend, client, producer.end_offsets)
    assert client.query("SELECT count() FROM dead_letters").result_rows[0][0] == 7
    reader = Reader("test", client=client)
    subject_id = "subject-of-cust-17"

    held = holdings(reader, CUSTOMER)
    assert (held["clickstream_events"], held["dead_letters"]) == (1, 4)
    exported = export(reader, CUSTOMER, subject_id)
    originals = sorted(row["original"] for row in exported["dead_letters"])
    assert originals == sorted(value.decode() for _, _, value in ours)

    found = erase_many(reader, [Erasure(CUSTOMER, subject_id)])
    assert found[CUSTOMER] == held
    assert holdings(reader, CUSTOMER) == {}
    # Independently (Python's regular expressions over every row left): none is keyed by the customer or
    # names them as customer_id; the other customers' letters are all there.
    remaining = client.query("SELECT key, original FROM dead_letters").result_rows
    assert not [r for r in remaining if r[0] == CUSTOMER or re.search(r'"customer_id"\s*:\s*"cust-17"', r[1])]
    assert sorted(original for _, original in remaining) == sorted(value.decode() for _, _, value in theirs)
    audit = dict(client.query("SELECT location, detail FROM privacy_audit WHERE subject = {s:String} "
                              "AND action = 'erase'", parameters={"s": subject_id}).result_rows)
    assert "rows left: 0;" in audit["clickhouse:*"]
    rows = dict(client.query("SELECT location, rows FROM privacy_audit WHERE subject = {s:String}",
                             parameters={"s": subject_id}).result_rows)
    assert rows["clickhouse:dead_letters"] == 4 and rows["clickhouse:*"] == sum(held.values())

    # The dead-letters topic is not erased (like every non-compacted topic: its retention removes it),
    # and the sink's own letters there carry the header that keeps a sink from storing them again.
    on_topic = read_letters(backend.kafka, backend.partitions)
    assert len(on_topic) == 7 and all(("journey-stored", b"dead_letters") in h for _, h in on_topic)
