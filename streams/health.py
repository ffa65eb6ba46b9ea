"""One HTTP endpoint per worker process: ``/metrics`` (Prometheus), ``/healthz`` and ``/readyz``.

- ``/healthz`` (liveness): 200 while the worker loop keeps turning; 503 when it has not
  polled for ``liveness_timeout_seconds`` (stuck: restart it).
- ``/readyz`` (readiness): 200 once the worker has joined its group and loaded what its
  partitions need (first assignment done); 503 before that, while stopping, and while a
  stateful worker restores its state from the changelog (the body says how far it got:
  ``restoring partitions 0,1: 120,000 of about 1,000,000 changelog records (12%) in 31s``).

A restore runs inside the consumer's assignment callback, so the loop does not turn while
it reads: ``/healthz`` counts a restore that read a batch within the liveness timeout as
alive (streams/restore_progress.py), and a restore that stops moving as stalled.

The server runs on a daemon thread and never touches the Kafka clients: every value it
serves is read from :class:`~streams.metrics.WorkerMetrics`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from http import HTTPStatus

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from plumbing.http_endpoint import BackgroundHTTPServer, QuietHandler
from streams.metrics import WorkerMetrics
from streams.settings import Settings

log = logging.getLogger(__name__)


class HealthServer(BackgroundHTTPServer):
    """Serves a worker's metrics and health on ``host:port`` (port 0: a free one)."""

    def __init__(self, metrics: WorkerMetrics, host: str = "127.0.0.1", port: int = 0,
                 liveness_timeout: float = 120.0) -> None:
        self.metrics = metrics
        self.liveness_timeout = liveness_timeout
        super().__init__(host, port, self._handler(), "health")

    def start(self) -> HealthServer:
        """Serves, and logs where (probes and scrapers are pointed there)."""
        super().start()
        log.info("metrics and health on %s (/metrics, /healthz, /readyz)", self.url)
        return self

    def _handler(self) -> type[QuietHandler]:
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                metrics = server.metrics
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._reply(HTTPStatus.OK, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    if metrics.alive(server.liveness_timeout):
                        self._reply(HTTPStatus.OK, b"ok\n")
                    else:
                        self._reply(HTTPStatus.SERVICE_UNAVAILABLE,
                                    f"worker loop stalled for over {server.liveness_timeout:.0f}s\n".encode())
                elif path == "/readyz":
                    if metrics.is_ready():
                        self._reply(HTTPStatus.OK, b"ready\n")
                    elif metrics.restoring and metrics.restore is not None:
                        self._reply(HTTPStatus.SERVICE_UNAVAILABLE, f"{metrics.restore.describe()}\n".encode())
                    else:
                        reason = b"joining the group\n" if not metrics.ready else b"stopping\n"
                        self._reply(HTTPStatus.SERVICE_UNAVAILABLE, reason)
                else:
                    self._reply(HTTPStatus.NOT_FOUND, b"not found: /metrics, /healthz, /readyz\n")

        return Handler


@contextlib.contextmanager
def serve_health(metrics: WorkerMetrics, port: int | None, host: str = "127.0.0.1",
                 liveness_timeout: float = 120.0) -> Iterator[HealthServer | None]:
    """The health server for the block when ``port`` is set (``None``: no endpoint); marks stopping on exit."""
    if port is None:
        try:
            yield None
        finally:
            metrics.stopping = True
        return
    with HealthServer(metrics, host, port, liveness_timeout) as server:
        try:
            yield server
        finally:
            metrics.stopping = True


def worker_health(settings: Settings, metrics: WorkerMetrics) -> contextlib.AbstractContextManager[HealthServer | None]:
    """:func:`serve_health` as the settings say (``metrics_port``, ``metrics_host``, ``liveness_timeout_seconds``)."""
    return serve_health(metrics, settings.metrics_port, settings.metrics_host, settings.liveness_timeout_seconds)
