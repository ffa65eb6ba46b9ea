"""The features job hosted by faust (streams/faust_features.py) gives the pandas reference features.

The Taobao replay through faust instead of ``streams/stateful.py``: every customer's last
profile equals the reference. The second test kills the batched agent in the middle of the
replay and restarts it, so it must recover its table from the changelog and resume from the
committed offsets (faust's end of recovery is fixed by ``streams/faust_recovery.py``:
without it the restarted worker could lose records and stop committing).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.progress import GroupProgress
from streams.sources import open_source
from tests.conftest import Backend, produce, require_extra
from tests.integration.test_features_restart import latest_profiles
from tests.processors.features.compare import differences
from tests.processors.features.reference import taobao_features

pytestmark = pytest.mark.integration
require_extra("faust", "bench")  # the host runs in a subprocess: checked here, with the reason

def test_faust_batched_host_gives_the_batch_features(backend: Backend, datasets: Path, tmp_path: Path) -> None:
    run_faust_host(backend, datasets, tmp_path, kill=False)


def test_faust_batched_host_sigkilled_mid_replay_recovers_its_table_and_gives_the_batch_features(
        backend: Backend, datasets: Path, tmp_path: Path) -> None:
    run_faust_host(backend, datasets, tmp_path, kill=True)


def run_faust_host(backend: Backend, datasets: Path, tmp_path: Path, kill: bool) -> None:
    """Replay Taobao through the faust host (killed with SIGKILL at 40% and restarted when ``kill``)."""
    path = datasets / "taobao_userbehavior_sample.csv"
    records, _ = open_source(f"taobao:{path}")
    producer = produce(backend.kafka, [(r.topic, r.key, r.value) for r in records])
    total = sum(producer.end_offsets.values())
    env = {**os.environ, "JOURNEY_KAFKA_BOOTSTRAP": backend.kafka["bootstrap.servers"],
           "JOURNEY_GROUP_PREFIX": "fausthost", "JOURNEY_DATA_DIR": str(tmp_path),
           "JOURNEY_TOPIC_PARTITIONS": str(backend.partitions),
           # Exact recovery on the embedded broker needs one record per produce batch (see the module).
           "JOURNEY_FAUST_PRODUCER_MAX_BATCH_SIZE": "1"}
    progress = GroupProgress(backend.kafka, "fausthost-features-faust")
    logs = [tmp_path / "faust-1.log", tmp_path / "faust-2.log"]

    def start(log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen([sys.executable, "-m", "streams.faust_features", "batched", "worker", "-l",
                                     "info"], env=env, stdout=out, stderr=subprocess.STDOUT)

    def tail(log: Path) -> str:
        return log.read_text(errors="replace")[-3000:]

    worker = start(logs[0])
    try:
        deadline = time.monotonic() + 240
        while kill and progress.remaining(producer.end_offsets) > total * 0.6:
            assert worker.poll() is None, f"the faust worker died on its own:\n{tail(logs[0])}"
            assert time.monotonic() < deadline, f"no progress:\n{tail(logs[0])}"
            time.sleep(0.05)
        if kill:
            at_kill = progress.remaining(producer.end_offsets)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            assert 0 < at_kill < total, "killed in the middle of the replay"
            worker = start(logs[1])
        deadline = time.monotonic() + 180
        while progress.remaining(producer.end_offsets):
            assert worker.poll() is None, f"the faust worker died:\n{tail(logs[kill])}"
            assert time.monotonic() < deadline, f"the faust worker did not catch up:\n{tail(logs[kill])}"
            time.sleep(0.2)
        time.sleep(1.0)  # its producer flushes the last profiles before the commit; give stragglers a moment
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()
        progress.close()

    # Without its table recovered, the restarted worker would profile only the records after the last commit.
    mismatches = differences(latest_profiles(backend.kafka, backend.partitions), taobao_features(path))
    assert not mismatches, f"{len(mismatches)} differences after the restart, first: {mismatches[:5]}"
