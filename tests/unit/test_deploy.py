"""deploy/ is valid against the official schemas (vendored: no network at test time) and agrees with the contract.

No container engine runs here, so this is what stands between a typo and a failed roll-out: the Compose file
against the Compose Specification's JSON schema, the Kubernetes manifests against the Kubernetes 1.34 strict
JSON schemas (shipped by the `kubernetes-validate` package), the Strimzi resources against a written subset
of Strimzi's CRDs (deploy/schemas/README.md says where each schema comes from).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource

from shared.contract import TOPICS
from shared.infra import EMBEDDED_POSTGRES_SETTINGS
from shared.settings import DEFAULT_PORTS, SERVICES

pytestmark = pytest.mark.unit

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SCHEMAS = DEPLOY / "schemas"
K8S_SCHEMAS = SCHEMAS / "kubernetes-v1.34.0-strict"
K8S_SCHEMA_FILES = {("apps/v1", "Deployment"): "deployment-apps-v1.json", ("v1", "Service"): "service-v1.json",
                    ("v1", "ConfigMap"): "configmap-v1.json", ("v1", "Secret"): "secret-v1.json"}
RELAY_MARKERS = {f"iomki.internal.relay.{service}": 1 for service in SERVICES}
EPOCH_MARKERS = {f"iomki.internal.epoch.{topic.name}.deployed": 1 for topic in TOPICS if topic.owner in SERVICES}
ALL_TOPICS = {**{topic.name: topic.partitions for topic in TOPICS}, **RELAY_MARKERS, **EPOCH_MARKERS}


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
MANIFESTS = [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
             for doc in yaml.safe_load_all(path.read_text()) if doc]


def _compose_validator():
    schema = _load(SCHEMAS / "compose-spec.json")
    return jsonschema.Draft201909Validator(schema)  # what its "$schema" names (spelled with a trailing "#")


def _k8s_validator(api_version: str, kind: str):
    if kind in ("KafkaTopic", "KafkaUser"):
        strimzi = _load(SCHEMAS / "strimzi-v1beta2-subset.json")
        schema = {"$ref": f"{strimzi['$id']}#/$defs/{kind}"}
        registry = Resource.from_contents(strimzi) @ Registry()
        return jsonschema.Draft202012Validator(schema, registry=registry)
    schema = _load(K8S_SCHEMAS / K8S_SCHEMA_FILES[(api_version, kind)])
    registry = Resource.from_contents(_load(K8S_SCHEMAS / "_definitions.json")) @ Registry()
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _errors(validator, document) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def _of_kind(kind: str) -> list[dict]:
    return [doc for doc in MANIFESTS if doc["kind"] == kind]


# ---------------------------------------------------------------------------------------------- compose


def test_compose_file_is_valid_against_the_compose_specification():
    assert _errors(_compose_validator(), COMPOSE) == []


def test_compose_schema_rejects_what_compose_would():
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["permits"]["deploy"] = {"replicas": "two"}  # its own dict: the others share an anchor
    broken["services"]["reports"]["healthchek"] = {}
    assert len(_errors(_compose_validator(), broken)) == 2


def test_compose_runs_kraft_kafka_postgres_and_every_service_with_its_own_identity():
    services = COMPOSE["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert services["postgres"]["image"].startswith("postgres:")
    for name in SERVICES:
        service, env = services[name], services[name]["environment"]
        assert service["command"] == ["python", "-m", f"services.{name}"]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["deploy"]["replicas"] >= 2
        assert f"{DEFAULT_PORTS[name]}/readyz" in " ".join(service["healthcheck"]["test"])
        assert env[f"IOMKI_{name.upper()}_DATABASE_URL"].startswith(f"postgresql://iomki_{name}:")
        assert env["KAFKA_SASL_USERNAME"] == f"iomki-{name}"
        assert service["depends_on"]["kafka-topics"]["condition"] == "service_completed_successfully"


def test_compose_creates_every_topic_with_the_contracts_partitions():
    script = COMPOSE["services"]["kafka-topics"]["command"][0]
    created = {line.split()[1]: int(line.split()[2]) for line in script.splitlines() if line.startswith("create ")}
    assert created == ALL_TOPICS


def test_compose_postgres_runs_with_the_settings_the_embedded_server_has():
    command = COMPOSE["services"]["postgres"]["command"]
    assert command[0] == "postgres"
    flags, values = command[1::2], command[2::2]
    assert set(flags) == {"-c"}
    assert dict(value.split("=", 1) for value in values) == EMBEDDED_POSTGRES_SETTINGS


def test_dockerfile_runs_as_a_non_root_user():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert dockerfile.startswith("# ") and "FROM python:3.11-slim" in dockerfile
    assert "USER 10001" in dockerfile and "pip install ." in dockerfile


# ---------------------------------------------------------------------------------------------- kubernetes


@pytest.mark.parametrize("document", MANIFESTS, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifest_is_valid_against_its_schema(document):
    assert _errors(_k8s_validator(document["apiVersion"], document["kind"]), document) == []


def test_kubernetes_schemas_reject_a_broken_deployment_and_topic():
    deployment = copy.deepcopy(_of_kind("Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    deployment["spec"]["replicas"] = "3"
    assert len(_errors(_k8s_validator("apps/v1", "Deployment"), deployment)) == 2
    topic = copy.deepcopy(_of_kind("KafkaTopic")[0])
    topic["spec"]["partitions"] = 0
    assert _errors(_k8s_validator(topic["apiVersion"], "KafkaTopic"), topic)


def test_every_service_has_a_deployment_with_probes_and_a_service():
    deployments = {d["metadata"]["name"]: d for d in _of_kind("Deployment")}
    assert set(deployments) == set(SERVICES) == {s["metadata"]["name"] for s in _of_kind("Service")}
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["command"] == ["python", "-m", f"services.{name}"]
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        env = {e["name"]: e for e in container["env"]}
        assert env["KAFKA_SASL_USERNAME"]["value"] == f"iomki-{name}"
        assert env[f"IOMKI_{name.upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == f"{name}-database-url"


def test_every_topic_is_a_kafka_topic_with_at_least_the_contracts_partitions():
    declared = {t["spec"]["topicName"]: t["spec"] for t in _of_kind("KafkaTopic")}
    assert set(declared) == set(ALL_TOPICS)
    for name, spec in declared.items():
        assert spec["partitions"] >= ALL_TOPICS[name]
        assert spec["replicas"] == 3 and spec["config"]["min.insync.replicas"] == 2


def _grants(user: dict, operation: str, pattern: str = "literal") -> set[str]:
    return {acl["resource"]["name"] for acl in user["spec"]["authorization"]["acls"]
            if operation in acl["operations"] and acl["resource"]["type"] == "topic"
            and acl["resource"].get("patternType", "literal") == pattern}


def test_acls_give_each_principal_only_what_deploy_readme_lists():
    users = {u["metadata"]["name"]: u for u in _of_kind("KafkaUser")}
    owned = {name: {t.name for t in TOPICS if t.owner == name} for name in SERVICES}
    for name in SERVICES:
        user = users[f"iomki-{name}"]
        assert _grants(user, "Write") == owned[name] | {"iomki.dlq", f"iomki.internal.relay.{name}"}
        epochs_of_owned = {f"iomki.internal.epoch.{topic}." for topic in owned[name]}
        assert _grants(user, "Create", "prefix") == _grants(user, "Delete", "prefix") == epochs_of_owned
        assert _grants(user, "Create") == _grants(user, "Delete") == set()
        reads = _grants(user, "Read")
        assert ("iomki.internal.contacts" in reads) == (name == "notifier")
        assert "iomki.dlq" not in reads and not any(t in reads for t in owned[name])
    agencies = [u for n, u in users.items() if n.startswith("agency-")]
    assert agencies
    for agency in agencies:
        assert _grants(agency, "Read") == {t.name for t in TOPICS if t.public}
        assert _grants(agency, "Write") == set()
