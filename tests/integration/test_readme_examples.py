"""Every shell example of README.md runs to completion from a fresh clone, and produces what it claims.

The examples are read from the README's ```bash blocks (tests/integration/readme_examples.py), so a new
one is picked up by itself, and a command this file cannot check fails
``test_every_readme_command_is_run_here_or_has_a_reason``. Each runs as a user runs it: from a fresh
directory laid out like a clone (the shared datasets at ``../shared``), whose default data dir
``.journey`` is therefore fresh too; read-only commands (`query`, `models`, `report`, `dashboard`) run in
the directory of the run above them. Time limits follow progress (tests/integration/progress_run.py).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pandas as pd
import pytest

from schemas.registry import ALL_TOPICS
from tests.conftest import ROOT, require_datasets
from tests.integration.progress_run import Finished, Watched, run_following_progress
from tests.integration.readme_examples import Block, Command, Scenario, bash_blocks, replace_makefile_runs, scenarios
from tests.integration.test_cli_run import rows, user_env
from tests.test_readme import commands, table_rows

pytestmark = pytest.mark.integration

README = ROOT / "README.md"
BLOCKS = replace_makefile_runs(bash_blocks(README.read_text()), (ROOT / "Makefile").read_text())

#: `make` targets of the README that are not `journey` commands, and why this file does not run them.
MAKE_NOT_RUN = {
    "test": "the test suite this file belongs to",
    "bench": "the benchmarks (tests/bench), minutes of load by design; `python -m tests.bench.run --help`",
    "soak": "20 `journey run`s under CPU load (tests/soak), the soak itself",
    "up": "needs Docker (the compose file is validated by tests/deploy)",
    "down": "needs Docker (the compose file is validated by tests/deploy)",
}
#: Variables that point a block at a Kafka cluster and a ClickHouse server, which this machine has not.
SERVERS = ("JOURNEY_KAFKA_BOOTSTRAP", "JOURNEY_CLICKHOUSE_DSN")


def not_run_here(block: Block, command: Command) -> str | None:
    """Why a README command is not run by this file (None: it is run)."""
    if any(name in block.exports for name in SERVERS):
        return ("needs a Kafka cluster and a ClickHouse server (the block exports "
                f"{', '.join(n for n in SERVERS if n in block.exports)}); the integration tests run these workers "
                "against Apache Kafka and ClickHouse containers where Docker is reachable")
    if command.words[0] == "make" and len(command.words) > 1:
        return MAKE_NOT_RUN.get(command.words[1])
    return None


RUNNABLE = [c for b in BLOCKS for c in b.commands if c.is_journey and not_run_here(b, c) is None]
SCENARIOS = scenarios(RUNNABLE)
#: Where the README expects the shared datasets, from a clone's root.
SHARED_PREFIX = "../shared/"
#: A stalled command fails after this long without progress (as `stall_seconds` does for a run).
STALL = 300.0
#: No single command may take longer than this, progressing or not.
CEILING = 3600.0


@dataclass
class Clone:
    """A fresh directory laid out like a clone: ``cwd`` with the shared datasets at ``../shared``."""

    cwd: Path
    outputs: Path

    @property
    def data_dir(self) -> Path:
        return self.cwd / ".journey"

    def env(self) -> dict[str, str]:
        """A user's environment (no JOURNEY_* variable) that imports this checkout."""
        env = user_env()
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
        return env


def argv(command: Command) -> list[str]:
    return [sys.executable, "-m", "streams.cli", *command.args]


def start(clone: Clone, command: Command, name: str) -> Watched:
    return Watched(argv(command), clone.cwd, {**clone.env(), **command.env}, clone.outputs / name, [clone.data_dir])


def execute(clone: Clone, command: Command, name: str) -> Finished:
    finished = run_following_progress(argv(command), clone.cwd, {**clone.env(), **command.env}, clone.outputs / name,
                                      [clone.data_dir, clone.cwd], STALL, CEILING)
    print(f"README line {command.line}: {command.text}: exit {finished.returncode} in {finished.seconds:.1f}s")
    assert finished.returncode == 0, f"{command.text} exited {finished.returncode}:\n{finished.stderr[-4000:]}"
    return finished


