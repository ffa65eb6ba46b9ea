"""The identity graph: union-find over identifiers, resolving each event to its canonical profile id.

Nodes are ``kind:value`` (``customer_id:c-1``, ``anonymous_id:a-1``, ``email_hash:h-...``). A component
is the set of identifiers known to be one person; its ``profile`` is the id its events are keyed by
downstream: the customer id once one is known, else the first anonymous id seen as an event's subject.
The union-find is flat (every node points at its root) and a union relabels the retired component's
members; with components capped at ``LinkRules.max_component`` nodes a union costs at most that many
writes, and a lookup is one dict read.

A union of two components that both have a profile retires one of them: a ``merged`` record says which
profile went into which (the features processor folds the retired profile's state into the survivor).
Every anonymous id that joins a component with a profile is retired so, even one without a profile of
its own (the stage, re-reading after a crash, may resolve its events in another order than the run
that first sent them to its profile); events naming a retired profile are routed through it
(``Resolution.via``).
Links of identifiers are ``linked`` records; links the rules refuse are ``refused`` records. Every
record has an id derived from the event's id, so a record produced again after a restart is the same
record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from processors.identity.rules import LinkRules

Action = Literal["linked", "merged", "refused"]
CUSTOMER = "customer_id"


def node_of(kind: str, value: str) -> str:
    """A graph node's id."""
    return f"{kind}:{value}"


def split(node: str) -> tuple[str, str]:
    """``(kind, value)`` of a node id."""
    kind, _, value = node.partition(":")
    return kind, value


@dataclass
class Component:
    """One person's identifiers; ``root`` is its stable id (the changelog key)."""

    root: str
    profile: str | None
    known: bool
    members: list[str]
    #: Identifiers of never-linking kinds seen on the component's events (kind:value), at most the cap.
    seen: list[str] = field(default_factory=list)
    #: Profiles merged into this one (retired): events naming one of them as their subject are sent to it,
    #: and it forwards them (see :attr:`Resolution.via`).
    absorbed: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Sighting:
    """What the graph reads of one event (the stage builds it from the validated contract)."""

    event_id: str
    event_time_ms: int
    type: str
    customer_id: str | None  # a known customer; None when the event is anonymous
    anonymous_id: str | None
    identifiers: dict[str, str] = field(default_factory=dict)  # device_id, email_hash, ... -> value
    previous_id: str | None = None  # an alias event's merged customer id


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """One audit record (the ``identity-merges`` topic; schemas/identity.py)."""

    record_id: str
    action: Action
    reason: str  # identify, alias, auto (a link kind on an ordinary event), known_conflict, cap
    from_kind: str
    from_id: str
    into_id: str
    event_id: str
    event_time_ms: int


@dataclass
class Resolution:
    """The profile id an event belongs to, and what resolving it changed."""

    profile: str
    records: list[IdentityRecord] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)  # roots whose component changed
    retired: set[str] = field(default_factory=set)  # roots of components merged away
    #: The retired profile the event's subject was, if it was one: the stage keys the event to it, not to
    #: ``profile``. That profile already counted the events it saw before its merge and handed them to the
    #: survivor; if one of them is resolved again (the stage re-reads what it had not committed when it
    #: crashed, with a graph restored after the merge), the retired profile drops it as a duplicate, and
    #: forwards a new one, where sending it straight to the survivor would count it twice.
    via: str | None = None


