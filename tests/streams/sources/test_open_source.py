"""open_source: KIND:PATH specs, clear errors for unknown kinds and missing paths."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from streams.sources import SOURCE_KINDS, ReadOptions, open_source


def test_kinds_are_documented() -> None:
    assert set(SOURCE_KINDS) == {"taobao", "olist", "twcs", "csv", "jsonl"}
    assert all(description for description in SOURCE_KINDS.values())


@pytest.mark.parametrize("spec", ["parquet:/x", "taobao", "/data/file.csv", "taobao:"])
def test_unknown_kinds_list_the_known_ones(spec: str) -> None:
    with pytest.raises(ValueError, match=r"known kind\. Kinds: taobao: .*olist: .*twcs: .*csv: .*jsonl: "):
        open_source(spec)


@pytest.mark.parametrize("kind", ["taobao", "twcs", "csv", "jsonl"])
def test_a_missing_file_is_named(tmp_path: Path, kind: str) -> None:
    missing = tmp_path / "absent.csv"
    with pytest.raises(FileNotFoundError, match=re.escape(f"no such file: {missing}")):
        open_source(f"{kind}:{missing}", mapping="customer_id=a,event_time=b,type=:page_view")


def test_olist_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(f"no such directory: {tmp_path / 'nope'}")):
        open_source(f"olist:{tmp_path / 'nope'}")
    with pytest.raises(FileNotFoundError, match=r"olist_customers_dataset\.csv is missing"):
        open_source(f"olist:{tmp_path}")


@pytest.mark.parametrize(("kind", "given", "named"), [
    ("taobao", {"mapping": "customer_id=a,event_time=b,type=:page_view"}, "--map"),
    ("twcs", {"tz": "Europe/London"}, "--tz"),
    ("taobao", {"options": ReadOptions(decimal=",")}, "--decimal"),
    ("twcs", {"options": ReadOptions(time_format="%d/%m/%Y")}, "--time-format"),
    ("jsonl", {"options": ReadOptions(encoding="latin-1")}, "--encoding"),
    ("jsonl", {"options": ReadOptions(delimiter=";")}, "--delimiter"),
])
def test_an_option_the_kind_does_not_read_is_an_error(tmp_path: Path, kind: str, given: dict[str, Any],
                                                       named: str) -> None:
    """An option that would be silently ignored (a latin-1 JSON-lines file, a --tz for Taobao) stops the replay."""
    path = tmp_path / "source.txt"
    path.write_text('{"a": "c1", "b": "2024-01-01T00:00:00Z"}\n')
    mapping = given.pop("mapping", "customer_id=a,event_time=b,type=:page_view" if kind == "jsonl" else None)
    with pytest.raises(ValueError, match=re.escape(named)):
        open_source(f"{kind}:{path}", mapping=mapping, **given)
