"""deploy/kubernetes, rendered by Kustomize (`kubectl kustomize`, as `kubectl apply -k`
renders it) and checked offline: every object against the Kubernetes schemas of
KUBERNETES_VERSIONS (kubernetes-validate, strict: an unknown field fails) and KEDA's against
its CRDs (vendored in keda/); then what the deployment must hold: every compose service
has its workload with the same command, settings and secrets, probes on /health, resources,
no literal secret, KEDA scaling and a disruption budget for every worker, an HPA for every
API that can have more than one replica. Needs neither database nor broker."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from gits_common.amqp import service_queues
from tests.deploy.test_compose import COMPOSE, raw

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
OVERLAY = "overlays/demo"
KEDA_SCHEMAS = Path(__file__).parent / "keda"
# The version of kubectl (and its Kustomize, v5.5) on the project's machines, and the newest
# whose schemas kubernetes-validate bundles.
KUBERNETES_VERSIONS = ["1.32.0", "1.37.0"]
# The keys the README tells you to put in secrets.env; DJANGO_SUPERUSER_PASSWORD may be left out.
SECRET_KEYS = [
    "GITS_ADMIN_TOKEN",
    "GITS_RUNTIME_TOKEN",
    "GITS_READ_TOKEN",
    "POSTGRES_PASSWORD",
    "RABBITMQ_PASSWORD",
    "DJANGO_SECRET_KEY",
    "MONGODB_URL",
]
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|MONGODB_URL")
# Compose variables holding a secret: a compose setting built from one is a secret too.
COMPOSE_SECRET = re.compile(
    r"\$\{(POSTGRES_PASSWORD|RABBITMQ_PASSWORD|GITS_\w+_TOKEN|"
    r"DJANGO_SECRET_KEY|DJANGO_SUPERUSER_PASSWORD|MONGODB_PASSWORD)\b"
)
# APIs kept at one replica, so without an HPA: monitoring_api takes a history point per
# replica every minute, retraining_api runs its jobs in-process with its artefacts on a
# ReadWriteOnce volume, django_admin keeps its users in SQLite on one.
SINGLE_REPLICA = {"monitoring-api", "retraining-api", "django-admin"}
WORKLOADS = ("Deployment", "Job")


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The demo overlay rendered, with a secrets.env of made-up values as a user writes one."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        missing = "kubectl (its Kustomize renders the manifests) is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    tree = tmp_path_factory.mktemp("k8s") / "kubernetes"
    shutil.copytree(MANIFESTS, tree)
    (tree / OVERLAY / "secrets.env").write_text(
        "".join(f"{key}=made-up-{key.lower()}-of-at-least-32-characters\n" for key in SECRET_KEYS)
    )
    rendered = subprocess.run(
        [kubectl, "kustomize", str(tree / OVERLAY)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def of_kind(objects: list[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in kinds]


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(container: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from container.get("env", [])


def generated(objects: list[dict[str, Any]], kind: str, prefix: str) -> dict[str, Any]:
    """A ConfigMap or Secret Kustomize generated (its name carries a hash suffix)."""
    found = [o for o in of_kind(objects, kind) if o["metadata"]["name"].startswith(prefix + "-")]
    assert len(found) == 1, f"{kind} {prefix}: {[o['metadata']['name'] for o in found]}"
    return found[0]


def env_example_names() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def compose_services() -> dict[str, dict[str, Any]]:
    """docker-compose.yml's GITS services (those running the gits image), merge keys resolved."""
    return {
        name: service
        for name, service in raw(COMPOSE)["services"].items()
        if service.get("image") == "gits:latest"
    }


