"""Topic definitions and their idempotent creation."""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from plumbing.metadata import metadata
from plumbing.waiting import REQUEST_SECONDS, retry_until_stalled
from schemas.identity import IDENTIFIED_TOPICS, PROFILE_HANDOFFS
from schemas.registry import ALL_TOPICS, CUSTOMER_FEATURES, INPUT_TOPICS, PRIVACY_REQUESTS

# Explicit retention: Tansu's DescribeConfigs returns only configs set at creation.
_RETAIN = {"retention.ms": str(7 * 24 * 3600 * 1000), "retention.bytes": "-1"}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


#: The stateful processor roles, each with a compacted changelog (same partition count as the inputs).
CHANGELOG_ROLES = ("features", "triggers", "messages", "scoring")
#: The default group prefix (``Settings.group_prefix``).
DEFAULT_PREFIX = "journey"


def changelogs(prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """Role -> changelog topic of the processor groups under ``prefix``: ``<prefix>-<role>-changelog``.

    Named after the consumer group (like Kafka Streams' ``<application.id>-...-changelog``), so a
    second pipeline under another prefix (a shadow or blue/green deployment) starts from its own
    state instead of restoring the first one's and skipping its input as already applied.
    """
    return {role: f"{prefix}-{role}-changelog" for role in CHANGELOG_ROLES}


def model_snapshots(prefix: str = DEFAULT_PREFIX) -> str:
    """The trainer's versioned model snapshots under ``prefix`` (compacted: scorers load the latest)."""
    return f"{prefix}-model-snapshots"


#: The delivery adapters, each with its own consumer group ``<prefix>-deliver-<adapter>``.
DELIVERY_ADAPTERS = ("webhook", "smtp", "console")


def delivery_topics(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """The topics the delivery workers under ``prefix`` create: each group's retry topic (whole messages,
    customer id and text: customer data) and ledger (delivered message ids). Not in :func:`topic_specs`
    (each worker creates its own), so a scan of every topic holding customer data must add them."""
    return [f"{prefix}-deliver-{adapter}-{kind}" for adapter in DELIVERY_ADAPTERS for kind in ("retry", "ledger")]


def identity_changelog(prefix: str = DEFAULT_PREFIX) -> str:
    """The identity stage's graph changelog under ``prefix`` (compacted; streams/identity.py)."""
    return f"{prefix}-identity-changelog"


#: The default pipeline's changelogs and snapshot topic.
CHANGELOGS = changelogs()
MODEL_SNAPSHOTS = model_snapshots()


def topic_specs(partitions: int, prefix: str = DEFAULT_PREFIX) -> list[TopicSpec]:
    """Every topic the pipeline uses, all with the same partition count (they are co-partitioned by customer).

    The changelogs and the snapshot topic are those of the processor groups under ``prefix``.
    """
    specs = []
    internal = [*changelogs(prefix).values(), model_snapshots(prefix), identity_changelog(prefix)]
    compacted = {CUSTOMER_FEATURES, *internal}
    for name in [*ALL_TOPICS, *sorted(IDENTIFIED_TOPICS), PROFILE_HANDOFFS, *internal]:
        config = dict(_RETAIN)
        if name in compacted:
            config["cleanup.policy"] = "compact"
            config["retention.ms"] = "-1"
        if name == PRIVACY_REQUESTS:  # a processor stopped for long still applies every request when it starts
            config["retention.ms"] = "-1"
        specs.append(TopicSpec(name, partitions, config))
    return specs


def input_topic_names() -> list[str]:
    return list(INPUT_TOPICS)


def ensure_topics(kafka_config: dict[str, str], specs: list[TopicSpec], replication: int = 1) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    No fixed deadline: a request the broker is too slow to answer is made again (the missing
    topics only) until the stall time (``stall_seconds``) has passed without an answer."""
    admin = AdminClient(kafka_config)
    created: list[str] = []

    def create_missing() -> list[str]:
        existing = set(metadata(admin).topics)
        missing = [s for s in specs if s.name not in existing]
        if not missing:
            return created
        futures = admin.create_topics(
            [NewTopic(s.name, s.partitions, replication, config=s.config) for s in missing],
            request_timeout=REQUEST_SECONDS * 5)
        for name, future in futures.items():
            try:
                future.result()
                created.append(name)
            except KafkaException as exc:
                error = exc.args[0]
                if error.name() == "TOPIC_ALREADY_EXISTS":
                    continue
                if error.code() in (KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT):
                    raise  # asked again
                raise RuntimeError(f"cannot create topic {name}: {error.str()}") from exc
        return created

    return retry_until_stalled("creating the topics", create_missing, (KafkaException,))


def ensure_compacted(kafka_config: dict[str, str], name: str, like: str) -> None:
    """Create the compacted internal topic ``name`` with as many partitions as topic ``like``, if missing.

    A worker calls it for its own changelog (or snapshot topic), so a group under a new prefix works
    even where ``journey init`` ran for another one.
    """
    admin = AdminClient(kafka_config)
    topics = metadata(admin).topics
    if name in topics:
        return
    if like not in topics:
        raise RuntimeError(f"topic {like} does not exist: run `journey init` (or `journey run`) first")
    config = {**_RETAIN, "cleanup.policy": "compact", "retention.ms": "-1"}
    ensure_topics(kafka_config, [TopicSpec(name, len(topics[like].partitions), config)])
