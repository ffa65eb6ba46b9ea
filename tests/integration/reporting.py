"""The reporting rollups of scores, triggers and messages, computed in Python from the raw rows.

Shared by the rollup test (after a replay and a redelivery) and the trigger pipeline test. The
raw tables keep a redelivered record twice until they merge, so everything here deduplicates by
the record's derived id (or, for latest-state tables, keeps the newest version), as an analyst
reading the raw rows would have to.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

import orjson

from processors.features.build import build_features
from processors.scoring.config import ScoringConfig, load_scoring
from processors.scoring.replay import replay
from streams.sources.record import SourceRecord

BANDS = ("cold_start", "low", "medium", "high")
Record = tuple[str, bytes | None, bytes]


def rows(client: Any, sql: str) -> list[dict[str, Any]]:
    result = client.query(sql)
    return [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows]


def ratio(a: float, b: float) -> float | None:
    return a / b if b else None


# -- inputs: what the features, scoring and trainer workers write for a replay ---------------------
def scoring_config(metrics_every_labels: int = 50) -> ScoringConfig:
    config = load_scoring()
    return dataclasses.replace(config, evaluation=dataclasses.replace(config.evaluation,
                                                                      metrics_every_labels=metrics_every_labels))


def model_outputs(source: list[SourceRecord], config: ScoringConfig | None = None) -> list[Record]:
    """Profiles (one after each order, and each customer's last), scores and model metrics of a replay."""
    features = build_features()
    states: dict[str, Any] = {}
    profiles: list[Record] = []
    for record in source:
        key = record.key.decode()
        state = states.get(key) or states.setdefault(key, features.new_state(key))
        features.process(state, record.topic, record.value, record.key)
        if record.topic == "orders":
            profiles += features.emit(key, state)
    for key, state in states.items():
        profiles += features.emit(key, state)
    replayed = replay(source, config or scoring_config())
    return [*profiles,
            *(("scores", s["customer_id"].encode(), orjson.dumps(s)) for s in replayed.scores),
            *(("model-metrics", m["model"].encode(), orjson.dumps(m)) for m in replayed.metrics)]


# -- score distributions ---------------------------------------------------------------------------
def latest_scores(client: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(customer, model) -> the newest score row (by scored_at) among every stored row."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for s in rows(client, "SELECT customer_id, model, scored_at, probability, band, cold_start FROM scores"):
        key = (s["customer_id"], s["model"])
        if key not in latest or s["scored_at"] > latest[key]["scored_at"]:
            latest[key] = s
    return latest


def latest_segments(client: Any) -> dict[str, list[str]]:
    """customer -> segments of the profile version with the most events, among every stored row."""
    latest: dict[str, tuple[int, list[str]]] = {}
    for p in rows(client, "SELECT customer_id, events_total, segments FROM customer_profile_history"):
        if p["customer_id"] not in latest or p["events_total"] > latest[p["customer_id"]][0]:
            latest[p["customer_id"]] = (p["events_total"], list(p["segments"]))
    return {customer: segments for customer, (_, segments) in latest.items()}


def _distribution(groups: dict[tuple[str, ...], list[dict[str, Any]]]) -> dict[tuple[str, ...], dict[str, Any]]:
    """Per key (..., band): customers, share of the key without its band, probabilities, cold starts."""
    totals: Counter[tuple[str, ...]] = Counter()
    for key, members in groups.items():
        totals[key[:-1]] += len(members)
    return {key: {"customers": len(members), "share": len(members) / totals[key[:-1]],
                  "average_probability": sum(m["probability"] for m in members) / len(members),
                  "min_probability": min(m["probability"] for m in members),
                  "max_probability": max(m["probability"] for m in members),
                  "cold_start": sum(bool(m["cold_start"]) for m in members)}
            for key, members in groups.items()}


def expected_score_bands(client: Any) -> dict[str, dict[tuple[str, ...], dict[str, Any]]]:
    """``score_bands`` keyed (model, band) and ``score_bands_by_segment`` keyed (model, segment, band)."""
    scores = latest_scores(client)
    segments = latest_segments(client)
    bands: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    by_segment: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for (customer, model), s in scores.items():
        band = "cold_start" if s["cold_start"] else s["band"]  # a cold-start score is in no band of the model's
        bands[(model, band)].append(s)
        for segment in segments.get(customer) or ["none"]:
            by_segment[(model, segment, band)].append(s)
    return {"bands": _distribution(bands), "by_segment": _distribution(by_segment)}


# -- triggers, guard outcomes, messages ------------------------------------------------------------
def expected_trigger_rollups(client: Any) -> dict[str, Any]:
    """``triggers_per_day``, ``guard_outcomes_per_day`` and ``messages_per_day``, from the raw rows."""
    triggers: dict[tuple[date, str], list[set[str]]] = defaultdict(lambda: [set(), set()])
    for t in rows(client, "SELECT trigger_id, customer_id, trigger, fired_at FROM triggers"):
        entry = triggers[(t["fired_at"].date(), t["trigger"])]
        entry[0].add(t["trigger_id"])
        entry[1].add(t["customer_id"])
    outcomes: dict[tuple[date, str, str, str], list[set[str]]] = defaultdict(lambda: [set(), set()])
    for d in rows(client, "SELECT decision_id, trigger_id, trigger, guard, outcome, decided_at FROM guard_decisions"):
        entry = outcomes[(d["decided_at"].date(), d["trigger"], d["guard"], d["outcome"])]
        entry[0].add(d["decision_id"])
        entry[1].add(d["trigger_id"])
    sent: dict[tuple[date, str, str], list[set[str]]] = defaultdict(lambda: [set(), set()])
    for m in rows(client, "SELECT message_id, customer_id, trigger, channel, send_at FROM messages"):
        entry = sent[(m["send_at"].date(), m["trigger"] or "unknown", m["channel"])]
        entry[0].add(m["message_id"])
        entry[1].add(m["customer_id"])
    per_day = {key: (len(ids), len(customers), len(outcomes.get((*key, "holdout", "held_out"), [set(), set()])[1]))
               for key, (ids, customers) in triggers.items()}
    return {"triggers_per_day": per_day,
            "guard_outcomes_per_day": {k: (len(d), len(t)) for k, (d, t) in outcomes.items()},
            "messages_per_day": {k: (len(m), len(c)) for k, (m, c) in sent.items()}}


def attribution(client: Any) -> list[dict[str, Any]]:
    """One dict per trigger: arm and whether the customer ordered within 24 h of fired_at (anchor excepted)."""
    triggers = {t["trigger_id"]: t for t in rows(
        client, "SELECT trigger_id, customer_id, trigger, fired_at, source_event_id FROM triggers")}
    held = {d["trigger_id"] for d in rows(client, "SELECT trigger_id FROM guard_decisions "
                                                  "WHERE guard = 'holdout' AND outcome = 'held_out'")}
    messaged = {m["trigger_id"] for m in rows(client, "SELECT trigger_id FROM messages")}
    orders: dict[str, dict[str, tuple[datetime, float]]] = defaultdict(dict)
    for o in rows(client, "SELECT customer_id, event_id, event_time, amount FROM order_events "
                          "WHERE type = 'order_placed'"):
        orders[o["customer_id"]][o["event_id"]] = (o["event_time"], o["amount"] or 0.0)
    out = []
    for t in triggers.values():
        start, end = t["fired_at"], t["fired_at"] + timedelta(hours=24)
        within = [amount for event_id, (when, amount) in orders[t["customer_id"]].items()
                  if start <= when < end and event_id != t["source_event_id"]]
        arm = "held_out" if t["trigger_id"] in held else "messaged" if t["trigger_id"] in messaged else "suppressed"
        out.append({**t, "arm": arm, "orders": len(within), "revenue": sum(within), "converted": bool(within)})
    return out


def conversion(triggers: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Counts per arm, conversions, uplift of the not-held-out over the held-out, and its standard error."""
    c: Counter[str] = Counter()
    for t in triggers:
        c["triggered"] += 1
        c[t["arm"]] += 1
        c[f"{t['arm']}_converted"] += t["converted"]
        c["treated_converted"] += t["converted"] and t["arm"] != "held_out"
    treated = c["triggered"] - c["held_out"]
    out: dict[str, Any] = {name: c[name] for name in ("triggered", "messaged", "held_out", "suppressed",
                                                      "messaged_converted", "treated_converted",
                                                      "held_out_converted")}
    out["messaged_conversion"] = ratio(c["messaged_converted"], c["messaged"])
    p1, p0 = ratio(c["treated_converted"], treated), ratio(c["held_out_converted"], c["held_out"])
    out["treated_conversion"], out["held_out_conversion"] = p1, p0
    out["uplift"] = p1 - p0 if p1 is not None and p0 is not None else None
    out["uplift_standard_error"] = (math.sqrt(p1 * (1 - p1) / treated + p0 * (1 - p0) / c["held_out"])
                                    if p1 is not None and p0 is not None else None)
    return out


def expected_trigger_conversion(client: Any) -> dict[str, Any]:
    """``trigger_conversion`` keyed by trigger, and ``trigger_conversion_daily`` keyed by (day, trigger)."""
    attributed = attribution(client)
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_day: dict[tuple[date, str], list[dict[str, Any]]] = defaultdict(list)
    for t in attributed:
        by_type[t["trigger"]].append(t)
        by_day[(t["fired_at"].date(), t["trigger"])].append(t)
    daily = {}
    for key, members in by_day.items():
        daily[key] = {k: v for k, v in conversion(members).items() if not k.endswith(("conversion", "uplift",
                                                                                       "standard_error"))}
        daily[key]["revenue_in_window"] = sum(t["revenue"] for t in members)
    return {"by_type": {kind: conversion(members) for kind, members in by_type.items()}, "daily": daily}


def close(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9,
                                                                                       abs_tol=1e-9))


def assert_reporting_rollups_match(client: Any) -> dict[str, Any]:
    """Every score, trigger and message rollup equals its Python computation over the raw rows."""
    want = {**expected_score_bands(client), **expected_trigger_rollups(client),
            "conversion": expected_trigger_conversion(client)}
    # Enough scores to mean something: at least three (model, band) pairs (in a short run churn labels, released
    # at the end of their 90-day horizon, have not come yet: its scores are all cold_start), split by segment.
    assert len(want["bands"]) >= 3 and len(want["by_segment"]) > len(want["bands"]), \
        f"too few scores: {sorted(want['bands'])}"
    conversions = want["conversion"]["by_type"]
    assert sum(c["held_out"] for c in conversions.values()) and sum(c["messaged"] for c in conversions.values())
    assert any(c["held_out_converted"] for c in conversions.values()), "no conversion in the holdout to compare"

    segment_columns = ("customers", "share", "average_probability")  # score_bands has more
    for view, key_columns, expected in (("score_bands", ("model", "band"), want["bands"]),
                                        ("score_bands_by_segment", ("model", "segment", "band"), want["by_segment"])):
        got = {tuple(r[k] for k in key_columns): r for r in rows(client, f"SELECT * FROM {view}")}
        assert set(got) == set(expected), view
        for key, values in expected.items():
            for name, value in values.items():
                if view == "score_bands" or name in segment_columns:
                    assert close(got[key][name], value), (view, key, name, got[key][name], value)

    got_days = {(r["day"], r["trigger"]): (r["triggered"], r["customers"], r["held_out"])
                for r in rows(client, "SELECT * FROM triggers_per_day")}
    assert got_days == want["triggers_per_day"]
    got_outcomes = {(r["day"], r["trigger"], r["guard"], r["outcome"]): (r["decisions"], r["triggers"])
                    for r in rows(client, "SELECT * FROM guard_outcomes_per_day")}
    assert got_outcomes == want["guard_outcomes_per_day"]
    got_messages = {(r["day"], r["trigger"], r["channel"]): (r["messages"], r["customers"])
                    for r in rows(client, "SELECT * FROM messages_per_day")}
    assert got_messages == want["messages_per_day"]

    assert_conversion_matches(client, want["conversion"])
    return want


def assert_conversion_matches(client: Any, want: dict[str, Any]) -> None:
    for view, key_columns, expected in (("trigger_conversion", ("trigger",), want["by_type"]),
                                        ("trigger_conversion_daily", ("day", "trigger"), want["daily"])):
        got = {tuple(r[k] for k in key_columns): r for r in rows(client, f"SELECT * FROM {view}")}
        expected = {k if isinstance(k, tuple) else (k,): v for k, v in expected.items()}
        assert set(got) == set(expected), view
        for key, values in expected.items():
            for name, value in values.items():
                assert close(got[key][name], value), (view, key, name, got[key][name], value)
