"""The embedded Apache Kafka's pure parts: cluster ids, node configuration, the pinned version."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tooling.embedded_kafka import EmbeddedKafka, kafka_version, new_cluster_id

pytestmark = pytest.mark.unit


def test_cluster_ids_are_kafkas_22_url_safe_characters_never_taken_for_an_option():
    ids = {new_cluster_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id) and not cluster_id.startswith("-") for cluster_id in ids)


def test_the_pinned_broker_is_a_4x_apache_kafka():
    assert re.fullmatch(r"4\.\d+\.\d+", kafka_version())


def _properties(kafka: EmbeddedKafka, node: int) -> dict[str, str]:
    text = kafka._properties(kafka.nodes[node])
    return dict(line.split("=", 1) for line in text.splitlines())


def test_one_node_is_broker_and_controller_with_one_copy_of_everything(tmp_path: Path):
    kafka = EmbeddedKafka(tmp_path / "kafka", ports=[(19092, 19093)])
    properties = _properties(kafka, 0)
    assert properties["process.roles"] == "broker,controller"
    assert properties["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert properties["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert (properties["default.replication.factor"], properties["min.insync.replicas"]) == ("1", "1")
    assert properties["auto.create.topics.enable"] == properties["unclean.leader.election.enable"] == "false"
    assert properties["log.dirs"] == str((tmp_path / "kafka" / "node-1" / "data").resolve())
    assert kafka.bootstrap == "127.0.0.1:19092"


def test_three_nodes_vote_in_one_quorum_and_keep_three_copies_two_in_sync(tmp_path: Path):
    kafka = EmbeddedKafka(tmp_path / "kafka", size=3, ports=[(1, 2), (3, 4), (5, 6)])
    for index in range(3):
        properties = _properties(kafka, index)
        assert properties["node.id"] == str(index + 1)
        assert properties["controller.quorum.voters"] == "1@127.0.0.1:2,2@127.0.0.1:4,3@127.0.0.1:6"
        assert (properties["default.replication.factor"], properties["min.insync.replicas"]) == ("3", "2")
        assert properties["offsets.topic.replication.factor"] == "3"
        assert properties["transaction.state.log.min.isr"] == "2"
    assert kafka.bootstrap == "127.0.0.1:1,127.0.0.1:3,127.0.0.1:5"
    assert (kafka.replication_factor, kafka.min_insync_replicas) == (3, 2)


def test_a_cluster_left_to_choose_its_ports_never_gives_two_listeners_the_same_one(tmp_path: Path):
    for attempt in range(200):
        kafka = EmbeddedKafka(tmp_path / f"kafka-{attempt}", size=3)
        ports = [port for node in kafka.nodes for port in (node.port, node.controller_port)]
        assert len(set(ports)) == 6
