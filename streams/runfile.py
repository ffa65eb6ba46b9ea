"""The live-run file: while ``journey run`` works, ``<data_dir>/run.json`` says where its broker is.

Commands started meanwhile (``journey customer``) read it to reach the running pipeline;
it is removed when the run ends, and ignored if the process that wrote it is gone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import orjson


def _path(data_dir: Path) -> Path:
    return data_dir / "run.json"


@contextlib.contextmanager
def live_run(data_dir: Path, bootstrap: str, partitions: int) -> Iterator[None]:
    path = _path(data_dir)
    path.write_bytes(orjson.dumps({"pid": os.getpid(), "bootstrap": bootstrap, "partitions": partitions}))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def running(data_dir: Path) -> dict[str, object] | None:
    """The live run's details, or None when no pipeline is running on this data directory."""
    path = _path(data_dir)
    try:
        info = orjson.loads(path.read_bytes())
        os.kill(int(info["pid"]), 0)
    except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError, KeyError, orjson.JSONDecodeError):
        return None
    return dict(info)
