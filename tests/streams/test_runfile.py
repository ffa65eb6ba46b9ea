"""One `journey run` per data directory: the run lock, and the live-run file of a running pipeline."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.runfile import RunInProgress, claim, live_run


def test_a_second_claim_is_refused_while_the_first_holds_and_granted_after(tmp_path: Path) -> None:
    refused = pytest.raises(RunInProgress, match=r"already running on .* \(pid \d+, broker 127.0.0.1:9\)")
    with claim(tmp_path), live_run(tmp_path, "127.0.0.1:9", 4), refused, claim(tmp_path):
        pass
    with claim(tmp_path):  # released when the block ended
        pass


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
