"""The supervisor's view of a worker: an exit, or a crash that has not exited yet, with the last log lines."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.workers import LOG_TAIL_LINES, Worker, WorkerFailed


def spawn(tmp_path: Path, code: str, name: str = "sink") -> Worker:
    """A real child process running ``code`` with its output in ``<tmp>/<name>.log``, as start_worker does."""
    log_path = tmp_path / f"{name}.log"
    log_path.write_bytes(b"an older run's line\n")  # the log is appended to across runs
    with log_path.open("ab") as log:
        start = log.tell()
        process = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT)
    return Worker(name, process, log_path, start)


def wait_for_failure(worker: Worker, timeout: float = 60) -> WorkerFailed:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            worker.check()
        except WorkerFailed as failed:
            return failed
        time.sleep(0.05)
    raise AssertionError("the worker's failure was not seen")


def test_an_exit_is_reported_with_the_last_twenty_lines(tmp_path: Path) -> None:
    worker = spawn(tmp_path, "import sys\nfor i in range(50): print(f'line {i}', flush=True)\nsys.exit(3)")
    failed = wait_for_failure(worker)
    assert failed.code == 3
    assert failed.log_tail == [f"line {i}" for i in range(50 - LOG_TAIL_LINES, 50)]
    assert str(failed).startswith("sink worker exited with code 3; last 20 lines of ")
    assert str(failed).endswith("\n".join(failed.log_tail))


def test_a_crash_held_in_a_native_handler_is_reported_at_once_and_killed(tmp_path: Path) -> None:
    # What a sink did: a native assertion, then minutes in chDB's crash handler before exiting with -6.
    crash = "python3: confluent_kafka.c:3568: CallState_get: Assertion `cs != NULL' failed."
    worker = spawn(tmp_path, f"import time\nprint({crash!r}, flush=True)\ntime.sleep(600)")
    started = time.monotonic()
    failed = wait_for_failure(worker)
    assert time.monotonic() - started < 30
    assert worker.process.poll() is not None, "the crashed worker is killed"
    assert f"sink worker crashed ({crash}) and was killed (code -9)" in str(failed)
    assert failed.log_tail[-1] == crash


def test_fatal_lines_of_an_older_run_do_not_count(tmp_path: Path) -> None:
    log_path = tmp_path / "sink.log"
    log_path.write_bytes(b"Fatal Python error: from yesterday\n")
    with log_path.open("ab") as log:
        start = log.tell()
        process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], stdout=log)
    worker = Worker("sink", process, log_path, start)
    try:
        worker.check()  # alive, nothing fatal since it started
    finally:
        process.kill()
        process.wait()
    with pytest.raises(WorkerFailed, match="killed by SIGKILL"):
        worker.check()


def test_a_worker_that_does_not_stop_cleanly_fails_the_run(tmp_path: Path) -> None:
    clean = spawn(tmp_path, "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
                            "print('ready', flush=True)\ntime.sleep(600)", name="features")
    wait_for_line(clean.log_path, "ready")
    clean.finish(30)  # exits 0 on SIGTERM: done
    stuck = spawn(tmp_path, "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                            "print('ready', flush=True)\ntime.sleep(600)", name="scoring")
    wait_for_line(stuck.log_path, "ready")
    with pytest.raises(WorkerFailed, match=r"scoring worker did not stop within stop_seconds=0\.5 and was killed"):
        stuck.finish(0.5)


def wait_for_line(path: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
