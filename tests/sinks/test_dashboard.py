"""The live dashboard in headless Chromium: served by `journey run` while it works, and its numbers
equal ClickHouse's afterwards (`journey dashboard`): every card and table cell against the same
numbers computed from the raw tables. The final screenshot is kept in ``DASHBOARD_SCREENSHOT_DIR``
(default ``.journey/artifacts`` under the project root) and its path printed."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest

pytestmark = pytest.mark.integration
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,1100"]


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "headless Chromium not installed (Debian package chromium; `make test` installs it as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


class Values(HTMLParser):
    """The page's numbers: cards (data-total) and table cells (data-row > data-col) with their data-value."""

    def __init__(self) -> None:
        super().__init__()
        self.totals: dict[str, str] = {}
        self.cells: dict[tuple[str, str], str] = {}
        self.status = ""
        self.renders = 0
        self._row = ""
        self._in_status = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.renders = int(a.get("data-renders") or 0)
        if "data-total" in a:
            self.totals[str(a["data-total"])] = str(a.get("data-value"))
        if "data-row" in a:
            self._row = str(a["data-row"])
        if "data-col" in a:
            self.cells[(self._row, str(a["data-col"]))] = str(a.get("data-value"))
        self._in_status = a.get("id") == "status"

    def handle_data(self, data: str) -> None:
        if self._in_status:
            self.status += data


def page(chromium: str, url: str, profile: Path, screenshot: Path, budget_ms: int = 6000) -> Values:
    common = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}"]
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    shot = subprocess.run([*common, f"--screenshot={screenshot}", url], capture_output=True, timeout=120)
    assert shot.returncode == 0 and screenshot.read_bytes()[:4] == b"\x89PNG"
    values = Values()
    values.feed(dom.stdout)
    return values