class IdentityGraph:
    """Union-find over identifiers with linking rules; holds no I/O (the stage persists components)."""

    def __init__(self, rules: LinkRules | None = None) -> None:
        self.rules = rules or LinkRules()
        self.root_of: dict[str, str] = {}
        self.components: dict[str, Component] = {}

    def load(self, component: Component) -> None:
        """Take a component restored from the changelog."""
        self.components[component.root] = component
        for member in component.members:
            self.root_of[member] = component.root

    def drop(self, root: str) -> None:
        """Forget a component (a tombstone in the changelog)."""
        component = self.components.pop(root, None)
        if component is not None:
            for member in component.members:
                if self.root_of.get(member) == root:
                    del self.root_of[member]

    def erase(self, matches: Callable[[str], bool]) -> list[str]:
        """Forget every component holding an identifier (or profile) whose value ``matches``: a data-rights
        erasure names the person by a keyed hash of any one of their ids. Returns the roots dropped."""
        roots = [root for root, c in self.components.items()
                 if (c.profile is not None and matches(c.profile)) or any(matches(split(m)[1]) for m in c.members)]
        for root in roots:
            self.drop(root)
        return roots

    def find(self, kind: str, value: str) -> Component | None:
        """The component holding identifier ``kind:value``, if any."""
        root = self.root_of.get(node_of(kind, value))
        return None if root is None else self.components[root]

    def profile_of(self, kind: str, value: str) -> str | None:
        """The canonical profile id of an identifier (None: unknown, or a component without events)."""
        component = self.find(kind, value)
        return None if component is None else component.profile

    def resolve(self, seen: Sighting) -> Resolution:
        """Apply the links an event carries; return the profile id it belongs to and the records made."""
        res = Resolution(profile="")
        explicit = seen.type == "identify"
        if seen.customer_id is not None:
            subject = self._node(CUSTOMER, seen.customer_id, res, known=True)
            if seen.type == "alias" and seen.previous_id is not None and seen.previous_id != seen.customer_id:
                self._union(subject, self._node(CUSTOMER, seen.previous_id, res, known=True), "alias", seen, res)
            if seen.anonymous_id is not None and self.rules.links("anonymous_id", explicit):
                reason = "identify" if explicit else "auto"
                self._union(subject, self._node("anonymous_id", seen.anonymous_id, res), reason, seen, res)
        else:
            if seen.anonymous_id is None:
                raise ValueError("an event needs a customer_id or an anonymous_id")
            subject = self._node("anonymous_id", seen.anonymous_id, res)
        component = self.components[self.root_of[subject]]
        if component.profile is None:  # the first event of this component: it is the profile from now on
            component.profile = split(subject)[1]
            res.changed.add(component.root)
        for kind, value in seen.identifiers.items():
            if self.rules.links(kind, explicit):
                self._union(subject, self._node(kind, value, res), "identify" if explicit else "auto", seen, res)
            else:
                self._note(self.components[self.root_of[subject]], node_of(kind, value), res)
        component = self.components[self.root_of[subject]]
        profile = component.profile
        assert profile is not None
        res.profile = profile
        own = split(subject)[1]
        if own != profile and own in component.absorbed:
            res.via = own
        return res

    def _node(self, kind: str, value: str, res: Resolution, known: bool = False) -> str:
        node = node_of(kind, value)
        if node not in self.root_of:
            self.root_of[node] = node
            self.components[node] = Component(node, value if known else None, known, [node])
            res.changed.add(node)
        return node

    def _note(self, component: Component, node: str, res: Resolution) -> None:
        if node not in component.seen and len(component.seen) < self.rules.max_component:
            component.seen.append(node)
            res.changed.add(component.root)

    def _union(self, subject: str, other: str, reason: str, seen: Sighting, res: Resolution) -> None:
        """Join ``other``'s component into ``subject``'s, unless the rules refuse it (a ``refused`` record)."""
        a, b = self.components[self.root_of[subject]], self.components[self.root_of[other]]
        if a is b:
            return
        kind, value = split(other)
        into = a.profile or split(subject)[1]
        if a.known and b.known and reason != "alias":
            self._record(res, seen, "refused", "known_conflict", kind, value, into)
            return
        if len(a.members) + len(b.members) > self.rules.max_component:
            self._record(res, seen, "refused", "cap", kind, value, into)
            return
        if reason == "alias" or a.known or (not b.known and len(a.members) >= len(b.members)):
            survivor, retired = a, b
        else:
            survivor, retired = b, a
        if survivor.profile is not None and retired.profile is not None and survivor.profile != retired.profile:
            retired_kind = CUSTOMER if retired.known else "anonymous_id"
            self._record(res, seen, "merged", reason, retired_kind, retired.profile, survivor.profile)
            survivor.absorbed.append(retired.profile)
        survivor.absorbed.extend(retired.absorbed)
        if survivor.profile is None:
            survivor.profile = retired.profile
        survivor.known = survivor.known or retired.known
        joined = retired.members if survivor is a else a.members
        for member in retired.members:
            self.root_of[member] = survivor.root
        survivor.members.extend(retired.members)
        for note in retired.seen:
            self._note(survivor, note, res)
        del self.components[retired.root]
        res.retired.add(retired.root)
        res.changed.discard(retired.root)
        res.changed.add(survivor.root)
        target = survivor.profile or into
        for member in joined:
            member_kind, member_value = split(member)
            if member_kind != CUSTOMER or member_value != target:
                self._record(res, seen, "linked", reason, member_kind, member_value, target)
        if survivor.profile is not None:
            # Every visitor id that joins retires, profile or not: after a crash the stage may resolve an event
            # again with a graph that differs from the one that first sent it to the visitor's own profile;
            # retired, that profile hands over what it counted and forwards (or drops) what comes later.
            for member in retired.members:
                member_kind, member_value = split(member)
                if member_kind == "anonymous_id" and member_value != survivor.profile \
                        and member_value not in survivor.absorbed:
                    survivor.absorbed.append(member_value)
                    self._record(res, seen, "merged", reason, member_kind, member_value, survivor.profile)

    def _record(self, res: Resolution, seen: Sighting, action: Action, reason: str, kind: str, value: str,
                into: str) -> None:
        res.records.append(IdentityRecord(f"{seen.event_id}#{len(res.records)}", action, reason, kind, value, into,
                                          seen.event_id, seen.event_time_ms))
