"""The identity graph: canonical profiles, merges, and the linking rules (kinds, known customers, the cap)."""

from __future__ import annotations

import pytest

from processors.identity.graph import IdentityGraph, Sighting
from processors.identity.rules import LinkRules

_n = iter(range(1_000_000))


def event(customer: str | None = None, anonymous: str | None = None, kind: str = "product_view",
          previous: str | None = None, **identifiers: str) -> Sighting:
    n = next(_n)
    return Sighting(f"e{n}", n, kind, customer, anonymous, identifiers, previous)


def test_an_anonymous_visitor_is_its_own_profile_until_identify_merges_it_into_the_customer() -> None:
    graph = IdentityGraph()
    assert graph.resolve(event(anonymous="a-1")).profile == "a-1"
    identify = graph.resolve(event("c-1", "a-1", "identify"))
    assert identify.profile == "c-1"
    merged = [(r.action, r.from_id, r.into_id, r.reason) for r in identify.records if r.action == "merged"]
    assert merged == [("merged", "a-1", "c-1", "identify")]
    assert ("linked", "anonymous_id", "a-1") in [(r.action, r.from_kind, r.from_id) for r in identify.records]
    assert graph.resolve(event(anonymous="a-1")).profile == "c-1"  # later anonymous events go to the customer
    assert graph.resolve(event("c-1")).profile == "c-1"
    assert len(graph.components) == 1


def test_identify_before_any_anonymous_event_links_and_retires_the_visitor_id() -> None:
    """No profile of a-1 was made here, but one may have been (by the stage before a crash, which then resolves
    the visitor's events again in another order): a-1 is retired all the same, and its events go through it."""
    graph = IdentityGraph()
    res = graph.resolve(event("c-1", "a-1", "identify"))
    assert [(r.action, r.from_id, r.into_id) for r in res.records] == [("linked", "a-1", "c-1"),
                                                                       ("merged", "a-1", "c-1")]
    later = graph.resolve(event(anonymous="a-1"))
    assert (later.profile, later.via) == ("c-1", "a-1")


def test_identify_never_merges_two_known_customers() -> None:
    graph = IdentityGraph()
    graph.resolve(event("c-1", "a-1", "identify"))
    res = graph.resolve(event("c-2", "a-1", "identify"))  # a shared browser: the second login is another person
    assert res.profile == "c-2"
    assert [(r.action, r.reason, r.from_id) for r in res.records] == [("refused", "known_conflict", "a-1")]
    assert graph.profile_of("anonymous_id", "a-1") == "c-1"


def test_alias_merges_the_previous_customer_into_the_new_one() -> None:
    graph = IdentityGraph()
    graph.resolve(event("c-old"))
    graph.resolve(event("c-old", "a-9", "identify"))
    res = graph.resolve(event("c-new", kind="alias", previous="c-old"))
    assert [(r.from_id, r.into_id) for r in res.records if r.action == "merged"] == [("c-old", "c-new")]
    assert graph.profile_of("customer_id", "c-old") == graph.profile_of("anonymous_id", "a-9") == "c-new"
    assert res.retired == {"customer_id:c-old"}


def test_auto_link_kinds_join_on_ordinary_events_and_never_link_kinds_do_not() -> None:
    graph = IdentityGraph(LinkRules(auto_link=frozenset({"email_hash"}), never_link=frozenset({"device_id"})))
    graph.resolve(event("c-1", email_hash="h-1", device_id="d-1"))
    assert graph.resolve(event(anonymous="a-2", email_hash="h-1")).profile == "c-1"  # newsletter click by email
    other = graph.resolve(event(anonymous="a-3", device_id="d-1"))  # the same (shared) device
    assert other.profile == "a-3"
    assert graph.find("device_id", "d-1") is None
    assert "device_id:d-1" in graph.find("customer_id", "c-1").seen


def test_a_kind_outside_auto_link_joins_only_on_identify() -> None:
    graph = IdentityGraph(LinkRules(auto_link=frozenset({"anonymous_id"}), never_link=frozenset()))
    graph.resolve(event("c-1", loyalty_id="L1"))
    assert graph.find("loyalty_id", "L1") is None
    graph.resolve(event("c-1", kind="identify", loyalty_id="L1"))
    assert graph.profile_of("loyalty_id", "L1") == "c-1"


