"""Starting and stopping worker processes (the sink, processor groups) from a supervisor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from streams.broker import die_with_parent


class WorkerFailed(RuntimeError):
    """A worker process exited while it should have been running."""


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def check(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise WorkerFailed(f"{self.name} worker exited with code {code}; see {self.log_path}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (the worker flushes and commits), then SIGKILL if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_worker(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Worker:
    """Run ``journey <args>`` as a child that dies with its parent, logging to ``log_dir/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", *args],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}, preexec_fn=die_with_parent,
        )
    return Worker(name, process, log_path)
