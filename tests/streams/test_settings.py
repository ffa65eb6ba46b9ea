"""Settings: environment and TOML file, clear validation, secrets kept out of repr."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.settings import Settings


def test_defaults_are_the_embedded_pipeline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.embedded_broker
    assert settings.resolved_clickhouse_dsn == f"chdb://{tmp_path / '.journey' / 'clickhouse'}"


def test_environment_overrides_the_settings_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "journey.toml").write_text('topic_partitions = 8\nkafka_bootstrap = "file:9092"\n')
    monkeypatch.setenv("JOURNEY_KAFKA_BOOTSTRAP", "env:9092")
    settings = Settings()
    assert settings.topic_partitions == 8
    assert settings.kafka_bootstrap == "env:9092"
    assert not settings.embedded_broker


def test_secrets_are_not_in_repr_but_reach_the_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOURNEY_KAFKA_SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("JOURNEY_CLICKHOUSE_PASSWORD", "s3cret")
    settings = Settings(kafka_bootstrap="k:9092", kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="PLAIN",
                        kafka_sasl_username="svc")
    assert "hunter2" not in repr(settings) and "s3cret" not in repr(settings)
    assert settings.kafka_config()["sasl.password"] == "hunter2"


@pytest.mark.parametrize(("name", "value"), [("clickhouse_dsn", "mysql://x"), ("topic_partitions", 0),
                                             ("kafka_security_protocol", "MAGIC")])
def test_invalid_values_are_refused_by_name(name: str, value: object) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings(**{name: value})
