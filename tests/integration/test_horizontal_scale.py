"""Two instances of one service: the consumer group divides the partitions between them, each event is applied
once, and the outbox relay (one leader at a time) keeps each plant's order when the leader goes away."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from shared.contract import PermitApplied
from shared.settings import PlatformSettings
from tests.support.kafka import read_topic
from tests.support.platform import TestPlatform
from tests.support.probe import Probe, applied_event

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pair(platform: TestPlatform) -> AsyncIterator[list[Probe]]:
    instances = [Probe(PlatformSettings(), name="probe_pair", instance=name) for name in ("a", "b")]
    await asyncio.gather(*(instance.start() for instance in instances))
    yield instances
    for instance in instances:
        await instance.stop()


async def test_two_instances_share_the_partitions_and_apply_each_event_once(pair):
    a, b = pair
    partitions = {(PermitApplied.topic.name, n) for n in range(PermitApplied.topic.partitions)}

    def divided() -> bool:
        """Each holds some partitions, none both, all of them between the two. During the rebalance the first
        member may still report all partitions while the second already reports its share."""
        mine, theirs = a.runtime.consumer.assignment(), b.runtime.consumer.assignment()
        return bool(mine and theirs) and not mine & theirs and mine | theirs == partitions

    async with asyncio.timeout(90):  # both have joined the group and it has divided the partitions between them
        while not divided():
            await asyncio.sleep(0.2)

    plants = [uuid.uuid4() for _ in range(40)]
    for sequence in range(10):  # both instances take requests: each writes to the service's one outbox
        await (a if sequence % 2 else b).emit(*(applied_event(plant, sequence) for plant in plants))
    rows = await a.wait_applied(plants, 400)

    assert len(rows) == 400 and len({row[0] for row in rows}) == 400, "an event was lost or applied twice"
    detailed = await a.applied_rows(plants)
    assert {row["instance"] for row in detailed} == {"a", "b"}, "one instance did all the work"
    for plant in plants:
        mine = [row for row in detailed if row["facility_id"] == plant]
        assert [row["sequence"] for row in mine] == list(range(10))
        assert len({row["instance"] for row in mine}) == 1, "a plant's events were split between instances"


async def test_the_relay_keeps_each_plants_order_when_the_leading_instance_goes_away(pair, platform):
    a, b = pair
    async with asyncio.timeout(30):
        while not (a.runtime.relay.is_leader or b.runtime.relay.is_leader):
            await asyncio.sleep(0.1)
    leader, follower = (a, b) if a.runtime.relay.is_leader else (b, a)
    assert not follower.runtime.relay.is_leader

    plants = [uuid.uuid4() for _ in range(10)]
    sent = [applied_event(plant, sequence) for sequence in range(40) for plant in plants]

    async def emit_steadily() -> None:
        for offset in range(0, len(sent), len(plants)):
            await follower.emit(*sent[offset:offset + len(plants)])
            await asyncio.sleep(0.02)

    writing = asyncio.create_task(emit_steadily())
    await asyncio.sleep(0.3)  # the leader has published part of it
    await leader.stop()
    await writing
    async with asyncio.timeout(30):
        while not follower.runtime.relay.is_leader:
            await asyncio.sleep(0.1)

    wanted = {str(envelope.id) for envelope in sent}
    keys = {envelope.key for envelope in sent}

    def first_occurrences(messages) -> list[dict]:
        seen, events = set(), []
        for message in messages:
            if message.key not in keys:  # the topic also carries other tests' events, and garbage
                continue
            event = json.loads(message.value)
            if event["id"] in wanted and event["id"] not in seen:
                seen.add(event["id"])
                events.append(event)
        return events

    messages = await read_topic(platform.bootstrap, PermitApplied.topic.name,
                                until=lambda ms: len(first_occurrences(ms)) == len(wanted), timeout=60)
    events = first_occurrences(messages)
    for plant in plants:
        sequences = [event["data"]["workforce_total"] for event in events if event["subject"] == str(plant)]
        assert sequences == list(range(40)), f"plant {plant} published out of order: {sequences}"
