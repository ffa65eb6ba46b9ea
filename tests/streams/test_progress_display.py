"""The run's progress display (issue 19, item 5): each line says what it counts (a stage's outputs first, its
inputs read second) and fits 80 columns with counts in the millions."""

from __future__ import annotations

import io

from rich.console import Console

from streams.progress import progress_display, short_count


def render(width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=width, force_terminal=False, record=True)
    with progress_display(console) as bar:
        bar.add_task("fed", total=2_400_000, completed=2_400_000, rate="85.3k/s", in_label="sent")
        bar.add_task("stored", total=2_400_000, completed=1_485_123)
        bar.add_task("features", total=2_400_000, completed=2_400_000, out=9_876_543, out_label="profiles")
        bar.add_task("triggers", total=178_447, completed=178_447, out=13_203, out_label="fired")
        bar.add_task("messages", total=173_153, completed=173_153, out=9_721, out_label="messages")
        bar.add_task("trainer (labels)", total=None, completed=3_847, out=4, out_label="metrics")
    return console.export_text().splitlines()


def test_every_line_fits_80_columns_and_names_its_counts() -> None:
    lines = render(80)
    assert all(len(line) <= 80 for line in lines), lines
    assert not any("…" in line for line in lines)
    by_stage = {line.split()[0]: line for line in lines}
    assert "13,203 fired · 178.4k/178.4k in" in by_stage["triggers"]
    assert "9,721 messages · 173.2k/173.2k in" in by_stage["messages"]
    assert "9.88M profiles · 2.40M/2.40M in" in by_stage["features"]
    assert "1.49M/2.40M in" in by_stage["stored"]
    assert "2.40M/2.40M sent 85.3k/s" in by_stage["fed"]
    assert "4 metrics · 3,847 in" in by_stage["trainer"]


def test_short_counts() -> None:
    assert [short_count(n) for n in (0, 99_999, 100_000, 178_447, 999_949, 1_485_123, 12_345_678_901)] == [
        "0", "99,999", "100.0k", "178.4k", "999.9k", "1.49M", "12.35G"]