def option(command: Command, name: str) -> str | None:
    """The value of ``--name`` in the command (None when absent)."""
    args = command.args
    return args[args.index(name) + 1] if name in args else None


# --- what each command claims, checked against the directory it ran in ---------------------------------------

INPUT_TABLES = ("clickstream_events", "order_events", "chat_messages", "consent_events")


def fed_by_source(command: Command, cwd: Path) -> int:
    """How many records the command's source yields, counted here without the pipeline."""
    from streams.sources import ReadOptions, open_source
    from streams.sources.generator import generate

    replay = option(command, "--replay")
    if replay is None:
        defaults = {p.name: p.default for p in commands()["run"].params}  # the CLI's own defaults
        customers, days, seed = (int(option(command, f"--{n}") or defaults[n]) for n in ("customers", "days", "seed"))
        return sum(1 for _ in generate(customers=customers, days=days, seed=seed))
    kind, _, path = replay.partition(":")
    options = ReadOptions(option(command, "--delimiter"), option(command, "--decimal") or ".",
                          option(command, "--encoding"), option(command, "--time-format"))
    records, _ = open_source(f"{kind}:{cwd / path}", mapping=option(command, "--map"),
                             tz=option(command, "--tz") or "UTC", options=options)
    return len(records)


def check_run(clone: Clone, command: Command, finished: Finished) -> None:
    if "--check" in command.args:
        said = re.search(r"([\d,]+) records will be accepted, ([\d,]+) will be dead letters", finished.stderr)
        assert said, finished.stderr[-3000:]
        accepted, dead = (int(n.replace(",", "")) for n in said.groups())
        assert accepted > 0 and accepted + dead == fed_by_source(command, clone.cwd), finished.stderr[-3000:]
        assert re.search(r"column '.+': times read as ", finished.stderr) or option(command, "--map") is None
        started = {p.name for p in clone.data_dir.iterdir()} if clone.data_dir.exists() else set()
        assert started <= {"logs", "privacy.key"}, f"a dry run started something: {sorted(started)}"
        return
    assert not finished.leftovers, f"{command.text} left processes behind"
    assert "Rows in ClickHouse" in finished.stderr, finished.stderr[-3000:]
    fed = int(re.search(r"([\d,]+) events fed in", finished.stderr)[1].replace(",", ""))  # type: ignore[index]
    assert fed == fed_by_source(command, clone.cwd), "the run fed every record of its source"
    stored = rows(clone.cwd, " UNION ALL ".join(f"SELECT '{t}' AS t, count() AS n FROM {t}" for t in INPUT_TABLES))
    letters = rows(clone.cwd, "SELECT count() AS n FROM dead_letters WHERE source_topic IN "
                              "('clickstream', 'orders', 'chat', 'consent')")[0]["n"]
    total = sum(int(r["n"]) for r in stored)  # type: ignore[call-overload]
    assert total > 0, f"nothing stored: {stored}"
    assert total + int(letters) == fed, f"stored {stored} + {letters} dead letters != {fed} fed"  # type: ignore[call-overload]


def check_query(clone: Clone, command: Command, finished: Finished) -> None:
    sql = command.args[-1]
    expected = rows(clone.cwd, sql)
    fmt = option(command, "--format") or "table"
    if fmt == "json":
        printed = [orjson.loads(line) for line in finished.stdout.splitlines()]
        limit = re.search(r"\bLIMIT (\d+)\s*$", sql, re.I)
        if limit and len(expected) == int(limit[1]):  # LIMIT without ORDER BY: any of the rows may come
            assert len(printed) == len(expected) and all(set(p) == set(expected[0]) for p in printed), printed
        else:
            assert sorted(map(orjson.dumps, printed)) == sorted(map(orjson.dumps, expected))
        return
    assert fmt == "table", f"no check for --format {fmt}"
    assert expected, f"{sql} returned no row after the run"
    for row in expected:
        first = str(next(iter(row.values())))
        assert first in finished.stdout, f"{first!r} is not in the table:\n{finished.stdout}"


