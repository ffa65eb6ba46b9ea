"""Worker processes (`journey sink`, `journey features`, ...) for integration tests, watched through
their /metrics, /healthz and /readyz endpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from streams.broker import free_port

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of a /metrics page, keyed by name and sorted labels."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def status(url: str) -> int:
    """The HTTP status of a GET (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class WorkerProcess:
    """`journey ROLE` as a child process with its metrics endpoint on a free loopback port."""

    def __init__(self, role: str, env: dict[str, str], log_path: Path, name: str | None = None) -> None:
        self.role, self.name, self.log_path = role, name or role, log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with log_path.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "streams.cli", role], stdout=log, stderr=log,
                                            env={**os.environ, **env, "JOURNEY_METRICS_PORT": str(self.port)})

    def alive(self) -> bool:
        return self.process.poll() is None

    def metrics(self) -> Samples:
        return scrape(self.url)

    def ready(self) -> bool:
        return status(f"{self.url}/readyz") == 200

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM: the worker stores and commits its last batch; returns its exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def wait_for(check: Callable[[], bool], what: str, timeout: float, workers: list[WorkerProcess]) -> None:
    """Poll ``check`` until true; fail with ``what`` on timeout, or as soon as a watched worker dies."""
    deadline = time.monotonic() + timeout
    while not check():
        for worker in workers:
            assert worker.alive(), f"{worker.name} died while waiting for {what}:\n{worker.log_tail()}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f}s"
        time.sleep(0.25)


def caught_up(kafka: dict[str, str], group: str, topics: list[str], workers: list[WorkerProcess],
              timeout: float = 120.0) -> None:
    """Wait until ``group`` has committed every record now on ``topics``."""
    from streams.progress import GroupProgress, end_offsets_by_eof

    ends = end_offsets_by_eof(kafka, topics)
    progress = GroupProgress(kafka, group)
    try:
        wait_for(lambda: progress.remaining(ends) == 0, f"{group} catching up", timeout, workers)
    finally:
        progress.close()


def group_of(prefix: str, role: str) -> str:
    """The consumer group of ``journey <role>`` workers (delivery: per adapter, the console here)."""
    return f"{prefix}-deliver-console" if role == "deliver" else f"{prefix}-{role}"


def topics_of(role: str, prefix: str = "journey") -> list[str]:
    """The topics a ``journey <role>`` worker of ``prefix``'s groups reads (every processor also reads
    privacy-requests; delivery also its group's retry topic)."""
    from processors.messages.processor import INPUTS as MESSAGES_INPUTS
    from processors.triggers.processor import INPUTS as TRIGGERS_INPUTS
    from schemas.registry import CUSTOMER_FEATURES as PROFILE_TOPIC
    from schemas.registry import INPUT_TOPICS, MESSAGES, PRIVACY_REQUESTS
    from schemas.registry import ORDERS as ORDERS_TOPIC
    from sinks.ingest import SinkConfig
    from streams.delivery_retry import retry_topic

    topics = {"sink": list(SinkConfig(group_id="").topics),
              "deliver": [MESSAGES, retry_topic(group_of(prefix, "deliver"))],
              "features": [*INPUT_TOPICS, PRIVACY_REQUESTS], "scoring": [PROFILE_TOPIC, ORDERS_TOPIC, PRIVACY_REQUESTS],
              "triggers": [*TRIGGERS_INPUTS, PRIVACY_REQUESTS], "messages": [*MESSAGES_INPUTS, PRIVACY_REQUESTS]}
    if role not in topics:
        raise ValueError(role)
    return topics[role]


def topics_read(role: str) -> int:
    """How many topics a ``journey <role>`` worker reads: the partitions its group owns are this times theirs."""
    return len(topics_of(role))
