"""docker-compose.yml (and docker-compose.stores.yml) checked without a container engine:
the files, with their ${...} filled in as compose fills them from a .env made from
.env.example, against the Compose Specification's JSON schema (vendored in
compose-spec.json, its source in its "$comment"); then what the stack must hold: every
service the README names runs, every built service has a health check, workers have no
fixed name or host port, no secret or default password is in the files, no store is
published on the host (nor without its credentials), and Prometheus scrapes every
/metrics. Needs neither database nor broker (runs with --noconftest)."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
STORES = ROOT / "docker-compose.stores.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
SCHEMA = Path(__file__).with_name("compose-spec.json")

# The stores the README's "With Docker" names, by compose service, and the setting of
# each that holds its password.
STORES_PASSWORDS = {
    "timescaledb": "POSTGRES_PASSWORD",
    "rabbitmq": "RABBITMQ_DEFAULT_PASS",
    "mongodb": "MONGO_INITDB_ROOT_PASSWORD",
}
# A setting or variable whose name says it holds a secret.
SECRET_NAME = re.compile(r"PASSWORD|_PASS$|TOKEN|SECRET")
# compose's interpolation: $$, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error},
# ${NAME?error}, ${NAME:+other}, ${NAME+other}, and $NAME.
VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>\w+)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<bare>\w+))"
)
# Where a package's process serves /metrics when it has no API: its setting for the port.
METRICS_PORT_SETTINGS = {
    "workers": "WORKER_METRICS_PORT",
    "data_source": "DATA_SOURCE_METRICS_PORT",
    "ground_truth_collector": "GROUND_TRUTH_METRICS_PORT",
}


class Unset(Exception):
    """A ${NAME:?error} whose variable is unset or empty: compose refuses to start."""


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """`value` with every ${...} filled in from `env`, as compose does."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if isinstance(value, str):
        return VARIABLE.sub(lambda match: _substitute(match, env), value)
    return value


def _substitute(match: re.Match[str], env: dict[str, str]) -> str:
    if match["escaped"]:
        return "$"
    name = match["name"] or match["bare"]
    op, arg = match["op"] or "", match["arg"] or ""
    value = env.get(name)
    is_set = value is not None and (value != "" or not op.startswith(":"))
    if op.endswith("-"):
        return value if is_set and value is not None else arg
    if op.endswith("?"):
        if not is_set or value is None:
            raise Unset(f"{name}: {arg}")
        return value
    if op.endswith("+"):
        return arg if is_set else ""
    return value or ""


def example_env() -> dict[str, str]:
    """The variables compose reads from a .env made from .env.example: its values, and a
    made-up secret for each one `make env` generates (empty in the example)."""
    pairs = (line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines())
    env = {key.strip(): value.strip() for key, value in (p for p in pairs if len(p) == 2)}
    env = {key: value for key, value in env.items() if not key.startswith("#")}
    for name in required_variables():
        if not env.get(name):
            env[name] = f"made-up-{name.lower()}-0123456789abcdef0123456789"
    return env


def required_variables() -> set[str]:
    """The variables the files require (${NAME:?...} or ${NAME?...})."""
    text = COMPOSE.read_text() + STORES.read_text()
    return {m["name"] for m in VARIABLE.finditer(text) if (m["op"] or "").endswith("?")}


@cache
def raw(path: Path) -> dict[str, Any]:
    """A compose file as YAML reads it: merge keys (<<) resolved, ${...} not filled in."""
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


@cache
def final(path: Path) -> dict[str, Any]:
    """A compose file as compose runs it with the example's .env."""
    filled: dict[str, Any] = interpolate(raw(path), example_env())
    return filled


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = final(COMPOSE)["services"]
    return found


