"""The features job hosted by faust-streaming: faust agents with each customer's state in a faust table.

A second host for ``processors.features`` (the same ``FeaturesProcessor`` that
``journey features`` runs): faust does group membership, partition assignment (its own
co-partitioning assignor), the table and its changelog, and recovers the table from the
changelog when a worker starts or takes over partitions. It shows that the domain logic
does not depend on its host, and it is what the features benchmark (``make bench``,
"Features stage" in BENCHMARKS.md) measures the default host, ``streams/stateful.py``,
against. Two variants of the agent:

``naive``
    What a faust user writes: one event at a time. Look the customer up in the table,
    ``processor.process`` (validate and apply; it may give a late event), write the entry
    back (``table[key] = entry``: one changelog record per event, the whole state
    pickled), send side outputs and the customer's profile.

``batched``
    ``stream.take_events(take, within)`` over raw bytes: the processor's hot path runs over
    a whole batch, then each customer changed in the batch gets one changelog record and
    one profile. faust refuses ``table[key] = ...`` outside per-event iteration (it takes
    the changelog partition from the current event), so the batch writes the table's store
    and sends the changelog record with ``table.send_changelog(partition, ...)``, the
    partition being that of the customer's events (all input topics are co-partitioned
    by customer).

Exactness: each table value (:class:`CustomerEntry`) also holds the input offsets already
applied to that customer. faust acks a batch's events only after the batch body has run,
and flushes its producer (changelog and outputs) before it commits offsets; after a
crash it redelivers from the last commit, and records at or below a customer's applied
offset are skipped, so nothing is counted twice or lost. On the embedded broker (Tansu)
faust's changelog recovery needs ``JOURNEY_FAUST_PRODUCER_MAX_BATCH_SIZE=1`` (its
ListOffsets(latest) is wrong when the newest batch holds several records, so recovery
would stop early; see DESIGN.md); that makes writes slower still. And faust's end of recovery
is fixed by :mod:`streams.faust_recovery` (it resumed the input partitions before seeking
them, so a restarted worker could lose records and stop committing).

Run it: ``JOURNEY_KAFKA_BOOTSTRAP=host:port python -m streams.faust_features batched worker -l info``
(or ``naive``). Settings come from ``JOURNEY_*`` like every worker (group prefix, partitions,
lateness, session gap, segments, data dir); the consumer group is ``<prefix>-features-faust``.
Only PLAINTEXT brokers are wired up here (no SASL/SSL settings). faust-streaming comes with the
``bench`` extra (``pip install 'journey[bench]'``), not with the workers' install.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable
from typing import Any

try:
    import faust
    from faust.serializers import codecs
except ImportError as exc:  # not a worker dependency: the image leaves it out
    raise ImportError("the faust host needs the bench extra: pip install 'journey[bench]' (make bench installs it)"
                      ) from exc

from processors.features.build import build_features
from processors.features.processor import FeaturesProcessor
from processors.output import Output
from schemas.registry import CUSTOMER_FEATURES as PROFILE_TOPIC
from schemas.registry import INPUT_TOPICS
from schemas.registry import LATE_EVENTS as LATE_TOPIC
from streams import faust_recovery
from streams.settings import Settings, load_settings

#: The table holding each customer's state; its changelog is ``<app id>-customer-state-changelog``.
TABLE = "customer-state"
#: Environment variable: faust's ``producer_max_batch_size`` (bytes); ``1`` for exact recovery on Tansu.
MAX_BATCH_ENV = "JOURNEY_FAUST_PRODUCER_MAX_BATCH_SIZE"
CODEC = "journey_pickle"
VARIANTS = ("naive", "batched")
#: Batched variant: at most this many events per batch, and how long to wait for a batch to fill.
TAKE = 5_000
WITHIN = 0.05


class PickleCodec(codecs.Codec):
    """Pickle for the table's own changelog (written and read only by this job: trusted data)."""

    def _dumps(self, obj: Any) -> bytes:
        return pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)

    def _loads(self, s: bytes) -> Any:
        return pickle.loads(s)  # our own changelog: trusted


codecs.register(CODEC, PickleCodec())


class CustomerEntry(faust.Record, serializer=CODEC, include_metadata=False):
    """A table value: the customer's state and the input offsets already applied to it.

    A faust Record so that the table and its changelog topic take the pickle codec from
    the value type (faust fixes a changelog's codec when the table is created).
    """

    state: Any  # processors.features.engine.CustomerState
    applied: dict[str, int]  # input topic -> offset of the last record applied to this customer


def app_id(settings: Settings) -> str:
    """The faust app id, which is also its consumer group id."""
    return settings.group_id("features-faust")


