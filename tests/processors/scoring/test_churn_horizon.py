"""The churn horizon: the shipped default is the 90 days shops report churn over ("no purchase in 90 days"), the
scoring file's value reaches the scorer, the trainer and `journey evaluate` through the one function they all
call, and `journey evaluate --churn-days` overrides it for a replay only."""

from __future__ import annotations

from pathlib import Path

from processors.scoring.config import DAY_MS, Churn, load_scoring
from processors.scoring.processor import ScoringProcessor
from streams.evaluate import scoring_config
from streams.settings import Settings


def test_the_default_churn_horizon_is_ninety_days_in_the_file_and_the_code() -> None:
    assert load_scoring().churn.horizon_days == Churn().horizon_days == 90
    assert scoring_config(Settings(scoring_file=None)).churn.horizon_ms == 90 * DAY_MS


def test_the_scorer_and_evaluate_read_the_same_churn_horizon(tmp_path: Path) -> None:
    scoring_file = tmp_path / "scoring.toml"
    scoring_file.write_text("[churn]\nhorizon_days = 120\n")
    settings = Settings(scoring_file=scoring_file)
    # `journey scorer` and `journey trainer` build their config with scoring_config(settings) (streams/cli.py);
    # `journey evaluate` with scoring_config(settings, ..., churn_days).
    scorer = ScoringProcessor(scoring_config(settings))
    assert scorer.config.horizon_ms("churn") == 120 * DAY_MS
    assert scoring_config(settings, churn_days=None).churn.horizon_days == 120
    assert scoring_config(settings, churn_days=45).churn.horizon_days == 45
    assert scoring_config(settings, churn_days=45).purchase_propensity == scorer.config.purchase_propensity
    cli = (Path(__file__).resolve().parents[3] / "streams/cli.py").read_text()
    assert cli.count("ScoringProcessor(scoring_config(settings)") == 1
    assert "TrainerWorker(settings.kafka_config(), settings.group_id(\"trainer\"), scoring_config(settings)" in cli
