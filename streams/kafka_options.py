"""librdkafka options a deployment tunes: per-role fetch waits, and ``kafka_extra`` passed through.

Fetch waits, measured on the embedded broker (``python -m tests.bench.fetch_wait``, 4
partitions, records taken as they arrive): the broker does not answer a waiting fetch when
data arrives, so a consumer sees new records only when its fetch wait runs out.
``fetch.wait.max.ms`` 500 (librdkafka's default) costs every hop p50 ~250 ms; 10 ms brings
produce -> consume to about 10 ms p50, 45 ms p99 at 1,000 records/s (100 ms: 31 / 71 ms;
500 ms: 136 / 268 ms). The price is idle fetches: six idle consumers at 10 ms cost the broker
27% of a core (100 ms: 7%, 500 ms: 1.3%). The roles on the live path (processors, delivery)
wait 10 ms; the sink, which stores about once a second, waits 100 ms. Apache Kafka answers
a waiting fetch as soon as data arrives, so there the 500 ms default costs no latency: the
compose file and the Kubernetes ConfigMap set 500 for every role. (The trainer keeps librdkafka's default: a label
learned half a second later changes nothing.)
"""

from __future__ import annotations

import logging
from typing import Literal

from confluent_kafka import KafkaException, Producer

#: The worker roles that run a group consumer.
WorkerRole = Literal["sink", "features", "triggers", "messages", "scoring", "deliver", "identity"]

#: fetch.wait.max.ms per role (milliseconds), the measured defaults.
FETCH_WAIT_MAX_MS: dict[WorkerRole, int] = {
    "features": 10, "triggers": 10, "messages": 10, "scoring": 10, "deliver": 10, "sink": 100, "identity": 10,
}

#: librdkafka options that have settings of their own (kafka_extra must not contradict them).
OWN_SETTINGS = {
    "bootstrap.servers": "kafka_bootstrap", "metadata.broker.list": "kafka_bootstrap",
    "security.protocol": "kafka_security_protocol", "sasl.mechanism": "kafka_sasl_mechanism",
    "sasl.mechanisms": "kafka_sasl_mechanism", "sasl.username": "kafka_sasl_username",
    "sasl.password": "kafka_sasl_password", "ssl.ca.location": "kafka_ssl_ca_location",
    "ssl.certificate.location": "kafka_ssl_certificate_location", "ssl.key.location": "kafka_ssl_key_location",
    "ssl.key.password": "kafka_ssl_key_password", "ssl.endpoint.identification.algorithm": "kafka_ssl_verify_hostname",
    "group.id": "group_prefix", "fetch.wait.max.ms": "fetch_wait_max_ms",
    "fetch.queue.backoff.ms": "fetch_queue_backoff_ms",
}

_QUIET = logging.getLogger("journey.kafka_options.check")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def check_kafka_extra(extra: dict[str, str | int | float | bool]) -> None:
    """Raise ``ValueError`` naming the first option librdkafka does not know or whose value it refuses.

    librdkafka itself checks names and values (a producer is configured with them and thrown
    away; it connects to nothing), so the check follows the installed version exactly.
    """
    for key in extra:
        if key in OWN_SETTINGS:
            raise ValueError(f"{key!r} has a setting of its own: use {OWN_SETTINGS[key]}")
    if not extra:
        return
    try:
        Producer({**{k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in extra.items()},
                  "logger": _QUIET})
    except KafkaException as exc:
        raise ValueError(f"librdkafka refused it: {exc.args[0].str()}") from None
