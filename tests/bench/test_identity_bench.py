"""The identity stage's bench check reads the stage's own stop line and catches a lost, re-keyed or extra record."""

from __future__ import annotations

from collections import Counter

from streams.identity import IdentityStats
from tests.bench.identity import problems, stage_stats
from tests.bench.identity_report import ratio, rows
from tests.bench.report import Rate, Results
from tests.bench.workload import Workload


def _workload() -> Workload:
    records = [("clickstream", b"c", b"{}")] * 7 + [("orders", b"c", b"{}")] * 3
    return Workload(0, records, valid=Counter(clickstream=6, orders=3), invalid=Counter(clickstream=1))


def _log(stats: IdentityStats) -> str:
    return f"2026-12-07 12:00:00,000 INFO journey.identity stopped: {stats}\n"  # as streams/cli.py logs it


def test_a_clean_pass_has_no_problem_and_each_fault_is_named() -> None:
    w = _workload()
    clean = IdentityStats(consumed=10, consumed_by_topic=Counter(clickstream=7, orders=3), resolved=9, invalid=1)
    written = {("identified-clickstream", 0): 4, ("identified-clickstream", 1): 2, ("identified-orders", 0): 3,
               ("identity-merges", 0): 0}
    assert stage_stats(_log(clean)) == {"consumed": 10, "resolved": 9, "rekeyed": 0, "links": 0, "invalid": 1,
                                        "restored_components": 0, "erased_components": 0}
    assert problems(stage_stats(_log(clean)), written, w) == []

    lost = IdentityStats(consumed=10, resolved=8, rekeyed=1, invalid=1, records=Counter(merged=1))
    extra = {**written, ("identified-orders", 1): 1, ("identity-merges", 2): 1}
    assert problems(stage_stats(_log(lost)), extra, w) == [
        "resolved 8, expected 9", "rekeyed 1, expected 0", "identified-orders: 4 records, expected 3",
        "identity-merges: 1 records, expected none (known customers only)"]
    assert problems(stage_stats("no stop line"), written, w) == ["the identity stage logged no final stats"]


def test_the_ratio_is_the_identity_stage_over_the_features_stage() -> None:
    results = Results(started=None, events=10, quick=True)  # type: ignore[arg-type]
    assert ratio(results) is None and rows(results) == []
    results.rates["features"] = Rate("features", 1_000, 2.0)
    results.rates["identity"] = Rate("identity", 1_000, 0.5)
    assert ratio(results) == 4.0
    assert [row[5] for row in rows(results)] == ["4.00x", "1.0x"]
