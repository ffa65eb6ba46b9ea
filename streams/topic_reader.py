"""Reading a topic's partitions from the beginning to their end, once (the helper lives in plumbing/restore.py)."""

from __future__ import annotations

from plumbing.restore import Record, read_to_end

__all__ = ["Record", "read_to_end"]
