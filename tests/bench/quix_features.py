"""The peer baseline: the same features job in Quix Streams, as a Quix user would host it.

The four input topics become one StreamingDataFrame (``concat``; co-partitioned by
customer), and one stateful ``apply`` per record runs the same ``FeaturesProcessor`` as
``journey features``: the customer's state comes from Quix's RocksDB store (pickled, with
its changelog topic on), the record is applied, the state is written back, and the
customer's profile (plus any late-event side output) goes to an output topic per record,
since Quix has no coalescing of its own. ``BENCH_QUIX_EMIT=0`` leaves the output out: a
ceiling for the peer that favours it.

Run from the bench's own virtualenv (``.venv-quix``: Quix Streams pins a confluent-kafka
older than ours) with the repository on PYTHONPATH:
``.venv-quix/bin/python -m tests.bench.quix_features`` with BENCH_* settings (see
``progress_file``) plus ``BENCH_GROUP``.
"""

from __future__ import annotations

import os
import pickle
import signal
from typing import Any

from quixstreams import Application, message_context
from quixstreams.state.rocksdb import RocksDBOptions

from processors.features.build import build_features
from tests.bench.progress_file import Progress

TOPICS = ("clickstream", "orders", "chat", "consent")
OUTPUT = "bench-quix-features"


def main() -> None:
    progress = Progress()
    processor = build_features()
    emit = os.environ.get("BENCH_QUIX_EMIT", "1") != "0"
    app = Application(
        broker_address=os.environ["BENCH_BOOTSTRAP"],
        consumer_group=os.environ["BENCH_GROUP"],
        auto_offset_reset="earliest",
        state_dir=os.environ["BENCH_DATADIR"],
        rocksdb_options=RocksDBOptions(dumps=lambda v: pickle.dumps(v, pickle.HIGHEST_PROTOCOL),
                                       loads=pickle.loads),
        use_changelog_topics=True,
    )
    topics = [app.topic(name, key_deserializer="bytes", value_deserializer="bytes") for name in TOPICS]
    output = app.topic(OUTPUT, key_serializer="bytes", value_serializer="bytes")
    sdf = app.dataframe(topics[0])
    for topic in topics[1:]:
        sdf = sdf.concat(app.dataframe(topic))

    def update(value: bytes, key: bytes, timestamp: int, headers: Any, state: Any) -> list[bytes]:
        customer = state.get("customer")
        if customer is None:
            customer = processor.new_state(key.decode("utf-8", "replace"))
        outputs = [v for _, _, v in processor.process(customer, message_context().topic, value, key)]
        state.set("customer", customer)
        progress.add(1, 0)
        if emit:
            outputs += [v for _, _, v in processor.emit(customer.customer_id, customer)]
        return outputs

    sdf = sdf.apply(update, stateful=True, metadata=True, expand=True)
    if emit:
        sdf.to_topic(output)
    signal.signal(signal.SIGTERM, lambda *_: app.stop())
    app.run()


if __name__ == "__main__":
    main()
