"""Settings: environment and TOML file, clear validation, secrets kept out of repr."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.settings import Settings, SettingsFileMissing


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


def _sasl(**extra: object) -> dict[str, object]:
    return {"kafka_bootstrap": "k:9093", "kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": "svc", "kafka_sasl_password": "hunter2", **extra}


def test_tls_and_sasl_reach_librdkafka(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / n for n in ("ca.pem", "client.pem", "client.key"))
    for f in (ca, cert, key):
        f.write_text("-----BEGIN-----\n")
    settings = Settings(**_sasl(kafka_ssl_ca_location=ca, kafka_ssl_certificate_location=cert,
                                kafka_ssl_key_location=key, kafka_ssl_key_password="k3y",
                                kafka_ssl_verify_hostname=False))
    assert settings.kafka_config() == {
        "bootstrap.servers": "k:9093", "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc", "sasl.password": "hunter2", "ssl.ca.location": str(ca),
        "ssl.certificate.location": str(cert), "ssl.key.location": str(key), "ssl.key.password": "k3y",
        "ssl.endpoint.identification.algorithm": "none"}


@pytest.mark.parametrize(("overrides", "message"), [
    ({"kafka_sasl_mechanism": None}, "needs kafka_sasl_mechanism"),
    ({"kafka_sasl_password": None}, "needs kafka_sasl_username and kafka_sasl_password"),
    ({"kafka_security_protocol": "SSL"}, "kafka_sasl_mechanism is set but kafka_security_protocol is SSL"),
    ({"kafka_ssl_ca_location": "/nonexistent/ca.pem"}, "no such file: /nonexistent/ca.pem"),
    ({"clickhouse_dsn": "http://ch:8123/db", "clickhouse_ca_cert": __file__}, "clickhouse_dsn is not https"),
])
def test_inconsistent_security_is_refused_with_the_reason(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**_sasl(**overrides))


def test_clickhouse_over_https_with_credentials(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN-----\n")
    settings = Settings(clickhouse_dsn="https://ch.internal:8443/journey", clickhouse_user="journey",
                        clickhouse_password="s3cret", clickhouse_ca_cert=ca)
    assert settings.clickhouse_options() == {"username": "journey", "password": "s3cret", "verify": True,
                                             "ca_cert": str(ca)}


def test_no_secret_in_repr_describe_or_any_log_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Passwords in SecretStr fields and inside a DSN never reach a repr, the settings log line or other logs."""
    import io
    import logging

    from streams.logs import configure, log_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOURNEY_CLICKHOUSE_DSN", "https://analyst:dsn-pa55@ch:8443/journey")
    for log_format in ("text", "json"):
        settings = Settings(**_sasl(clickhouse_password="ch-pa55", log_format=log_format))
        stream = io.StringIO()
        handler = configure(settings, "sink", stream)
        try:
            log_settings(settings, "sink")
            logging.getLogger("confluent_kafka").error("connect failed with sasl.password=hunter2")
            try:
                raise RuntimeError("cannot open https://analyst:dsn-pa55@ch:8443")
            except RuntimeError:
                logging.getLogger("journey").exception("insert failed")
        finally:
            logging.getLogger().removeHandler(handler)
        text = stream.getvalue() + repr(settings) + str(settings.describe())
        for secret in ("hunter2", "ch-pa55", "dsn-pa55"):
            assert secret not in text, f"{secret} leaked ({log_format})"
        assert "analyst:***@ch:8443" in text and "sasl.password=***" in text and "kafka_sasl_username" in text


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    import io
    import logging

    import orjson

    from streams.logs import configure

    stream = io.StringIO()
    handler = configure(Settings(log_format="json"), "features", stream)
    try:
        logging.getLogger("journey.features").info("flushed %d keys", 12, extra={"partition": 3})
    finally:
        logging.getLogger().removeHandler(handler)
    record = orjson.loads(stream.getvalue().splitlines()[-1])
    assert record["message"] == "flushed 12 keys" and record["partition"] == 3 and record["role"] == "features"
    assert record["level"] == "INFO" and record["time"].endswith("+00:00")


@pytest.mark.parametrize(("env", "message"), [
    ({"JOURNEY_TOPIC_PARTITIONS": "0"}, "topic_partitions: Input should be greater than or equal to 1"),
    ({"JOURNEY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
     "settings: kafka_security_protocol SASL_SSL needs kafka_sasl_mechanism"),
])
def test_a_worker_with_invalid_settings_stops_at_start_naming_the_problem(
        env: dict[str, str], message: str, tmp_path: Path) -> None:
    """`journey sink` refuses to start, says which setting is wrong and why, and does not echo the password."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "JOURNEY_KAFKA_BOOTSTRAP": "k:9093", "JOURNEY_KAFKA_SASL_PASSWORD": "hunter2", **env}
    result = subprocess.run([sys.executable, "-m", "streams.cli", "sink"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr and message in result.stderr, result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_a_named_settings_file_that_does_not_exist_is_an_error(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    """A typo in JOURNEY_SETTINGS must not silently mean the defaults."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOURNEY_SETTINGS", str(tmp_path / "jounrey.toml"))
    with pytest.raises(SettingsFileMissing, match=r"jounrey\.toml, which is not a file"):
        Settings()
    (tmp_path / "jounrey.toml").write_text("topic_partitions = 3\n")
    assert Settings().topic_partitions == 3
    (tmp_path / "journey.toml").write_text("topic_partitions = 5\n")
    monkeypatch.setenv("JOURNEY_SETTINGS", "")  # empty: no settings file at all, not even journey.toml
    assert Settings().topic_partitions == 4


@pytest.mark.parametrize("name", ["segments_file", "trigger_rules_file", "messages_file", "scoring_file"])
def test_rule_files_must_exist(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=f"{name}[\\s\\S]*no such file"):
        Settings(**{name: tmp_path / "missing.toml"})


def test_a_required_privacy_key_must_be_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The image requires the key: pods with a random key each would hash ids differently."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JOURNEY_PRIVACY_KEY", raising=False)
    monkeypatch.setenv("JOURNEY_PRIVACY_KEY_REQUIRED", "true")
    with pytest.raises(ValidationError, match="JOURNEY_PRIVACY_KEY"):
        Settings()
    monkeypatch.setenv("JOURNEY_PRIVACY_KEY", "k" * 32)
    key = Settings().privacy_key
    assert key is not None and key.get_secret_value() == "k" * 32