def package_of(service: dict[str, Any]) -> str | None:
    """The GITS package a service runs (`python -m <package>`), or None."""
    command = service.get("command")
    words = command.split() if isinstance(command, str) else command or []
    return words[2] if words[:2] == ["python", "-m"] and len(words) > 2 else None


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def published(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host address, container port) of every port a service publishes."""
    found = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            found.append((port.get("host_ip", "0.0.0.0"), int(port["target"])))  # noqa: S104
            continue
        parts = str(port).split(":")
        host_ip = parts[0] if len(parts) == 3 else "0.0.0.0"  # noqa: S104
        found.append((host_ip, int(parts[-1].split("/")[0])))
    return found


# --- The files are valid compose files ---


@pytest.mark.parametrize("path", [COMPOSE, STORES], ids=lambda p: p.name)
def test_the_file_follows_the_compose_specification(path: Path):
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in validator.iter_errors(final(path))
    ]
    assert not errors, f"{path.name} breaks the Compose Specification:\n" + "\n".join(errors)


def test_without_make_env_compose_refuses_to_start_naming_what_is_missing():
    env = {key: value for key, value in example_env().items() if not SECRET_NAME.search(key)}
    with pytest.raises(Unset, match="run make env first"):
        interpolate(raw(COMPOSE), env)


# --- What the stack must hold ---


def readme_packages() -> list[str]:
    """The packages of the README's services table (## Services)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Services\n", 1)[1].split("\n## ", 1)[0]
    table = section.strip().split("\n\n", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", table, flags=re.MULTILINE)


def test_every_service_the_readme_names_runs_and_every_store_beside_them():
    packages = readme_packages()
    assert len(packages) >= 9, f"the README's services table was not found: {packages}"
    running = {package_of(service) for service in services().values()}
    missing = [p for p in packages if p not in running]
    assert not missing, f"no compose service runs `python -m <package>` for: {missing}"
    stores = [name for name in STORES_PASSWORDS if name not in services()]
    assert not stores, f"stores the README names missing from docker-compose.yml: {stores}"


def test_every_built_service_has_a_health_check():
    built = {name: s for name, s in services().items() if "build" in s}
    assert len(built) >= 15
    # A one-shot job (restarted only on failure) has no "healthy" state to wait for.
    lacking = [
        name
        for name, service in built.items()
        if "healthcheck" not in service and service.get("restart") != "on-failure"
    ]
    assert not lacking, f"built services without a healthcheck: {lacking}"
    for name, service in services().items():
        if "healthcheck" in service:
            test = service["healthcheck"]["test"]
            assert isinstance(test, list) and test[0] in {"CMD", "CMD-SHELL"}, name
        # a process without an API is checked on the port its settings give its metrics
        setting = METRICS_PORT_SETTINGS.get(package_of(service) or "")
        if setting is not None:
            url = f"http://127.0.0.1:{environment(service)[setting]}/metrics"
            assert url in service["healthcheck"]["test"], f"{name}: not checked at {url}"


def test_workers_have_no_fixed_name_or_host_port_and_are_replicated():
    workers = {n: s for n, s in services().items() if package_of(s) == "workers"}
    assert len(workers) >= 3, workers.keys()
    for name, worker in workers.items():
        fixed = {"container_name", "hostname", "ports"} & set(worker)
        # a fixed name or host port would stop a second replica from starting
        assert not fixed, f"{name} has {sorted(fixed)}: its replicas could not all start"
        assert worker["deploy"]["mode"] == "replicated", name
        assert int(worker["deploy"]["replicas"]) >= 1, name


def secret_values(document: Any, path: str = "") -> list[tuple[str, Any]]:
    """(where, value) of every setting with a secret's name, anywhere in `document`."""
    found = []
    if isinstance(document, dict):
        for key, value in document.items():
            where = f"{path}/{key}"
            if isinstance(key, str) and SECRET_NAME.search(key) and not isinstance(value, dict):
                found.append((where, value))
            found += secret_values(value, where)
    elif isinstance(document, list):
        for i, item in enumerate(document):
            found += secret_values(item, f"{path}/{i}")
    return found


@pytest.mark.parametrize("path", [COMPOSE, STORES], ids=lambda p: p.name)
def test_no_secret_or_default_password_is_in_the_file(path: Path):
    text = path.read_text()
    # Every secret comes from .env, required (compose refuses to start without it), or
    # left empty where the service then generates one (the admin's first password).
    for where, value in secret_values(raw(path)):
        match = re.fullmatch(r"\$\{(\w+)(:\?[^}]+|:-)\}", str(value))
        assert match, f"{path.name}{where} = {value!r}: not ${{NAME:?...}} from .env"
    for variable in VARIABLE.finditer(text):
        name, op, arg = variable["name"] or "", variable["op"] or "", variable["arg"] or ""
        if SECRET_NAME.search(name) and op.endswith("-"):
            assert arg == "", f"{path.name}: ${{{name}{op}{arg}}} is a default password"
    for value in strings(raw(path)):
        for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", value):
            assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", password), f"{path.name}: {value!r}"


def strings(document: Any) -> list[str]:
    """Every string value in `document`."""
    if isinstance(document, dict):
        return [s for value in document.values() for s in strings(value)]
    if isinstance(document, list):
        return [s for item in document for s in strings(item)]
    return [document] if isinstance(document, str) else []


def test_no_store_is_published_on_the_host_and_each_needs_its_credentials():
    compose = services()
    for store, password_setting in STORES_PASSWORDS.items():
        assert not compose[store].get("ports"), f"{store} is published on the host"
        password = raw(COMPOSE)["services"][store]["environment"][password_setting]
        assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", password), f"{store}: {password_setting}"
    # MongoDB with authentication: queue_manager logs in with the root user's password
    url = environment(raw(COMPOSE)["services"]["queue_manager"])["MONGODB_URL"]
    assert re.fullmatch(
        r"mongodb://\$\{MONGODB_USER:-\w+\}:\$\{MONGODB_PASSWORD:\?[^}]+\}@mongodb:27017/"
        r"\?authSource=admin",
        url,
    ), url
    user = raw(COMPOSE)["services"]["mongodb"]["environment"]["MONGO_INITDB_ROOT_USERNAME"]
    assert user == "${MONGODB_USER:-gits}"


def test_the_stores_file_publishes_them_on_this_host_only():
    stores = final(STORES)["services"]
    assert set(stores) <= set(STORES_PASSWORDS), set(stores)
    for name, store in stores.items():
        addresses = {host_ip for host_ip, _ in published(store)}
        assert addresses == {"127.0.0.1"}, f"{name} is published on {addresses}"


def test_what_has_no_credentials_is_published_on_this_host_only():
    # Prometheus has no login; the APIs (and the admin) ask for a token on every route
    # but /health and /metrics.
    for name, service in services().items():
        if package_of(service) is None and name not in STORES_PASSWORDS:
            addresses = {host_ip for host_ip, _ in published(service)}
            assert addresses <= {"127.0.0.1"}, f"{name} is published on {addresses}"


def serves_metrics(package: str) -> bool:
    """Whether a package's process serves /metrics (it uses gits_common.metrics)."""
    return any("gits_common.metrics" in f.read_text() for f in (ROOT / package).rglob("*.py"))


def metrics_endpoints() -> dict[str, int]:
    """Each compose service serving /metrics, and the port it serves it on."""
    endpoints = {}
    for name, service in services().items():
        package = package_of(service)
        if package is None or not serves_metrics(package):
            continue
        setting = METRICS_PORT_SETTINGS.get(package)
        if setting is not None:
            port = environment(service).get(setting)
            assert port, f"{name}: {setting} is not set, so Prometheus cannot know its port"
            assert environment(service).get("METRICS_HOST") == "0.0.0.0", name  # noqa: S104
            endpoints[name] = int(port)
        else:
            [(_, endpoints[name])] = published(service)  # an API: its one port
    return endpoints


def scraped() -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
    """(static targets, DNS-discovered names) of prometheus.yml, with their ports."""
    config = yaml.safe_load(PROMETHEUS.read_text())
    static, discovered = set(), set()
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics", job["job_name"]
        for group in job.get("static_configs", []):
            for target in group["targets"]:
                host, port = target.rsplit(":", 1)
                static.add((host, int(port)))
        for dns in job.get("dns_sd_configs", []):
            assert dns["type"] == "A", job["job_name"]  # compose's DNS has no SRV records
            discovered |= {(name, int(dns["port"])) for name in dns["names"]}
    return static, discovered


def test_prometheus_scrapes_every_metrics_endpoint_and_every_replica():
    endpoints = metrics_endpoints()
    assert len(endpoints) >= 13, endpoints  # 4 APIs, 3 workers, 3 sources, 3 collectors
    static, discovered = scraped()
    missing = {(n, p) for n, p in endpoints.items() if (n, p) not in static | discovered}
    assert not missing, f"prometheus.yml scrapes none of {sorted(missing)}"
    unknown = {n for n, _ in static | discovered} - set(endpoints)
    assert not unknown, f"prometheus.yml scrapes services compose does not run: {unknown}"
    # A replicated service is found through DNS: a static target would reach one replica
    for name, service in services().items():
        if "replicas" in service.get("deploy", {}):
            assert name not in {n for n, _ in static}, f"{name}: a static target"


def test_prometheus_runs_with_that_configuration():
    prometheus = services()["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:")
    mounted = {
        volume.split(":")[1]: (ROOT / volume.split(":")[0]).resolve()
        for volume in prometheus["volumes"]
        if volume.startswith("./")
    }
    [config_flag] = [f for f in prometheus["command"] if f.startswith("--config.file=")]
    assert mounted[config_flag.split("=", 1)[1]] == PROMETHEUS
    assert "healthcheck" in prometheus
