"""A small HTTP endpoint a process serves beside its work, from a daemon thread.

The query server (:mod:`sinks.access`), the live dashboard (:mod:`sinks.dashboard`) and a
worker's metrics and health (:mod:`streams.health`) each answer a few paths while the process
does its real work. What they share lives here: the threaded server on its own daemon thread,
its start and stop, and a request handler that logs nothing and answers in one call.
"""

from __future__ import annotations

import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that writes no request log and sends whole replies with :meth:`_reply`."""

    #: Headers every :meth:`_reply` sends besides Content-Type and Content-Length, as (name, value).
    reply_headers: tuple[tuple[str, str], ...] = ()

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes every request to stderr: requests may name customers (queries,
        # lookups), and probes come every few seconds, so nothing is logged.
        pass

    def _reply(self, status: HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        """Sends ``status`` and ``body`` with its type and length (so the client knows where it ends)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in self.reply_headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class BackgroundHTTPServer:
    """Serves ``handler`` on ``host:port`` (port 0: a free one) from a daemon thread until closed.

    The serving thread and each request's thread are daemons, so an endpoint never keeps its
    process alive. Subclasses extend :meth:`start` and :meth:`close` with their own work.
    """

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler], thread_name: str) -> None:
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=thread_name, daemon=True)

    @property
    def url(self) -> str:
        """``http://host:port`` of the bound socket (with the port chosen when 0 was asked)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        """Starts serving; returns the server itself, so ``with Server(...) as server:`` works."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stops serving (waits for the serving loop to end) and frees the port."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()
