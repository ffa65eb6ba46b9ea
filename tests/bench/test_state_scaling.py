"""The state scaling bench's BENCHMARKS.md section: written once, replaced in place by the next run."""

from __future__ import annotations

from pathlib import Path

from tests.bench.state_scaling import SECTION, section, upsert

RESULT = {"customers": 1000, "events": 1000, "events_per_s": 500.0, "events_per_cpu_s": 2500.0,
          "resident_mb": 150.0, "peak_mb": 160.0, "bytes_per_customer": 157286.4, "disk_mb": 1.0,
          "sigterm_ready_s": 9.5, "sigterm_replayed": 0, "sigterm_restore_s": 0.3, "sigkill_ready_s": 11.0,
          "sigkill_replayed": 42, "sigkill_restore_s": 0.5, "cache_customers": 50_000}


def test_the_section_goes_before_how_to_run_then_replaces_itself(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## Findings\n\nx\n\n## How to run\n\nmake bench\n")
    upsert(path, section([RESULT], 30.0))
    first = path.read_text()
    assert first.index("## Findings") < first.index(SECTION) < first.index("## How to run")
    assert "| 1,000 | 500 (2,500) | 150 (160) | 157,286 | 1 | 9.5 (0, 0.3) | 11.0 (42, 0.5) |" in first
    upsert(path, section([{**RESULT, "sigkill_replayed": 7}], 30.0))
    second = path.read_text()
    assert second.count(SECTION) == 1 and "(7, 0.5)" in second and "(42, 0.5)" not in second
    assert second.endswith("## How to run\n\nmake bench\n")