def create_app(settings: Settings | None = None, *, variant: str = "batched",
               processor: FeaturesProcessor | None = None, producer_max_batch_size: int | None = None,
               web_port: int | None = None, take: int = TAKE, within: float = WITHIN,
               on_handled: Callable[[int], None] | None = None) -> faust.App:
    """The faust app with its table and one agent of ``variant``, configured as DESIGN.md says works on Tansu.

    ``on_handled(n)`` is called after every ``n`` input records are handled (the benchmark's
    progress counter); ``processor`` defaults to the one ``journey features`` builds.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    settings = settings or load_settings()
    if not settings.kafka_bootstrap:
        raise SystemExit("set JOURNEY_KAFKA_BOOTSTRAP to the Kafka (or embedded broker) address")
    faust_recovery.install()  # faust resumes the inputs before it seeks them after recovery: see the module
    processor = processor or build_features(lateness_ms=round(settings.allowed_lateness_seconds * 1000),
                                            session_gap_ms=round(settings.session_gap_seconds * 1000),
                                            segments_file=settings.segments_file, limits=settings.limits)
    options: dict[str, Any] = {}
    if producer_max_batch_size is not None:
        options["producer_max_batch_size"] = producer_max_batch_size
    if web_port is not None:
        options.update(web_enabled=True, web_port=web_port, web_bind="127.0.0.1")
    else:
        options["web_enabled"] = False
    datadir = settings.data_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id(settings),
        broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        store="memory://",
        topic_partitions=settings.topic_partitions,
        broker_session_timeout=6.0,  # Tansu: group joins take session.timeout / 2
        broker_heartbeat_interval=1.0,
        stream_wait_empty=False,
        consumer_auto_offset_reset="earliest",
        datadir=str(datadir),
        **options,
    )
    source = app.topic(*INPUT_TOPICS, key_serializer="raw", value_serializer="raw")
    outputs = {name: app.topic(name, key_serializer="raw", value_serializer="raw")
               for name in (PROFILE_TOPIC, LATE_TOPIC)}
    table = app.Table(TABLE, key_type=bytes, value_type=CustomerEntry, partitions=settings.topic_partitions)
    handled = on_handled or (lambda n: None)

    if variant == "naive":
        @app.agent(source, name="features")
        async def naive(stream: faust.StreamT) -> None:
            async for event in stream.events():
                message = event.message
                key: bytes = message.key or b""
                customer = key.decode("utf-8", "replace")
                entry: CustomerEntry | None = table.get(key)
                if entry is None:
                    entry = CustomerEntry(processor.new_state(customer), {})
                elif entry.applied.get(message.topic, -1) >= message.offset:
                    handled(1)
                    continue  # redelivered after a crash: this customer's state already has it
                side = processor.process(entry.state, message.topic, event.value, key)
                entry.applied[message.topic] = message.offset
                table[key] = entry  # one changelog record per event
                for topic, out_key, value in [*side, *processor.emit(customer, entry.state)]:
                    await outputs[topic].send(key=out_key, value=value)
                handled(1)
    else:
        @app.agent(source, name="features")
        async def batched(stream: faust.StreamT) -> None:
            store = table.data  # the table's storage, recovered from its changelog by faust
            process, new_state = processor.process, processor.new_state
            async for events in stream.take_events(take, within):
                changed: dict[bytes, tuple[int, CustomerEntry]] = {}
                side: list[Output] = []
                for event in events:
                    message = event.message
                    key = message.key or b""
                    topic, offset = message.topic, message.offset
                    entry = store.get(key)
                    if entry is None:
                        entry = store[key] = CustomerEntry(new_state(key.decode("utf-8", "replace")), {})
                    elif entry.applied.get(topic, -1) >= offset:
                        continue  # redelivered after a crash: this customer's state already has it
                    side += process(entry.state, topic, event.value, key)
                    entry.applied[topic] = offset
                    changed[key] = (message.partition, entry)
                for key, (partition, entry) in changed.items():
                    table.send_changelog(partition, key, entry)  # one changelog record per changed customer
                for topic, out_key, value in side:
                    await outputs[topic].send(key=out_key, value=value)
                for _, entry in changed.values():
                    for topic, out_key, value in processor.emit(entry.state.customer_id, entry.state):
                        await outputs[topic].send(key=out_key, value=value)
                handled(len(events))

    return app


def main(argv: list[str] | None = None) -> None:
    """``python -m streams.faust_features {naive,batched} worker -l info`` (then faust's own command line)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in VARIANTS:
        raise SystemExit(f"usage: python -m streams.faust_features {{{','.join(VARIANTS)}}} worker -l info")
    size = os.environ.get(MAX_BATCH_ENV)
    app = create_app(variant=args.pop(0), producer_max_batch_size=int(size) if size else None)
    sys.argv = [sys.argv[0], *without_web(args)]
    app.main()


def without_web(args: list[str]) -> list[str]:
    """faust's ``worker`` command starts its web server on port 6066 unless told not to (whatever the app
    says): no web server unless the command line asks for one, so two workers on one host do not collide."""
    if args[:1] == ["worker"] and not any(a.startswith(("--with-web", "--without-web", "--web-port", "-p"))
                                          for a in args):
        return [args[0], "--without-web", *args[1:]]
    return args


if __name__ == "__main__":
    main()
