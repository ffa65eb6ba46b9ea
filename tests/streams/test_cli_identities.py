"""`journey generate --identities` (and `journey run`'s, the same parsing): the generator's identity cases from the
command line, and a wrong spec refused before anything starts. The real `journey` command in a scratch directory."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson

from tests.streams.test_cli_errors import journey


def test_generate_writes_the_identity_cases_asked(tmp_path: Path) -> None:
    out = tmp_path / "traffic.jsonl"
    result = journey(tmp_path, "generate", "--customers", "20", "--days", "2", "--identities",
                     "anonymous=5,shared-devices=2,two-emails=3", "--output", str(out))
    assert result.returncode == 0, result.stderr
    values = [orjson.loads(line)["value"] for line in out.read_bytes().splitlines()]
    identifies = [v for v in values if v["type"] == "identify"]
    assert len(identifies) == 5 + 3 and sum("anonymous_id" in v for v in identifies) == 5
    devices = Counter(frozenset(c for c in {v.get("customer_id") for v in values if v.get("device_id") == d} if c)
                      for d in {v["device_id"] for v in values if "device_id" in v})
    assert sum(len(cs) == 2 for cs in devices) == 2


def test_a_wrong_identities_spec_is_refused_before_anything_starts(tmp_path: Path) -> None:
    for spec, message in (("anonymous=many", "NAME=COUNT"), ("shared-devices=11", "does not fit 20 customers")):
        result = journey(tmp_path, "run", "--customers", "20", "--identities", spec)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
    replay = journey(tmp_path, "run", "--replay", "jsonl:x.jsonl", "--identities", "anonymous=1")
    assert replay.returncode == 2 and "--identities is for the generator" in replay.stderr, replay.stderr
