"""Identity resolution in the features processor: retiring a merged profile and folding it into the survivor.

The identity stage (streams/identity.py) sends every decision to ``identity-merges`` keyed by the
profile it concerns. On a ``merged`` record the retired profile's state is marked ``merged_into``
(its profile record says so from then on) and a copy goes to ``profile-handoffs`` keyed by the
survivor, whose state merges it (processors/features/merge.py says which features merge exactly); a
handoff already merged (same record id) is skipped, so a redelivered one counts once. An event that
reaches a retired profile afterwards (re-keyed to it before the merge, or naming it as its subject) is
forwarded to the survivor on its ``identified-*`` topic with ``customer_id`` rewritten, unless the
retired profile counted it already (a repeat: its count went over with the handoff); a handoff
reaching a retired survivor (a chain of merges) is forwarded likewise. Whatever the order the three
arrive in, each event is counted once, in the survivor.
"""

from __future__ import annotations

import pickle
from datetime import datetime
from typing import Any

import orjson

from processors.features.engine import CustomerState
from processors.features.merge import merge_states
from processors.output import Output
from schemas.identity import IDENTIFIED_PREFIX, PROFILE_HANDOFFS


def merged_into(state: CustomerState) -> str | None:
    """The profile this one was merged into, or None while it is live."""
    return None if state.identity is None else state.identity.get("merged_into")


def on_merge_record(state: CustomerState, value: bytes | None, key: bytes | None) -> list[Output]:
    """Apply one ``identity-merges`` record to the profile it is keyed by (only ``merged`` ones matter)."""
    record = orjson.loads(value or b"{}")
    if record.get("action") != "merged" or key is None or record.get("from_id") != key.decode():
        return []
    if merged_into(state) is not None:
        return []  # already retired (a redelivered record)
    into = record["into_id"]
    merged_at_ms = round(datetime.fromisoformat(record["event_time"].replace("Z", "+00:00")).timestamp() * 1000)
    state.identity = {**(state.identity or {}), "merged_into": into, "merged_at_ms": merged_at_ms}
    if state.events == 0:
        return []  # nothing of it was seen (yet): events that come later are forwarded
    handoff = pickle.dumps((record["record_id"], state.customer_id, state), pickle.HIGHEST_PROTOCOL)
    return [(PROFILE_HANDOFFS, into.encode(), handoff)]


def on_handoff(state: CustomerState, value: bytes) -> list[Output]:
    """Merge a retired profile's state into this one (or pass it on when this one is retired too)."""
    record_id, _, other = pickle.loads(value)  # written by on_merge_record: the features worker's own topic
    successor = merged_into(state)
    if successor is not None:
        return [(PROFILE_HANDOFFS, successor.encode(), value)]
    identity = state.identity = state.identity or {}
    done: list[str] = identity.setdefault("merged_from", [])
    if record_id in done:
        return []
    done.append(record_id)
    merge_states(state, other)
    return []


def forward(state: CustomerState, topic: str, value: bytes | None) -> list[Output]:
    """An event for a retired profile, re-keyed to the profile it was merged into; dropped if this profile
    already counted it (its state, with the event, went to the survivor: the identity stage re-sent it)."""
    into = merged_into(state)
    assert into is not None
    if value is None or not topic.startswith(IDENTIFIED_PREFIX):
        return []
    try:
        body: Any = orjson.loads(value)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(body, dict) or body.get("event_id") in state.recent_ids:
        return []
    body["customer_id"] = into
    if body.get("resolved_from") is None:  # its origin stays: lateness is checked per origin (event_time.py)
        body["resolved_from"] = state.customer_id
    return [(topic, into.encode(), orjson.dumps(body))]
