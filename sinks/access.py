"""Reading ClickHouse from any process, whichever process owns the embedded database.

chDB lets one process open a database directory at a time. While a sink runs, it owns the
directory; it also serves read access to it on loopback (:class:`QueryServer`), and says
where in ``<data dir>/clickhouse-owner.json`` (readable by the owner's user only: it holds
the access token). :func:`open_reader` finds that server and uses it, or, when no process
owns the database, opens it itself. A ClickHouse server is read directly. So ``journey
query``, the customer lookup and reports work the same while the pipeline runs and after
it has stopped, and the caller never needs to know which process holds the database.

Results travel as Parquet on both paths (ClickHouse's Arrow output turns ``DateTime`` into
plain integers; its Parquet output keeps them timestamps), so a query gives the same Python
values whether it ran in this process or in the owner.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import logging
import os
import secrets
import urllib.error
import urllib.request
from http import HTTPStatus
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from clickhouse_connect.driver.client import Client

from plumbing.http_endpoint import BackgroundHTTPServer, QuietHandler
from plumbing.waiting import Stalled, retry_until_stalled
from sinks.client import ClickHouseUnavailable, connect

log = logging.getLogger(__name__)

OWNER_FILE = "clickhouse-owner.json"
#: Longest query a reader waits for through the owner (seconds).
REMOTE_TIMEOUT = 300.0
#: One ping of the owner; a live owner that does not answer in time is pinged again (see ``_owner``).
PING_SECONDS = 5.0


class QueryFailed(RuntimeError):
    """ClickHouse refused or failed the query; the message is ClickHouse's."""


def _arrow(raw: bytes) -> pa.Table:
    """The table of a Parquet body; statements without a result give an empty table."""
    return pq.read_table(io.BytesIO(raw)) if raw else pa.table({})


def _execute(client: Client, sql: str, parameters: dict[str, Any] | None) -> bytes:
    try:
        return client.raw_query(sql, parameters=parameters or None, fmt="Parquet")
    except Exception as exc:  # the driver's errors carry ClickHouse's message
        raise QueryFailed(str(exc)) from None


