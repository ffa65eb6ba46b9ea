"""The delivery ledger: which message ids an adapter has delivered, checked before every send.

Where it lives: one append-only file per adapter in the data directory,
``<data_dir>/delivery-ledger/<group>.ids`` (``<group>`` is the adapter's consumer group,
``<prefix>-deliver-<adapter>``), one line per message delivered: its id and the attempts it
took. Chosen because it is the one store that outlives everything the issue names on this project's deployment: a worker
restart, a rebalance (every worker of the adapter on the machine appends to and reads the same
file, and re-reads what others appended before each send), and a new ``journey run`` on the
same data directory, whose embedded broker keeps nothing between runs (so a ledger topic
would start empty) and whose chDB is owned by the sink's process (so the ``deliveries``
table cannot be asked from the delivery worker). Workers on several machines share it by
mounting the same data directory (a ReadWriteMany volume); see the README.

The guarantee: a message id in the ledger is never sent again by that adapter, for as long as
the file is kept (it grows by about 40 bytes per message). An id is appended (one ``write``
of a whole line, atomic under ``O_APPEND``) right after the receiver accepted the message and
fsynced before the worker commits its offsets; the window left is a crash between a
receiver's acceptance and that append (one message per worker, sent again) or a power loss
before the fsync (the batch since the last commit: its offsets are not committed either).
"""

from __future__ import annotations

import os
from pathlib import Path


class FileLedger:
    """Delivered message ids of one adapter, shared through an append-only file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self._ids: dict[str, int] = {}  # message id -> attempts it took
        self._read = 0
        self._dirty = False
        self.refresh()

    def __len__(self) -> int:
        return len(self._ids)

    def refresh(self) -> None:
        """Read what any worker appended since the last read (whole lines only)."""
        size = os.fstat(self._fd).st_size
        if size <= self._read:
            return
        data = os.pread(self._fd, size - self._read, self._read)
        end = data.rfind(b"\n") + 1
        for line in data[:end].split(b"\n"):
            if line:
                message_id, _, attempts = line.decode().partition(" ")
                self._ids[message_id] = int(attempts) if attempts.isdigit() else 1
        self._read += end

    def delivered(self, message_id: str) -> bool:
        """Whether any worker of this adapter has delivered ``message_id`` (re-reads the file when unsure)."""
        if message_id in self._ids:
            return True
        self.refresh()
        return message_id in self._ids

    def attempts(self, message_id: str) -> int:
        """The attempts the delivery of ``message_id`` took (1 when not known)."""
        return self._ids.get(message_id, 1)

    def record(self, message_id: str, attempts: int = 1) -> None:
        """Append ``message_id``: it was delivered, after ``attempts`` attempts."""
        os.write(self._fd, f"{message_id} {attempts}\n".encode())
        self._ids[message_id] = attempts
        self._dirty = True

    def sync(self) -> None:
        """Make the appended ids durable (before the offsets that cover them are committed)."""
        if self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def close(self) -> None:
        self.sync()
        os.close(self._fd)


def ledger_path(data_dir: Path, group: str) -> Path:
    """The ledger file of the delivery consumer group ``group`` under ``data_dir``."""
    return data_dir / "delivery-ledger" / f"{group}.ids"
