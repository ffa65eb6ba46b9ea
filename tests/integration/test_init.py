"""`journey init`, the first job of a deployment: topics with their partitions and compaction, and the schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from streams.broker import EmbeddedBroker, free_port
from streams.topics import topic_specs

pytestmark = pytest.mark.integration


def init(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", "init"], env={**os.environ, **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_init_refuses_the_embedded_setup(tmp_path: Path) -> None:
    result = init({"JOURNEY_KAFKA_BOOTSTRAP": "127.0.0.1:1"}, tmp_path)  # ClickHouse left embedded
    assert result.returncode == 2 and "prepares a Kafka cluster and a ClickHouse server" in result.stderr


def test_init_creates_every_topic_then_reports_an_unreachable_clickhouse(tmp_path: Path) -> None:
    with EmbeddedBroker() as broker:
        kafka = {"bootstrap.servers": broker.bootstrap}
        result = init({"JOURNEY_KAFKA_BOOTSTRAP": broker.bootstrap, "JOURNEY_TOPIC_PARTITIONS": "6",
                       "JOURNEY_CLICKHOUSE_DSN": f"http://127.0.0.1:{free_port()}/journey",
                       "JOURNEY_CLICKHOUSE_PASSWORD": "pa55word"}, tmp_path)
        assert result.returncode == 1, result.stderr
        assert "init failed: cannot open ClickHouse at" in result.stderr and "pa55word" not in result.stderr
        admin = AdminClient(kafka)
        topics = admin.list_topics(timeout=10).topics
        for spec in topic_specs(6):
            assert len(topics[spec.name].partitions) == 6, spec.name
        resource = ConfigResource(ConfigResource.Type.TOPIC, "customer-features")
        config = admin.describe_configs([resource])[resource].result(timeout=30)
        assert config["cleanup.policy"].value == "compact"
        again = init({"JOURNEY_KAFKA_BOOTSTRAP": broker.bootstrap, "JOURNEY_TOPIC_PARTITIONS": "6",
                      "JOURNEY_CLICKHOUSE_DSN": f"http://127.0.0.1:{free_port()}/journey"}, tmp_path)
        assert again.returncode == 1 and "topics created" not in again.stdout + again.stderr


def test_init_against_kafka_and_clickhouse_server_containers(containers: tuple[dict[str, str], str],
                                                             tmp_path: Path) -> None:
    kafka, dsn = containers
    result = init({"JOURNEY_KAFKA_BOOTSTRAP": kafka["bootstrap.servers"], "JOURNEY_CLICKHOUSE_DSN": dsn}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ClickHouse schema applied" in result.stderr
    from sinks.client import connect

    tables = {name for (name,) in connect(dsn).query("SHOW TABLES").result_rows}
    assert {"clickstream_events", "kpis_per_minute", "customer_profiles"} <= tables
