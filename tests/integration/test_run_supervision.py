"""`journey run` supervises: a dead worker ends the run at once with its last log lines; one run per data dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from schemas.registry import TOPIC_OF_TYPE
from streams.sources.generator import generate
from tests.integration.test_run_teardown import assert_all_gone, command_line, interruptible, wait_for_workers

pytestmark = pytest.mark.integration


class Watched:
    """`journey ARGS` as a child whose stderr lines are read as they come, each with its arrival time."""

    def __init__(self, cwd: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")}
        self.process = subprocess.Popen([sys.executable, "-m", "streams.cli", *args], cwd=cwd, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                        preexec_fn=interruptible)
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append((time.monotonic(), line))

    def wait(self, timeout: float) -> int:
        try:
            code = self.process.wait(timeout)
        finally:
            self.process.kill()
        self._reader.join(10)
        return code

    @property
    def stderr(self) -> str:
        return "".join(line for _, line in self.lines)

    def first(self, text: str) -> float | None:
        """When a line containing ``text`` arrived."""
        return next((at for at, line in self.lines if text in line), None)


def test_a_killed_worker_ends_the_run_at_once_with_its_last_log_lines(tmp_path: Path) -> None:
    # A paced feed (5 days of events in about 90 s) keeps the run feeding while the worker dies: the
    # supervisor used to look at its workers only every 5,000 records, so it noticed at the end of the feed.
    run = Watched(tmp_path, "run", "--customers", "60", "--days", "5", "--speedup", "5000")
    try:
        processes = wait_for_workers(run.process, ("sink", "features", "scoring", "trainer", "triggers"))
        features = next(p for p in processes if "streams.cli features" in command_line(p))
        log = tmp_path / ".journey" / "logs" / "features.log"
        deadline = time.monotonic() + 120
        while b"restored" not in log.read_bytes():  # the worker is at work: its log has lines to show
            assert run.process.poll() is None and time.monotonic() < deadline, run.stderr[-3000:]
            time.sleep(0.2)
        os.kill(features, signal.SIGKILL)
        killed = time.monotonic()
        code = run.wait(180)
    finally:
        run.process.kill()
    said = run.first("features worker was killed by SIGKILL (code -9)")
    assert code == 1, run.stderr[-3000:]
    assert said is not None, run.stderr[-3000:]
    assert said - killed < 15, f"the death was reported {said - killed:.1f}s after the kill"
    tail = [line for line in log.read_text(errors="replace").splitlines()[-20:] if line.strip()]
    assert tail and all(line[:200] in run.stderr for line in tail), (tail, run.stderr[-3000:])
    assert "Rows in ClickHouse" not in run.stderr
    assert_all_gone(processes)


def test_a_second_run_on_the_same_data_dir_says_so_and_the_first_completes(tmp_path: Path) -> None:
    spec = {"customers": 200, "days": 10, "seed": 5}
    args = [f"--{k}={v}" for k, v in spec.items()]
    first = Watched(tmp_path, "run", *args)
    try:
        wait_for_workers(first.process, ("sink", "features"))  # the first run owns the database now
        started = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "streams.cli", "run", *args], cwd=tmp_path,
                                env={k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")},
                                capture_output=True, text=True, timeout=120)
        took = time.monotonic() - started
        assert second.returncode == 2, second.stderr[-3000:]
        assert "a pipeline is already running on .journey" in second.stderr, second.stderr
        assert "Cannot lock" not in second.stderr and "embedded broker at" not in second.stderr, second.stderr
        assert took < 60, f"the second run took {took:.0f}s to refuse"
        code = first.wait(600)
    finally:
        first.process.kill()
    assert code == 0, first.stderr[-3000:]
    expected = Counter(TOPIC_OF_TYPE[orjson.loads(r.value)["type"]] for r in generate(**spec))
    result = subprocess.run([sys.executable, "-m", "streams.cli", "query", "--format", "json",
                             "SELECT count() AS n FROM clickstream_events"], cwd=tmp_path,
                            env={k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout)["n"] == expected["clickstream"]
