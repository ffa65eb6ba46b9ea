"""The edge: sources send no clear direct identifier (real datasets hold some: Olist reviews, twcs tweets)."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
from pydantic import SecretStr

from schemas.personal import holds_identifier
from schemas.validation import Limits, Rejected, validate
from streams.pseudonym import Pseudonymizer
from streams.sources import open_source

PSEUDO = Pseudonymizer(SecretStr("k" * 32))


def _texts(records: list) -> list[str]:
    return [orjson.loads(r.value).get("text", "") for r in records if r.topic == "chat"]


def test_dataset_free_text_is_redacted(datasets: Path) -> None:
    raw = (datasets / "olist" / "olist_order_reviews_dataset.csv").read_text()
    assert "@hotmail.com" in raw  # the source does hold emails
    for spec in (f"olist:{datasets / 'olist'}", f"twcs:{datasets / 'twcs_head5000.csv'}"):
        records, _ = open_source(spec)
        texts = _texts(records)
        assert any("[email]" in t or "[phone]" in t for t in texts), spec
        assert not [t for t in texts if holds_identifier(t)], spec
        for record in records[::5]:
            try:
                validate(record.topic, record.value, record.key, Limits(max_future=Limits().max_future * 10**6))
            except Rejected as rejected:
                assert rejected.reason != "clear_identifier", spec


def test_mapped_replay_pseudonymizes_emails_and_drops_identifier_columns(tmp_path: Path) -> None:
    path = tmp_path / "shop.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["Email", "Name", "Phone", "IP", "When", "Query"])
        writer.writerow(["Ana@Example.com", "Ana Lima", "+55 11 98765-4321", "10.1.2.3", "2024-05-01 10:00",
                         "shoes for ana@example.com"])
    records, stats = open_source(f"csv:{path}", mapping="customer_id=Email,name=Name,phone=Phone,ip=IP,"
                                 "event_time=When,query=Query,type=:search", pseudonym=PSEUDO.pseudonym)
    (record,) = records
    body = orjson.loads(record.value)
    assert body["customer_id"] == PSEUDO.pseudonym("ana@example.com") == record.key.decode()
    assert body["query"] == "shoes for [email]"
    for clear in (b"Ana", b"example", b"98765", b"10.1.2.3"):
        assert clear not in record.value
    assert stats.left_out["personal.name"] == stats.left_out["personal.phone"] == 1
    validate(record.topic, record.value, record.key, Limits())


def test_the_edge_redacts_taxpayer_numbers_and_00_phones(tmp_path: Path) -> None:
    path = tmp_path / "shop.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["Customer", "When", "Query"])
        writer.writerow(["123.456.789-09", "2024-05-01 10:00", "nota para cpf 12345678909 tel 00447900248601"])
    records, _ = open_source(f"csv:{path}", mapping="customer_id=Customer,event_time=When,query=Query,type=:search",
                             pseudonym=PSEUDO.pseudonym)
    (record,) = records
    body = orjson.loads(record.value)
    assert body["customer_id"] == PSEUDO.pseudonym("123.456.789-09") == record.key.decode()
    assert body["query"] == "nota para cpf [cpf] tel [phone]"
    validate(record.topic, record.value, record.key, Limits(max_future=Limits().max_future * 10**6))
