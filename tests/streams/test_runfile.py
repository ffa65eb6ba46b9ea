"""One `journey run` per data directory: the run lock, and the live-run file of a running pipeline."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.runfile import RunInProgress, claim, in_progress, live_run


def test_a_second_claim_is_refused_while_the_first_holds_and_granted_after(tmp_path: Path) -> None:
    refused = pytest.raises(RunInProgress, match=r"already running on .* \(pid \d+, broker 127.0.0.1:9\)")
    with claim(tmp_path), live_run(tmp_path, "127.0.0.1:9", 4), refused, claim(tmp_path):
        pass
    with claim(tmp_path):  # released when the block ended
        pass


def test_a_run_is_in_progress_from_its_claim_on_before_its_live_run_file(tmp_path: Path) -> None:
    assert not in_progress(tmp_path)
    with claim(tmp_path):  # a run applying the schema, before its broker and live-run file exist
        assert in_progress(tmp_path)
    assert not in_progress(tmp_path)


def test_the_lock_is_freed_when_its_process_dies(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
                               "from streams.runfile import claim\n"
                               f"with claim(Path({str(tmp_path)!r})):\n    print('held', flush=True)\n"
                               "    time.sleep(600)"], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(RunInProgress), claim(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    started = time.monotonic()
    with claim(tmp_path):  # a killed run leaves no stale lock
        assert time.monotonic() - started < 5


def test_rebuild_rollups_refuses_while_a_run_holds_the_data_dir(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")}
    with claim(tmp_path):  # no live-run file yet: the run is still applying the schema
        result = subprocess.run([sys.executable, "-m", "streams.cli", "rebuild-rollups"], capture_output=True,
                                text=True, env={**env, "JOURNEY_DATA_DIR": str(tmp_path)}, timeout=300,
                                cwd=Path(__file__).parents[2])
    assert result.returncode == 2, result.stderr
    assert "a pipeline is running on this embedded database" in result.stderr
