"""Starting and stopping worker processes (the sink, processor groups) from a supervisor."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

#: Lines of a dead worker's log shown with the error (the rest is in the log file).
LOG_TAIL_LINES = 20

#: Log lines of a process that has crashed even though it has not exited yet: a native assertion or
#: abort can leave it in a crash handler (chDB's) for minutes before the exit code (-6) arrives.
FATAL_MARKERS = (b"Assertion `", b"terminate called", b"Fatal Python error", b"Segmentation fault",
                 b"Received signal")


class WorkerFailed(RuntimeError):
    """A worker process exited while it should have been running; ``log_tail`` holds its last log lines."""

    def __init__(self, name: str, code: int, log_path: Path, crash: str | None = None) -> None:
        how = f"was killed by {_signal_name(-code)} (code {code})" if code < 0 else f"exited with code {code}"
        if crash is not None:
            how = (f"{crash} and was killed" if crash.startswith("did not") else f"crashed ({crash}) and was killed"
                   ) + f" (code {code})"
        self.name, self.code, self.log_path = name, code, log_path
        self.log_tail = log_tail(log_path)
        super().__init__(f"{name} worker {how}; last {len(self.log_tail)} lines of {log_path}:\n"
                         + "\n".join(self.log_tail))


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM the child when its parent dies, so nothing is left behind."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of a log file (undecodable bytes replaced), or a note when it cannot be read."""
    try:
        with path.open("rb") as log:
            return [line.decode("utf-8", "replace").rstrip("\r\n") for line in deque(log, maxlen=lines)]
    except OSError as exc:
        return [f"(log not readable: {exc})"]


def dumping_core(pid: int) -> bool:
    """Whether the process has crashed and the kernel is writing its core (it has not exited yet)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            return any(line.split() == [b"CoreDumping:", b"1"] for line in status)
    except OSError:
        return False


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    #: Where in the log this worker's own lines start (the file is appended to across runs).
    log_start: int = 0

    def check(self) -> None:
        """Raise :class:`WorkerFailed` (with the worker's last log lines) when the process has exited, or has
        crashed and not exited yet (writing a core, or held in a native crash handler): it is killed then."""
        code = self.process.poll()
        crash = None
        if code is None:
            crash = "dumping core" if dumping_core(self.process.pid) else self._fatal_line()
            if crash is not None:
                self.process.kill()
                code = self.process.wait()
        if code is not None:
            raise WorkerFailed(self.name, code, self.log_path, crash)

    def _fatal_line(self) -> str | None:
        """The first fatal line the worker logged (see ``FATAL_MARKERS``), or None; reads only new bytes."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self.log_start)
                new = log.read()
        except OSError:
            return None
        for line in new.splitlines():
            if any(marker in line for marker in FATAL_MARKERS):
                return line.decode("utf-8", "replace").strip()[:300]
        if b"\n" in new:  # complete lines are not read again
            self.log_start += new.rindex(b"\n") + 1
        return None

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (the worker flushes and commits), then SIGKILL if it does not exit within ``timeout``
        (the ``stop_seconds`` setting in ``journey run``)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def finish(self, timeout: float = 60.0) -> None:
        """Stop a worker whose work is done; :class:`WorkerFailed` unless it flushed and exited cleanly (its
        last state and outputs may be missing otherwise)."""
        running = self.process.poll() is None
        code = self.stop(timeout)
        if code != 0:
            late = running and code == -signal.SIGKILL
            raise WorkerFailed(self.name, code, self.log_path,
                               f"did not stop within stop_seconds={timeout:g}" if late else None)


def start_worker(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Worker:
    """Run ``journey <args>`` as a child that dies with its parent, logging to ``log_dir/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        start = log.tell()
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", *args],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}, preexec_fn=die_with_parent,
        )
    return Worker(name, process, log_path, start)
