"""The dashboard's page runs nothing but itself (a strict Content-Security-Policy), and the server answers
only requests addressed to it by a loopback name (DNS rebinding). Real server on a free port; its data
source is not needed here (the page and the refusals come before any query)."""

from __future__ import annotations

import base64
import hashlib
import http.client
from collections.abc import Iterator
from html.parser import HTMLParser
from importlib import resources

import pytest

from sinks.access import Reader
from sinks.dashboard import DashboardServer


def no_database() -> Reader:
    raise RuntimeError("no database in this test")


@pytest.fixture
def board() -> Iterator[DashboardServer]:
    with DashboardServer(no_database) as server:
        yield server


def get(board: DashboardServer, path: str, host: str | None) -> http.client.HTTPResponse:
    address, port = board.url.removeprefix("http://").rstrip("/").split(":")
    connection = http.client.HTTPConnection(address, int(port), timeout=30)
    connection.putrequest("GET", path, skip_host=True)
    if host is not None:
        connection.putheader("Host", host.replace("PORT", port))
    connection.endheaders()
    response = connection.getresponse()
    response.read()
    return response


class Inline(HTMLParser):
    """The bodies of the page's inline <script> and <style> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: dict[str, list[str]] = {"script": [], "style": []}
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag != "script" or not dict(attrs).get("src"), "the page loads no script from elsewhere"
        self._open = tag if tag in self.bodies else None

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open:
            self.bodies[self._open].append(data)


def test_the_page_and_its_data_carry_a_strict_policy(board: DashboardServer) -> None:
    page = resources.files("sinks").joinpath("dashboard.html").read_text()
    inline = Inline()
    inline.feed(page)

    def allowed(kind: str) -> str:
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'"
                        for b in inline.bodies[kind])

    for path in ("/", "/api/summary"):
        response = get(board, path, "127.0.0.1:PORT")
        policy = {d.split()[0]: d.split()[1:] for d in response.headers["Content-Security-Policy"].split("; ")}
        assert policy["default-src"] == ["'none'"]
        assert policy["script-src"] == allowed("script").split() and policy["style-src"] == allowed("style").split()
        assert policy["connect-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"]
        assert policy["base-uri"] == ["'none'"] and policy["form-action"] == ["'none'"]
        assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "setAttribute(k, v)" in page and 'k === "style" ? e.style.cssText' in page, \
        "inline style attributes are refused by the policy: styles go through the CSSOM"


@pytest.mark.parametrize("host", ["127.0.0.1:PORT", "localhost:PORT", "LOCALHOST:PORT", "localhost", "[::1]:PORT"])
def test_loopback_names_are_answered(board: DashboardServer, host: str) -> None:
    assert get(board, "/", host).status == 200
    assert get(board, "/api/summary", host).status == 503  # reached the data path (no database here)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:PORT", "127.0.0.1.evil.example:PORT",
                                  "localhost.evil.example:PORT", "0.0.0.0:PORT"])
def test_other_host_names_are_refused(board: DashboardServer, host: str) -> None:
    assert get(board, "/", host).status == 421
    assert get(board, "/api/summary", host).status == 421


def test_a_request_without_host_is_refused(board: DashboardServer) -> None:
    assert get(board, "/api/summary", None).status == 400
