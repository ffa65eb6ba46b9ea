"""The delivery workers' own topics are named where a privacy scan of every topic finds them."""

from __future__ import annotations

from streams.delivery_ledger import ledger_topic
from streams.delivery_retry import retry_topic
from streams.settings import Settings
from streams.topics import DELIVERY_ADAPTERS, delivery_topics


def test_delivery_topics_are_the_retry_and_ledger_topics_the_workers_create() -> None:
    settings = Settings(group_prefix="shop7")
    groups = [settings.group_id(f"deliver-{adapter}") for adapter in DELIVERY_ADAPTERS]
    expected = [retry_topic(g) for g in groups] + [ledger_topic(g) for g in groups]
    assert sorted(delivery_topics("shop7")) == sorted(expected)
    assert "shop7-deliver-webhook-retry" in delivery_topics("shop7")
