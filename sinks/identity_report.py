"""Identity resolution in numbers: the identified share of events and of revenue, and links and merges per day.

Each stored input event (``clickstream_events``, ``order_events``, ``chat_messages``) is in one class:

- ``known``: it named a customer when it arrived (``customer_id`` given; ``identify`` and ``alias`` too);
- ``identified``: it arrived with only an ``anonymous_id`` (stored under it as ``customer_id``), and that
  anonymous id has since been linked to a customer (a ``linked`` record of kind ``anonymous_id`` in
  ``identity_merges``), so its profile is the customer's;
- ``anonymous``: it arrived with only an ``anonymous_id`` that no customer is linked to yet.

Revenue is the amount of placed orders (``order_placed``, as ``orders_per_minute`` counts it), per
currency; its shares are within the currency. Merges per day: ``identity_merges`` records per
day of their event time and action. Read by ``journey report`` (sinks/report.py) and the dashboard.
"""

from __future__ import annotations

#: The class of a raw event row (the columns ``customer_id`` and ``anonymous_id``).
IDENTITY_CLASS = """multiIf(anonymous_id IS NULL OR anonymous_id != customer_id, 'known',
        customer_id IN (SELECT from_id FROM identity_merges WHERE action = 'linked' AND from_kind = 'anonymous_id'),
        'identified', 'anonymous')"""
EVENT_TABLES = ("clickstream_events", "order_events", "chat_messages")


def identified_events_sql(where: str = "1") -> str:
    """Events per identity class, and their share of all events (``where``: a filter on ``event_time``)."""
    events = " UNION ALL ".join(f"SELECT customer_id, anonymous_id FROM {t} WHERE {where}" for t in EVENT_TABLES)
    return f"""
        SELECT identity, count() AS events, events / sum(events) OVER () AS share
        FROM (SELECT {IDENTITY_CLASS} AS identity FROM ({events}))
        GROUP BY identity ORDER BY identity"""


def identified_revenue_sql(where: str = "1") -> str:
    """Placed orders and revenue per currency and identity class, and the class's share of the currency's revenue."""
    return f"""
        SELECT currency, identity, count() AS orders, sum(ifNull(amount, 0)) AS revenue,
               revenue / nullIf(sum(revenue) OVER (PARTITION BY currency), 0) AS share
        FROM (SELECT currency, amount, {IDENTITY_CLASS} AS identity FROM order_events
              WHERE type = 'order_placed' AND {where})
        GROUP BY currency, identity ORDER BY currency, identity"""


def merges_per_day_sql(where: str = "1") -> str:
    """Identity records per day (event time): profiles merged, identifiers linked, links refused."""
    return f"""
        SELECT toDate(event_time) AS day, countIf(action = 'merged') AS merges, countIf(action = 'linked') AS links,
               countIf(action = 'refused') AS refused
        FROM identity_merges FINAL WHERE {where} GROUP BY day ORDER BY day"""
