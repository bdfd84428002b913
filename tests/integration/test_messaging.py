"""The spine's delivery guarantees, proven on the real broker and database with a probe service (tests/probe.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from shared.contract import CONTENT_TYPE
from shared.settings import PlatformSettings
from tests.kafka import read_topic
from tests.platform import TestPlatform, patched_environ, start_platform, stop_platform
from tests.probe import EXPLODES, Probe, applied_event

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def probe(platform: TestPlatform) -> AsyncIterator[Probe]:
    started = Probe(PlatformSettings())
    await started.start()
    yield started
    await started.stop()


async def publish_raw(bootstrap: str, *messages: tuple[bytes, bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait("iomki.permits", value, key=key,
                                         headers=[("content-type", CONTENT_TYPE.encode())])
    finally:
        await producer.stop()


async def test_outbox_events_arrive_once_each_in_order_per_plant(probe):
    plants = [uuid.uuid4() for _ in range(5)]
    for sequence in range(10):
        await probe.emit(*(applied_event(plant, sequence) for plant in plants))
    rows = await probe.wait_applied(plants, 50)
    assert len(rows) == 50 and len({event_id for event_id, _, _ in rows}) == 50
    for plant in plants:
        assert [seq for _, facility, seq in rows if facility == plant] == list(range(10))


async def test_a_redelivered_event_changes_nothing(probe, platform):
    plant = uuid.uuid4()
    envelope = applied_event(plant, 1)
    await publish_raw(platform.bootstrap, (envelope.key, envelope.to_bytes()), (envelope.key, envelope.to_bytes()))
    await probe.emit(envelope)  # and a third time through the outbox
    rows = await probe.wait_applied([plant], 1)
    assert rows == [(envelope.id, plant, 1)]


async def test_a_malformed_message_is_dead_lettered_and_the_consumer_carries_on(probe, platform):
    plant = uuid.uuid4()
    garbage = b'{"specversion": "1.0", "type": "iomki.PermitApplied.v1", "truncated'
    after = applied_event(plant, 7)
    await publish_raw(platform.bootstrap, (str(plant).encode(), garbage), (after.key, after.to_bytes()))
    assert await probe.wait_applied([plant], 1) == [(after.id, plant, 7)]

    dead = await read_topic(platform.bootstrap, "iomki.dlq", until=lambda ms: any(m.value == garbage for m in ms))
    letter = next(m for m in dead if m.value == garbage)
    headers = {name: value.decode() for name, value in letter.headers}
    assert headers["iomki-dlq-reason"] == "invalid"
    assert headers["iomki-dlq-error"].startswith("value is not JSON")
    assert headers["iomki-dlq-topic"] == "iomki.permits"
    assert headers["iomki-dlq-consumer-group"] == "iomki-probe"
    assert int(headers["iomki-dlq-offset"]) >= 0 and int(headers["iomki-dlq-partition"]) in range(6)
    assert letter.key == str(plant).encode()


async def test_a_handler_that_keeps_failing_is_retried_then_dead_lettered(probe, platform):
    plant = uuid.uuid4()
    failing, fine = applied_event(plant, 1, EXPLODES), applied_event(plant, 2)
    await probe.emit(failing, fine)
    assert await probe.wait_applied([plant], 1) == [(fine.id, plant, 2)]

    dead = await read_topic(platform.bootstrap, "iomki.dlq",
                            until=lambda ms: any(str(failing.id).encode() in m.value for m in ms))
    letter = next(m for m in dead if str(failing.id).encode() in m.value)
    headers = {name: value.decode() for name, value in letter.headers}
    assert headers["iomki-dlq-reason"] == "handler-failed"
    assert "this plant's events always fail" in headers["iomki-dlq-error"]
    assert json.loads(letter.value)["id"] == str(failing.id)
    failed = probe.runtime.metrics.events_failed.labels("iomki.permits", "iomki.PermitApplied.v1")._value.get()
    assert failed == probe.runtime.consumer._retry.attempts
    # Not applied, so not remembered: replaying the dead letter once the fault is fixed applies it.
    assert await probe.runtime.database.pool.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1",
                                                      failing.id) == 0


async def test_a_broker_restart_mid_flow_loses_nothing():
    """The embedded broker forgets everything on restart; the relay republishes and the inbox dedups."""
    own = await start_platform("restart", own_broker=True)
    try:
        with patched_environ(own.env()):
            probe = Probe(PlatformSettings())
        await probe.start()
        plants = [uuid.uuid4() for _ in range(4)]
        try:
            for sequence in range(25):
                await probe.emit(*(applied_event(plant, sequence) for plant in plants))
            await probe.wait_applied(plants, 40)
            own.broker.restart()
            for sequence in range(25, 50):
                await probe.emit(*(applied_event(plant, sequence) for plant in plants))
            rows = await probe.wait_applied(plants, 200, timeout=120)
        finally:
            await probe.stop()
        assert len(rows) == 200
        assert len({event_id for event_id, _, _ in rows}) == 200, "an event was applied twice"
        for plant in plants:
            assert sorted(seq for _, facility, seq in rows if facility == plant) == list(range(50))
        assert probe.runtime.metrics.broker_resets._value.get() >= 1
    finally:
        await stop_platform(own, stop_server=False)
