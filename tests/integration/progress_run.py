"""Run a command with a time limit that follows its progress: a busy machine makes it slower, not failed.

Progress is anything that changes while the command works: its output growing, files growing under
the directories it writes (a run's logs and database), or the CPU time of its process tree (an
in-process evaluation prints nothing until the end). The command fails when none of these changed
for ``stall`` seconds, or after ``ceiling`` seconds whatever happens (a loop that burns CPU forever).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class Finished:
    """A finished command: exit code, output and wall time."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    #: Processes of its group still alive after it exited (killed then): a command that leaves workers behind.
    leftovers: bool = False


def _tree_cpu_seconds(root: int) -> float:
    """CPU seconds of ``root`` and its descendants, from /proc (0 where there is no /proc)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").glob("[0-9]*") if Path("/proc/self/stat").exists() else []:
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / _TICKS
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(cpu.get(pid, 0.0) for pid in tree)


def _files_state(directories: list[Path]) -> tuple[int, int]:
    """How many files, and how many bytes, under ``directories``."""
    count = size = 0
    for directory in directories:
        for parent, _, names in os.walk(directory):
            for name in names:
                try:
                    size += os.stat(os.path.join(parent, name)).st_size
                    count += 1
                except OSError:
                    continue
    return count, size


class Watched:
    """A started command whose progress is watched; ``wait`` returns when it ends."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], out_dir: Path, watch: list[Path]) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_path, self.err_path = out_dir / "stdout.txt", out_dir / "stderr.txt"
        self.watch = watch
        self.started = time.monotonic()
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True)

    def _state(self) -> tuple[object, ...]:
        return (self.out_path.stat().st_size, self.err_path.stat().st_size, _files_state(self.watch))

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def kill(self) -> bool:
        """SIGKILL the command's whole process group (it runs in a session of its own); whether any was left."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
            killed = True
        except ProcessLookupError:
            killed = False
        self.process.wait()
        return killed

    def wait(self, stall: float, ceiling: float) -> Finished:
        """Wait for the end; kill and fail after ``stall`` seconds without progress or after ``ceiling``."""
        last_state, last_cpu = self._state(), _tree_cpu_seconds(self.process.pid)
        progressed = time.monotonic()
        ended = False
        try:
            while self.process.poll() is None:
                time.sleep(2)
                state, cpu = self._state(), _tree_cpu_seconds(self.process.pid)
                if state != last_state or cpu > last_cpu + 0.5:
                    last_state, last_cpu, progressed = state, cpu, time.monotonic()
                now = time.monotonic()
                if now - progressed > stall:
                    raise AssertionError(f"no progress for {stall:.0f}s (no output, no file written, no CPU used); "
                                         f"stderr ends:\n{self.stderr()[-3000:]}")
                if now - self.started > ceiling:
                    raise AssertionError(f"still running after {ceiling:.0f}s though progressing; stderr ends:\n"
                                         f"{self.stderr()[-3000:]}")
            ended = True
        finally:
            leftovers = self.kill() and ended
        return Finished(self.process.returncode, self.out_path.read_text(errors="replace"), self.stderr(),
                        time.monotonic() - self.started, leftovers)


def run_following_progress(argv: list[str], cwd: Path, env: dict[str, str], out_dir: Path, watch: list[Path],
                           stall: float = 300, ceiling: float = 3600) -> Finished:
    """Run ``argv`` to its end, watching ``watch`` directories for progress (see the module)."""
    return Watched(argv, cwd, env, out_dir, watch).wait(stall, ceiling)
