"""Real servers on loopback for the delivery tests: an HTTP webhook receiver and an SMTP server (aiosmtpd).

Registered as a pytest plugin by ``tests/conftest.py``, so the ``receiver`` and ``smtp_server``
fixtures serve the unit tests of the senders and the integration tests of the delivery worker alike.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from streams.delivery import SIGNATURE_HEADER

SMTP_LOGIN = "journey"
SMTP_PASSWORD = "smtp-password-that-must-not-leak"


class Receiver(BaseHTTPRequestHandler):
    """Answers 500 to the first ``fail`` requests, then 204; keeps what it received and what it answered.

    With ``secret`` set, a request whose signature header is not the HMAC-SHA256 of its body under
    that key is answered 401. Each answer waits ``delay`` seconds first (a slow endpoint).
    """

    fail = 0
    delay = 0.0
    secret: bytes | None = None
    received: list[tuple[dict[str, str], bytes]] = []
    statuses: list[int] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        cls.received.append((dict(self.headers), body))
        expected = "sha256=" + hmac.new(cls.secret or b"", body, hashlib.sha256).hexdigest()
        if cls.secret is not None and not hmac.compare_digest(self.headers.get(SIGNATURE_HEADER, ""), expected):
            status = 401
        else:
            status = 500 if len(cls.received) <= cls.fail else 204
        time.sleep(cls.delay)
        cls.statuses.append(status)
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[Receiver]]]:
    """A webhook receiver on loopback: its URL and its handler class (set ``fail``/``secret``/``delay`` on it)."""
    handler = type("Handler", (Receiver,), {"fail": 0, "delay": 0.0, "secret": None, "received": [], "statuses": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


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
