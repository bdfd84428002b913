"""A three-node Apache Kafka cluster under fault, with the load and the oracle of test_faults.py.

The platform runs against a KRaft cluster of three nodes, each both broker and controller; every topic has three
replicas, and a write needs two in sync (the relay sends with acks=all, unclean election is off). While the
load crosses all four services (applications, decisions, reports, cases, acknowledgements of alerts):

- the broker leading the most partitions of the busiest topics is killed with SIGKILL, and started again on its
  data once the others have fenced it and elected new leaders;
- the broker coordinating the most consumer groups is frozen with SIGSTOP for longer than a consumer's session,
  then let go on;
- every broker is restarted in turn (a rolling restart), each one back and every partition fully replicated
  again before the next.

Then the oracle holds as in test_faults.py: nothing lost, nothing applied twice, no alert raised twice, and every
consumer group committed up to the end of the topics it consumes. IOMKI_FAULT_SEED replays a run's plan.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

from shared.contract import TOPICS
from tests.support.fault_injection import Fault, fault_seed, load_under_faults, plan_plants
from tests.support.oracle import GROUP_TOPICS
from tests.support.processes import RunningServices
from tooling.embedded_kafka import EmbeddedKafka, KafkaNode

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

LOAD_SECONDS = 20  # at least: the load goes on until the last fault is over, about two minutes in
PLANTS = 16
SESSION_TIMEOUT = 10.0  # aiokafka's session_timeout_ms, which the services' consumers keep
IN_SYNC_TIMEOUT = 90.0  # a node restarted under load on two shared cores catches up within this
BUSIEST = 2  # the topics, by messages so far, whose partitions' leaders decide which broker is killed


def plan_faults(rng: random.Random) -> list[Fault]:
    """The leader killed once the load is going (and started again 1-4 s after the others fenced it), the
    coordinator frozen, then every node restarted in a random order (named in the fault: "rolling restart 2 3 1")."""
    order = [1, 2, 3]
    rng.shuffle(order)
    return [Fault("kill leader", at=12, outage=rng.uniform(1.0, 4.0)),
            Fault("pause coordinator", at=0, outage=SESSION_TIMEOUT + rng.uniform(4.0, 6.0)),
            Fault("rolling restart " + " ".join(map(str, order)), at=0)]


async def test_a_three_broker_cluster_under_kill_pause_and_rolling_restart_loses_nothing_and_repeats_nothing():
    seed = fault_seed()
    rng = random.Random(seed)  # noqa: S311 -- a seeded fault plan, repeatable from the seed
    plants = plan_plants(rng, PLANTS)
    await load_under_faults("cluster_faults", seed, plants, plan_faults(rng), strike, load_seconds=LOAD_SECONDS,
                            own_database=True, brokers=3)


async def strike(services: RunningServices, fault: Fault) -> None:
    broker = services.platform.broker
    assert broker is not None and len(broker.nodes) == 3
    cluster = ClusterView(broker)
    if fault.name == "kill leader":
        await kill_busiest_leader(broker, cluster, fault)
    elif fault.name == "pause coordinator":
        await pause_coordinator(broker, cluster, fault)
    else:
        for node_id in map(int, fault.name.removeprefix("rolling restart ").split()):
            fault.step(f"node {node_id}: SIGTERM, then started on its data")
            await asyncio.to_thread(broker.restart, node_of(broker, node_id))
            fault.step(f"node {node_id} serving again")
            await cluster.wait_until(whole, "every node live and seeing every partition fully replicated", fault)


async def kill_busiest_leader(broker: EmbeddedKafka, cluster: ClusterView, fault: Fault) -> None:
    layout = next(view for view in (await cluster.views()).values() if isinstance(view, View)).layout
    ends = await cluster.ends(layout)
    messages = Counter[str]()
    for replicas in layout:
        messages[replicas.topic] += ends.get(replicas.partition_of, 0)
    busiest = [topic for topic, _ in messages.most_common(BUSIEST)]
    led, volume = Counter[int](), Counter[int]()
    for replicas in layout:
        if replicas.topic in busiest:
            led[replicas.leader] += 1
            volume[replicas.leader] += ends.get(replicas.partition_of, 0)
    victim = max(led, key=lambda node_id: (led[node_id], volume[node_id]))
    node = node_of(broker, victim)
    fault.step(f"node {victim} leads {led[victim]} of {sum(led.values())} partitions of {', '.join(busiest)} "
               f"({', '.join(f'{t}: {n} messages' for t, n in messages.most_common(BUSIEST))}): SIGKILL")
    await asyncio.to_thread(broker.kill, node)
    fault.struck_at = time.monotonic()
    # The controller fences a broker that stopped heartbeating (broker.session.timeout.ms, 9 s) and elects new
    # leaders from the in-sync replicas: the load meets the leader change itself, not just a slow broker.
    await cluster.wait_until(fenced(victim), f"the others fenced node {victim} and moved its leadership", fault,
                             exclude=node, timeout=30)
    await asyncio.sleep(fault.outage)
    fault.outage = time.monotonic() - fault.struck_at  # the timeline shows how long it was down in all
    await asyncio.to_thread(broker.start_node, node)
    fault.step(f"node {victim} serving again")
    await cluster.wait_until(whole, "every node live and seeing every partition fully replicated", fault)


async def pause_coordinator(broker: EmbeddedKafka, cluster: ClusterView, fault: Fault) -> None:
    """Consumers heartbeat to their group's coordinator: frozen past their session timeout, it has lost the
    group's members, the controller has fenced it and moved its partitions, and it wakes up behind."""
    coordinators = {group: await cluster.coordinator(group) for group in GROUP_TOPICS}
    counted = Counter(coordinators.values())
    victim = max(counted, key=lambda node_id: counted[node_id])
    node = node_of(broker, victim)
    groups = sorted(group for group, coordinator in coordinators.items() if coordinator == victim)
    fault.step(f"node {victim} coordinates {', '.join(groups)}: SIGSTOP")
    broker.pause(node)
    fault.struck_at = time.monotonic()
    try:
        await asyncio.sleep(fault.outage)
        fault.step(f"while node {victim} is frozen: {account(await cluster.views(exclude=node))}")
    finally:
        broker.resume(node)
    fault.step(f"node {victim}: SIGCONT")
    await cluster.wait_until(whole, "every node live and seeing every partition fully replicated", fault)


