"""What may link: which identifier kinds link on their own, which never do, and the component size cap."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Identifier kinds an event may carry (schemas/base.py), besides ``customer_id``.
KINDS = ("anonymous_id", "device_id", "email_hash", "phone_hash", "chat_handle", "loyalty_id")


@dataclass(frozen=True)
class LinkRules:
    """Settings of the identity graph (``identity_*`` in streams/settings.py).

    ``auto_link``: kinds that join the event's subject whenever they appear on it (a logged-in page view
    carrying its cookie links the cookie). ``never_link``: kinds that are recorded on the component they
    first appear with but never join two components (a shared device or family email would merge
    strangers); an ``identify`` event links every kind not listed here. Two known customers merge only
    by an ``alias`` event. ``max_component``: a link that would make a component of more identifiers
    than this is refused and recorded (a bot or a shop kiosk must not merge thousands of customers).
    """

    auto_link: frozenset[str] = field(default_factory=lambda: frozenset(
        {"anonymous_id", "email_hash", "phone_hash", "chat_handle", "loyalty_id"}))
    never_link: frozenset[str] = field(default_factory=lambda: frozenset({"device_id"}))
    max_component: int = 50

    def __post_init__(self) -> None:
        unknown = (self.auto_link | self.never_link) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown identifier kinds {sorted(unknown)}; kinds are {', '.join(KINDS)}")
        if self.auto_link & self.never_link:
            raise ValueError(f"kinds both auto-linked and never linked: {sorted(self.auto_link & self.never_link)}")
        if self.max_component < 2:
            raise ValueError("max_component must be at least 2 (a customer and one identifier)")

    def links(self, kind: str, explicit: bool) -> bool:
        """Whether an identifier of ``kind`` on an event joins its subject (``explicit``: an identify event)."""
        if kind in self.never_link:
            return False
        return explicit or kind in self.auto_link
