"""`journey query` works while another process owns the embedded database, and after it stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from sinks.access import OWNER_FILE

#: Plays the sink: owns the database, stores rows, serves queries, waits for stdin to close.
OWNER = """
import sys
from pathlib import Path
from sinks.access import QueryServer
from sinks.client import apply_schema, connect
data = Path(sys.argv[1])
dsn = f"chdb://{(data / 'clickhouse').resolve()}"
client = connect(dsn)
apply_schema(client)
client.command("INSERT INTO dead_letters (dead_letter_id, source_topic, reason, detail, original, received_at) "
               "SELECT concat('dl-', toString(number)), 'orders', if(number % 3 = 0, 'oversized', 'malformed_json'), "
               "'', 'x', now() FROM numbers(10)")
with QueryServer(dsn, data):
    print("ready", flush=True)
    sys.stdin.read()
"""
COUNT = "SELECT reason, count() AS n FROM dead_letters GROUP BY reason ORDER BY reason"
EXPECTED = [{"reason": "malformed_json", "n": 6}, {"reason": "oversized", "n": 4}]


def journey(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")} | {"JOURNEY_DATA_DIR": str(data)}
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def query(data: Path, sql: str) -> list[dict[str, object]]:
    result = journey(data, "query", "--format", "json", sql)
    assert result.returncode == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def start_owner(data: Path) -> subprocess.Popen[str]:
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(data)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None and owner.stdout.readline().strip() == "ready"
    return owner


def test_query_through_the_owner_then_directly(tmp_path: Path) -> None:
    owner = start_owner(tmp_path)
    try:
        assert oct((tmp_path / OWNER_FILE).stat().st_mode & 0o777) == "0o600"  # it holds the access token
        assert query(tmp_path, COUNT) == EXPECTED
        failed = journey(tmp_path, "query", "SELECT nope FROM dead_letters")
        assert failed.returncode == 1 and "nope" in failed.stdout + failed.stderr
    finally:
        assert owner.stdin is not None
        owner.stdin.close()
        owner.wait(30)
    assert not (tmp_path / OWNER_FILE).exists()
    assert query(tmp_path, COUNT) == EXPECTED  # nobody owns it now: opened directly


def test_an_owner_killed_without_cleanup_is_ignored(tmp_path: Path) -> None:
    owner = start_owner(tmp_path)
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait(30)
    assert (tmp_path / OWNER_FILE).exists()
    deadline = time.monotonic() + 30
    while True:  # the killed process's database lock goes with it
        result = journey(tmp_path, "query", "--format", "json", COUNT)
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert result.returncode == 0, result.stderr
    assert [orjson.loads(line) for line in result.stdout.splitlines()] == EXPECTED


@pytest.mark.parametrize("token", ["", "wrong"])
def test_the_owner_refuses_requests_without_its_token(tmp_path: Path, token: str) -> None:
    import urllib.error
    import urllib.request

    owner = start_owner(tmp_path)
    try:
        url = orjson.loads((tmp_path / OWNER_FILE).read_bytes())["url"]
        request = urllib.request.Request(f"{url}/query", data=orjson.dumps({"sql": COUNT}),
                                         headers={"Authorization": f"Bearer {token}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 403
    finally:
        assert owner.stdin is not None
        owner.stdin.close()
        owner.wait(30)
