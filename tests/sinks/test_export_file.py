"""A privacy export holds one person's data: its file is the owner's only (0600), whatever the umask."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sinks.privacy import write_export


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask, as a shell with ``umask 000`` would have."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_export_file_is_0600_and_a_new_directory_0700_under_any_umask(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "exports" / "subject.json"
    write_export(path, "c1", "subject", {"order_events": [{"amount": 5}]}, {})
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert json.loads(path.read_text())["clickhouse"] == {"order_events": [{"amount": 5}]}


def test_an_older_readable_export_becomes_0600_when_written_again(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "subject.json"
    path.write_text("an older export")
    path.chmod(0o644)
    write_export(path, "c1", "subject", {}, {"features": {"orders": 2}})
    assert mode(path) == 0o600
    assert json.loads(path.read_text())["processor_state"] == {"features": {"orders": 2}}
