"""Shared fixtures for the source tests: each replay, read once."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.sources import open_source
from tests.conftest import require_datasets
from tests.streams.sources.helpers import Replay


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared datasets (skipped where absent, never in CI): see tests/conftest.py."""
    return require_datasets()


@pytest.fixture(scope="session")
def taobao_replay(data_dir: Path) -> Replay:
    return open_source(f"taobao:{data_dir / 'taobao_userbehavior_sample.csv'}")


@pytest.fixture(scope="session")
def olist_replay(data_dir: Path) -> Replay:
    return open_source(f"olist:{data_dir / 'olist'}")


@pytest.fixture(scope="session")
def twcs_replay(data_dir: Path) -> Replay:
    return open_source(f"twcs:{data_dir / 'twcs_head5000.csv'}")
