"""The delivery ledger file: shared by the workers of an adapter, durable across instances, whole lines only."""

from __future__ import annotations

from pathlib import Path

from streams.delivery_ledger import FileLedger, ledger_path


def test_workers_sharing_the_file_see_each_others_deliveries(tmp_path: Path) -> None:
    path = ledger_path(tmp_path, "journey-deliver-webhook")
    one, two = FileLedger(path), FileLedger(path)
    one.record("msg-a", 3)
    assert two.delivered("msg-a") and two.attempts("msg-a") == 3, "re-read before answering"
    two.record("msg-b")
    one.sync()
    two.sync()
    restarted = FileLedger(path)
    assert (restarted.delivered("msg-a"), restarted.delivered("msg-b"), restarted.delivered("msg-c")) == (
        True, True, False)
    assert len(restarted) == 2 and path.read_text() == "msg-a 3\nmsg-b 1\n"
    one.close()
    two.close()


def test_a_line_being_written_is_not_read_until_it_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "ledger.ids"
    ledger = FileLedger(path)
    with path.open("ab") as other:
        other.write(b"msg-half")
        other.flush()
        assert not ledger.delivered("msg-half") and not ledger.delivered("msg-hal")
        other.write(b" 2\n")
    assert ledger.delivered("msg-half") and ledger.attempts("msg-half") == 2
