"""Writes one Deployment and PodDisruptionBudget file per processor group from a single template.

The YAML files beside this script are what you apply (``kubectl apply -k deploy/k8s``); this script
keeps them alike. Edit GROUPS or the template, run ``python deploy/k8s/render.py``, commit both;
``tests/deploy/test_manifests.py`` fails when a file differs from what the script renders.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
IMAGE = "journey:0.1.0"  # override per environment: kustomize `images:` or `kubectl set image`
METRICS_PORT = 9400


@dataclass(frozen=True)
class Group:
    """One processor group: one consumer group, one Deployment."""

    name: str
    summary: str
    replicas: int = 2
    cpu: str = "250m"
    memory: str = "512Mi"
    memory_limit: str = "1Gi"
    env: dict[str, str] = field(default_factory=dict)
    singleton: bool = False  # exactly one pod, ever: no scaling, no surge, old pod gone before the new one starts
    state_size: str | None = None  # a stateful worker's local state stores (data/state): the volume's size


GROUPS = [
    Group("sink", "input topics -> validation -> ClickHouse raw tables and rollups; bad input -> dead letters",
          cpu="500m", memory="1Gi", memory_limit="2Gi"),
    # Measured at 1M customers (one view each): 0.7 GB resident with the default state_cache_customers, 146 MB
    # of local stores on disk (BENCHMARKS.md, "State at scale"); a restore that keeps reading is live (/healthz).
    Group("features", "input topics -> per-customer state (changelog) -> customer-features",
          cpu="500m", memory="1Gi", memory_limit="2Gi", state_size="4Gi"),
    Group("scoring", "customer-features and orders -> scores and model-labels (the trainer's latest model)",
          state_size="2Gi"),
    # The trainer assigns itself every partition of model-labels (no consumer-group sharing) and commits by
    # publishing snapshots of its whole state: a second trainer would learn every label twice and publish
    # competing snapshots, so it runs as exactly one pod.
    Group("trainer", "model-labels -> online models, model-metrics, model-drift, model-snapshots; exactly one",
          replicas=1, memory="1Gi", memory_limit="2Gi", singleton=True,
          env={"JOURNEY_LIVENESS_TIMEOUT_SECONDS": "600"}),  # restoring the latest snapshot blocks the loop
    Group("triggers", "events, profiles and scores -> trigger events (rules and timers)", state_size="2Gi"),
    Group("messages", "triggers -> guard decisions and personalised messages (consent, caps, holdout)",
          state_size="2Gi"),
    Group("deliver", "messages -> webhook, SMTP or console (JOURNEY_DELIVERY_ADAPTER) -> deliveries"),
]


def labels(group: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "journey", "app.kubernetes.io/component": group}


def probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "metrics"}, "periodSeconds": period, "timeoutSeconds": 5,
            "failureThreshold": failures}


def deployment(group: Group) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": group.name,
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": [group.name],
        "envFrom": [{"configMapRef": {"name": "journey-config"}}, {"secretRef": {"name": "journey-secrets"}}],
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
        # Joining the group and restoring state can take minutes: up to 10 before liveness applies.
        "startupProbe": probe("/healthz", 5, 120),
        "livenessProbe": probe("/healthz", 15, 4),
        "readinessProbe": probe("/readyz", 10, 3),
        "resources": {"requests": {"cpu": group.cpu, "memory": group.memory},
                      "limits": {"memory": group.memory_limit}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "data", "mountPath": "/home/journey/data"},
                         {"name": "tmp", "mountPath": "/tmp"},
                         {"name": "kafka-ca", "mountPath": "/etc/journey/kafka-ca", "readOnly": True}],
    }
    if group.env:
        container["env"] = [{"name": k, "value": v} for k, v in group.env.items()]
    volumes: list[dict[str, Any]] = [{"name": "data", "emptyDir": {}},
                                     {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                                     {"name": "kafka-ca", "secret": {"secretName": "journey-kafka-ca",
                                                                     "optional": True}}]
    if group.state_size:
        # The local state stores (streams/state_store/): kept across container restarts (a SIGKILL, an OOM kill,
        # a failed liveness probe), so the worker replays only the changelog's tail; a new pod restores from the
        # changelog in bulk.
        container["volumeMounts"].insert(1, {"name": "state", "mountPath": "/home/journey/data/state"})
        volumes.insert(1, {"name": "state", "emptyDir": {"sizeLimit": group.state_size}})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"journey-{group.name}", "labels": labels(group.name),
                     "annotations": {"journey/summary": group.summary}},
        "spec": {
            "replicas": group.replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": labels(group.name)},
            "strategy": strategy(group),
            "template": {
                "metadata": {"labels": labels(group.name),
                             "annotations": {"prometheus.io/scrape": "true",
                                             "prometheus.io/port": str(METRICS_PORT),
                                             "prometheus.io/path": "/metrics"}},
                "spec": {
                    "terminationGracePeriodSeconds": 60,  # SIGTERM: store and commit the last batch
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                        "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                   "whenUnsatisfiable": "ScheduleAnyway",
                                                   "labelSelector": {"matchLabels": labels(group.name)}}],
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def strategy(group: Group) -> dict[str, Any]:
    if group.singleton:
        # Recreate: the old pod is gone before the new one starts, so a rollout never runs two trainers.
        return {"type": "Recreate"}
    # One pod at a time and no surge: each change of membership is one rebalance of the group.
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


def disruption_budget(group: Group) -> dict[str, Any]:
    # A group: a drained node takes one worker at a time; the others take its partitions over.
    # A singleton: maxUnavailable 1 lets a drain evict it (minAvailable 1 would block every drain of its
    # node); it restarts elsewhere from its last snapshot, so an eviction only pauses learning.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": f"journey-{group.name}", "labels": labels(group.name)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels(group.name)}},
    }


def render(group: Group) -> str:
    scale = ("Exactly one replica: do not scale." if group.singleton
             else "Scale: replicas <= the topics' partition count.")
    head = (f"# journey {group.name}: {group.summary}.\n"
            f"# Rendered by deploy/k8s/render.py; edit there. {scale}\n")
    docs = [deployment(group), disruption_budget(group)]
    return head + "---\n".join(yaml.safe_dump(d, sort_keys=False, width=110) for d in docs)


def path_of(group: Group) -> Path:
    return HERE / f"{group.name}.yaml"


def main() -> int:
    for group in GROUPS:
        path = path_of(group)
        path.write_text(render(group))
        print(f"wrote {path.relative_to(HERE.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