def check_models(clone: Clone, command: Command, finished: Finished) -> None:
    """Each model's latest (most labels) ROC AUC and log loss, as ClickHouse holds them."""
    metrics = rows(clone.cwd, "SELECT model, argMax(roc_auc, labels) AS auc, argMax(log_loss, labels) AS loss "
                              "FROM model_metrics GROUP BY model")
    assert metrics, "the run published no model metrics"
    for metric in metrics:
        shown = ["-" if metric[k] is None else f"{metric[k]:.4f}" for k in ("auc", "loss")]
        assert all(value in finished.stdout for value in [str(metric["model"]), *shown]), (
            f"{metric} is not shown whole:\n{finished.stdout}")


def check_report(clone: Clone, command: Command, finished: Finished) -> None:
    match = re.search(r"charts: (\d+) PNG files and (\S+report\.html)", finished.stderr)
    assert match, finished.stderr[-3000:]
    report = clone.data_dir / "report"
    assert len(list(report.glob("*.png"))) == int(match[1]) > 0
    assert (report / "report.html").stat().st_size > 0


def check_evaluate(clone: Clone, command: Command, finished: Finished) -> None:
    assert "Prequential ROC AUC" in finished.stdout, finished.stdout
    for model in ("churn", "purchase_propensity"):
        line = next((ln for ln in finished.stdout.splitlines() if re.match(rf"\W*{model}\W", ln)), "")
        assert re.search(r"\b0\.\d{4}\b", line), f"no ROC AUC for {model}:\n{finished.stdout}"


def check_recommend_eval(clone: Clone, command: Command, finished: Finished) -> None:
    """The hit rates printed are the README's table of them."""
    text = README.read_text()
    start_at = text.index("**Recommendations, measured**")
    claimed = table_rows(text[start_at:text.index("\n\n", text.index("| setting", start_at))])
    printed = table_rows(finished.stdout)
    def key(row: list[str]) -> tuple[str, str, str]:  # (rate, hits, recommender): the README may explain more
        return row[2], row[3], row[1].split(" (")[0]

    assert sorted(map(key, printed)) == sorted(map(key, claimed)), finished.stdout


def check_schemas_export(clone: Clone, command: Command, finished: Finished) -> None:
    directory = clone.cwd / command.args[-1]
    written = {p.stem: orjson.loads(p.read_bytes()) for p in directory.glob("*.json")}
    assert len(written) == len(ALL_TOPICS), f"{sorted(written)} for {len(ALL_TOPICS)} topics"
    assert all(s["$schema"].endswith("2020-12/schema") for s in written.values())


def check_dashboard(clone: Clone, command: Command, name: str) -> None:
    """Serves until Ctrl-C: the page and its data answer, then SIGINT ends it with exit 0."""
    watched = start(clone, command, name)
    try:
        while not (match := re.search(r"dashboard (http://127\.0\.0\.1:\d+/?)", watched.stderr())):
            assert watched.process.poll() is None, f"the dashboard exited:\n{watched.stderr()}"
            assert time.monotonic() - watched.started < STALL, f"no dashboard address:\n{watched.stderr()}"
            time.sleep(0.5)
        url = match[1].rstrip("/")
        with urllib.request.urlopen(f"{url}/", timeout=60) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
        with urllib.request.urlopen(f"{url}/api/summary", timeout=120) as summary:
            data = orjson.loads(summary.read())
        assert data, "the dashboard's data is empty"
        watched.process.send_signal(signal.SIGINT)
        assert watched.process.wait(STALL) == 0, watched.stderr()
    finally:
        watched.kill()


CHECKS: dict[str, Callable[[Clone, Command, Finished], None]] = {
    "run": check_run, "query": check_query, "models": check_models, "report": check_report,
    "evaluate": check_evaluate, "recommend-eval": check_recommend_eval, "schemas": check_schemas_export,
}
#: Commands that run until stopped: checked by starting and stopping them.
SERVES = {"dashboard": check_dashboard}

