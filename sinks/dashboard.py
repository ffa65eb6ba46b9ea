"""The live dashboard: one local web page with the KPIs, the funnel, triggers and model metrics.

``journey run`` serves it while events flow (``journey dashboard`` serves it on its own); the
page asks ``/api/summary`` every couple of seconds, and the server answers from the same
ClickHouse views the report and analysts use, read through :mod:`sinks.access`. While a
pipeline runs, the embedded database is reached through its sink; the dashboard never opens
it itself then (that would lock the sink out), and says so until the sink answers.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from importlib import resources
from typing import Any

import orjson

from plumbing.http_endpoint import BackgroundHTTPServer, QuietHandler
from sinks.access import Reader
from sinks.identity_report import identified_events_sql, identified_revenue_sql, merges_per_day_sql
from sinks.reliability import WARNING_SQL
from sinks.report import FUNNEL_STEPS

log = logging.getLogger(__name__)

#: Every query behind the page, by its key in ``/api/summary`` (``make bench`` times each one).
QUERIES: dict[str, str] = {
    "totals": """
        SELECT (SELECT sum(events) FROM events_per_minute) AS events,
               (SELECT uniqExactMerge(visitors) FROM activity_per_minute_state) AS visitors,
               (SELECT uniqExactMerge(buyers) FROM activity_per_minute_state) AS buyers,
               (SELECT sum(orders_placed) FROM orders_per_minute) AS orders,
               if(visitors > 0, buyers / visitors, NULL) AS conversion,
               (SELECT sum(dead_letters) FROM dead_letters_per_minute) AS dead_letters,
               (SELECT count() FROM customer_profiles FINAL) AS profiles,
               (SELECT max(minute) FROM events_per_minute) AS latest_event_minute""",
    "events_by_topic": "SELECT topic, sum(events) AS events FROM events_per_minute GROUP BY topic ORDER BY topic",
    "revenue": "SELECT currency, sum(orders_placed) AS orders, sum(orders_per_minute.revenue) AS revenue "
               "FROM orders_per_minute GROUP BY currency HAVING orders > 0 ORDER BY currency",
    "funnel": f"SELECT step, uniqExactMerge(customers) AS customers FROM funnel_daily_state GROUP BY step "
              f"ORDER BY indexOf({list(FUNNEL_STEPS)}, step)",
    "daily": """
        SELECT day, visitors, buyers, orders FROM
        (SELECT toDate(minute) AS day, uniqExactMerge(visitors) AS visitors, uniqExactMerge(buyers) AS buyers
         FROM activity_per_minute_state GROUP BY day) AS a
        LEFT JOIN (SELECT toDate(minute) AS day, sum(orders_placed) AS orders FROM orders_per_minute
                   GROUP BY day) AS o USING day
        ORDER BY day DESC LIMIT 14""",
    "dead_letters": "SELECT reason, sum(dead_letters_per_minute.dead_letters) AS dead_letters "
                    "FROM dead_letters_per_minute GROUP BY reason ORDER BY dead_letters DESC",
    "triggers": "SELECT trigger, triggered, messaged, held_out, suppressed, treated_conversion, held_out_conversion, "
                "uplift, uplift_standard_error FROM trigger_conversion ORDER BY triggered DESC, trigger",
    "score_bands": "SELECT model, band, customers, share, average_probability FROM score_bands",
    "model_metrics": f"SELECT model, model_version, labels, positives, roc_auc, log_loss, brier, as_of, {WARNING_SQL} "
                     "FROM model_metrics FINAL ORDER BY model, labels DESC LIMIT 1 BY model",
    "identified_events": identified_events_sql(),
    "identified_revenue": identified_revenue_sql(),
    "identity_merges": merges_per_day_sql() + " DESC LIMIT 14",
}


def summary(reader: Reader) -> dict[str, Any]:
    """Everything the page shows, as plain JSON-able data."""

    def rows(sql: str) -> list[dict[str, Any]]:
        columns, values = reader.rows(sql)
        return [dict(zip(columns, row, strict=True)) for row in values]

    out: dict[str, Any] = {"generated_at": datetime.now(UTC).isoformat(timespec="seconds"), "source": reader.where}
    for key, sql in QUERIES.items():
        out[key] = rows(sql)
    out["totals"] = out["totals"][0]
    return out


def content_security_policy(page: bytes) -> str:
    """A strict policy for the page: nothing loads but its own inline script and style (by their hashes)
    and its data from the same origin; no frames, forms, plugins or base URL."""

    def hashes(tag: bytes) -> str:
        found = re.findall(rb"<" + tag + rb">(.*?)</" + tag + rb">", page, re.DOTALL)
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'" for body in found)

    return (f"default-src 'none'; script-src {hashes(b'script')}; style-src {hashes(b'style')}; "
            "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The ``Host`` headers the dashboard answers: its bound address and the loopback names, with its port.

    Any other name is refused (DNS rebinding: a web page whose name suddenly resolves to 127.0.0.1
    would otherwise read the dashboard's data from the user's browser)."""
    names = {host, "localhost", "127.0.0.1", "[::1]"}
    return frozenset({*names, *(f"{name}:{port}" for name in names)})


class DashboardServer(BackgroundHTTPServer):
    """Serves the page and its data on ``127.0.0.1:port`` (0: any free port) until closed."""

    def __init__(self, open_reader: Callable[[], Reader], port: int = 0, host: str = "127.0.0.1") -> None:
        self._open_reader = open_reader
        self._page = resources.files("sinks").joinpath("dashboard.html").read_bytes()
        super().__init__(host, port, self._handler(content_security_policy(self._page)), "dashboard")
        bound_host, bound_port = self._server.server_address[:2]
        self.allowed_hosts = allowed_hosts(str(bound_host), int(bound_port))

    @property
    def url(self) -> str:
        """The page's address (the server's, with its path ``/``)."""
        return f"{super().url}/"

    def data(self) -> tuple[HTTPStatus, dict[str, Any]]:
        try:
            reader = self._open_reader()
        except Exception as exc:  # not reachable yet (the sink is starting) or gone: the page says so
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"ClickHouse not reachable yet: {exc}"}
        try:
            return HTTPStatus.OK, summary(reader)
        except Exception as exc:
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)}
        finally:
            with contextlib.suppress(Exception):
                reader.close()

    def _handler(self, policy: str) -> type[QuietHandler]:
        dashboard = self

        class Handler(QuietHandler):
            reply_headers = (("Cache-Control", "no-store"),  # the page polls: always fresh numbers
                             ("Content-Security-Policy", policy), ("X-Content-Type-Options", "nosniff"),
                             ("Referrer-Policy", "no-referrer"), ("X-Frame-Options", "DENY"))

            def log_message(self, format: str, *args: Any) -> None:  # the page and its data name no customer
                log.debug("dashboard: " + format, *args)

            def do_GET(self) -> None:
                host = self.headers.get("Host")
                if host is None:
                    self._reply(HTTPStatus.BAD_REQUEST, b"a Host header is required\n", "text/plain")
                elif host.lower() not in dashboard.allowed_hosts:
                    self._reply(HTTPStatus.MISDIRECTED_REQUEST, b"unknown host name\n", "text/plain")
                elif self.path in ("/", "/index.html"):
                    self._reply(HTTPStatus.OK, dashboard._page, "text/html; charset=utf-8")
                elif self.path == "/api/summary":
                    status, data = dashboard.data()
                    self._reply(status, orjson.dumps(data, default=str), "application/json")
                else:
                    self._reply(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

        return Handler
