"""What the identity stage writes to ``identified-*`` (streams/identity.py ``resolved_value``): a re-keyed event
names its origin in ``resolved_from``; an input event cannot choose one (the stage removes it)."""

from __future__ import annotations

import orjson
import pytest

from schemas.identity import source_topic
from schemas.validation import Limits, validate
from streams.identity import resolved_value

VIEW = {"event_id": "v1", "anonymous_id": "a-1", "event_time": "2026-03-01T10:00:00Z", "type": "product_view",
        "product_id": "p1"}


def _resolved(body: dict[str, object], profile: str) -> dict[str, object]:
    value = orjson.dumps(body)
    event = validate("clickstream", value, str(body.get("customer_id") or body["anonymous_id"]).encode(), Limits())
    out = resolved_value(value, event.customer_id, event.resolved_from, profile)
    assert validate(source_topic("identified-clickstream"), out, profile.encode(), Limits()).customer_id == profile
    return orjson.loads(out)


def test_a_rekeyed_event_names_its_subject_as_its_origin() -> None:
    assert _resolved(VIEW, "c-1") == {**VIEW, "customer_id": "c-1", "resolved_from": "a-1"}
    known = {**VIEW, "customer_id": "c-2", "anonymous_id": None}
    assert _resolved(known, "c-1")["resolved_from"] == "c-2"


def test_an_event_kept_on_its_own_profile_is_written_as_it_came() -> None:
    value = orjson.dumps(VIEW)
    assert resolved_value(value, "a-1", None, "a-1") is value


@pytest.mark.parametrize("profile", ["a-1", "c-1"])
def test_an_origin_the_input_claims_is_never_kept(profile: str) -> None:
    """Removed when the event stays on its own profile, overwritten with its subject when it is re-keyed."""
    out = _resolved({**VIEW, "resolved_from": "x-9"}, profile)
    rekeyed = {"resolved_from": "a-1"} if profile != "a-1" else {}
    assert out == {**VIEW, "customer_id": profile, **rekeyed}