# --- the user's own export, for the csv:export.csv examples -----------------------------------------------------

EXPORT_ROWS = 2000


def write_export(path: Path) -> int:
    """`export.csv` as a shop's order export (CustomerID, InvoiceDate as dd/mm/yyyy HH:MM, Price), made from
    the first Olist orders (real data); returns its row count."""
    olist = require_datasets() / "olist"
    orders = pd.read_csv(olist / "olist_orders_dataset.csv").sort_values("order_purchase_timestamp")
    customers = pd.read_csv(olist / "olist_customers_dataset.csv")
    paid = pd.read_csv(olist / "olist_order_payments_dataset.csv").groupby("order_id", as_index=False)[
        "payment_value"].sum()
    frame = orders.head(EXPORT_ROWS).merge(customers, on="customer_id").merge(paid, on="order_id")
    export = pd.DataFrame({
        "InvoiceNo": frame["order_id"], "CustomerID": frame["customer_unique_id"],
        "InvoiceDate": pd.to_datetime(frame["order_purchase_timestamp"]).dt.strftime("%d/%m/%Y %H:%M"),
        "Price": frame["payment_value"].round(2)})
    export.to_csv(path, index=False)
    return len(export)


# --- the tests ------------------------------------------------------------------------------------------------


def test_every_readme_command_is_run_here_or_has_a_reason() -> None:
    unchecked = []
    for block in BLOCKS:
        for command in block.commands:
            if command.is_journey and not_run_here(block, command) is None:
                if command.subcommand not in CHECKS and command.subcommand not in SERVES:
                    unchecked.append(f"line {command.line}: {command.text} (no check for `{command.subcommand}`)")
            elif not_run_here(block, command) is None:
                unchecked.append(f"line {command.line}: {command.text} (neither a journey command nor excused)")
    assert not unchecked, "README commands this test does not run:\n" + "\n".join(unchecked)
    assert sum(len(s.commands) for s in SCENARIOS) == len(RUNNABLE) >= 10


def clone_dir(tmp_path: Path, needs_datasets: bool) -> Clone:
    cwd = tmp_path / "clone"
    cwd.mkdir()
    if needs_datasets:
        (tmp_path / "shared").symlink_to(require_datasets().parent, target_is_directory=True)
    return Clone(cwd, tmp_path / "outputs")


def needs_datasets(scenario: Scenario) -> bool:
    """Whether a scenario reads ../shared (also recommend-eval and the csv export, made from Olist)."""
    return any(SHARED_PREFIX in arg or arg.startswith("csv:") for c in scenario.commands for arg in c.args) or any(
        c.subcommand == "recommend-eval" and "--replay" not in c.args for c in scenario.commands)


def runs_the_pipeline(scenario: Scenario) -> bool:
    """Whether a scenario runs the pipeline or a replay evaluation (minutes each): those are `make examples`,
    not `make test`, so the suite stays inside CI's time limit."""
    return any((c.subcommand == "run" and "--check" not in c.args) or c.subcommand == "evaluate"
               for c in scenario.commands)


@pytest.mark.parametrize("scenario", [  # pytest-timeout's limit: a backstop above the commands' own ceilings
    pytest.param(s, id=s.name[:120], marks=[pytest.mark.timeout(len(s.commands) * CEILING + 600),
                                            *([pytest.mark.examples] if runs_the_pipeline(s) else [])])
    for s in SCENARIOS])
def test_readme_example(scenario: Scenario, tmp_path: Path) -> None:
    clone = clone_dir(tmp_path, needs_datasets(scenario))
    exports = {clone.cwd / a.removeprefix("csv:") for c in scenario.commands for a in c.args if a.startswith("csv:")}
    for export in exports:
        if not export.exists():  # the user's own export: one is made from real orders
            write_export(export)
    for index, command in enumerate(scenario.commands):
        name = f"{index}-{command.subcommand}"
        if command.subcommand in SERVES:
            SERVES[command.subcommand](clone, command, name)
            continue
        CHECKS[command.subcommand](clone, command, execute(clone, command, name))

