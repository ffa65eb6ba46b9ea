"""The live-run file: while ``journey run`` works, ``<data_dir>/run.json`` says where its broker is.

Commands started meanwhile (``journey customer``) read it to reach the running pipeline;
it is removed when the run ends, and ignored if the process that wrote it is gone.

One run per data directory: :func:`claim` takes an exclusive lock on ``<data_dir>/run.lock``
before a run touches anything (the embedded database allows one process, and a second run's
schema step would lock out the first run's sink). The kernel frees the lock when the process
ends, however it ends, so a crashed run never blocks the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import orjson


def _path(data_dir: Path) -> Path:
    return data_dir / "run.json"


class RunInProgress(RuntimeError):
    """Another ``journey run`` works on this data directory."""


@contextlib.contextmanager
def claim(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's run lock for the block; :class:`RunInProgress` if another run holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "run.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            live = running(data_dir)
            who = f" (pid {live['pid']}, broker {live['bootstrap']})" if live else ""
            raise RunInProgress(f"a pipeline is already running on {data_dir}{who}: wait for it to end or stop it "
                                "(Ctrl-C in its terminal), or give this run another data directory "
                                "(JOURNEY_DATA_DIR)") from None
        live = running(data_dir)  # a run of an older version holds no lock, only the live-run file
        if live is not None:
            raise RunInProgress(f"a pipeline is already running on {data_dir} (pid {live['pid']}): wait for it to "
                                "end or stop it first")
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def live_run(data_dir: Path, bootstrap: str, partitions: int) -> Iterator[None]:
    path = _path(data_dir)
    path.write_bytes(orjson.dumps({"pid": os.getpid(), "bootstrap": bootstrap, "partitions": partitions}))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def in_progress(data_dir: Path) -> bool:
    """Whether a run works on this data directory: it holds the run lock (from before it touches anything)
    or, for a run of an older version, its live-run file names a live process."""
    try:
        with claim(data_dir):
            return False
    except RunInProgress:
        return True


def running(data_dir: Path) -> dict[str, object] | None:
    """The live run's details, or None when no pipeline is running on this data directory."""
    path = _path(data_dir)
    try:
        info = orjson.loads(path.read_bytes())
        os.kill(int(info["pid"]), 0)
    except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError, KeyError, orjson.JSONDecodeError):
        return None
    return dict(info)
