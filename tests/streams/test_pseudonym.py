"""The local privacy key: made once per data directory, whole, whoever asks first."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from pydantic import SecretStr

from streams.pseudonym import KEY_FILE, Pseudonymizer, load_key


def _key_of(data_dir: str) -> str:
    return load_key(None, Path(data_dir)).get_secret_value()


def test_workers_starting_together_all_read_the_same_whole_key(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for attempt in range(10):
        data_dir = tmp_path / f"run-{attempt}"
        with context.Pool(6) as pool:
            keys = pool.map(_key_of, [str(data_dir)] * 24)
        assert len(set(keys)) == 1 and len(keys[0]) >= 32
        Pseudonymizer(SecretStr(keys[0]))  # long enough to be used
        assert sorted(os.listdir(data_dir)) == [KEY_FILE], "no draft left behind"
        assert (data_dir / KEY_FILE).stat().st_mode & 0o777 == 0o600


def test_a_configured_key_wins_and_nothing_is_written(tmp_path: Path) -> None:
    configured = SecretStr("configured-key-0123456789")
    assert load_key(configured, tmp_path / "data") is configured
    assert not (tmp_path / "data").exists()
