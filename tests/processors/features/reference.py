"""An independent batch computation of the customer features with pandas, straight from the CSVs.

It shares no code with the pipeline: the definitions (documented in processors/features)
are re-implemented here on whole columns, so a test can compare the streaming profile
of every customer with it.
"""

from __future__ import annotations

from pathlib import Path

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


def taobao_features(path: Path, session_gap_ms: int = 30 * MINUTE, cart_expiry_ms: int = 30 * DAY,
                    half_life_days: float = 14.0, horizon_days: int = 90, top: int = 3) -> pd.DataFrame:
    """One row per customer with the features the Taobao sample determines, indexed by customer_id."""
    ev = taobao_events(path)
    clicks = ev[ev["type"] != "order_placed"]
    orders = ev[ev["type"] == "order_placed"]
    out = pd.DataFrame(index=pd.Index(sorted(ev["customer_id"].unique()), name="customer_id"))
    as_of = ev.groupby("customer_id")["t"].max()
    out["as_of"] = as_of
    out["first_seen_ms"] = ev.groupby("customer_id")["t"].min()
    out["last_seen_ms"] = as_of
    out["active_days"] = ev.assign(day=ev["t"] // DAY).groupby("customer_id")["day"].nunique()
    out["events_total"] = ev.groupby("customer_id").size()
    out["late_events"] = 0  # the replay is in event-time order: nothing is late

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

    # orders (Taobao has no prices: counts only)
    o = orders.join(as_of.rename("as_of"), on="customer_id")
    out["orders_total"] = o.groupby("customer_id").size()
    out["first_order_ms"] = o.groupby("customer_id")["t"].min()
    out["last_order_ms"] = o.groupby("customer_id")["t"].max()
    out["recency_days"] = (out["as_of"] - out["last_order_ms"]) / DAY
    n = out["orders_total"]
    out["days_between_orders"] = np.where(n > 1, (out["last_order_ms"] - out["first_order_ms"]) / DAY / (n - 1), np.nan)
    for width in (30, 90, 365):
        age = o["as_of"] // DAY - o["t"] // DAY
        out[f"orders_{width}d"] = o[(age >= 0) & (age < width)].groupby("customer_id").size()

    # cart: adds after the latest order, not expired, quantity 1 each, no price
    cart = clicks[clicks["type"] == "add_to_cart"].join(out["last_order_ms"], on="customer_id")
    cart = cart.join(as_of.rename("as_of"), on="customer_id")
    cart = cart[(cart["last_order_ms"].isna() | (cart["t"] > cart["last_order_ms"]))
                & (cart["t"] > cart["as_of"] - cart_expiry_ms)]
    out["cart_items"] = cart.groupby("customer_id").size()
    out["cart_products"] = cart.groupby("customer_id")["item_id"].nunique()
    out["cart_since_ms"] = cart.groupby("customer_id")["t"].min()

    # preferences: decayed interaction weights per category and day
    p = ev.assign(day=ev["t"] // DAY, w=ev["type"].map(WEIGHTS)).join((as_of // DAY).rename("today"), on="customer_id")
    p = p[(p["today"] - p["day"] >= 0) & (p["today"] - p["day"] < horizon_days)]
    p = p.groupby(["customer_id", "category_id", "day", "today"])["w"].sum().reset_index()
    p["score"] = p["w"] * 0.5 ** ((p["today"] - p["day"]) / half_life_days)
    scores = p.groupby(["customer_id", "category_id"])["score"].sum().reset_index()
    scores = scores.sort_values(["customer_id", "score", "category_id"], ascending=[True, False, True])
    out["top_categories"] = scores.groupby("customer_id").head(top).groupby("customer_id")["category_id"].agg(",".join)

    int_columns = [col for col in out.columns if col.endswith(("_1h", "_24h", "_7d", "_30d", "_90d", "_365d", "_total"))
                   or col in ("sessions", "bounce_sessions", "session_depth", "cart_items", "cart_products")]
    out[int_columns] = out[int_columns].fillna(0).astype("int64")
    out["top_categories"] = out["top_categories"].fillna("")
    return out


def _sao_paulo_ms(column: pd.Series) -> pd.Series:
    """Olist local times to epoch ms in UTC (ambiguous hours as summer time and times in the spring-forward
    gap moved an hour on, as Python's zoneinfo reads them)."""
    local = pd.to_datetime(column).dt.tz_localize("America/Sao_Paulo", ambiguous=True,
                                                   nonexistent=pd.Timedelta(hours=1))
    return (local.dt.tz_convert("UTC") - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(milliseconds=1)


def olist_features(directory: Path) -> pd.DataFrame:
    """Order (RFM) and review features per person (``customer_unique_id``), indexed by customer_id."""
    orders = pd.read_csv(directory / "olist_orders_dataset.csv")
    person = pd.read_csv(directory / "olist_customers_dataset.csv").set_index("customer_id")["customer_unique_id"]
    items = pd.read_csv(directory / "olist_order_items_dataset.csv")
    reviews = pd.read_csv(directory / "olist_order_reviews_dataset.csv")
    orders["person"] = orders["customer_id"].map(person)
    cents = ((items["price"] + items["freight_value"]).groupby(items["order_id"]).sum() * 100).round()
    orders["cents"] = orders["order_id"].map(cents).fillna(0).astype("int64")

    steps = {"order_purchase_timestamp": "placed", "order_approved_at": "paid",
             "order_delivered_carrier_date": "shipped", "order_delivered_customer_date": "delivered"}
    events = []
    for column, kind in steps.items():
        happened = orders[orders[column].notna()]
        events.append(pd.DataFrame({"person": happened["person"], "kind": kind, "t": _sao_paulo_ms(happened[column]),
                                    "cents": happened["cents"]}))
    cancelled = orders[orders["order_status"] == "canceled"]
    latest = pd.concat([_sao_paulo_ms(cancelled[c]).rename(c) for c in steps if cancelled[c].notna().any()], axis=1)
    events.append(pd.DataFrame({"person": cancelled["person"], "kind": "cancelled", "t": latest.max(axis=1),
                                "cents": 0}).dropna(subset=["t"]))
    text = (reviews["review_comment_title"].fillna("").str.strip() + reviews["review_comment_message"].fillna("")
            .str.strip())
    with_text = reviews[text != ""].merge(orders[["order_id", "person"]], on="order_id")
    events.append(pd.DataFrame({"person": with_text["person"], "kind": "review",
                                "t": _sao_paulo_ms(with_text["review_creation_date"]), "cents": 0,
                                "conversation": with_text["review_id"]}))
    ev = pd.concat(events, ignore_index=True)
    ev["t"] = ev["t"].astype("int64")

    out = pd.DataFrame(index=pd.Index(sorted(ev["person"].unique()), name="customer_id"))
    out["as_of"] = ev.groupby("person")["t"].max()
    out["events_total"] = ev.groupby("person").size()
    placed = ev[ev["kind"] == "placed"].join(out["as_of"], on="person")
    by = placed.groupby("person")
    out["orders_total"] = by.size()
    out["revenue_total"] = by["cents"].sum() / 100
    out["average_order_value"] = out["revenue_total"] / out["orders_total"]
    out["first_order_ms"] = by["t"].min()
    out["last_order_ms"] = by["t"].max()
    out["recency_days"] = (out["as_of"] - out["last_order_ms"]) / DAY
    n = out["orders_total"]
    out["days_between_orders"] = np.where(n > 1, (out["last_order_ms"] - out["first_order_ms"]) / DAY / (n - 1), np.nan)
    for width in (30, 90, 365):
        age = placed["as_of"] // DAY - placed["t"] // DAY
        inside = placed[(age >= 0) & (age < width)].groupby("person")
        out[f"orders_{width}d"] = inside.size()
        out[f"revenue_{width}d"] = inside["cents"].sum() / 100
    out["orders_cancelled"] = ev[ev["kind"] == "cancelled"].groupby("person").size()
    delivered = ev[ev["kind"] == "delivered"].groupby("person")
    out["orders_delivered"] = delivered.size()
    out["last_delivered_ms"] = delivered["t"].max()
    review = ev[ev["kind"] == "review"].groupby("person")
    out["chat_messages"] = review.size()
    out["conversations"] = review["conversation"].nunique()
    counts = ["orders_total", "orders_30d", "orders_90d", "orders_365d", "orders_cancelled", "orders_delivered",
              "chat_messages", "conversations", "events_total"]
    out[counts] = out[counts].fillna(0).astype("int64")
    for width in (30, 90, 365):
        out[f"revenue_{width}d"] = out[f"revenue_{width}d"].fillna(0.0)
    out["revenue_total"] = out["revenue_total"].fillna(0.0)
    out["late_events"] = 0
    return out


OLIST_COMPARED = [
    "orders_total", "revenue_total", "average_order_value", "first_order_ms", "last_order_ms", "recency_days",
    "days_between_orders", "orders_30d", "orders_90d", "orders_365d", "revenue_30d", "revenue_90d", "revenue_365d",
    "orders_cancelled", "orders_delivered", "last_delivered_ms", "chat_messages", "conversations", "events_total",
    "late_events",
]