class QueryServer(BackgroundHTTPServer):
    """Serves queries against this process's embedded database to other processes (loopback only).

    Each request is ``POST /query`` with ``{"sql": ..., "parameters": {...}}`` and the token
    as a bearer credential; the answer is the result as Parquet, or the error text
    with status 400. Queries run on a client of their own (the owner's worker keeps its own).
    """

    def __init__(self, dsn: str, data_dir: Path) -> None:
        self.client = connect(dsn)
        self.owner_file = data_dir / OWNER_FILE
        self.token = secrets.token_urlsafe(24)
        super().__init__("127.0.0.1", 0, self._handler(), "clickhouse-queries")

    def start(self) -> QueryServer:
        """Serves, then says where in the owner file (this user's only: it holds the token)."""
        super().start()
        fd = os.open(self.owner_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(orjson.dumps({"pid": os.getpid(), "url": self.url, "token": self.token}))
        log.info("serving queries on the embedded database at %s", self.url)
        return self

    def close(self) -> None:
        """Takes back the owner file (when it is still this process's), stops serving and closes the client."""
        with contextlib.suppress(FileNotFoundError):
            if orjson.loads(self.owner_file.read_bytes()).get("pid") == os.getpid():
                self.owner_file.unlink()
        super().close()
        self.client.close()

    def _handler(self) -> type[QuietHandler]:
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                if self.path == "/ping":
                    self._reply(HTTPStatus.OK, b"ok\n", "text/plain")
                else:
                    self._reply(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

            def do_POST(self) -> None:
                expected = f"Bearer {server.token}"
                if self.path != "/query" or not hmac.compare_digest(self.headers.get("Authorization", ""), expected):
                    self._reply(HTTPStatus.FORBIDDEN, b"forbidden\n", "text/plain")
                    return
                try:
                    request = orjson.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                    body = _execute(server.client, str(request["sql"]), request.get("parameters"))
                except (QueryFailed, orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    self._reply(HTTPStatus.BAD_REQUEST, str(exc).encode(), "text/plain; charset=utf-8")
                    return
                self._reply(HTTPStatus.OK, body, "application/vnd.apache.parquet")

        return Handler


def _values(column: pa.ChunkedArray) -> list[Any]:
    """A column's Python values. ClickHouse ``String`` holds any bytes: a value that is not valid UTF-8
    (a dead letter's original) comes back as ``bytes`` instead of failing the whole query."""
    try:
        return column.to_pylist()
    except UnicodeDecodeError:
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            raise
    raw = column.cast(pa.large_binary()).to_pylist()
    return [_text_or_bytes(v) for v in raw]


def _text_or_bytes(value: bytes | None) -> str | bytes | None:
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value


class Reader:
    """Runs queries against the configured ClickHouse; see :func:`open_reader`."""

    def __init__(self, where: str, client: Client | None = None, url: str | None = None,
                 token: str | None = None) -> None:
        self.where = where
        self._client = client
        self._url = url
        self._token = token

    def arrow(self, sql: str, parameters: dict[str, Any] | None = None) -> pa.Table:
        """The result of ``sql`` (``{name:Type}`` placeholders filled from ``parameters``) as an Arrow table."""
        if self._client is not None:
            return _arrow(_execute(self._client, sql, parameters))
        request = urllib.request.Request(
            f"{self._url}/query", data=orjson.dumps({"sql": sql, "parameters": parameters or {}}),
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=REMOTE_TIMEOUT) as response:
                return _arrow(response.read())
        except urllib.error.HTTPError as exc:
            raise QueryFailed(exc.read().decode("utf-8", "replace")) from None
        except OSError as exc:
            raise ClickHouseUnavailable(f"the process owning the embedded database stopped answering: {exc}") from None

    def rows(self, sql: str, parameters: dict[str, Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of ``sql``."""
        table = self.arrow(sql, parameters)
        columns = [_values(table.column(i)) for i in range(table.num_columns)]
        return list(table.column_names), list(zip(*columns, strict=True)) if columns else []

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _owner(data_dir: Path) -> dict[str, Any] | None:
    """The owner file's details when its process is alive and answers, else None.

    A live owner that is slow to answer (a busy machine) is asked again until the stall time
    (``stall_seconds``): giving up early would make the caller open the database it holds."""
    try:
        info = orjson.loads((data_dir / OWNER_FILE).read_bytes())
        pid = int(info["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None

    def ping() -> None:
        os.kill(pid, 0)  # ProcessLookupError (not retried) once the owner is gone
        with urllib.request.urlopen(f"{info['url']}/ping", timeout=PING_SECONDS) as response:
            response.read()

    try:
        retry_until_stalled("the embedded database's owner answering", ping,
                            (TimeoutError, urllib.error.URLError, ConnectionError))
    except (OSError, Stalled):
        return None
    return dict(info)


def open_reader(dsn: str, data_dir: Path, username: str | None = None, password: str | None = None,
                direct: bool = True, **tls: Any) -> Reader:
    """A reader for ``dsn``: through the process that owns the embedded database, or directly.

    ``direct=False`` never opens the embedded database in this process (a process that starts
    the sink itself must not take the database first): without an owner it raises.
    """
    if not dsn.startswith("chdb://") or dsn == "chdb://memory":
        return Reader(f"ClickHouse at {dsn.split('@')[-1]}", client=connect(dsn, username, password, **tls))
    owner = _owner(data_dir)
    if owner is not None:
        return Reader(f"the embedded database, through the running sink (pid {owner['pid']})",
                      url=str(owner["url"]), token=str(owner["token"]))
    if not direct:
        raise ClickHouseUnavailable("the sink that owns the embedded database is not serving queries (yet)")
    try:
        return Reader("the embedded database", client=connect(dsn))
    except ClickHouseUnavailable as exc:
        raise ClickHouseUnavailable(
            f"{exc} (another process holds the embedded database and does not serve queries; "
            "is an older `journey sink` running on this data directory?)") from exc
