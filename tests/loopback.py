"""Real servers on loopback for the delivery tests: an HTTP webhook receiver and an SMTP server (aiosmtpd).

Registered as a pytest plugin by ``tests/conftest.py``, so the ``receiver`` and ``smtp_server``
fixtures serve the unit tests of the senders and the integration tests of the delivery worker alike.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from streams.senders import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

SMTP_LOGIN = "journey"
SMTP_PASSWORD = "smtp-password-that-must-not-leak"


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver that keeps what it received and what it answered.

    The first ``fail`` POSTs are answered ``fail_status`` (500 unless set: 429, 503, or a 3xx with
    a ``Location`` to another path), or, while ``close`` is left, the connection is closed without
    an answer; the rest 204. With ``secret`` set, a POST whose ``X-Journey-Signature`` is not the
    HMAC-SHA256 of ``<X-Journey-Timestamp>.<body>``, or whose timestamp is more than ``tolerance``
    seconds away, is answered 401 (what a receiver is told to check); with ``authorization``
    set, a POST without that ``Authorization`` header is answered 401 too. Each answer (only the
    first ``slow`` ones when ``slow`` is set) waits ``delay`` seconds first (a slow endpoint).
    A GET (a followed redirect) is kept in ``gets``.
    """

    fail = 0
    fail_status = 500
    close = 0
    delay = 0.0
    slow = 0
    secret: bytes | None = None
    tolerance = 300.0
    authorization: str | None = None
    received: list[tuple[dict[str, str], bytes]] = []
    statuses: list[int] = []
    gets: list[str] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        cls.received.append((dict(self.headers), body))
        if len(cls.received) <= cls.close:
            cls.statuses.append(0)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        signed = cls.secret is None or verify(cls.secret, body, self.headers.get(TIMESTAMP_HEADER, ""),
                                              self.headers.get(SIGNATURE_HEADER, ""), cls.tolerance)
        authorized = cls.authorization is None or self.headers.get("Authorization") == cls.authorization
        if not (signed and authorized):
            status = 401
        else:
            status = cls.fail_status if len(cls.received) <= cls.close + cls.fail else 204
        if not cls.slow or len(cls.received) <= cls.slow:
            time.sleep(cls.delay)
        cls.statuses.append(status)
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "/moved?token=not-for-logs")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        type(self).gets.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def start_receiver(port: int = 0) -> tuple[ThreadingHTTPServer, type[Receiver]]:
    """A receiver serving on loopback (``port`` 0: a free one) in a thread: its server and handler class."""
    handler = type("Handler", (Receiver,), {"fail": 0, "fail_status": 500, "close": 0, "delay": 0.0, "slow": 0,
                                            "secret": None, "tolerance": 300.0, "authorization": None, "received": [],
                                            "statuses": [], "gets": []})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


def stop_receiver(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[Receiver]]]:
    """A webhook receiver on loopback: its URL and its handler class (set ``fail``/``secret``/``delay`` on it)."""
    server, handler = start_receiver()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    stop_receiver(server)


class Inbox:
    """An SMTP handler keeping each accepted mail; refuses recipients at ``nowhere.test``."""

    def __init__(self) -> None:
        self.mails: list[Any] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.endswith("@nowhere.test"):
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(envelope)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    """An aiosmtpd server on loopback that accepts LOGIN ``journey`` / :data:`SMTP_PASSWORD`: its port and inbox."""
    inbox = Inbox()

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = (isinstance(data, LoginPassword) and data.login == SMTP_LOGIN.encode()
              and data.password == SMTP_PASSWORD.encode())
        return AuthResult(success=ok)

    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticate,
                            auth_require_tls=False)
    controller.start()
    yield controller.port, inbox
    controller.stop()
