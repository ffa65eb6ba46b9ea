"""The identity pipeline as worker processes for integration tests: sink, identity stage and features, and
the wait until everything produced so far has gone through all three (following their committed offsets)."""

from __future__ import annotations

from pathlib import Path

from schemas.identity import IDENTIFIED_TOPICS, PROFILE_HANDOFFS
from schemas.registry import IDENTITY_MERGES, INPUT_TOPICS
from tests.conftest import Backend
from tests.integration.procs import WorkerProcess, caught_up, status, wait_for

ROLES = ("sink", "identity-stage", "features")
FEATURES_TOPICS = [*sorted(IDENTIFIED_TOPICS), IDENTITY_MERGES, PROFILE_HANDOFFS]


def identity_env(backend: Backend, tmp_path: Path, prefix: str) -> tuple[dict[str, str], str]:
    """The workers' environment (identity resolution on, as by default) and the ClickHouse DSN they write to."""
    dsn = f"chdb://{tmp_path / 'db'}" if backend.name == "embedded" else backend.dsn
    env = {"JOURNEY_KAFKA_BOOTSTRAP": backend.kafka["bootstrap.servers"], "JOURNEY_CLICKHOUSE_DSN": dsn,
           "JOURNEY_DATA_DIR": str(tmp_path), "JOURNEY_GROUP_PREFIX": prefix, "JOURNEY_SINK_BATCH_SECONDS": "0.2",
           "JOURNEY_PROCESSOR_FLUSH_SECONDS": "0.2"}
    return env, dsn


def start_workers(env: dict[str, str], tmp_path: Path) -> dict[str, WorkerProcess]:
    """One worker per role (logs in ``tmp_path``); the caller stops them (see :func:`wait_live`)."""
    return {role: WorkerProcess(role, env, tmp_path / f"{role}.log") for role in ROLES}


def wait_live(workers: dict[str, WorkerProcess], timeout: float = 120) -> None:
    """Wait until every worker answers /healthz."""
    wait_for(lambda: all(status(f"{w.url}/healthz") == 200 for w in workers.values()), "live workers", timeout,
             list(workers.values()))


def settle(kafka: dict[str, str], prefix: str, workers: dict[str, WorkerProcess], timeout: float = 300) -> None:
    """Wait until the identity stage, then the features worker, then the sink have committed all there is."""
    watched = list(workers.values())
    caught_up(kafka, f"{prefix}-identity", list(INPUT_TOPICS), watched, timeout)
    for _ in range(3):  # the features worker feeds two of its own inputs (handoffs, forwarded events)
        caught_up(kafka, f"{prefix}-features", FEATURES_TOPICS, watched, timeout)
    caught_up(kafka, f"{prefix}-sink", ["customer-features", IDENTITY_MERGES], watched, timeout)
