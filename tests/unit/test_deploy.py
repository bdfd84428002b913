"""deploy/ is valid against the official schemas (vendored: no network at test time) and agrees with the contract.

No container engine runs here, so this is what stands between a typo and a failed roll-out: the Compose file
against the Compose Specification's JSON schema, the Kubernetes manifests against the Kubernetes 1.34 strict
JSON schemas (shipped by the `kubernetes-validate` package), the Strimzi resources against a written subset
of Strimzi's CRDs (deploy/schemas/README.md says where each schema comes from). And the broker is one Apache Kafka
version everywhere: the embedded node's (deploy/kafka/pom.xml), Compose's image and the Strimzi cluster's.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource

from shared.contract import TOPICS
from shared.settings import DEFAULT_PORTS, SERVICES
from shared.storage.embedded import EMBEDDED_POSTGRES_SETTINGS

pytestmark = pytest.mark.unit

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SCHEMAS = DEPLOY / "schemas"
K8S_SCHEMAS = SCHEMAS / "kubernetes-v1.34.0-strict"
K8S_SCHEMA_FILES = {("apps/v1", "Deployment"): "deployment-apps-v1.json", ("v1", "Service"): "service-v1.json",
                    ("v1", "ConfigMap"): "configmap-v1.json", ("v1", "Secret"): "secret-v1.json"}
STRIMZI_KINDS = ("Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser")
ALL_TOPICS = {topic.name: topic.partitions for topic in TOPICS}
KAFKA_NODES = ("kafka-1", "kafka-2", "kafka-3")


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _pinned_kafka_version() -> str:
    """The broker version deploy/kafka/pom.xml pins for the embedded node."""
    pom = (DEPLOY / "kafka" / "pom.xml").read_text()
    (version,) = re.findall(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", pom)
    return version


COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
MANIFESTS = [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
             for doc in yaml.safe_load_all(path.read_text()) if doc]


def _compose_validator():
    schema = _load(SCHEMAS / "compose-spec.json")
    return jsonschema.Draft201909Validator(schema)  # what its "$schema" names (spelled with a trailing "#")


def _k8s_validator(api_version: str, kind: str):
    if kind in STRIMZI_KINDS:
        strimzi = _load(SCHEMAS / "strimzi-v1-subset.json")
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


def test_compose_kafka_is_three_combined_kraft_nodes_that_keep_what_they_acknowledged():
    services = COMPOSE["services"]
    brokers = sorted(name for name in services if name.startswith("kafka-") and name != "kafka-topics")
    assert brokers == list(KAFKA_NODES)
    nodes = [services[name]["environment"] for name in KAFKA_NODES]
    assert [env["KAFKA_NODE_ID"] for env in nodes] == [1, 2, 3]
    assert len({env["CLUSTER_ID"] for env in nodes}) == 1  # one cluster, not three
    voters = "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
    for name, env in zip(KAFKA_NODES, nodes, strict=True):
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, every node in the controllers' quorum
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voters
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == 3 and env["KAFKA_MIN_INSYNC_REPLICAS"] == 2
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == 2
        assert f"{name}-data:{env['KAFKA_LOG_DIRS']}" in services[name]["volumes"]  # the log survives the container
    for name in SERVICES:
        env = services[name]["environment"]
        assert env["KAFKA_BOOTSTRAP"].split(",") == [f"{node}:9092" for node in KAFKA_NODES]
        assert env["KAFKA_REPLICATION_FACTOR"] == 3 and env["KAFKA_MIN_INSYNC_REPLICAS"] == 2


def test_compose_creates_every_topic_with_the_contracts_partitions_on_three_replicas_two_in_sync():
    script = COMPOSE["services"]["kafka-topics"]["command"][0]
    created = {line.split()[1]: int(line.split()[2]) for line in script.splitlines() if line.startswith("create ")}
    assert created == ALL_TOPICS
    (create,) = [line for line in script.splitlines() if line.startswith("create()")]
    assert re.findall(r"--replication-factor (\d+)", create) == ["3"]
    assert re.findall(r"--config ([\w.]+=\w+)", create) == ["min.insync.replicas=2"]
    assert all(depends["condition"] == "service_healthy"
               for depends in COMPOSE["services"]["kafka-topics"]["depends_on"].values())


def test_one_kafka_version_everywhere():
    pinned = _pinned_kafka_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned)
    images = {COMPOSE["services"][name]["image"] for name in (*KAFKA_NODES, "kafka-topics")}
    (kafka,) = _of_kind("Kafka")
    assert images == {f"apache/kafka:{pinned}"}
    assert kafka["spec"]["kafka"]["version"] == pinned


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


def test_dockerfile_copies_every_package_of_the_product():
    """The image runs the services and carries the `iomki` CLI: every package they import from must be in it."""
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for package in ("shared", "services", "tooling"):
        assert f"COPY {package} ./{package}" in dockerfile


# ---------------------------------------------------------------------------------------------- kubernetes


@pytest.mark.parametrize("document", MANIFESTS, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifest_is_valid_against_its_schema(document):
    assert _errors(_k8s_validator(document["apiVersion"], document["kind"]), document) == []


def test_kubernetes_schemas_reject_a_broken_deployment_topic_and_cluster():
    deployment = copy.deepcopy(_of_kind("Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    deployment["spec"]["replicas"] = "3"
    assert len(_errors(_k8s_validator("apps/v1", "Deployment"), deployment)) == 2
    topic = copy.deepcopy(_of_kind("KafkaTopic")[0])
    topic["spec"]["partitions"] = 0
    assert _errors(_k8s_validator(topic["apiVersion"], "KafkaTopic"), topic)
    topic = copy.deepcopy(_of_kind("KafkaTopic")[0])
    topic["apiVersion"] = "kafka.strimzi.io/v1beta2"  # no longer served by the Strimzi that runs Kafka 4
    assert _errors(_k8s_validator(topic["apiVersion"], "KafkaTopic"), topic)
    kafka = copy.deepcopy(_of_kind("Kafka")[0])
    kafka["spec"]["kafka"]["listeners"][0]["name"] = "scram-over-tls"  # longer than Strimzi's 11 characters
    kafka["spec"]["kafka"]["replica"] = 3
    assert len(_errors(_k8s_validator(kafka["apiVersion"], "Kafka"), kafka)) == 2
    pool = copy.deepcopy(_of_kind("KafkaNodePool")[0])
    pool["spec"]["roles"] = ["broker", "zookeeper"]
    assert _errors(_k8s_validator(pool["apiVersion"], "KafkaNodePool"), pool)


def test_every_service_has_a_deployment_with_probes_and_a_service():
    deployments = {d["metadata"]["name"]: d for d in _of_kind("Deployment")}
    assert set(deployments) == {*SERVICES, "console"} == {s["metadata"]["name"] for s in _of_kind("Service")}
    for name in SERVICES:
        deployment = deployments[name]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["command"] == ["python", "-m", f"services.{name}"]
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        env = {e["name"]: e for e in container["env"]}
        assert env["KAFKA_SASL_USERNAME"]["value"] == f"iomki-{name}"
        assert env[f"IOMKI_{name.upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == f"{name}-database-url"


def test_the_console_runs_once_beside_the_services_and_calls_each_by_its_in_cluster_name():
    """One replica (its sessions are in its memory), no database and no broker of its own: only the services' APIs,
    and the provider the services trust."""
    (deployment,) = [d for d in _of_kind("Deployment") if d["metadata"]["name"] == "console"]
    assert deployment["spec"]["replicas"] == 1
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "services.console"]
    assert container["ports"][0]["containerPort"] == DEFAULT_PORTS["console"]
    assert (container["readinessProbe"]["httpGet"]["path"], container["livenessProbe"]["httpGet"]["path"]) == (
        "/readyz", "/healthz")
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert {name: env[f"IOMKI_{name.upper()}_URL"] for name in SERVICES} == {
        name: f"http://{name}" for name in SERVICES}
    assert env["IOMKI_CONSOLE_URL"].startswith("https://")  # its cookies are Secure
    assert not any("DATABASE_URL" in name or name.startswith("KAFKA_") for name in env)

    compose = COMPOSE["services"]["console"]
    assert compose["command"] == ["python", "-m", "services.console"] and compose["deploy"]["replicas"] == 1
    assert f"{DEFAULT_PORTS['console']}/readyz" in " ".join(compose["healthcheck"]["test"])
    assert {name: compose["environment"][f"IOMKI_{name.upper()}_URL"] for name in SERVICES} == {
        name: f"http://{name}:{DEFAULT_PORTS[name]}" for name in SERVICES}
    assert "IOMKI_OIDC_ISSUER" in compose["environment"] and "IOMKI_CONSOLE_URL" in compose["environment"]


def test_the_strimzi_cluster_is_three_kraft_nodes_that_keep_what_they_acknowledged():
    (kafka,) = _of_kind("Kafka")
    pools = _of_kind("KafkaNodePool")
    assert all(pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"] for pool in pools)
    assert sum(pool["spec"]["replicas"] for pool in pools) == 3
    assert all(set(pool["spec"]["roles"]) == {"broker", "controller"} for pool in pools)  # combined nodes, KRaft
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3 and config["min.insync.replicas"] == 2
    assert config["unclean.leader.election.enable"] is False and config["auto.create.topics.enable"] is False
    assert config["offsets.topic.replication.factor"] == config["transaction.state.log.replication.factor"] == 3
    assert config["transaction.state.log.min.isr"] == 2
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"  # the KafkaUsers' ACLs are enforced
    assert {"topicOperator", "userOperator"} <= set(kafka["spec"]["entityOperator"])
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["tls"] is True and listener["authentication"]["type"] == "scram-sha-512"
    bootstrap = _of_kind("ConfigMap")[0]["data"]["KAFKA_BOOTSTRAP"]
    assert bootstrap == f"{kafka['metadata']['name']}-kafka-bootstrap:{listener['port']}"


def test_every_topic_is_a_kafka_topic_with_at_least_the_contracts_partitions():
    declared = {t["spec"]["topicName"]: t["spec"] for t in _of_kind("KafkaTopic")}
    assert set(declared) == set(ALL_TOPICS)
    for name, spec in declared.items():
        assert spec["partitions"] >= ALL_TOPICS[name]
        assert spec["replicas"] == 3
        assert spec["config"]["min.insync.replicas"] == "2"
        assert spec["config"]["unclean.leader.election.enable"] == "false"
    data = _of_kind("ConfigMap")[0]["data"]
    assert (data["KAFKA_REPLICATION_FACTOR"], data["KAFKA_MIN_INSYNC_REPLICAS"]) == ("3", "2")


def test_no_marker_topics_are_left_in_deploy():
    for path in [DEPLOY / "docker-compose.yml", DEPLOY / "README.md", *sorted((DEPLOY / "k8s").glob("*.yaml"))]:
        text = path.read_text()
        assert "iomki.internal.relay" not in text and "iomki.internal.epoch" not in text, path


def _grants(user: dict, operation: str, pattern: str = "literal", resource: str = "topic") -> set[str]:
    return {acl["resource"].get("name", "") for acl in user["spec"]["authorization"]["acls"]
            if operation in acl["operations"] and acl["resource"]["type"] == resource
            and acl["resource"].get("patternType", "literal") == pattern}


def test_acls_give_each_principal_only_what_deploy_readme_lists():
    users = {u["metadata"]["name"]: u for u in _of_kind("KafkaUser")}
    owned = {name: {t.name for t in TOPICS if t.owner == name} for name in SERVICES}
    consumed = {"permits": {"iomki.reports", "iomki.incidents", "iomki.supervision"},
                "reports": {"iomki.permits", "iomki.incidents", "iomki.ppkm"},
                "incidents": {"iomki.permits", "iomki.reports"},
                "notifier": {"iomki.permits", "iomki.reports", "iomki.incidents", "iomki.supervision",
                             "iomki.internal.contacts"},
                "supervision": {"iomki.permits", "iomki.reports", "iomki.incidents"}}
    for name in SERVICES:
        user = users[f"iomki-{name}"]
        assert _grants(user, "Write") == owned[name] | {"iomki.dlq"}
        assert _grants(user, "Write", "prefix") == set()
        assert _grants(user, "Read") == consumed[name] and _grants(user, "Read", "prefix") == set()
        assert _grants(user, "Read", resource="group") == {f"iomki-{name}"}
        assert _grants(user, "Describe", "prefix") == {"iomki."}  # metadata only: the start-up check of topics
        for pattern in ("literal", "prefix"):  # topics are the Topic Operator's to make and remove
            assert _grants(user, "Create", pattern) == _grants(user, "Delete", pattern) == set()
        # An idempotent producer needs Write on its topics only (KIP-679), never the cluster's IdempotentWrite.
        assert not any(acl["resource"]["type"] == "cluster" for acl in user["spec"]["authorization"]["acls"])
    readers_of_internal = {name for name in SERVICES
                           if any(t.startswith("iomki.internal.") for t in _grants(users[f"iomki-{name}"], "Read"))}
    assert readers_of_internal == {"notifier"}
    agencies = [u for n, u in users.items() if n.startswith("agency-")]
    assert agencies
    for agency in agencies:
        assert _grants(agency, "Read") == {t.name for t in TOPICS if t.public}
        assert _grants(agency, "Read", "prefix") == set()
        assert _grants(agency, "Write") == _grants(agency, "Write", "prefix") == set()
    publisher = users["ppkm-publisher"]  # the agency that sets PPKM levels writes its topic, and reads nothing
    assert _grants(publisher, "Write") == {"iomki.ppkm"} and _grants(publisher, "Write", "prefix") == set()
    assert _grants(publisher, "Read") == _grants(publisher, "Read", "prefix") == set()
