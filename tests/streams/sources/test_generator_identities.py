"""The generator's identity cases (``identities=IdentityMix(...)``): anonymous first visits that log in,
shared devices, customers with two e-mails; exact counts, seeded, and nothing changes when off."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from typing import Any

import orjson
import pytest

from streams.sources.generator import Generator, IdentityMix, generate
from streams.sources.generator_stream import stream
from streams.sources.record import SourceRecord
from tests.streams.sources.helpers import check_records

MIX = IdentityMix(anonymous=45, shared_devices=12, two_emails=30)


def _bodies(records: list[SourceRecord]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records]


def _digest(records: list[SourceRecord]) -> str:
    digest = hashlib.sha256()
    for r in records:
        digest.update(r.topic.encode() + b"\0" + r.key + b"\0" + r.value + b"\n")
    return digest.hexdigest()


@pytest.fixture(scope="module")
def run() -> tuple[Generator, list[SourceRecord]]:
    generator = Generator(customers=150, days=10, seed=5, identities=MIX)
    return generator, generator.records()


def test_off_by_default_output_is_byte_identical_to_before() -> None:
    """Without the option the traffic is the one the generator made before it existed: the digest below was
    taken from the code before the option (commit 3f83e86) for these arguments."""
    plain = generate(customers=300, days=20, seed=3)
    assert _digest(plain) == "7c717f6d24afbee6bc9cf6c432fa5c86226e1135bda0c556203c1f26d52eb551"
    assert _digest(generate(customers=300, days=20, seed=3, identities=None)) == _digest(plain)


def test_same_seed_same_bytes_other_seed_other_identities(run: tuple[Generator, list[SourceRecord]]) -> None:
    generator, records = run
    again = Generator(customers=150, days=10, seed=5, identities=MIX)
    assert _digest(again.records()) == _digest(records)
    assert again.truth.anonymous == generator.truth.anonymous and again.truth.emails == generator.truth.emails
    assert _digest(list(stream(customers=150, days=10, seed=5, identities=MIX))) == _digest(records)
    other = Generator(customers=150, days=10, seed=6, identities=MIX)
    other.records()
    assert set(other.truth.anonymous).isdisjoint(generator.truth.anonymous)


def test_every_record_is_valid_and_the_counts_are_the_ones_asked(run: tuple[Generator, list[SourceRecord]]) -> None:
    generator, records = run
    truth = generator.truth
    types = check_records(records)
    bodies = _bodies(records)
    identifies = [b for b in bodies if b["type"] == "identify"]
    logins = [b for b in identifies if "anonymous_id" in b]
    assert types["identify"] == len(identifies) == MIX.anonymous + MIX.two_emails
    assert len(logins) == len(truth.anonymous) == MIX.anonymous
    assert {b["anonymous_id"]: b["customer_id"] for b in logins} == truth.anonymous
    anonymous_ids = {b["anonymous_id"] for b in bodies if "customer_id" not in b}
    assert anonymous_ids == set(truth.anonymous)  # every anonymous visit logs in, no other anonymous id

    users: dict[str, set[str]] = defaultdict(set)
    for b in bodies:
        if "device_id" in b:
            users[b["device_id"]].add(b.get("customer_id") or truth.anonymous[b["anonymous_id"]])
    assert Counter(len(c) for c in users.values()) == Counter({1: 150 - 2 * MIX.shared_devices,
                                                               2: MIX.shared_devices})
    assert {c: d for d, cs in users.items() for c in cs} == truth.devices

    emails: dict[str, set[str]] = defaultdict(set)
    for b in bodies:
        if "email_hash" in b:
            emails[b["customer_id"]].add(b["email_hash"])
    assert emails == {c: set(e) for c, e in truth.emails.items()}
    assert Counter(len(e) for e in emails.values()) == Counter({1: 150 - MIX.two_emails, 2: MIX.two_emails})
    assert len({e for es in emails.values() for e in es}) == 150 + MIX.two_emails  # no address is shared


def test_an_anonymous_visit_ends_with_its_identify(run: tuple[Generator, list[SourceRecord]]) -> None:
    """Anonymous events carry no customer id and come before their identify (in the stream's order); after
    it the customer's events carry its id; keys follow the subject."""
    generator, records = run
    identified_at: dict[str, int] = {}
    anonymous_events: Counter[str] = Counter()
    for i, (record, body) in enumerate(zip(records, _bodies(records), strict=True)):
        anonymous = body.get("anonymous_id")
        if body["type"] == "identify" and anonymous is not None:
            identified_at[anonymous] = i
            assert record.key == body["customer_id"].encode()
        elif anonymous is not None:
            assert "customer_id" not in body and record.topic == "clickstream" and record.key == anonymous.encode()
            assert anonymous not in identified_at, "an anonymous event after its identify"
            assert body["session_id"].startswith(anonymous)  # the session id does not give the customer away
            anonymous_events[anonymous] += 1
        else:
            assert record.key == body["customer_id"].encode()
    assert set(identified_at) == set(anonymous_events) == set(generator.truth.anonymous)


def test_the_journeys_are_the_same_with_the_option_only_relabelled(run: tuple[Generator, list[SourceRecord]]) -> None:
    """The option draws nothing from the random streams: the same events at the same times, by the same (true)
    customers, plus the identify events."""
    generator, records = run
    truth = generator.truth

    def events(bodies: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
        return Counter((b.get("customer_id") or truth.anonymous[b["anonymous_id"]], b["event_time"], b["type"])
                       for b in bodies if b["type"] != "identify")

    plain = _bodies(generate(customers=150, days=10, seed=5))
    assert events(_bodies(records)) == events(plain)


def test_counts_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        Generator(customers=10, days=1, identities=IdentityMix(shared_devices=6))
    with pytest.raises(ValueError, match=">= 0"):
        Generator(customers=10, days=1, identities=IdentityMix(anonymous=-1))
    assert IdentityMix.parse("anonymous=3, shared-devices=2,two_emails=1") == IdentityMix(3, 2, 1)
    with pytest.raises(ValueError, match="NAME=COUNT"):
        IdentityMix.parse("anonymous=many")