def env_without_journey(**extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")} | extra


def started_url(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stderr is not None
    seen = ""
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        seen += line
        found = re.search(r"dashboard\S*\s+(http://127\.0\.0\.1:\d+/)", line)
        if found:
            return found.group(1)
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"no dashboard URL printed:\n{seen[-3000:]}")


def query_rows(cwd: Path, sql: str) -> list[dict[str, Any]]:
    result = subprocess.run([sys.executable, "-m", "streams.cli", "query", "--format", "json", sql], cwd=cwd,
                            env=env_without_journey(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines() if line.strip()]


def query(cwd: Path, sql: str) -> dict[str, Any]:
    return query_rows(cwd, sql)[0]


def shown(cell: str) -> float | None:
    """A cell's data-value as a number (JavaScript writes a missing value as null)."""
    return None if cell in ("null", "undefined") else float(cell)


#: Each table the page shows, computed again from the raw tables (not the rollups the page reads):
#: (row key, column) -> value.
RAW_TABLES = {
    "funnel": """
        SELECT multiIf(type = 'page_view', 'view', type = 'add_to_cart', 'cart', type = 'checkout_started',
                       'checkout', type) AS row, 'customers' AS col, toFloat64(uniqExact(customer_id)) AS value
        FROM clickstream_events WHERE type IN ('page_view', 'product_view', 'add_to_cart', 'checkout_started')
        GROUP BY row
        UNION ALL SELECT 'order', 'customers', toFloat64(uniqExact(customer_id)) FROM order_events
        WHERE type = 'order_placed'""",
    "topics": """
        SELECT 'clickstream' AS row, 'events' AS col, toFloat64(count()) AS value FROM clickstream_events
        UNION ALL SELECT 'orders', 'events', toFloat64(count()) FROM order_events
        UNION ALL SELECT 'chat', 'events', toFloat64(count()) FROM chat_messages
        UNION ALL SELECT 'consent', 'events', toFloat64(count()) FROM consent_events""",
    "revenue": """
        SELECT currency AS row, col, value FROM (
            SELECT currency, toFloat64(count()) AS orders, toFloat64(sum(ifNull(amount, 0))) AS revenue
            FROM order_events WHERE type = 'order_placed' GROUP BY currency)
        ARRAY JOIN ['orders', 'revenue'] AS col, [orders, revenue] AS value""",
    "daily": """
        SELECT toString(day) AS row, col, value FROM (
            SELECT day, toFloat64(visitors) AS v, toFloat64(buyers) AS b, toFloat64(orders) AS o FROM
            (SELECT toDate(event_time) AS day, uniqExact(customer_id) AS visitors FROM clickstream_events
             GROUP BY day) AS c
            LEFT JOIN (SELECT toDate(event_time) AS day, uniqExact(customer_id) AS buyers, count() AS orders
                       FROM order_events WHERE type = 'order_placed' GROUP BY day) AS o USING day
            ORDER BY day DESC LIMIT 14)
        ARRAY JOIN ['visitors', 'buyers', 'orders'] AS col, [v, b, o] AS value""",
}


def assert_tables_equal_the_raw_tables(cwd: Path, values: Values) -> None:
    for name, sql in RAW_TABLES.items():
        want = {(str(r["row"]), r["col"]): r["value"] for r in query_rows(cwd, sql) if r["value"]}
        assert want, f"{name}: the run stored nothing to show"
        for (row, col), value in want.items():
            assert (row, col) in values.cells, f"{name}: no cell for {row}/{col}"
            assert shown(values.cells[(row, col)]) == pytest.approx(value), f"{name}: {row}/{col}"


def test_dashboard_live_during_the_run_then_exact(tmp_path: Path, chromium: str) -> None:
    # A slow replay (event time sped up) so the page can be opened while events flow.
    run = subprocess.Popen([sys.executable, "-m", "streams.cli", "run", "--customers", "150", "--days", "30",
                            "--speedup", "200000"], cwd=tmp_path, env=env_without_journey(COLUMNS="200"),
                           stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        url = started_url(run, time.monotonic() + 120)
        live = page(chromium, url, tmp_path / "chromium-live", tmp_path / "dashboard-live.png")
        while int(live.totals.get("events") or 0) == 0 and run.poll() is None:  # nothing stored yet
            assert live.totals or "waiting for data" in live.status, live.status  # the sink is starting
            live = page(chromium, url, tmp_path / "chromium-live", tmp_path / "dashboard-live.png")
        assert run.poll() is None, "the run ended before the dashboard could be seen live"
        assert "through the running sink" in live.status, live.status
        assert int(live.totals["events"]) > 0
        # The report reads the same database while the sink owns it, through the sink.
        report = subprocess.run([sys.executable, "-m", "streams.cli", "report", "--json"], cwd=tmp_path,
                                env=env_without_journey(), capture_output=True, text=True, timeout=120)
        assert report.returncode == 0, report.stderr[-2000:]
        assert orjson.loads(report.stdout)["totals"][0]["events"] > 0
    finally:
        assert run.wait(300) == 0
    assert not (tmp_path / ".journey" / "clickhouse-owner.json").exists()

    expected = query(tmp_path, """
        SELECT (SELECT count() FROM clickstream_events) + (SELECT count() FROM order_events)
             + (SELECT count() FROM chat_messages) + (SELECT count() FROM consent_events) AS events,
               (SELECT uniqExact(customer_id) FROM clickstream_events) AS visitors,
               (SELECT uniqExactIf(customer_id, type = 'order_placed') FROM order_events) AS buyers,
               (SELECT countIf(type = 'order_placed') FROM order_events) AS orders,
               (SELECT count() FROM customer_profiles FINAL) AS profiles,
               (SELECT uniqExactIf(customer_id, type = 'add_to_cart') FROM clickstream_events) AS carters""")
    # Started as a shell's `journey dashboard &` starts it: SIGINT ignored. Ctrl-C (SIGINT) must still stop it.
    board = subprocess.Popen([sys.executable, "-m", "streams.cli", "dashboard", "--port", "0"], cwd=tmp_path,
                             env=env_without_journey(), stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        url = started_url(board, time.monotonic() + 60)
        after = page(chromium, url, tmp_path / "chromium-after", tmp_path / "dashboard.png", budget_ms=9000)
        board.send_signal(signal.SIGINT)
        assert board.wait(120) == 0, "the dashboard did not stop on SIGINT"
    finally:
        if board.poll() is None:
            board.kill()
            board.wait(30)
    kept = Path(os.environ.get("DASHBOARD_SCREENSHOT_DIR", Path(__file__).parents[2] / ".journey" / "artifacts"))
    kept.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp_path / "dashboard.png", kept / "dashboard.png")
    print(f"dashboard screenshot: {kept / 'dashboard.png'}")
    assert "the embedded database" in after.status
    assert after.renders >= 3, f"the page fetched its summary {after.renders} times in 9 s (every 2 s expected)"
    for key in ("events", "visitors", "buyers", "orders", "profiles"):
        assert int(after.totals[key]) == expected[key], key
    assert shown(after.totals["conversion"]) == pytest.approx(expected["buyers"] / expected["visitors"])
    assert after.totals["dead_letters"] in ("0", "null")
    assert_tables_equal_the_raw_tables(tmp_path, after)

    # Triggers per type with conversion and uplift, model metrics and score bands: filled by the
    # run's trigger, message, scoring and trainer workers, shown as ClickHouse has them.
    conversions = query_rows(tmp_path, "SELECT * FROM trigger_conversion")
    metrics = query_rows(tmp_path, "SELECT model, labels, positives, roc_auc, log_loss FROM model_metrics FINAL "
                                   "ORDER BY model, labels DESC LIMIT 1 BY model")
    bands = query_rows(tmp_path, "SELECT model, band, customers FROM score_bands")
    assert conversions and metrics and bands, "the run filled no triggers, model metrics or scores"
    for row in conversions:
        for column in ("triggered", "messaged", "held_out", "suppressed"):
            assert int(after.cells[(row["trigger"], column)]) == row[column], (row["trigger"], column)
        for column in ("treated_conversion", "held_out_conversion", "uplift"):
            assert shown(after.cells[(row["trigger"], column)]) == pytest.approx(row[column]), (row["trigger"], column)
    for row in metrics:
        assert int(after.cells[(row["model"], "labels")]) == row["labels"]
        assert int(after.cells[(row["model"], "positives")]) == row["positives"]
        for column in ("roc_auc", "log_loss"):
            assert shown(after.cells[(row["model"], column)]) == pytest.approx(row[column]), (row["model"], column)
    for row in bands:
        assert int(after.cells[(f"{row['model']}:{row['band']}", "customers")]) == row["customers"]
