"""Topics in tests: events published as a service's relay would, and read with a plain aiokafka consumer (no
group), the way an outside agency would."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from shared.contract import CONTENT_TYPE, EVENT_TYPES, Envelope
from shared.messaging.bus import partitions_of
from shared.settings import PlatformSettings


async def publish(bootstrap: str, *envelopes: Envelope) -> None:
    """Each envelope on its event type's topic, keyed by its plant, in order, as the relay sends it."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(EVENT_TYPES[envelope.type].topic.name, envelope.to_bytes(), key=envelope.key,
                                         headers=[("content-type", CONTENT_TYPE.encode())])
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[ConsumerRecord]], bool],
    timeout: float = 30.0,
) -> list[ConsumerRecord]:
    """Everything on `topic` from the beginning, read until `until(messages)` holds (or fail on timeout)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    messages: list[ConsumerRecord] = []
    try:
        partitions = await partitions_of(PlatformSettings(kafka_bootstrap=bootstrap), [topic])
        if not partitions:
            raise AssertionError(f"{topic}: no such topic on the broker")
        consumer.assign(partitions)  # no group: read from the beginning (auto_offset_reset)
        async with asyncio.timeout(timeout):
            while not until(messages):
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    messages.extend(records)
    except TimeoutError:
        beginnings = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        spans = {p.partition: (beginnings[p], ends[p]) for p in partitions}
        raise AssertionError(f"{topic}: condition not met within {timeout}s; read {len(messages)} messages;"
                             f" (beginning, end) offsets by partition as the broker reports them: {spans}") from None
    finally:
        await consumer.stop()
    return messages