def compose_value(value: Any) -> str:
    """A compose setting as a container sees it with nothing set: `${X:-default}` is default."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))


def command_of(workload: dict[str, Any]) -> list[str]:
    command: list[str] = pod_spec(workload)["containers"][0]["command"]
    return command


def literal(workload: dict[str, Any], name: str) -> str | None:
    for variable in env_of(pod_spec(workload)["containers"][0]):
        if variable["name"] == name:
            value: str | None = variable.get("value")
            return value
    return None


def counterpart(objects: list[dict[str, Any]], service: dict[str, Any]) -> dict[str, Any]:
    """The workload running what a compose service runs: the same command, and the same
    service or use case for the ones compose starts once per demo."""
    env = service.get("environment", {})
    found = []
    for workload in of_kind(objects, *WORKLOADS):
        if command_of(workload) != service["command"].split():
            continue
        if "workers" in service["command"] and literal(workload, "SERVICE_NAME") != compose_value(
            env["SERVICE_NAME"]
        ):
            continue
        if "ground_truth_collector" in service["command"] and literal(
            workload, "GROUND_TRUTH_USE_CASE"
        ) != env.get("GROUND_TRUTH_USE_CASE", "product_quality"):
            continue
        found.append(workload)
    assert len(found) == 1, f"{service['command']}: {[w['metadata']['name'] for w in found]}"
    return found[0]


def workers(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [w for w in of_kind(objects, "Deployment") if command_of(w)[-1] == "workers"]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def pods_selected(objects: list[dict[str, Any]], selector: dict[str, str]) -> list[str]:
    return [
        w["metadata"]["name"]
        for w in of_kind(objects, *WORKLOADS)
        if matches(selector, w["spec"]["template"]["metadata"]["labels"])
    ]


def closed(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with unknown fields refused wherever it lists its fields (the API server
    would silently prune them: a misspelt field would be lost)."""
    out = {k: closed(v) if isinstance(v, dict) else v for k, v in schema.items()}
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            out[key] = closed(schema[key])
    if "properties" in schema:
        out["properties"] = {k: closed(v) for k, v in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            out["additionalProperties"] = False
    return out


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_core_object_is_valid_against_the_kubernetes_schemas(objects, version):
    core = [o for o in objects if not o["apiVersion"].startswith("keda.sh/")]
    assert len(core) > 30
    for obj in core:
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize(
    "kind", ["ScaledObject", "TriggerAuthentication"], ids=["scaledobject", "triggerauth"]
)
def test_keda_objects_are_valid_against_kedas_crds(objects, kind):
    text = (KEDA_SCHEMAS / f"{kind.lower()}.v1alpha1.yaml").read_text()
    schema = closed(yaml.safe_load(text))
    found = of_kind(objects, kind)
    assert found
    for obj in found:
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        jsonschema.validate(obj, schema)


def test_the_schema_check_catches_a_misspelt_field(objects):
    # Given the ScaledObject schema, closed as above, and a ScaledObject with a typo
    schema = closed(yaml.safe_load((KEDA_SCHEMAS / "scaledobject.v1alpha1.yaml").read_text()))
    scaled = of_kind(objects, "ScaledObject")[0]
    typo = {**scaled, "spec": {**scaled["spec"], "minReplicas": 1}}
    # Then both checks refuse what the API server would silently drop
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(typo, schema)
    deployment = of_kind(objects, "Deployment")[0]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(
            {**deployment, "spec": {**deployment["spec"], "replica": 2}},
            KUBERNETES_VERSIONS[0],
            strict=True,
        )


def test_every_compose_service_has_its_workload_with_the_same_command(objects):
    services = compose_services()
    assert len(services) >= 15
    found = {name: counterpart(objects, service) for name, service in services.items()}
    assert len({w["metadata"]["name"] for w in found.values()}) == len(services)
    # the one-shot setup is a Job; everything else keeps running
    for name, workload in found.items():
        one_shot = services[name].get("restart") == "on-failure"
        assert workload["kind"] == ("Job" if one_shot else "Deployment"), name
    # and nothing runs that compose does not
    assert len(of_kind(objects, *WORKLOADS)) == len(services)


def test_every_container_gets_exactly_the_secrets_compose_gives_it(objects):
    for name, service in compose_services().items():
        workload = counterpart(objects, service)
        wanted = {
            key
            for key, value in service.get("environment", {}).items()
            if COMPOSE_SECRET.search(str(value))
        }
        given = {
            v["name"]
            for c in containers(workload)
            for v in env_of(c)
            if "secretKeyRef" in v.get("valueFrom", {})
        }
        assert given == wanted, name
        sources = [s for c in containers(workload) for s in c.get("envFrom", [])]
        assert not any("secretRef" in source for source in sources), name


def test_http_services_are_probed_on_health_at_their_compose_port(objects):
    checked = 0
    for name, service in compose_services().items():
        health = service.get("healthcheck")
        if health is None:
            continue
        found = re.search(r"127\.0\.0\.1:(\d+)/health", " ".join(health["test"]))
        if found is None:
            continue
        port = int(found[1])
        container = pod_spec(counterpart(objects, service))["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            get = container[probe]["httpGet"]
            assert get["path"] == "/health", (name, probe)
            assert ports.get(get["port"], get["port"]) == port, (name, probe)
        checked += 1
    assert checked == 5  # ml_data_api, queue_manager, monitoring_api, retraining_api, admin


def test_every_long_running_container_has_both_probes(objects):
    for workload in of_kind(objects, "Deployment"):
        for container in containers(workload):
            for probe in ("readinessProbe", "livenessProbe"):
                assert probe in container, (workload["metadata"]["name"], probe)


def serves_metrics(workload: dict[str, Any]) -> bool:
    """Whether the workload's package serves /metrics: an API instrumented with
    gits_common.metrics, or a process with a metrics port of its own."""
    package = command_of(workload)[2]
    ports = [p["name"] for c in containers(workload) for p in c.get("ports", [])]
    sources = (ROOT / package).glob("*.py")
    return "metrics" in ports or any("instrument_api(" in s.read_text() for s in sources)


def test_pods_serving_metrics_are_annotated_for_prometheus(objects):
    annotated = 0
    for workload in of_kind(objects, *WORKLOADS):
        ports = [p["containerPort"] for c in containers(workload) for p in c.get("ports", [])]
        annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
        name = workload["metadata"]["name"]
        if serves_metrics(workload):
            assert annotations.get("prometheus.io/scrape") == "true", name
            assert int(annotations["prometheus.io/port"]) in ports, name
            assert annotations.get("prometheus.io/path") == "/metrics", name
            annotated += 1
        else:
            assert "prometheus.io/scrape" not in annotations, name
    assert annotated >= 9  # the workers, data sources and collectors at least


def test_every_container_has_cpu_and_memory_requests_and_limits(objects):
    for workload in of_kind(objects, *WORKLOADS):
        for container in containers(workload):
            resources = container.get("resources", {})
            for part in ("requests", "limits"):
                assert set(resources.get(part, {})) >= {"cpu", "memory"}, (
                    workload["metadata"]["name"],
                    part,
                )


def test_every_container_runs_the_gits_image_unprivileged_without_an_api_token(objects):
    for workload in of_kind(objects, *WORKLOADS):
        assert pod_spec(workload)["securityContext"]["runAsNonRoot"] is True
        assert pod_spec(workload)["automountServiceAccountToken"] is False
        for container in containers(workload):
            assert container["image"] == "gits:latest"
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_no_secret_is_a_literal_anywhere(objects):
    # No setting named like a secret is given a value in a manifest: it comes from the Secret
    for workload in of_kind(objects, *WORKLOADS):
        for container in containers(workload):
            for variable in env_of(container):
                if SECRET_NAME.search(variable["name"]):
                    assert "secretKeyRef" in variable.get("valueFrom", {}), variable["name"]
    # nor in a ConfigMap, by name or as credentials in an address
    for config in of_kind(objects, "ConfigMap"):
        for key, value in config.get("data", {}).items():
            assert not SECRET_NAME.search(key), key
            assert not re.search(r"://[^/@\s]+:[^/@\s]+@", value), key
    # and the sources ship no Secret: the user makes it from a file of their own
    sources = [p for p in MANIFESTS.rglob("*") if p.is_file()]
    for path in sources:
        if path.suffix in {".yaml", ".yml"}:
            for doc in yaml.safe_load_all(path.read_text()):
                assert (doc or {}).get("kind") != "Secret", path
    assert not [p for p in sources if p.name.startswith("secrets.env")]
    assert "secrets.env" in (MANIFESTS / OVERLAY / ".gitignore").read_text().split()


def test_every_secret_reference_resolves_to_a_key_the_readme_asks_for(objects):
    secret = generated(objects, "Secret", "gits-secrets")
    keys = set(secret["data"])
    for workload in of_kind(objects, *WORKLOADS):
        for container in containers(workload):
            for variable in env_of(container):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == secret["metadata"]["name"]
                    assert ref["key"] in keys or ref.get("optional"), ref["key"]
    assert keys == set(SECRET_KEYS)


def test_every_setting_named_is_one_gits_knows(objects):
    known = env_example_names()
    config = generated(objects, "ConfigMap", "gits-config")
    assert set(config["data"]) <= known, set(config["data"]) - known
    for workload in of_kind(objects, *WORKLOADS):
        for container in containers(workload):
            names = {v["name"] for v in env_of(container)}
            assert names <= known, (workload["metadata"]["name"], names - known)
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] == config["metadata"]["name"]


def test_the_compose_settings_are_in_the_config_map_with_the_clusters_addresses(objects):
    data = generated(objects, "ConfigMap", "gits-config")["data"]
    services = {s["metadata"]["name"]: s for s in of_kind(objects, "Service")}
    for key, value in data.items():
        if key.endswith("_URL"):
            host, port = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", value).groups()
            assert int(port) in [p["port"] for p in services[host]["spec"]["ports"]], key
    for store in ("POSTGRES_HOST", "RABBITMQ_HOST"):
        assert services[data[store]]["spec"]["type"] == "ExternalName"
    common = compose_services()["ml_data_api"]["environment"]
    for key, value in common.items():
        if key.endswith("_HOST") or key in {"DATA_SOURCE_RATE", "POSTGRES_USER", "LOG_LEVEL"}:
            assert key in data, key
            if key.endswith("_API_HOST") or key == "DJANGO_ADMIN_HOST":
                assert data[key] == compose_value(value) == "0.0.0.0"  # noqa: S104


def test_selectors_match_the_pods_they_mean(objects):
    for workload in of_kind(objects, "Deployment"):
        selector = workload["spec"]["selector"]["matchLabels"]
        assert matches(selector, workload["spec"]["template"]["metadata"]["labels"])
        # one Deployment's selector never takes another's pods
        assert pods_selected(objects, selector) == [workload["metadata"]["name"]]
    for service in of_kind(objects, "Service"):
        if service["spec"].get("type") == "ExternalName":
            continue
        [name] = pods_selected(objects, service["spec"]["selector"])
        container = pod_spec(named(objects, "Deployment", name))["containers"][0]
        names = {p["name"] for p in container["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in names


def test_every_worker_scales_on_its_services_queue_with_keda(objects):
    found = workers(objects)
    assert len(found) == 3
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind(objects, "ScaledObject")}
    assert set(scaled) == {w["metadata"]["name"] for w in found}
    for worker in found:
        spec = scaled[worker["metadata"]["name"]]["spec"]
        assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
        assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"] <= 20
        [trigger] = spec["triggers"]
        assert trigger["type"] == "rabbitmq"
        assert trigger["metadata"]["mode"] == "QueueLength"
        assert int(trigger["metadata"]["value"]) >= 100
        queue, _, _ = service_queues(literal(worker, "SERVICE_NAME"))
        assert trigger["metadata"]["queueName"] == queue
        # credentials never in the trigger itself
        assert not {"host", "password", "username"} & set(trigger["metadata"])
        named(objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])


def test_kedas_credentials_come_from_the_config_map_and_the_secret(objects):
    [auth] = of_kind(objects, "TriggerAuthentication")
    spec = auth["spec"]
    parameters = {r["parameter"] for r in [*spec["configMapTargetRef"], *spec["secretTargetRef"]]}
    assert parameters >= {"host", "username", "password"}
    secret = generated(objects, "Secret", "gits-secrets")
    for ref in spec["secretTargetRef"]:
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["data"]
    maps = {c["metadata"]["name"]: c["data"] for c in of_kind(objects, "ConfigMap")}
    for ref in spec["configMapTargetRef"]:
        assert ref["key"] in maps[ref["name"]], ref
    [host] = [r for r in spec["configMapTargetRef"] if r["parameter"] == "host"]
    # reached from KEDA's namespace: the full name of this namespace's rabbitmq Service
    namespace = auth["metadata"]["namespace"]
    assert maps[host["name"]][host["key"]] == f"amqp://rabbitmq.{namespace}.svc.cluster.local:5672/"


def test_every_worker_keeps_a_replica_through_disruptions(objects):
    budgets = of_kind(objects, "PodDisruptionBudget")
    for worker in workers(objects):
        name = worker["metadata"]["name"]
        mine = [
            b
            for b in budgets
            if pods_selected(objects, b["spec"]["selector"]["matchLabels"]) == [name]
        ]
        assert len(mine) == 1, name
        assert mine[0]["spec"]["minAvailable"] == 1
        # a drain can evict one replica at a time, never the last
        assert named(objects, "ScaledObject", name)["spec"]["minReplicaCount"] >= 2


def test_every_api_has_an_hpa_on_cpu_or_is_one_replica_for_a_stated_reason(objects):
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(objects, "HorizontalPodAutoscaler")
    }
    apis = [
        d
        for d in of_kind(objects, "Deployment")
        if any(p.get("name") == "http" for p in pod_spec(d)["containers"][0].get("ports", []))
    ]
    assert len(apis) == 5
    for api in apis:
        name = api["metadata"]["name"]
        if name in SINGLE_REPLICA:
            assert name not in hpas and api["spec"]["replicas"] == 1, name
            continue
        spec = hpas[name]["spec"]
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert spec["scaleTargetRef"] == target
        assert 1 <= spec["minReplicas"] < spec["maxReplicas"]
        [metric] = spec["metrics"]
        assert metric["resource"]["name"] == "cpu"
    assert set(hpas) == {a["metadata"]["name"] for a in apis} - SINGLE_REPLICA


def test_workloads_on_a_read_write_once_volume_are_one_replica_replaced_not_rolled(objects):
    claims = {c["metadata"]["name"] for c in of_kind(objects, "PersistentVolumeClaim")}
    with_volume = 0
    for workload in of_kind(objects, "Deployment"):
        used = {
            v["persistentVolumeClaim"]["claimName"]
            for v in pod_spec(workload).get("volumes", [])
            if "persistentVolumeClaim" in v
        }
        if used:
            with_volume += 1
            assert used <= claims
            assert workload["spec"]["replicas"] == 1
            assert workload["spec"]["strategy"]["type"] == "Recreate"
    assert with_volume == 5  # retraining_api, the admin, three collectors


def test_autoscaled_deployments_leave_their_replicas_to_the_autoscaler(objects):
    targets = [
        o["spec"]["scaleTargetRef"]["name"]
        for o in of_kind(objects, "ScaledObject", "HorizontalPodAutoscaler")
    ]
    assert len(targets) == 5
    for name in targets:
        # a count here would reset the autoscaler's choice at every `kubectl apply`
        assert "replicas" not in named(objects, "Deployment", name)["spec"], name
