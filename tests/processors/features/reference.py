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
