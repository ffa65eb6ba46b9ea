"""librdkafka options: kafka_extra passed through (checked by librdkafka), per-role fetch waits, eager batches."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Message, Producer
from pydantic import ValidationError

from plumbing.batch_worker import BatchWorker, consumer_config
from streams.broker import EmbeddedBroker
from streams.gc_tuning import WORKER_THRESHOLDS
from streams.kafka_options import FETCH_WAIT_MAX_MS
from streams.settings import Settings
from streams.topics import TopicSpec, ensure_topics


def test_kafka_extra_reaches_every_client_config() -> None:
    settings = Settings(kafka_bootstrap="k:9092", kafka_extra={"socket.keepalive.enable": True, "linger.ms": 20,
                                                               "client.rack": "eu-1a"})
    assert settings.kafka_config() == {"bootstrap.servers": "k:9092", "security.protocol": "PLAINTEXT",
                                       "socket.keepalive.enable": "true", "linger.ms": "20", "client.rack": "eu-1a"}


def test_kafka_extra_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOURNEY_KAFKA_EXTRA", '{"socket.keepalive.enable": true}')
    assert Settings(kafka_bootstrap="k:1").kafka_config()["socket.keepalive.enable"] == "true"


@pytest.mark.parametrize(("extra", "message"), [
    ({"fetch.wait.max.msec": 10}, 'No such configuration property: "fetch.wait.max.msec"'),
    ({"socket.keepalive.enable": "maybe"}, 'Expected bool value for "socket.keepalive.enable"'),
    ({"linger.ms": -1}, "value -1 is outside allowed range"),
    ({"bootstrap.servers": "other:9092"}, "'bootstrap.servers' has a setting of its own: use kafka_bootstrap"),
    ({"group.id": "mine"}, "use group_prefix"),
    ({"fetch.wait.max.ms": 5}, "use fetch_wait_max_ms"),
])
def test_kafka_extra_refuses_unknown_or_bad_options_by_name(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match="kafka_extra") as caught:
        Settings(kafka_extra=extra)
    assert message in str(caught.value)


def test_fetch_waits_per_role_keep_the_defaults_of_roles_not_named(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "journey.toml").write_text("fetch_queue_backoff_ms = 50\n[fetch_wait_max_ms]\nsink = 250\n")
    settings = Settings()
    assert settings.consumer_tuning("sink") == {"fetch.wait.max.ms": 250, "fetch.queue.backoff.ms": 50}
    assert settings.consumer_tuning("triggers") == {"fetch.wait.max.ms": 10, "fetch.queue.backoff.ms": 50}
    assert Settings().fetch_wait_max_ms == {**FETCH_WAIT_MAX_MS, "sink": 250}


@pytest.mark.parametrize("waits", [{"sinc": 10}, {"features": -1}, {"features": 300_001}])
def test_fetch_waits_refuse_unknown_roles_and_out_of_range_values(waits: dict[str, int]) -> None:
    with pytest.raises(ValidationError, match="fetch_wait_max_ms"):
        Settings(fetch_wait_max_ms=waits)


class _Recorder(BatchWorker):
    """Takes batches and notes them; no storing."""

    def __init__(self, config: dict[str, Any], topics: list[str], batch_rows: int, eager: bool) -> None:
        super().__init__(config, topics, batch_rows)
        self.consume_eagerly = eager
        self.batches: list[list[Message]] = []
        self.assigned = threading.Event()

    def on_assign(self, partitions: list[Any]) -> None:
        self.assigned.set()

    def handle(self, messages: list[Message]) -> None:
        self.batches.append(messages)

    def flush(self) -> None:
        pass

    def flush_due(self) -> bool:
        return False


def test_an_eager_worker_takes_a_record_as_soon_as_it_is_fetched_and_a_backlog_in_full_batches() -> None:
    """With consume(n, timeout) a lone record waited out the whole timeout (30 s here) for a full batch."""
    with EmbeddedBroker() as broker:
        kafka = {"bootstrap.servers": broker.bootstrap}
        ensure_topics(kafka, [TopicSpec("eager", 2)])
        worker = _Recorder(consumer_config(kafka, "eager-group", **{"fetch.wait.max.ms": 10}), ["eager"], 1000,
                           eager=True)
        worker.start()
        try:
            while not worker.assigned.is_set():
                worker.poll(0.5)
            producer = Producer(kafka)
            producer.produce("eager", b"one", b"k1")
            producer.flush(30)
            started = time.monotonic()
            while not worker.batches:
                worker.poll(30.0)
            assert time.monotonic() - started < 20, "the record waited for a full batch"
            assert [m.value() for m in worker.batches[0]] == [b"one"]
            worker.batches.clear()
            for i in range(5000):  # a backlog: taken in batches of batch_rows, not one record at a time
                producer.produce("eager", b"x", str(i).encode())
            producer.flush(30)
            time.sleep(1.0)  # let librdkafka prefetch the backlog
            taken = 0
            while taken < 5000:
                taken += worker.poll(30.0)
            assert taken == 5000
            assert max(map(len, worker.batches)) == 1000
        finally:
            worker.close()


def test_every_role_starts_through_serve_with_its_fetch_settings_and_the_worker_gc(monkeypatch: pytest.MonkeyPatch,
                                                                                   tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    from streams import cli
    from streams.metrics import StatsCollector

    monkeypatch.chdir(tmp_path)
    seen: dict[str, Any] = {}

    class Stub(_Recorder):
        def run(self, stop: threading.Event) -> None:  # type: ignore[override]
            seen["config"] = dict(self._consumer_config)
            seen["gc"] = gc.get_threshold()

    before = gc.get_threshold()
    worker = Stub(consumer_config({"bootstrap.servers": "x:1"}, "g"), ["t"], 10, eager=True)
    extra = StatsCollector({"journey_test_metric": ("help", "label", lambda: {"a": 1})})
    registered: list[CollectorRegistry] = []
    monkeypatch.setattr(CollectorRegistry, "register", lambda self, c: registered.append(c))
    try:
        cli._serve(Settings(fetch_wait_max_ms={"features": 7}), "features", threading.Event(), worker, extra)
    finally:
        gc.set_threshold(*before)
    assert seen["config"]["fetch.wait.max.ms"] == 7 and seen["config"]["fetch.queue.backoff.ms"] == 10
    assert "stats_cb" in seen["config"]  # the lag metric's statistics
    assert seen["gc"] == WORKER_THRESHOLDS
    assert extra in registered


@pytest.mark.parametrize("role", ["features", "triggers", "messages", "deliver"])
def test_each_worker_command_starts_through_serve(role: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``journey features`` (and every other processor command) runs its worker through ``_serve``, which
    tunes the collector and the fetches; nothing is consumed (``_serve`` records what it was given)."""
    from streams import cli

    monkeypatch.setenv("JOURNEY_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setenv("JOURNEY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("JOURNEY_DELIVERY_ADAPTER", "console")
    monkeypatch.chdir(tmp_path)
    served: list[tuple[str, str]] = []
    monkeypatch.setattr(cli, "_worker_logging_and_stop", lambda *_: threading.Event())
    monkeypatch.setattr(cli, "_serve", lambda settings, r, stop, worker, *collectors: served.append(
        (r, type(worker).__name__)))
    getattr(cli, role)(**({"adapter": None} if role == "deliver" else {}))
    assert served == [(role, "DeliveryWorker" if role == "deliver" else "StatefulWorker")]
