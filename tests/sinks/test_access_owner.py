"""A live owner of the embedded database that is slow to answer is still its owner (a busy machine)."""

from __future__ import annotations

import os
import time
from http import HTTPStatus
from pathlib import Path

import orjson

from plumbing.http_endpoint import BackgroundHTTPServer, QuietHandler
from sinks.access import OWNER_FILE, PING_SECONDS, _owner


class SlowPing(QuietHandler):
    """Answers /ping, the first time only after longer than one ping waits."""

    answered: list[float] = []

    def do_GET(self) -> None:
        if not SlowPing.answered:
            time.sleep(PING_SECONDS + 1.5)
        SlowPing.answered.append(time.monotonic())
        self._reply(HTTPStatus.OK, b"ok\n")


def test_a_slow_owner_is_asked_again_not_taken_for_gone(tmp_path: Path) -> None:
    with BackgroundHTTPServer("127.0.0.1", 0, SlowPing, "slow-owner") as server:
        info = {"pid": os.getpid(), "url": server.url, "token": "t"}
        (tmp_path / OWNER_FILE).write_bytes(orjson.dumps(info))
        assert _owner(tmp_path) == info
        assert len(SlowPing.answered) >= 1


def test_an_owner_whose_process_is_gone_is_none(tmp_path: Path) -> None:
    (tmp_path / OWNER_FILE).write_bytes(orjson.dumps({"pid": 2**22 + 12345, "url": "http://127.0.0.1:9", "token": ""}))
    assert _owner(tmp_path) is None
