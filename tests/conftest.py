"""Shared fixtures: the datasets, and a pipeline backend (embedded or containers) for integration tests."""

from __future__ import annotations

import importlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from plumbing.produce import TrackingProducer
from sinks.client import apply_schema, connect
from sinks.ingest import IngestSink, SinkConfig, SinkStats
from streams.progress import GroupProgress
from streams.topics import ensure_topics, topic_specs

#: The loopback webhook receiver and SMTP server fixtures (``receiver``, ``smtp_server``).
pytest_plugins = ["tests.loopback"]

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"


def require_datasets() -> Path:
    """The shared datasets; skipped with the reason where absent, but never skipped in CI."""
    if not DATASETS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have the datasets at {DATASETS}")
        pytest.skip(f"needs the shared datasets at {DATASETS} (absent in a standalone clone)")
    return DATASETS


def require_extra(module: str, extra: str) -> None:
    """Skip, with the reason, a test module that needs ``module`` from an optional extra that is not installed;
    never skipped in CI, whose install (the ``dev`` extra) includes every extra the tests need."""
    try:
        importlib.import_module(module)
    except ImportError:
        reason = f"needs {module}, from the {extra} extra (pip install -e '.[{extra}]'; the dev extra includes it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must install it: {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="session")
def datasets() -> Path:
    return require_datasets()


@dataclass
class Backend:
    """A Kafka and a ClickHouse to run the pipeline against."""

    name: str
    kafka: dict[str, str]
    dsn: str
    partitions: int = 4

    def client(self) -> Client:
        return connect(self.dsn)

    def fresh_topics(self) -> dict[str, str]:
        """Kafka settings for this backend; topics created (idempotent)."""
        ensure_topics(self.kafka, topic_specs(self.partitions))
        return self.kafka


def _docker_available() -> str | None:
    try:
        import docker

        docker.from_env().ping()
        return None
    except Exception as exc:  # no engine, no socket, no permission: all mean "cannot run containers"
        return f"no Docker engine reachable ({type(exc).__name__}); testcontainers tests need one"


def reset_clickhouse(client: Client) -> None:
    """Drop every table and view of the current database, then apply the schema afresh."""
    for (name,) in client.query("SELECT name FROM system.tables WHERE database = currentDatabase()").result_rows:
        client.command(f"DROP TABLE IF EXISTS `{name}` SYNC")
    apply_schema(client)


#: The images compose.yaml runs, so the container tests exercise what `make up` deploys.
KAFKA_IMAGE = "apache/kafka:3.9.1"
CLICKHOUSE_IMAGE = "clickhouse/clickhouse-server:24.8"


def apache_kafka(host_port: int) -> object:
    """Apache Kafka in KRaft mode (one broker and controller), reachable at ``localhost:host_port``.

    The host port is fixed before start because the broker must advertise the address clients use.
    """
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    env = {
        "KAFKA_NODE_ID": "1", "KAFKA_PROCESS_ROLES": "broker,controller",
        # Clients use PLAINTEXT (the mapped port); the broker talks to itself on BROKER inside the container.
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,BROKER://:19092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://localhost:{host_port},BROKER://localhost:19092",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER", "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1", "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    }
    container = DockerContainer(KAFKA_IMAGE).with_bind_ports(9092, host_port)
    for name, value in env.items():
        container = container.with_env(name, value)
    return container.waiting_for(LogMessageWaitStrategy("Kafka Server started").with_startup_timeout(120))


@pytest.fixture(scope="session")
def containers() -> Iterator[tuple[dict[str, str], str]]:
    """Apache Kafka (KRaft) and ClickHouse server containers, started once per test session."""
    reason = _docker_available()
    if reason:
        pytest.skip(reason)
    from testcontainers.clickhouse import ClickHouseContainer

    from streams.broker import free_port

    port = free_port()
    with apache_kafka(port), ClickHouseContainer(CLICKHOUSE_IMAGE) as clickhouse:  # type: ignore[attr-defined]
        host, http_port = clickhouse.get_container_host_ip(), clickhouse.get_exposed_port(8123)
        dsn = f"http://{clickhouse.username}:{clickhouse.password}@{host}:{http_port}/{clickhouse.dbname}"
        yield {"bootstrap.servers": f"localhost:{port}"}, dsn


def _delete_topics(kafka: dict[str, str]) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(kafka)
    names = [t for t in admin.list_topics(timeout=10).topics if not t.startswith("_")]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.result()
        time.sleep(1)


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """chDB opens one data path per process, so every test of the session shares this one."""
    return tmp_path_factory.mktemp("chdb") / "db"


@pytest.fixture(params=["embedded", "containers"])
def backend(request: pytest.FixtureRequest, chdb_path: Path) -> Iterator[Backend]:
    """A clean Kafka and ClickHouse: the embedded broker + chDB, or Apache Kafka + ClickHouse server.

    The same integration tests run on both; the containers variant skips where Docker is absent.
    """
    if request.param == "embedded":
        from streams.broker import EmbeddedBroker

        with EmbeddedBroker() as broker:
            result = Backend("embedded", {"bootstrap.servers": broker.bootstrap}, f"chdb://{chdb_path}")
            reset_clickhouse(result.client())
            result.fresh_topics()
            yield result
        return
    kafka, dsn = request.getfixturevalue("containers")
    _delete_topics(kafka)
    result = Backend("containers", kafka, dsn)
    reset_clickhouse(result.client())
    result.fresh_topics()
    yield result


def produce(kafka: dict[str, str], records: list[tuple[str, bytes | None, bytes | None]]) -> TrackingProducer:
    """Send (topic, key, value) records and wait for every acknowledgement."""
    producer = TrackingProducer(kafka)
    for topic, key, value in records:
        producer.send_raw(topic, key, value)
    producer.flush()
    return producer


def sink_until_caught_up(backend: Backend, client: Client, ends: dict[tuple[str, int], int],
                         group: str | None = None, timeout: float = 120.0, **config: object) -> SinkStats:
    """Run one sink worker in a thread until its group has committed everything in ``ends``."""
    group = group or f"sink-{uuid.uuid4().hex[:8]}"
    apply_schema(client)
    sink = IngestSink(backend.kafka, client, SinkConfig(group_id=group, batch_seconds=0.2, **config))  # type: ignore[arg-type]
    stop = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            sink.run(stop)
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    progress = GroupProgress(backend.kafka, group)
    deadline = time.monotonic() + timeout
    try:
        while progress.remaining(ends) and time.monotonic() < deadline and not errors:
            time.sleep(0.2)
        assert not errors, f"sink failed: {errors[0]!r}"
        assert progress.remaining(ends) == 0, f"sink did not catch up within {timeout}s"
    finally:
        stop.set()
        thread.join(30)
        progress.close()
    return sink.stats