def node_of(broker: EmbeddedKafka, node_id: int) -> KafkaNode:
    return next(node for node in broker.nodes if node.node_id == node_id)


# ------------------------------------------------------------------------------------------- what the cluster says


@dataclass(frozen=True)
class Replicas:
    topic: str
    partition: int
    leader: int  # -1 when it has none
    replicas: tuple[int, ...]
    isr: tuple[int, ...]

    @property
    def partition_of(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    @property
    def fully_replicated(self) -> bool:
        return self.leader >= 0 and set(self.isr) == set(self.replicas)


@dataclass(frozen=True)
class View:
    """One node's account of the cluster (its metadata): the brokers it knows live, and every partition of every
    topic, the platform's and Kafka's own (__consumer_offsets)."""

    brokers: frozenset[int]
    layout: tuple[Replicas, ...]


Views = dict[int, View | str]  # node id → its account, or why it gave none


def whole(views: Views) -> bool:
    everyone = frozenset(views)
    return all(isinstance(view, View) and view.brokers == everyone and all(r.fully_replicated for r in view.layout)
               for view in views.values())


def fenced(victim: int) -> Callable[[Views], bool]:
    def done(views: Views) -> bool:
        return all(isinstance(view, View) and victim not in view.brokers
                   and all(r.leader != victim for r in view.layout) for view in views.values())
    return done


def health(view: View) -> str:
    leaders = Counter(r.leader for r in view.layout if r.leader >= 0)
    behind = [r for r in view.layout if not r.fully_replicated]
    text = (f"brokers {sorted(view.brokers)}, leaders {' '.join(f'{n}×{leaders[n]}' for n in sorted(leaders))}, "
            f"{len(behind)} of {len(view.layout)} partitions under-replicated")
    if leaderless := sum(r.leader < 0 for r in view.layout):
        text += f", {leaderless} without a leader"
    if behind:
        text += " (" + ", ".join(f"{r.topic}-{r.partition} isr {list(r.isr)}" for r in behind[:4]) + ", …)"
    return text


def account(views: Views) -> str:
    """What the nodes say, each different account once."""
    told: dict[str, list[int]] = {}
    for node_id, view in sorted(views.items()):
        told.setdefault(health(view) if isinstance(view, View) else f"no answer ({view})", []).append(node_id)
    return "; ".join(f"node{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}: {text}"
                     for text, ids in told.items())


class ClusterView:
    """The cluster's account of itself through Kafka's protocol, each call with a deadline, so that a frozen
    node costs a retry, not the test."""

    def __init__(self, broker: EmbeddedKafka) -> None:
        self.broker = broker

    async def views(self, exclude: KafkaNode | None = None) -> Views:
        """Each node's own account. A node that was frozen, or has just started, answers from what it knew
        then: asked at random (as the admin client asks), its stale word could pass for the cluster's."""
        asked = [node for node in self.broker.nodes if node is not exclude]
        client = AIOKafkaClient(bootstrap_servers=",".join(node.address for node in asked), request_timeout_ms=5_000)
        found: Views = {}
        try:
            async with asyncio.timeout(10):
                await client.bootstrap()
            for node in asked:
                try:
                    async with asyncio.timeout(6):
                        told = (await client.send(node.node_id, MetadataRequest(None))).to_object()
                except (KafkaError, OSError, TimeoutError) as exc:
                    found[node.node_id] = f"{type(exc).__name__}: {exc}"
                    continue
                found[node.node_id] = View(
                    frozenset(b["node_id"] for b in told["brokers"]),
                    tuple(Replicas(t["topic"], p["partition"], p["leader"], tuple(p["replicas"]), tuple(p["isr"]))
                          for t in told["topics"] for p in t["partitions"]))
        except (KafkaError, OSError, TimeoutError) as exc:
            found = {node.node_id: f"no node answered: {type(exc).__name__}: {exc}" for node in asked}
        finally:
            await client.close()
        return found

    async def wait_until(self, done: Callable[[Views], bool], what: str, fault: Fault, *,
                         exclude: KafkaNode | None = None, timeout: float = IN_SYNC_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not done(views := await self.views(exclude)):
            if time.monotonic() > deadline:
                raise AssertionError(f"not {what} within {timeout:.0f}s: {account(views)}")
            await asyncio.sleep(0.5)
        fault.step(f"{what}: {account(views)}")

    async def ends(self, layout: tuple[Replicas, ...]) -> dict[TopicPartition, int]:
        platform = {topic.name for topic in TOPICS}
        reader = AIOKafkaConsumer(bootstrap_servers=self.broker.bootstrap, request_timeout_ms=5_000)
        try:
            async with asyncio.timeout(10):
                await reader.start()
                return await reader.end_offsets([r.partition_of for r in layout if r.topic in platform])
        finally:
            await reader.stop()

    async def coordinator(self, group: str) -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.broker.bootstrap, request_timeout_ms=5_000)
        try:
            async with asyncio.timeout(10):
                await admin.start()
                return await admin.find_coordinator(group)
        finally:
            await admin.close()
