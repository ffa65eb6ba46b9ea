"""An independent batch computation of the customer features with pandas, straight from the CSVs.

It shares no code with the pipeline: the definitions (documented in processors/features)
are re-implemented here on whole columns, so a test can compare the streaming profile
of every customer with it.
"""

from __future__ import annotations

import hashlib
import operator
import re
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
TAOBAO_TYPES = {"pv": "product_view", "cart": "add_to_cart", "fav": "add_to_wishlist", "buy": "order_placed"}
COUNT_NAMES = {"product_view": "product_views", "add_to_cart": "cart_adds", "add_to_wishlist": "wishlist_adds"}
WEIGHTS = {"product_view": 1, "add_to_wishlist": 2, "add_to_cart": 3, "order_placed": 5}


def taobao_events(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"user_id": str, "item_id": str, "category_id": str})
    frame["type"] = frame["behavior_type"].map(TAOBAO_TYPES)
    frame["customer_id"] = frame["user_id"]
    frame["t"] = frame["timestamp"].astype("int64") * 1000
    return frame[["customer_id", "type", "t", "item_id", "category_id"]]


def taobao_features(path: Path, watermark_ms: int | None = None, session_gap_ms: int = 30 * MINUTE,
                    cart_expiry_ms: int = 30 * DAY, half_life_days: float = 14.0, horizon_days: int = 90,
                    top: int = 3) -> pd.DataFrame:
    """One row per customer with the features the Taobao sample determines, indexed by customer_id.

    ``watermark_ms``: the host's event-time clock at the end, which has fired every stage timer
    before it; None for a host without timers (profiles as of each customer's newest event).
    """
    ev = taobao_events(path)
    clicks = ev[ev["type"] != "order_placed"]
    orders = ev[ev["type"] == "order_placed"]
    out = pd.DataFrame(index=pd.Index(sorted(ev["customer_id"].unique()), name="customer_id"))
    newest = ev.groupby("customer_id")["t"].max()
    out["first_seen_ms"] = ev.groupby("customer_id")["t"].min()
    out["last_seen_ms"] = newest
    out["active_days"] = ev.assign(day=ev["t"] // DAY).groupby("customer_id")["day"].nunique()
    out["events_total"] = ev.groupby("customer_id").size()
    out["late_events"] = 0  # the replay is in event-time order: nothing is late
    out["last_order_ms"] = orders.groupby("customer_id")["t"].max()
    # the cart: adds after the latest order (Taobao has no removes, quantities or prices)
    adds = clicks[clicks["type"] == "add_to_cart"].join(out["last_order_ms"], on="customer_id")
    adds = adds[adds["last_order_ms"].isna() | (adds["t"] > adds["last_order_ms"])]
    out["as_of"] = as_of_times(newest, out["last_order_ms"], adds, cart_expiry_ms, watermark_ms)
    as_of = out["as_of"]

    # activity windows, aligned to minute (1h, 24h) and hour (7d, 30d) buckets
    c = clicks.join(as_of.rename("as_of"), on="customer_id")
    windows = {"1h": (MINUTE, 60), "24h": (MINUTE, 1440), "7d": (HOUR, 168), "30d": (HOUR, 720)}
    for label, (unit, width) in windows.items():
        age = c["as_of"] // unit - c["t"] // unit
        inside = c[(age >= 0) & (age < width)]
        counts = inside.groupby(["customer_id", "type"]).size().unstack(fill_value=0)
        for kind, name in COUNT_NAMES.items():
            out[f"{name}_{label}"] = counts.get(kind, 0)
    totals = clicks.groupby(["customer_id", "type"]).size().unstack(fill_value=0)
    for kind, name in COUNT_NAMES.items():
        out[f"{name}_total"] = totals.get(kind, 0)
    for name in ABSENT_COUNTS:  # Taobao has no page views, searches, removes or checkouts
        for window in ("1h", "24h", "7d", "30d", "total"):
            out[f"{name}_{window}"] = 0

    # sessions over clickstream times
    s = clicks.sort_values(["customer_id", "t"])
    new = s.groupby("customer_id")["t"].diff().isna() | (s.groupby("customer_id")["t"].diff() > session_gap_ms)
    s = s.assign(session=new.astype(int).groupby(s["customer_id"]).cumsum())
    per_session = s.groupby(["customer_id", "session"])["t"].agg(["min", "max", "size"])
    out["sessions"] = per_session.groupby("customer_id").size()
    out["bounce_sessions"] = (per_session["size"] == 1).groupby("customer_id").sum()
    last = per_session.groupby("customer_id").tail(1).reset_index(level="session", drop=True)
    out["session_length_s"] = (last["max"] - last["min"]) / 1000
    out["session_depth"] = last["size"]

    # orders (Taobao has no prices: counts only, revenue unknown)
    o = orders.join(as_of.rename("as_of"), on="customer_id")
    out["orders_total"] = o.groupby("customer_id").size()
    out["first_order_ms"] = o.groupby("customer_id")["t"].min()
    _order_times(out)
    for width in (30, 90, 365):
        age = o["as_of"] // DAY - o["t"] // DAY
        out[f"orders_{width}d"] = o[(age >= 0) & (age < width)].groupby("customer_id").size()
        out[f"revenue_{width}d"] = 0.0
    out["revenue_total"] = 0.0
    out["average_order_value"] = np.nan  # no order has a known amount
    for name in ("orders_cancelled", "orders_refunded", "orders_delivered"):
        out[name] = 0
    out["refunded_total"] = 0.0
    out["last_delivered_ms"] = np.nan

    # cart lines not expired as of the profile's time
    cart = adds.join(as_of.rename("as_of"), on="customer_id")
    cart = cart[cart["t"] > cart["as_of"] - cart_expiry_ms]
    out["cart_items"] = cart.groupby("customer_id").size()
    out["cart_products"] = cart.groupby("customer_id")["item_id"].nunique()
    out["cart_since_ms"] = cart.groupby("customer_id")["t"].min()
    out["cart_last_change_ms"] = cart.groupby("customer_id")["t"].max()
    out["cart_value"] = 0.0
    out["checkout_open"] = False
    out["checkout_started_ms"] = np.nan

    # preferences: decayed interaction weights per category and day; Taobao has no brands
    p = ev.assign(day=ev["t"] // DAY, w=ev["type"].map(WEIGHTS)).join((as_of // DAY).rename("today"), on="customer_id")
    out["top_categories"] = _top(p, "category_id", half_life_days, horizon_days, top)
    out["top_brands"] = ""
    out["acquisition_channel"] = "app"  # every Taobao event is on the app; none has a UTM source
    out["acquisition_source"] = None
    _no_chat(out)

    int_columns = [f"{name}_{window}" for name in ALL_COUNTS for window in ("1h", "24h", "7d", "30d", "total")]
    int_columns += ["orders_total", "orders_30d", "orders_90d", "orders_365d", "sessions", "bounce_sessions",
                    "session_depth", "cart_items", "cart_products"]
    out[int_columns] = out[int_columns].fillna(0).astype("int64")
    out["top_categories"] = out["top_categories"].fillna("")
    out["cart_unpriced_items"] = out["cart_items"]
    return _stage_and_segments(out)


#: Clickstream counts the Taobao sample has no events for (its behaviours are pv, cart, fav and buy).
ABSENT_COUNTS = ("page_views", "searches", "cart_removes", "checkouts")
ALL_COUNTS = (*COUNT_NAMES.values(), *ABSENT_COUNTS)


def as_of_times(newest: pd.Series, last_order: pd.Series, cart_lines: pd.DataFrame | None, cart_expiry_ms: int,
                watermark_ms: int | None, at_risk_days: int = 60, lapsed_days: int = 180) -> pd.Series:
    """Per customer, the time the final profile is as of: the newest event, or, once a host's clock has
    passed them, the latest point at which time alone can change the stage (a cart line's expiry, the
    latest order's at-risk and lapsed points) before ``watermark_ms``."""
    if watermark_ms is None:
        return newest
    last = last_order.dropna()
    points = [pd.Series(last.to_numpy() + at_risk_days * DAY, index=last.index),
              pd.Series(last.to_numpy() + lapsed_days * DAY, index=last.index)]
    if cart_lines is not None:
        points.append(pd.Series((cart_lines["t"] + cart_expiry_ms).to_numpy(), index=cart_lines["customer_id"]))
    p = pd.concat(points).rename("p").rename_axis("customer_id").reset_index()
    p = p.join(newest.rename("newest"), on="customer_id")
    passed = p[(p["p"] > p["newest"]) & (p["p"] < watermark_ms)].groupby("customer_id")["p"].max()
    return np.maximum(newest, passed.reindex(newest.index).fillna(newest)).astype("int64")


def _order_times(out: pd.DataFrame) -> None:
    """Recency and days between orders, from first/last order, order count and the profile's time."""
    out["recency_days"] = (out["as_of"] - out["last_order_ms"]) / DAY
    n = out["orders_total"]
    out["days_between_orders"] = np.where(n > 1, (out["last_order_ms"] - out["first_order_ms"]) / DAY / (n - 1), np.nan)


def _top(p: pd.DataFrame, column: str, half_life_days: float, horizon_days: int, top: int) -> pd.Series:
    """Top names of ``column`` by weight ``w`` per day, decayed to each customer's ``today``; ties by name."""
    p = p[p[column].notna() & (p["today"] - p["day"] >= 0) & (p["today"] - p["day"] < horizon_days)]
    p = p.groupby(["customer_id", column, "day", "today"])["w"].sum().reset_index()
    p["score"] = p["w"] * 0.5 ** ((p["today"] - p["day"]) / half_life_days)
    scores = p.groupby(["customer_id", column])["score"].sum().reset_index()
    scores = scores.sort_values(["customer_id", "score", column], ascending=[True, False, True])
    return scores.groupby("customer_id").head(top).groupby("customer_id")[column].agg(",".join)


def _no_chat(out: pd.DataFrame) -> None:
    for name in ("chat_messages", "chat_customer_messages", "conversations", "unresolved_conversations",
                 "negative_streak"):
        out[name] = 0
    out["last_sentiment"] = np.nan
    out["sentiment_7d"] = np.nan


def journey_stage(row: pd.Series, at_risk_days: int = 60, lapsed_days: int = 180) -> tuple[str, float]:
    """The stage machine of processors/features/README.md, first match wins, and when it was entered."""
    if row["checkout_open"]:
        return "checkout", row["checkout_started_ms"]
    if row["cart_items"] > 0:
        return "carter", row["cart_since_ms"]
    if row["orders_total"] > 0:
        age = row["as_of"] - row["last_order_ms"]
        if age < at_risk_days * DAY:
            return ("repeat_buyer" if row["orders_total"] >= 2 else "first_time_buyer"), row["last_order_ms"]
        if age < lapsed_days * DAY:
            return "at_risk", row["last_order_ms"] + at_risk_days * DAY
        return "lapsed", row["last_order_ms"] + lapsed_days * DAY
    if row["product_views_total"] > 0 or row["searches_total"] > 0:
        return "browser", row["first_seen_ms"]
    return "visitor", row["first_seen_ms"]


SEGMENTS_FILE = Path(__file__).resolve().parents[3] / "processors" / "features" / "segments.toml"
_OPERATORS = {">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt,
              "<": operator.lt}


def segment_rules(path: Path = SEGMENTS_FILE) -> list[tuple[str, list[tuple[str, Any, Any]]]]:
    """(segment, [(feature, operator, value)]) in file order, read from the settings file."""
    rules = []
    for name, body in tomllib.loads(path.read_text())["segments"].items():
        conditions = []
        for text in body["when"]:
            feature, op, value = re.fullmatch(r"\s*(\w+)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*", text).groups()
            literal: Any = {"true": True, "false": False}.get(value.lower())
            conditions.append((feature, _OPERATORS[op], float(value) if literal is None else literal))
        rules.append((name, conditions))
    return rules


def _stage_and_segments(out: pd.DataFrame) -> pd.DataFrame:
    stages = out.apply(journey_stage, axis=1, result_type="expand")
    out["stage"], out["stage_since_ms"] = stages[0], stages[1]
    rules = segment_rules()

    def segments(row: pd.Series) -> list[str]:
        return [name for name, conditions in rules
                if all(not _missing(row[f]) and op(row[f], value) for f, op, value in conditions)]

    out["segments"] = out.apply(segments, axis=1)
    out["as_of_ms"] = out["as_of"]
    return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _sao_paulo_ms(column: pd.Series) -> pd.Series:
    """Olist local times to epoch ms in UTC (ambiguous hours as summer time and times in the spring-forward
    gap moved an hour on, as Python's zoneinfo reads them)."""
    local = pd.to_datetime(column).dt.tz_localize("America/Sao_Paulo", ambiguous=True,
                                                   nonexistent=pd.Timedelta(hours=1))
    return (local.dt.tz_convert("UTC") - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(milliseconds=1)


def _olist_event_id(content: str) -> str:
    """The replay's stable event id of an Olist record (blake2b of its content key; see streams/sources)."""
    digest = hashlib.blake2b(content.encode(), digest_size=16, person=b"journey-replay")
    digest.update(b"olist")
    digest.update((0).to_bytes(8, "big"))
    return f"olist-{digest.hexdigest()}"


def olist_features(directory: Path, watermark_ms: int | None = None, sentiment: Any = None,
                   half_life_days: float = 14.0, horizon_days: int = 90, top: int = 3,
                   negative_below: float = -0.05) -> pd.DataFrame:
    """Order (RFM), preference and review features per person (``customer_unique_id``), indexed by customer_id.

    Reviews are the customer's chat messages; ``sentiment(text, language)`` scores them (the
    pipeline's scorer is a pure function, so passing it in keeps the rest of this independent).
    ``watermark_ms`` as for :func:`taobao_features`.
    """
    orders = pd.read_csv(directory / "olist_orders_dataset.csv")
    person = pd.read_csv(directory / "olist_customers_dataset.csv").set_index("customer_id")["customer_unique_id"]
    items = pd.read_csv(directory / "olist_order_items_dataset.csv")
    reviews = pd.read_csv(directory / "olist_order_reviews_dataset.csv")
    products = pd.read_csv(directory / "olist_products_dataset.csv")
    english = pd.read_csv(directory / "product_category_name_translation.csv").set_index(
        "product_category_name")["product_category_name_english"]
    orders["person"] = orders["customer_id"].map(person)
    cents = ((items["price"] + items["freight_value"]).groupby(items["order_id"]).sum() * 100).round()
    orders["cents"] = orders["order_id"].map(cents).fillna(0).astype("int64")

    steps = {"order_purchase_timestamp": "placed", "order_approved_at": "paid",
             "order_delivered_carrier_date": "shipped", "order_delivered_customer_date": "delivered"}
    events = []
    for column, kind in steps.items():
        happened = orders[orders[column].notna()]
        events.append(pd.DataFrame({"person": happened["person"], "kind": kind, "t": _sao_paulo_ms(happened[column]),
                                    "cents": happened["cents"], "order_id": happened["order_id"]}))
    cancelled = orders[orders["order_status"] == "canceled"]
    latest = pd.concat([_sao_paulo_ms(cancelled[c]).rename(c) for c in steps if cancelled[c].notna().any()], axis=1)
    events.append(pd.DataFrame({"person": cancelled["person"], "kind": "cancelled", "t": latest.max(axis=1),
                                "cents": 0}).dropna(subset=["t"]))
    title = reviews["review_comment_title"].fillna("").str.strip()
    message = reviews["review_comment_message"].fillna("").str.strip()
    reviews["text"] = (title + "\n" + message).str.strip("\n")
    with_text = reviews[reviews["text"] != ""].merge(orders[["order_id", "person"]], on="order_id")
    events.append(pd.DataFrame({"person": with_text["person"], "kind": "review",
                                "t": _sao_paulo_ms(with_text["review_creation_date"]), "cents": 0,
                                "conversation": with_text["review_id"], "text": with_text["text"],
                                "event_id": [_olist_event_id(f"review/{r}/{o}") for r, o in
                                             zip(with_text["review_id"], with_text["order_id"], strict=True)]}))
    ev = pd.concat(events, ignore_index=True)
    ev["t"] = ev["t"].astype("int64")

    out = pd.DataFrame(index=pd.Index(sorted(ev["person"].unique()), name="customer_id"))
    newest = ev.groupby("person")["t"].max()
    out["events_total"] = ev.groupby("person").size()
    out["first_seen_ms"] = ev.groupby("person")["t"].min()
    out["last_seen_ms"] = newest
    out["active_days"] = ev.assign(day=ev["t"] // DAY).groupby("person")["day"].nunique()
    placed = ev[ev["kind"] == "placed"]
    out["last_order_ms"] = placed.groupby("person")["t"].max()
    out["as_of"] = as_of_times(newest.rename_axis("customer_id"), out["last_order_ms"], None, 0, watermark_ms)
    placed = placed.join(out["as_of"], on="person")
    by = placed.groupby("person")
    out["orders_total"] = by.size()
    out["revenue_total"] = by["cents"].sum() / 100
    out["average_order_value"] = out["revenue_total"] / out["orders_total"]
    out["first_order_ms"] = by["t"].min()
    _order_times(out)
    for width in (30, 90, 365):
        age = placed["as_of"] // DAY - placed["t"] // DAY
        inside = placed[(age >= 0) & (age < width)].groupby("person")
        out[f"orders_{width}d"] = inside.size()
        out[f"revenue_{width}d"] = inside["cents"].sum() / 100
    out["orders_cancelled"] = ev[ev["kind"] == "cancelled"].groupby("person").size()
    delivered = ev[ev["kind"] == "delivered"].groupby("person")
    out["orders_delivered"] = delivered.size()
    out["last_delivered_ms"] = delivered["t"].max()
    out["orders_refunded"] = 0  # Olist records no refunds
    out["refunded_total"] = 0.0

    # no clickstream: no activity counts, sessions, cart or checkout; every order is on the web channel
    for name in ALL_COUNTS:
        for window in ("1h", "24h", "7d", "30d", "total"):
            out[f"{name}_{window}"] = 0
    for name in ("sessions", "bounce_sessions", "session_depth", "cart_items", "cart_products",
                 "cart_unpriced_items"):
        out[name] = 0
    out["session_length_s"] = 0.0
    out["cart_value"] = 0.0
    for name in ("cart_since_ms", "cart_last_change_ms", "checkout_started_ms"):
        out[name] = np.nan
    out["checkout_open"] = False
    out["acquisition_channel"] = "web"
    out["acquisition_source"] = None

    # preferences: weight 5 per order line, by the product's category (in English where translated)
    category = products.set_index("product_id")["product_category_name"]
    category = category.map(english).fillna(category)
    lines = items.assign(category_id=items["product_id"].map(category)).merge(
        placed[["order_id", "person", "t"]], on="order_id")
    lines = lines.rename(columns={"person": "customer_id"}).assign(day=lines["t"] // DAY, w=5)
    lines = lines.join((out["as_of"] // DAY).rename("today"), on="customer_id")
    out["top_categories"] = _top(lines, "category_id", half_life_days, horizon_days, top)
    out["top_brands"] = ""

    # service: every review is one customer message in its own conversation (the review id)
    review = ev[ev["kind"] == "review"].join(out["as_of"], on="person")
    messages = review.groupby("person")
    out["chat_messages"] = messages.size()
    out["chat_customer_messages"] = out["chat_messages"]
    out["conversations"] = messages["conversation"].nunique()
    newest_message = review.groupby(["person", "conversation"])["t"].max().reset_index().join(out["as_of"], on="person")
    open_ = newest_message[newest_message["t"] > newest_message["as_of"] - 30 * DAY]
    out["unresolved_conversations"] = open_.groupby("person").size()
    if sentiment is not None:
        review = review.assign(score=[sentiment(text, "pt") for text in review["text"]])
        ordered = review.sort_values(["person", "t", "event_id"])
        out["last_sentiment"] = ordered.groupby("person")["score"].last()
        negative = ordered["score"] < negative_below
        # the streak: negative messages after the customer's last non-negative one
        after_positive = (~negative).astype(int)[::-1].groupby(ordered["person"][::-1]).cumsum()[::-1]
        out["negative_streak"] = negative[after_positive == 0].groupby(ordered["person"]).sum()
        age = review["as_of"] // DAY - review["t"] // DAY
        recent = review[(age >= 0) & (age < 7)]
        micro = recent.assign(micro=(recent["score"] * 1_000_000).round().astype("int64")).groupby("person")["micro"]
        out["sentiment_7d"] = micro.sum() / micro.size() / 1_000_000
    counts = ["orders_total", "orders_30d", "orders_90d", "orders_365d", "orders_cancelled", "orders_delivered",
              "chat_messages", "chat_customer_messages", "conversations", "unresolved_conversations", "events_total"]
    if sentiment is not None:
        counts.append("negative_streak")
    out[counts] = out[counts].fillna(0).astype("int64")
    for width in (30, 90, 365):
        out[f"revenue_{width}d"] = out[f"revenue_{width}d"].fillna(0.0)
    out["revenue_total"] = out["revenue_total"].fillna(0.0)
    out["top_categories"] = out["top_categories"].fillna("")
    out["late_events"] = 0
    return _stage_and_segments(out)