def test_the_cap_stops_a_kiosk_from_merging_everyone() -> None:
    graph = IdentityGraph(LinkRules(max_component=4))
    for i in range(10):  # ten anonymous visitors scan the same kiosk loyalty card
        graph.resolve(event(anonymous=f"a-{i}", loyalty_id="kiosk"))
    assert len(graph.find("loyalty_id", "kiosk").members) == 4  # the card and the first three visitors
    assert {graph.profile_of("anonymous_id", f"a-{i}") for i in range(10)} == {"a-0", *(f"a-{i}" for i in range(3, 10))}
    for i in range(10):  # ten customers scan it too: known customers never merge without an alias
        graph.resolve(event(f"c-{i}", loyalty_id="kiosk"))
    assert {graph.profile_of("customer_id", f"c-{i}") for i in range(10)} == {f"c-{i}" for i in range(10)}
    assert max(len(c.members) for c in graph.components.values()) <= 4


def test_a_known_customer_takes_over_an_anonymous_component() -> None:
    graph = IdentityGraph()
    graph.resolve(event(anonymous="a-1", email_hash="h-1"))
    res = graph.resolve(event("c-1", email_hash="h-1"))
    assert [(r.from_id, r.into_id) for r in res.records if r.action == "merged"] == [("a-1", "c-1")]
    assert graph.profile_of("anonymous_id", "a-1") == "c-1"


def test_the_cap_refuses_and_records_the_link() -> None:
    graph = IdentityGraph(LinkRules(max_component=3))
    graph.resolve(event("c-1", "a-1", "identify", email_hash="h-1"))  # 3 nodes
    res = graph.resolve(event("c-1", kind="identify", phone_hash="p-1"))
    assert [(r.action, r.reason, r.from_kind, r.from_id, r.into_id) for r in res.records] == [
        ("refused", "cap", "phone_hash", "p-1", "c-1")]
    assert graph.find("phone_hash", "p-1").profile is None


def test_record_ids_derive_from_the_event_so_a_replay_makes_the_same_records() -> None:
    first, second = IdentityGraph(), IdentityGraph()
    events = [event(anonymous="a-1"), event("c-1", "a-1", "identify")]
    ids = [[r.record_id for e in events for r in g.resolve(e).records] for g in (first, second)]
    assert ids[0] == ids[1] and len(set(ids[0])) == len(ids[0])


@pytest.mark.parametrize(("rules", "message"), [
    ({"auto_link": frozenset({"shoe_size"})}, "unknown identifier kinds"),
    ({"auto_link": frozenset({"device_id"})}, "both auto-linked and never linked"),
    ({"max_component": 1}, "at least 2"),
])
def test_rules_are_checked(rules: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LinkRules(**rules)  # type: ignore[arg-type]


def test_erase_drops_the_whole_component_named_by_any_of_its_ids_and_nothing_else() -> None:
    graph = IdentityGraph()
    for customer, anonymous in (("c-1", "a-1"), ("c-2", "a-2")):
        graph.resolve(event(anonymous=anonymous))
        graph.resolve(event(customer, anonymous, "identify", email_hash=f"h-{customer}"))
    (root,) = {graph.root_of["customer_id:c-1"]}
    assert graph.erase(lambda value: value == "a-1") == [root]  # named by the anonymous id alone
    assert graph.find("customer_id", "c-1") is None and graph.find("email_hash", "h-c-1") is None
    assert graph.find("anonymous_id", "a-1") is None
    assert graph.profile_of("anonymous_id", "a-2") == "c-2" and len(graph.components) == 1
    assert graph.erase(lambda value: value == "nobody") == []
    assert graph.resolve(event(anonymous="a-1")).profile == "a-1"  # a later visit starts afresh


def test_events_of_a_retired_profile_go_through_it() -> None:
    """A subject whose profile was merged away is resolved to the survivor ``via`` its retired profile (the stage
    keys the event to it: it drops a repeat of an event it counted, and forwards the rest); the profile itself
    has no ``via``."""
    graph = IdentityGraph()
    graph.resolve(event(anonymous="a-1"))
    graph.resolve(event("c-old", "a-1", "identify"))
    again = graph.resolve(event(anonymous="a-1"))
    assert (again.profile, again.via) == ("c-old", "a-1")
    assert graph.resolve(event("c-old")).via is None  # the profile itself
    graph.resolve(event("c-new", kind="alias", previous="c-old"))
    assert [(r.profile, r.via) for r in (graph.resolve(event(anonymous="a-1")), graph.resolve(event("c-old")),
                                         graph.resolve(event("c-new")))] == \
        [("c-new", "a-1"), ("c-new", "c-old"), ("c-new", None)]
    (component,) = graph.components.values()
    assert component.absorbed == ["c-old", "a-1"]
