"""Configuration from environment variables (``JOURNEY_*``) and an optional TOML settings file.

Precedence: explicit arguments > environment > settings file > defaults. The settings
file is ``journey.toml`` in the working directory, or the path in ``JOURNEY_SETTINGS``.
Secrets are ``SecretStr``: they never appear in ``repr`` or logs.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AwareDatetime, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from processors.identity.rules import LinkRules
from schemas.validation import MIN_EVENT_TIME, Limits
from streams.kafka_options import FETCH_WAIT_MAX_MS, WorkerRole, check_kafka_extra
from streams.pseudonym import Pseudonymizer, load_key
from streams.senders import redact_url
from streams.state_store import DEFAULT_CACHE_CUSTOMERS


def _settings_file() -> Path | None:
    """The settings file: ``JOURNEY_SETTINGS`` (which must exist; empty: none), else ``journey.toml`` if present."""
    named = os.environ.get("JOURNEY_SETTINGS")
    if named is None:
        return Path("journey.toml")
    if named == "":
        return None
    if not Path(named).is_file():
        raise SettingsFileMissing(f"JOURNEY_SETTINGS names {named}, which is not a file")
    return Path(named)


def settings_file_in_use() -> Path | None:
    """The settings file this process reads (absolute), or None when it reads none."""
    path = _settings_file()
    return path.resolve() if path is not None and path.is_file() else None


class SettingsFileMissing(ValueError):
    """``JOURNEY_SETTINGS`` names a file that does not exist (a typo must not silently mean defaults)."""


class SettingsFileInvalid(ValueError):
    """The settings file is not valid TOML: the message names the file, the line and the usual fix."""


#: ``JOURNEY_*`` variables read by something other than :class:`Settings` (compose, the tests, a worker).
OTHER_VARIABLES = frozenset({"JOURNEY_SETTINGS", "JOURNEY_FAUST_PRODUCER_MAX_BATCH_SIZE", "JOURNEY_DATASETS",
                             "JOURNEY_REPLAY", "JOURNEY_CUSTOMERS", "JOURNEY_DAYS", "JOURNEY_SEED",
                             "JOURNEY_CLICKHOUSE_HOST", "JOURNEY_CLICKHOUSE_DATABASE"})


class Settings(BaseSettings):
    """Everything a deployment can configure; see the README's Configuration section."""

    model_config = SettingsConfigDict(env_prefix="JOURNEY_", extra="forbid", validate_default=True)

    data_dir: Path = Field(Path(".journey"), description="Local state: embedded database, logs.")

    # Kafka
    kafka_bootstrap: str | None = Field(None, description="host:port,...; unset starts the embedded broker.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: Path | None = Field(None, description="CA bundle (PEM) that signed the brokers' certs.")
    kafka_ssl_certificate_location: Path | None = Field(None, description="Client certificate (PEM) for mutual TLS.")
    kafka_ssl_key_location: Path | None = Field(None, description="Client private key (PEM) for mutual TLS.")
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_verify_hostname: bool = Field(True, description="Check the broker certificate's host name.")
    kafka_extra: dict[str, str | int | float | bool] = Field(
        {}, description="librdkafka options passed to every client (producers, consumers, admin), "
        "e.g. {\"socket.keepalive.enable\": true}; checked by librdkafka at startup. Options with a setting of their "
        "own (bootstrap, security, group) are refused here.")
    fetch_wait_max_ms: dict[WorkerRole, int] = Field(
        FETCH_WAIT_MAX_MS, description="librdkafka fetch.wait.max.ms per worker role "
        "(the roles not named keep their defaults): on a broker that does not answer a waiting fetch when data "
        "arrives (the embedded one) it is the latency of every hop.")
    fetch_queue_backoff_ms: int = Field(10, ge=0, le=300_000, description="librdkafka fetch.queue.backoff.ms of "
                                        "the workers' consumers (the 1000 ms default stalls one catching up).")
    topic_partitions: int = Field(4, ge=1, le=1024)
    topic_replication: int = Field(1, ge=1, le=16)
    group_prefix: str = Field("journey", min_length=1)

    # ClickHouse
    clickhouse_dsn: str | None = Field(
        None, description="chdb:///path (embedded), chdb://memory, or http(s)://host:port/db; unset: embedded."
    )
    clickhouse_user: str | None = None
    clickhouse_password: SecretStr | None = None
    clickhouse_ca_cert: Path | None = Field(None, description="CA bundle (PEM) for an https:// ClickHouse.")
    clickhouse_verify: bool = Field(True, description="Verify the ClickHouse server's TLS certificate.")

    # Sink
    sink_batch_rows: int = Field(50_000, ge=1, description="Each insert costs ~50 ms with the rollup views: batch big.")
    sink_batch_seconds: float = Field(1.0, gt=0)
    sink_min_batch_rows: int = Field(10_000, ge=1, description="Caught up with its input, the sink stores a batch "
                                     "of this many rows at once instead of waiting for sink_batch_seconds.")

    # Features
    allowed_lateness_seconds: float = Field(3600.0, ge=0, description="Event-time lateness before an event is late.")
    session_gap_seconds: float = Field(1800.0, gt=0)
    segments_file: Path | None = Field(None, description="TOML file of segment rules; unset: the shipped defaults.")
    processor_flush_seconds: float = Field(1.0, gt=0, description="How often processors write state and outputs.")
    state_dir: Path | None = Field(None, description="Where the stateful workers keep their local state stores "
                                   "(RocksDB, one per changelog partition); unset: <data_dir>/state.")
    state_cache_customers: int = Field(DEFAULT_CACHE_CUSTOMERS, ge=1, description="States a stateful worker keeps "
                                       "as live objects (least recently used evicted to its local store).")

    # Identity resolution (journey identity-stage; processors/identity/rules.py)
    identity_resolution: bool = Field(True, description="The features worker reads the identity stage's resolved "
                                                        "events (identified-*); false: the raw inputs, keyed by "
                                                        "customer_id as sent (no identity stage runs).")
    identity_auto_link: list[str] = Field(["anonymous_id", "email_hash", "phone_hash", "chat_handle", "loyalty_id"],
                                          description="Identifier kinds that link to an event's subject whenever "
                                                      "they appear on it.")
    identity_never_link: list[str] = Field(["device_id"], description="Identifier kinds that never link two "
                                                                     "components, not even on identify.")
    identity_max_component: int = Field(50, ge=2, description="Most identifiers one person may have: a link "
                                                               "beyond it is refused and recorded.")

    # Triggers, messages and their delivery (journey triggers, messages, deliver)
    attribution_window_hours: int = Field(24, ge=1, le=2160, description="An order placed within this many hours "
                                          "of a trigger (messaged or held out) is attributed to it (ClickHouse).")
    trigger_rules_file: Path | None = Field(None, description="TOML of trigger rules; unset: the shipped rules.toml.")
    messages_file: Path | None = Field(None, description="TOML of guards and messages; unset: messages.toml.")
    timers_live_lag_seconds: float = Field(3600.0, ge=0, description="Records this close to the wall clock are live: "
                                                                     "timers then also follow the wall clock.")
    delivery_adapter: Literal["console", "webhook", "smtp"] = "console"
    delivery_file: Path | None = Field(None, description="Console adapter: append JSON lines here instead of stdout.")
    delivery_retries: int = Field(5, ge=1, le=50, description="Attempts per message before it is dead-lettered.")
    delivery_backoff_seconds: float = Field(0.5, ge=0, description="First retry delay; doubles per attempt.")
    delivery_retry_budget_seconds: float = Field(
        120.0, gt=0, le=240, description="Time a delivery batch may take: no retry and no new message past it (a "
        "retry is dead-lettered, a message left for the next poll), so a batch stays under max.poll.interval.ms.")
    delivery_ledger: Literal["file", "topic"] = Field(
        "file", description="Where the delivered message ids are kept: a file in data_dir (shared by the workers "
        "of a machine, kept across journey run) or a compacted topic <prefix>-deliver-<adapter>-ledger (workers on "
        "several machines, Kubernetes).")
    delivery_retry_window_seconds: float = Field(
        21600.0, ge=0, description="How long a message that could not be delivered for now (receiver down, 5xx, 429, "
        "timeout) keeps being retried from the retry topic before it is dead-lettered.")
    delivery_retry_max_backoff_seconds: float = Field(300.0, gt=0, description="Longest wait between two attempts "
                                                      "of a parked message (the backoff doubles up to it).")
    delivery_max_age_seconds: float = Field(
        259200.0, ge=0, description="Webhook and SMTP do not send a message whose send_at is older than this by the "
        "wall clock (recorded stale); 0: no limit. The console adapter (journey run, replays) has none.")
    webhook_url: str | None = Field(None, pattern=r"^https?://", description="Where the webhook adapter POSTs "
                                    "(user:password@ in it is sent as HTTP Basic auth).")
    webhook_secret: SecretStr | None = Field(None, description="HMAC-SHA256 key of the X-Journey-Signature header.")
    webhook_timeout_seconds: float = Field(5.0, gt=0)
    smtp_host: str = "localhost"
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_sender: str = "journey@localhost"
    smtp_recipient: str = Field("{customer_id}@customers.invalid",
                                description="Address of a customer: {customer_id} is replaced (plug a lookup here).")
    # Scoring
    scoring_file: Path | None = Field(None, description="TOML file of scoring parameters; unset: the shipped defaults.")

    # Live dashboard (journey run, journey dashboard)
    dashboard: bool = Field(True, description="Serve the live dashboard during journey run.")
    dashboard_port: int = Field(0, ge=0, le=65535, description="Its port on 127.0.0.1; 0 picks a free one.")

    # Privacy (README: Privacy and data rights)
    privacy_key: SecretStr | None = Field(None, min_length=16, description="HMAC key of pseudonyms; unset: a random "
                                                                           "key kept in <data dir>/privacy.key.")
    privacy_key_required: bool = Field(False, description="Refuse to start without privacy_key (the image sets it: "
                                                          "every pod and container must hash with one shared key).")
    raw_retention_days: int | None = Field(None, ge=1, description="TTL of the clickstream, order and chat tables, "
                                                                   "late events and dead letters (the consent history "
                                                                   "is kept); unset: kept until erased.")
    privacy_wait_seconds: float = Field(30.0, ge=0, description="How long `journey privacy erase` waits for running "
                                                                "processors to apply the request, then again for the "
                                                                "sink to store what was in flight.")

    # Ingestion
    max_event_bytes: int = Field(64 * 1024, ge=256)
    max_future_skew_seconds: float = Field(300.0, ge=0)
    min_event_time: AwareDatetime = Field(MIN_EVENT_TIME, description="Events before this are dead-lettered as "
                                                                      "event_time_out_of_range.")

    # Waits (journey run and its workers): none has a fixed deadline; each follows progress
    stall_seconds: float = Field(
        300.0, gt=0, description="A wait (the broker starting, offsets committed, a topic read to its end) fails "
        "only after this long without progress; a slow machine makes a run slower, not failed.")
    stop_seconds: float = Field(
        60.0, gt=0, description="How long a stopping worker may flush and commit after SIGTERM before SIGKILL.")

    # Observability (journey sink, journey features, ...: one HTTP endpoint per worker process)
    metrics_port: int | None = Field(None, ge=0, le=65535,
                                     description="Serve /metrics, /healthz, /readyz here; unset: off; 0: a free port.")
    metrics_host: str = Field("127.0.0.1", description="Address to bind; 0.0.0.0 in containers.")
    liveness_timeout_seconds: float = Field(
        120.0, gt=0, description="/healthz fails when the worker loop has not turned for this long.")
    log_format: Literal["text", "json"] = Field("text", description="Worker logs: text lines or one JSON object each.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("clickhouse_dsn")
    @classmethod
    def _known_scheme(cls, dsn: str | None) -> str | None:
        if dsn is not None and not dsn.startswith(("chdb://", "http://", "https://", "clickhouse://")):
            raise ValueError("must start with chdb://, http://, https:// or clickhouse://")
        return dsn

    @field_validator("kafka_extra")
    @classmethod
    def _known_kafka_options(cls, extra: dict[str, str | int | float | bool]) -> dict[str, str | int | float | bool]:
        check_kafka_extra(extra)
        return extra

    @field_validator("fetch_wait_max_ms")
    @classmethod
    def _every_role_waits(cls, waits: dict[WorkerRole, int]) -> dict[WorkerRole, int]:
        for role, ms in waits.items():
            if not 0 <= ms <= 300_000:
                raise ValueError(f"{role}: {ms} ms is outside librdkafka's range 0..300000")
        return {**FETCH_WAIT_MAX_MS, **waits}

    @field_validator("kafka_ssl_ca_location", "kafka_ssl_certificate_location", "kafka_ssl_key_location",
                     "clickhouse_ca_cert", "segments_file", "trigger_rules_file", "messages_file", "scoring_file")
    @classmethod
    def _file_exists(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"no such file: {path}")
        return path

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url_parses(cls, url: str | None) -> str | None:
        """A URL every send would fail on is refused at start (the error shows it redacted)."""
        if url is None:
            return url
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ValueError(f"webhook_url {redact_url(url)} has a port that is not a number") from None
        if not parts.hostname:
            raise ValueError(f"webhook_url {redact_url(url)} names no host")
        return url

    @model_validator(mode="after")
    def _consistent_security(self) -> Settings:
        """Refuse combinations that would fail later, at the broker, with a vaguer message."""
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and not self.kafka_sasl_mechanism:
            raise ValueError(f"kafka_security_protocol {self.kafka_security_protocol} needs kafka_sasl_mechanism")
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(f"kafka_security_protocol {self.kafka_security_protocol} needs kafka_sasl_username "
                             "and kafka_sasl_password (JOURNEY_KAFKA_SASL_PASSWORD)")
        if not sasl and self.kafka_sasl_mechanism:
            raise ValueError(f"kafka_sasl_mechanism is set but kafka_security_protocol is "
                             f"{self.kafka_security_protocol}: use SASL_SSL or SASL_PLAINTEXT")
        if (self.kafka_ssl_certificate_location is None) != (self.kafka_ssl_key_location is None):
            raise ValueError("kafka_ssl_certificate_location and kafka_ssl_key_location go together (mutual TLS)")
        tls_files = self.kafka_ssl_ca_location or self.kafka_ssl_certificate_location
        if tls_files and not self.kafka_security_protocol.endswith("SSL"):
            raise ValueError(f"TLS files are set but kafka_security_protocol is {self.kafka_security_protocol}: "
                             "use SSL or SASL_SSL")
        if self.clickhouse_ca_cert and not (self.clickhouse_dsn or "").startswith("https://"):
            raise ValueError("clickhouse_ca_cert is set but clickhouse_dsn is not https://")
        if self.privacy_key_required and self.privacy_key is None:
            raise ValueError("privacy_key is required here (privacy_key_required): set JOURNEY_PRIVACY_KEY, the same "
                             "value on every worker, or pseudonyms and erasures would not match across them")
        return self

    def __repr_args__(self) -> Any:
        """Like pydantic's, with credentials inside the ClickHouse DSN and the webhook URL masked (SecretStr covers
        the rest)."""
        for name, value in super().__repr_args__():
            if name == "clickhouse_dsn" and value:
                value = redact_dsn(value)
            elif name == "webhook_url" and value:
                value = redact_url(value)
            yield name, value

    def describe(self) -> dict[str, Any]:
        """The effective settings for a log line: secrets as '**********', DSN credentials and the webhook URL
        masked."""
        out: dict[str, Any] = {}
        for name, value in self:
            if isinstance(value, SecretStr):
                value = "**********"
            elif name == "clickhouse_dsn" and value:
                value = redact_dsn(value)
            elif name == "webhook_url" and value:
                value = redact_url(value)  # a path or query can hold a token, the userinfo a password
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_settings_file())
        return (init_settings, env_settings, toml, file_secret_settings)

    @property
    def embedded_broker(self) -> bool:
        return not self.kafka_bootstrap

    @property
    def resolved_clickhouse_dsn(self) -> str:
        """The DSN in use: the configured one, or the embedded database in the data directory."""
        if self.clickhouse_dsn:
            return self.clickhouse_dsn
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def limits(self) -> Limits:
        return Limits(self.max_event_bytes, timedelta(seconds=self.max_future_skew_seconds), self.min_event_time)

    def link_rules(self) -> LinkRules:
        """The identity graph's linking rules (ValueError naming an unknown kind)."""
        return LinkRules(frozenset(self.identity_auto_link), frozenset(self.identity_never_link),
                         self.identity_max_component)

    @property
    def resolved_state_dir(self) -> Path:
        """Where the local state stores live: the configured directory, or ``<data_dir>/state``."""
        return self.state_dir if self.state_dir is not None else self.data_dir / "state"

    def stateful_options(self) -> dict[str, Any]:
        """The state store arguments of a stateful worker (streams/state_store/)."""
        return {"state_dir": self.resolved_state_dir, "state_cache_customers": self.state_cache_customers}

    def pseudonymizer(self) -> Pseudonymizer:
        """The keyed hash of this deployment (the configured key, or the data directory's)."""
        return Pseudonymizer(load_key(self.privacy_key, self.data_dir))

    def group_id(self, role: str) -> str:
        """The consumer group of a worker role, e.g. ``journey-sink``."""
        return f"{self.group_prefix}-{role}"

    def changelog(self, role: str) -> str:
        """The changelog topic of a stateful processor role, e.g. ``journey-features-changelog``."""
        from streams.topics import changelogs

        return changelogs(self.group_prefix)[role]

    @property
    def model_snapshots(self) -> str:
        """The trainer's snapshot topic, e.g. ``journey-model-snapshots``."""
        from streams.topics import model_snapshots

        return model_snapshots(self.group_prefix)

    def kafka_config(self, bootstrap: str | None = None) -> dict[str, str]:
        """librdkafka client settings shared by producers, consumers and admin clients."""
        servers = bootstrap or self.kafka_bootstrap
        if not servers:
            raise ValueError("no Kafka bootstrap address: start the embedded broker or set JOURNEY_KAFKA_BOOTSTRAP")
        config = {"bootstrap.servers": servers, "security.protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            config["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username:
            config["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password:
            config["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_ca_location:
            config["ssl.ca.location"] = str(self.kafka_ssl_ca_location)
        if self.kafka_ssl_certificate_location and self.kafka_ssl_key_location:
            config["ssl.certificate.location"] = str(self.kafka_ssl_certificate_location)
            config["ssl.key.location"] = str(self.kafka_ssl_key_location)
        if self.kafka_ssl_key_password:
            config["ssl.key.password"] = self.kafka_ssl_key_password.get_secret_value()
        if self.kafka_security_protocol.endswith("SSL") and not self.kafka_ssl_verify_hostname:
            config["ssl.endpoint.identification.algorithm"] = "none"
        config.update({key: str(value).lower() if isinstance(value, bool) else str(value)
                       for key, value in self.kafka_extra.items()})
        return config

    def consumer_tuning(self, role: WorkerRole) -> dict[str, int]:
        """The fetch settings of a worker role's group consumer (``fetch_wait_max_ms``, ``fetch_queue_backoff_ms``)."""
        return {"fetch.wait.max.ms": self.fetch_wait_max_ms[role],
                "fetch.queue.backoff.ms": self.fetch_queue_backoff_ms}

    def clickhouse_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`sinks.client.connect`: credentials and TLS."""
        options: dict[str, Any] = {"username": self.clickhouse_user,
                                   "password": self.clickhouse_password.get_secret_value()
                                   if self.clickhouse_password else None}
        if self.resolved_clickhouse_dsn.startswith("https://"):
            options["verify"] = self.clickhouse_verify
            if self.clickhouse_ca_cert:
                options["ca_cert"] = str(self.clickhouse_ca_cert)
        return options


def redact_dsn(dsn: str) -> str:
    """``dsn`` with any password in it replaced by ``***`` (``http://user:***@host:8123/db``)."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and settings file, with explicit overrides on top."""
    import tomllib

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except tomllib.TOMLDecodeError as exc:
        path = _settings_file()
        raise SettingsFileInvalid(f"{path.resolve() if path else 'the settings file'}: {toml_problem(exc)}") from None


def toml_problem(exc: Exception) -> str:
    """A TOML syntax error as ``line N, column M: what`` and the usual fix (strings need quotes)."""
    import re

    message = str(exc)
    where = re.search(r"\(at line (\d+), column (\d+)\)", message)
    what = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
    at = f"line {where.group(1)}, column {where.group(2)}: " if where else ""
    return (f"{at}{what} (not valid TOML; a text value needs quotes, e.g. data_dir = \".journey\"; "
            "see the README's Configuration section)")


def unknown_environment(environ: dict[str, str] | None = None) -> list[tuple[str, str | None]]:
    """Each ``JOURNEY_*`` variable that no setting reads, with the nearest known name (or None)."""
    import difflib

    environ = dict(os.environ if environ is None else environ)
    known = {f"JOURNEY_{name.upper()}" for name in Settings.model_fields} | OTHER_VARIABLES
    unknown = sorted(name for name in environ if name.upper().startswith("JOURNEY_") and name.upper() not in known)
    suffixes = {name.removeprefix("JOURNEY_"): name for name in known}  # the shared prefix would match anything

    def nearest(name: str) -> str | None:
        close = difflib.get_close_matches(name.upper().removeprefix("JOURNEY_"), sorted(suffixes), n=1, cutoff=0.6)
        return suffixes[close[0]] if close else None

    return [(name, nearest(name)) for name in unknown]
