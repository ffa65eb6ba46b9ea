"""`journey run` stops cleanly: Ctrl-C or a failed worker leaves no broker or worker process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc: children of children too)."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    frontier.append(child)
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie (a zombie has exited; only its parent's wait is missing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def interruptible() -> None:
    """preexec_fn: Ctrl-C as in a terminal (a background job, as in CI, starts with SIGINT ignored), and
    no signal blocked (native libraries loaded earlier in the test process may have blocked some)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def signal_state(pid: int) -> str:
    """The process's blocked, ignored and caught signal masks, for a failure message."""
    try:
        return " ".join(line.strip() for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                        if line.startswith(("SigBlk", "SigIgn", "SigCgt")))
    except OSError:
        return "gone"


def start_run(tmp_path: Path) -> subprocess.Popen[str]:
    """A run long enough to interrupt: its workers and broker come up before the feed ends."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")}
    return subprocess.Popen([sys.executable, "-m", "streams.cli", "run", "--customers", "1500", "--days", "60"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=interruptible)


def wait_for_workers(run: subprocess.Popen[str], roles: tuple[str, ...], timeout: float = 120) -> set[int]:
    """The run's processes once the broker and a worker of every role are up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert run.poll() is None, f"journey run ended early: {run.communicate()[1][-2000:]}"
        processes = descendants(run.pid)
        lines = " | ".join(command_line(p) for p in processes)
        if "tansu" in lines and all(f"streams.cli {role}" in lines for role in roles):
            return processes
        time.sleep(0.2)
    raise AssertionError(f"the broker and workers {roles} did not start within {timeout:.0f}s")


def assert_all_gone(processes: set[int], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in processes):
        time.sleep(0.2)
    left = {p: command_line(p) for p in processes if alive(p)}
    assert not left, f"left behind: {left}"


ROLES = ("sink", "features")


@pytest.mark.parametrize(("sent", "code", "said"), [(signal.SIGINT, 130, "interrupted"),
                                                    (signal.SIGTERM, 143, "terminated")])
def test_ctrl_c_or_sigterm_stops_every_worker_and_the_broker(tmp_path: Path, sent: signal.Signals, code: int,
                                                             said: str) -> None:
    run = start_run(tmp_path)
    try:
        processes = wait_for_workers(run, ROLES)
        state = signal_state(run.pid)
        run.send_signal(sent)
        _, stderr = run.communicate(timeout=90)
    finally:
        run.kill()
    assert run.returncode == code, f"{state}\n{stderr[-2000:]}"
    assert f"{said}: workers and broker stopped" in stderr
    assert "Rows in ClickHouse" not in stderr, "stopped before the end, not after it"
    assert_all_gone(processes)


def test_a_worker_that_dies_stops_the_run_with_its_name_and_nothing_is_left(tmp_path: Path) -> None:
    run = start_run(tmp_path)
    try:
        processes = wait_for_workers(run, ROLES)
        features = next(p for p in processes if "streams.cli features" in command_line(p))
        os.kill(features, signal.SIGKILL)
        _, stderr = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 1, stderr[-2000:]
    assert "pipeline failed:" in stderr and "features worker was killed by SIGKILL (code -9)" in stderr, stderr[-2000:]
    assert_all_gone(processes)
