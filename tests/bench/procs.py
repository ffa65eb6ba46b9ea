"""Process plumbing for the benchmark: spawning stage processes, their peak memory and CPU, clean shutdown."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from streams.workers import die_with_parent

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
_TICKS = os.sysconf("SC_CLK_TCK")

T = TypeVar("T")


class BenchError(RuntimeError):
    """A stage failed, timed out, or its output does not match its input."""


@dataclass
class ProcSample:
    """Peak resident memory (VmHWM) and CPU seconds (user + system) of a live process."""

    peak_rss_mb: float
    cpu_seconds: float


def sample(pid: int) -> ProcSample | None:
    """Read /proc for ``pid``; None once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    hwm = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15 of stat)
    return ProcSample(hwm / 1024, cpu)


def system_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores; steal time counts as busy: it is lost to us)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def self_peak_rss_mb() -> float:
    found = sample(os.getpid())
    return found.peak_rss_mb if found else 0.0


class Child:
    """A stage process in its own session (process group), logged to a file, always stopped."""

    def __init__(self, name: str, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.started = time.time()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT,
                                     env={**os.environ, **(env or {})}, start_new_session=True,
                                     preexec_fn=die_with_parent)
        self.last: ProcSample | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def sample(self) -> ProcSample | None:
        """Current peak memory and CPU; remembered so they survive the process."""
        found = sample(self.pid)
        if found is not None:
            self.last = found
        return self.last

    def check_alive(self) -> None:
        if not self.alive():
            raise BenchError(f"{self.name}: process exited with code {self.proc.returncode}\n{self.tail()}")

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"    | {line}" for line in text[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Signal the whole process group, wait, and kill it if it lingers."""
        if self.alive():
            self.sample()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"  [{self.name}] did not stop within {timeout:.0f}s: killed", flush=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # stragglers of the group, if any
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def wait(self, timeout: float) -> int:
        """Wait for a process expected to finish by itself."""
        deadline = time.monotonic() + timeout
        while self.alive():
            self.sample()
            if time.monotonic() > deadline:
                self.stop(signal.SIGKILL, 5)
                raise BenchError(f"{self.name}: did not finish within {timeout:.0f}s\n{self.tail()}")
            time.sleep(0.1)
        self._log.close()
        return int(self.proc.returncode)


def wait_until(stage: str, what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.05,
               on_tick: Callable[[], None] | None = None) -> T:
    """Poll ``check`` until it returns something other than None; raise :class:`BenchError` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise BenchError(f"{stage}: timed out after {timeout:.0f}s waiting for {what}")
        if on_tick is not None:
            on_tick()
        time.sleep(interval)
