"""Scoring stage of ``make bench``: predictions/s and labels learned/s in one process, against bare River.

The baseline, measured in the same process on the same inputs, is the River learner each model
ships with (``scoring.toml``: the naive Bayes + logistic blend on the compact inputs for propensity, standard
scaler + logistic regression on all inputs for churn) doing ``predict_proba_one`` (or
``learn_one``) on ready vectors, model by model as the stages do: what any River-based scorer
with these learners pays at least. The stages then measure the
project's whole path per prediction (profile -> vector -> model -> calibration ->
contributions -> band -> score record as JSON bytes) and per label (prequential metrics, drift
detector, calibration and model update). Run alone: ``python -m tests.bench.scoring --out FILE``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import orjson

from processors.features.build import build_features
from processors.scoring.config import MODELS, ScoringConfig, load_scoring
from processors.scoring.model import learner
from processors.scoring.processor import ScoringProcessor
from processors.scoring.trainer import Trainer
from processors.scoring.vector import as_of_ms, inputs, vector
from streams.sources.generator import generate


def profiles(customers: int, days: int, seed: int, limit: int) -> list[dict[str, Any]]:
    """Profiles as the features processor emits them, one after each order or cart event (up to ``limit``)."""
    features = build_features()
    states: dict[str, Any] = {}
    out = []
    for record in generate(customers, days, seed):
        key = record.key.decode()
        state = states.get(key) or states.setdefault(key, features.new_state(key))
        features.process(state, record.topic, record.value, record.key)
        if record.topic == "orders" or b"cart" in record.value:
            out.append(features.profile(state))
            if len(out) >= limit:
                break
    return out


def baseline(config: ScoringConfig) -> dict[str, Any]:
    """Bare River: each model's shipped learner, nothing around it."""
    return {m: learner(config.section(m).learner, config.learning) for m in MODELS}


def measure(n: int = 20_000) -> dict[str, float]:
    config = load_scoring()
    sample = profiles(3000, 30, 3, n)
    xs = [vector(p, as_of_ms(p)) for p in sample]
    ys = [bool(p["features"].get("orders_total")) and i % 3 == 0 for i, p in enumerate(sample)]
    processor = ScoringProcessor(config)
    # What each stage does, as (model, its inputs): a prediction per eligible model; labels alternate.
    predicted = [(m, inputs(x, config.section(m).inputs)) for p, x in zip(sample, xs, strict=True)
                 for m in MODELS if processor.eligible(m, p)]
    learned = [(MODELS[i % 2], inputs(x, config.section(MODELS[i % 2]).inputs), y)
               for i, (x, y) in enumerate(zip(xs, ys, strict=True))]
    warm = learned[:2000]
    bare = baseline(config)
    trainer = Trainer(config)
    for m, x, y in warm:  # warm: both classes seen, the weights exist
        bare[m].learn_one(x, y)
        trainer.learn(m, x, y, 0.5, 0)
    started = time.perf_counter()
    for m, x in predicted:
        bare[m].predict_proba_one(x)
    bare_predict = len(predicted) / (time.perf_counter() - started)
    started = time.perf_counter()
    for m, x, y in learned:
        bare[m].learn_one(x, y)
    bare_learn = len(learned) / (time.perf_counter() - started)

    processor.models = trainer.models
    started = time.perf_counter()
    scores = 0
    for p in sample:  # a fresh state per profile: every profile is a score for each eligible model
        scores += len(processor.on_profile(processor.new_state(p["customer_id"]), p))
    predict = scores / (time.perf_counter() - started)
    assert scores == len(predicted), "the baseline predicted what the stage scored"
    started = time.perf_counter()
    for i, (m, x, y) in enumerate(learned):
        trainer.learn(m, x, y, 0.3, i)
    learn = len(learned) / (time.perf_counter() - started)
    return {"profiles": len(sample), "scores": scores, "bare_river_predict_per_s": bare_predict,
            "bare_river_learn_per_s": bare_learn, "predictions_per_s": predict, "labels_learned_per_s": learn,
            "predict_ratio": predict / bare_predict, "learn_ratio": learn / bare_learn}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.scoring")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    result = measure(args.n)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
