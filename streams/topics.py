"""Topic definitions and their idempotent creation."""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from schemas.registry import ALL_TOPICS, INPUT_TOPICS

DEAD_LETTERS = "dead-letters"
PRIVACY_REQUESTS = "privacy-requests"
PRIVACY_AUDIT = "privacy-audit"
# Explicit retention: Tansu's DescribeConfigs returns only configs set at creation.
_RETAIN = {"retention.ms": str(7 * 24 * 3600 * 1000), "retention.bytes": "-1"}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


#: Changelog topics of the stateful processors (compacted; same partition count as the inputs).
CHANGELOGS = {"features": "features-changelog",
              "triggers": "triggers-changelog",
              "messages": "messages-changelog",
              "scoring": "scoring-changelog"}
#: The trainer's versioned model snapshots (compacted: the latest per key is what scorers load).
MODEL_SNAPSHOTS = "model-snapshots"
_COMPACTED = {"customer-features", MODEL_SNAPSHOTS, *CHANGELOGS.values()}


def topic_specs(partitions: int) -> list[TopicSpec]:
    """Every topic the pipeline uses, all with the same partition count (they are co-partitioned by customer)."""
    specs = []
    for name in [*ALL_TOPICS, *CHANGELOGS.values(), MODEL_SNAPSHOTS]:
        config = dict(_RETAIN)
        if name in _COMPACTED:
            config["cleanup.policy"] = "compact"
            config["retention.ms"] = "-1"
        if name == PRIVACY_REQUESTS:  # a processor stopped for long still applies every request when it starts
            config["retention.ms"] = "-1"
        specs.append(TopicSpec(name, partitions, config))
    return specs


def input_topic_names() -> list[str]:
    return list(INPUT_TOPICS)


def ensure_topics(kafka_config: dict[str, str], specs: list[TopicSpec], replication: int = 1,
                  timeout: float = 15.0) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = AdminClient(kafka_config)
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [s for s in specs if s.name not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(s.name, s.partitions, replication, config=s.config) for s in missing], request_timeout=timeout
    )
    created = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    return created
