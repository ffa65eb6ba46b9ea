"""Which contract each topic carries, and JSON Schema export of all of them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from schemas.base import SCHEMA_VERSION
from schemas.chat import ChatMessage
from schemas.clickstream import ClickstreamEvent
from schemas.consent import ConsentChanged
from schemas.identity import IdentityMerge
from schemas.models import ModelDrift, ModelLabel, ModelMetrics
from schemas.orders import OrderEvent
from schemas.outputs import CustomerFeatures, DeadLetter, LateEvent, Score
from schemas.privacy import PrivacyAudit, PrivacyRequest
from schemas.triggers import Delivery, GuardDecision, MessageRecord, TriggerEvent

#: Every topic's name: code refers to topics by these names only (tests/test_topic_names.py checks it).
CLICKSTREAM = "clickstream"
ORDERS = "orders"
CHAT = "chat"
CONSENT = "consent"
CUSTOMER_FEATURES = "customer-features"
SCORES = "scores"
TRIGGERS = "triggers"
MESSAGES = "messages"
MESSAGE_DECISIONS = "message-decisions"
DELIVERIES = "deliveries"
DEAD_LETTERS = "dead-letters"
LATE_EVENTS = "late-events"
MODEL_LABELS = "model-labels"
MODEL_METRICS = "model-metrics"
MODEL_DRIFT = "model-drift"
PRIVACY_REQUESTS = "privacy-requests"
PRIVACY_AUDIT = "privacy-audit"
IDENTITY_MERGES = "identity-merges"


@dataclass(frozen=True, eq=False)
class TopicContract:
    """A topic's name, the contract of its values and whether it is an input topic."""

    topic: str
    adapter: TypeAdapter[Any]
    is_input: bool
    description: str

    @cached_property
    def event_types(self) -> tuple[str, ...]:
        """The ``type`` values this topic accepts (inputs only); computed once (schema generation is slow)."""
        schema = self.adapter.json_schema()
        mapping = schema.get("discriminator", {}).get("mapping")
        if mapping:
            return tuple(mapping)
        const = schema.get("properties", {}).get("type", {}).get("const")
        return (const,) if const else ()


INPUT_TOPICS: dict[str, TopicContract] = {
    c.topic: c
    for c in (
        TopicContract(CLICKSTREAM, TypeAdapter(ClickstreamEvent), True, "Views, searches, cart and checkout steps."),
        TopicContract(ORDERS, TypeAdapter(OrderEvent), True, "Order lifecycle: placed to refunded."),
        TopicContract(CHAT, TypeAdapter(ChatMessage), True, "Customer, agent and bot messages."),
        TopicContract(CONSENT, TypeAdapter(ConsentChanged), True, "Consent granted or withdrawn per channel."),
    )
}

OUTPUT_TOPICS: dict[str, TopicContract] = {
    c.topic: c
    for c in (
        TopicContract(CUSTOMER_FEATURES, TypeAdapter(CustomerFeatures), False, "Latest profile per customer."),
        TopicContract(SCORES, TypeAdapter(Score), False, "Churn and purchase-propensity scores."),
        TopicContract(TRIGGERS, TypeAdapter(TriggerEvent), False, "Trigger events for automation."),
        TopicContract(MESSAGES, TypeAdapter(MessageRecord), False, "Personalised messages for delivery."),
        TopicContract(MESSAGE_DECISIONS, TypeAdapter(GuardDecision), False, "Each guard's outcome per trigger."),
        TopicContract(DELIVERIES, TypeAdapter(Delivery), False, "What the delivery adapters did per message."),
        TopicContract(DEAD_LETTERS, TypeAdapter(DeadLetter), False, "Rejected input with reason and bytes."),
        TopicContract(LATE_EVENTS, TypeAdapter(LateEvent), False, "Valid events that arrived too late."),
        TopicContract(MODEL_LABELS, TypeAdapter(ModelLabel), False, "Held predictions with their outcome."),
        TopicContract(MODEL_METRICS, TypeAdapter(ModelMetrics), False, "Prequential metrics per model."),
        TopicContract(MODEL_DRIFT, TypeAdapter(ModelDrift), False, "Shifts in a model's error (ADWIN)."),
        TopicContract(PRIVACY_REQUESTS, TypeAdapter(PrivacyRequest), False, "Erasure requests, by keyed hash."),
        TopicContract(PRIVACY_AUDIT, TypeAdapter(PrivacyAudit), False, "Where each request was carried out."),
        TopicContract(IDENTITY_MERGES, TypeAdapter(IdentityMerge), False, "Identity links, merges and refusals."),
    )
}

ALL_TOPICS: dict[str, TopicContract] = {**INPUT_TOPICS, **OUTPUT_TOPICS}

#: Event ``type`` -> the input topic it belongs on.
TOPIC_OF_TYPE: dict[str, str] = {t: c.topic for c in INPUT_TOPICS.values() for t in c.event_types}


def json_schema(topic: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one topic's values."""
    contract = ALL_TOPICS[topic]
    schema = contract.adapter.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"journey/{topic}/v{SCHEMA_VERSION}.json"
    schema.setdefault("title", topic)
    schema["description"] = contract.description
    return schema


def export_json_schemas(directory: Path) -> list[Path]:
    """Write one ``<topic>.v<version>.json`` file per topic into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for topic in ALL_TOPICS:
        path = directory / f"{topic}.v{SCHEMA_VERSION}.json"
        path.write_text(json.dumps(json_schema(topic), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
