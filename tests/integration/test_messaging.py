"""The spine's delivery guarantees, proven on the real broker and database with a probe service
(tests/support/probe.py)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry
from confluent_kafka.admin import ConfigResource as ConfluentResource

from shared.contract import CONTENT_TYPE, MAX_EVENT_BYTES, Envelope, EventTooLarge, Topic
from shared.messaging.bus import admin_client, ensure_topics
from shared.runtime import PLATFORM_MIGRATIONS, ServiceRuntime
from shared.settings import PlatformSettings
from shared.storage.db import migrate, migrations_in
from shared.storage.unit_of_work import Outbox, UnitOfWork
from tests.support.kafka import read_topic
from tests.support.platform import TestPlatform, patched_environ, start_platform, stop_platform
from tests.support.probe import EXPLODES, PROBE_MIGRATIONS, Probe, applied_event

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


@pytest.mark.parametrize("stop", ["restart", "kill"])
async def test_a_broker_stopped_mid_flow_loses_nothing(stop):
    """The broker shut down cleanly, or killed, while events flow: what the relay had published is on its log,
    what it had not is sent again once it is back, and each event is applied once, in order per plant."""
    own = await start_platform(f"broker_{stop}", own_broker=True)
    try:
        with patched_environ(own.env()):
            probe = Probe(PlatformSettings())
        await probe.start()
        plants = [uuid.uuid4() for _ in range(4)]
        broker = own.broker
        try:
            for sequence in range(25):
                await probe.emit(*(applied_event(plant, sequence) for plant in plants))
            await probe.wait_applied(plants, 40)
            if stop == "kill":
                await asyncio.to_thread(broker.kill, broker.nodes[0])
                await asyncio.to_thread(broker.start_node, broker.nodes[0])
            else:
                await asyncio.to_thread(broker.restart, broker.nodes[0])
            for sequence in range(25, 50):
                await probe.emit(*(applied_event(plant, sequence) for plant in plants))
            rows = await probe.wait_applied(plants, 200, timeout=120)
        finally:
            await probe.stop()
        assert len(rows) == 200
        assert len({event_id for event_id, _, _ in rows}) == 200, "an event was applied twice"
        for plant in plants:
            assert [seq for _, facility, seq in rows if facility == plant] == list(range(50))
    finally:
        await stop_platform(own, stop_server=False)


async def test_a_restarted_consumer_goes_on_from_the_offsets_its_group_committed(platform):
    """Offsets are committed to Kafka after each batch's transaction: a new instance of the group starts where the
    last one stopped, reading nothing again."""
    settings = PlatformSettings()
    plant = uuid.uuid4()
    first = Probe(settings, name="probe_resume")
    await first.start()
    try:
        await first.emit(*(applied_event(plant, sequence) for sequence in range(10)))
        await first.wait_applied([plant], 10)
    finally:
        await first.stop()
    async with admin_client(settings) as admin:
        committed = await admin.list_consumer_group_offsets("iomki-probe_resume")
    assert sum(offset.offset for offset in committed.values()) >= 10

    second = Probe(settings, name="probe_resume")
    await second.start()
    try:
        await second.emit(*(applied_event(plant, sequence) for sequence in range(10, 15)))
        rows = await second.wait_applied([plant], 15)
        read_again = second.runtime.metrics.events_duplicate.labels("iomki.permits")._value.get()
    finally:
        await second.stop()
    assert [sequence for _, _, sequence in rows] == list(range(15))
    assert read_again == 0, "the new instance read again what the group had committed"


async def test_topics_are_created_with_the_configured_replication_and_no_unclean_election(platform):
    settings = platform.settings()
    topic = Topic(f"iomki.test.created.{uuid.uuid4().hex[:8]}", 3, public=False, owner="probe")
    await ensure_topics(settings, (topic,))
    await ensure_topics(settings, (topic,))  # a second start finds it and changes nothing
    async with admin_client(settings) as admin:
        described = (await admin.describe_topics([topic.name]))[0]
        [resource] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic.name)])
        await admin.delete_topics([topic.name])
    assert len(described["partitions"]) == 3
    assert {len(p["replicas"]) for p in described["partitions"]} == {settings.kafka_replication_factor}
    configs = {name: value for name, value, *_ in resource.resources[0][4]}
    assert configs["min.insync.replicas"] == str(settings.kafka_min_insync_replicas)
    assert configs["unclean.leader.election.enable"] == "false"


async def test_the_relay_prunes_only_what_the_retention_no_longer_needs(platform):
    """Published events leave the outbox after the retention, inbox ids after seven retentions; an event not yet
    published stays, however old."""
    runtime = ServiceRuntime(name="probe_prune", settings=PlatformSettings(),
                             migrations=PROBE_MIGRATIONS, unit_of_work=UnitOfWork)
    database_url = await runtime.database_url()
    await migrate(database_url, "probe_prune", migrations_in("platform", PLATFORM_MIGRATIONS))
    old_published, recent_published, old_unpublished = (applied_event(uuid.uuid4(), 0) for _ in range(3))
    old_seen, recent_seen = uuid.uuid4(), uuid.uuid4()
    connection = await asyncpg.connect(database_url, server_settings={"search_path": "probe_prune"})
    try:
        async with connection.transaction():
            await Outbox(connection).add(old_published, recent_published, old_unpublished)
        # Written two days ago; the first published 25 hours ago, the second an hour ago.
        await connection.execute("UPDATE outbox SET created_at = now() - interval '49 hours'")
        await connection.execute(
            "WITH published AS (DELETE FROM outbox_pending USING outbox"
            "  WHERE outbox.position = outbox_pending.position AND event_id = ANY($1::uuid[]))"
            " INSERT INTO outbox_publications (minute, first_position)"
            " SELECT date_trunc('minute', now() - CASE WHEN event_id = $2 THEN interval '25 hours'"
            "                                          ELSE interval '1 hour' END), position"
            " FROM outbox WHERE event_id = ANY($1::uuid[])",
            [old_published.id, recent_published.id], old_published.id)
        await connection.execute(
            "INSERT INTO inbox (event_id, event_type, received_at) VALUES"
            " ($1, 'PermitApplied', now() - interval '8 days'), ($2, 'PermitApplied', now() - interval '6 days')",
            old_seen, recent_seen)

        await runtime.start()  # its relay prunes as it starts leading, then once a minute
        try:
            async with asyncio.timeout(30):
                while await connection.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", old_seen):
                    await asyncio.sleep(0.1)
                while await connection.fetchval("SELECT count(*) FROM outbox_pending"):
                    await asyncio.sleep(0.1)
        finally:
            await runtime.stop()
        kept = {row["event_id"] for row in await connection.fetch("SELECT event_id FROM outbox")}
        assert kept == {recent_published.id, old_unpublished.id}  # the old unpublished one, published now
        assert {row["event_id"] for row in await connection.fetch("SELECT event_id FROM inbox")} == {recent_seen}
    finally:
        await connection.close()


async def test_an_outbox_from_before_the_relay_queue_is_queued_and_kept_as_it_was(platform):
    """Migrating an outbox written when each row carried its publication (before 0003): what was unpublished is
    queued, and what was published is kept for a retention after the latest of it, as if all in its minute."""
    runtime = ServiceRuntime(name="probe_upgrade", settings=PlatformSettings(),
                             migrations=PROBE_MIGRATIONS, unit_of_work=UnitOfWork)
    database_url = await runtime.database_url()
    migrations = migrations_in("platform", PLATFORM_MIGRATIONS)
    await migrate(database_url, "probe_upgrade", [migration for migration in migrations if migration.version < 3])
    events = [applied_event(uuid.uuid4(), 0) for _ in range(4)]
    connection = await asyncpg.connect(database_url, server_settings={"search_path": "probe_upgrade"})
    try:
        positions = [await connection.fetchval(
            "INSERT INTO outbox (event_id, event_type, topic, key, value, headers)"
            " VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING position", *Outbox.row(event)) for event in events]
        await connection.execute(  # the first two published, two hours and an hour ago; the last two not yet
            "UPDATE outbox SET published_at = now() - CASE WHEN position = $1 THEN interval '2 hours'"
            " ELSE interval '1 hour' END WHERE position = ANY($2::bigint[])",
            positions[0], positions[:2])
        latest = await connection.fetchval("SELECT date_trunc('minute', max(published_at)) FROM outbox")

        await migrate(database_url, "probe_upgrade", migrations)

        pending = [row["position"] for row in await connection.fetch("SELECT position FROM outbox_pending")]
        assert sorted(pending) == positions[2:]
        rounds = [tuple(row) for row in await connection.fetch(
            "SELECT minute, first_position FROM outbox_publications")]
        assert rounds == [(latest, positions[0])]
        assert await connection.fetchval("SELECT count(*) FROM outbox") == 4
    finally:
        await connection.close()


def padded(envelope: Envelope, size: int) -> Envelope:
    """The event with data no handler reads, to make it `size` bytes or more: the outbox checks only size."""
    return envelope.model_copy(update={"data": envelope.data | {"padding": "x" * size}})


async def test_an_event_over_the_contract_s_limit_is_refused_where_it_is_written(probe):
    plant = uuid.uuid4()
    fine, huge = applied_event(plant, 1), padded(applied_event(plant, 2), MAX_EVENT_BYTES)
    with pytest.raises(EventTooLarge, match=f"over the {MAX_EVENT_BYTES:,} bytes an event may take") as refused:
        await probe.emit(fine, huge)
    assert refused.value.event_type == "iomki.PermitApplied.v1" and refused.value.size > MAX_EVENT_BYTES
    written = await probe.runtime.database.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE event_id = ANY($1::uuid[])", [fine.id, huge.id])
    assert written == 0  # the transaction is refused whole


async def dead_letters_from_the_relay(bootstrap: str, event_id: uuid.UUID) -> dict[str, str]:
    dead = await read_topic(bootstrap, "iomki.dlq", until=lambda ms: any(str(event_id).encode() in m.value for m in ms))
    letter = next(m for m in dead if str(event_id).encode() in m.value)
    assert json.loads(letter.value)["id"] == str(event_id)  # the original bytes, untouched
    return {name: value.decode() for name, value in letter.headers}


async def test_an_outbox_row_too_large_to_publish_is_dead_lettered_and_the_relay_carries_on(probe, platform):
    """A row the contract refuses now, written before it did: a letter, not a relay retrying it for ever."""
    plant = uuid.uuid4()
    huge, after = padded(applied_event(plant, 1), 2 * MAX_EVENT_BYTES), applied_event(plant, 2)
    async with probe.runtime.database.transaction() as work:
        await work.connection.execute(
            "WITH added AS (INSERT INTO outbox (event_id, event_type, topic, key, value, headers)"
            " VALUES ($1, $2, 'iomki.permits', $3, $4, '{}') RETURNING position)"
            " INSERT INTO outbox_pending SELECT position FROM added",
            huge.id, huge.type, huge.key, huge.to_bytes())
        await work.outbox.add(after)
    assert await probe.wait_applied([plant], 1) == [(after.id, plant, 2)]
    headers = await dead_letters_from_the_relay(platform.bootstrap, huge.id)
    assert headers["iomki-dlq-reason"] == "oversized" and headers["iomki-dlq-topic"] == "iomki.permits"
    assert f"over the {MAX_EVENT_BYTES:,} a record on iomki.permits may take" in headers["iomki-dlq-error"]
    assert int(headers["iomki-dlq-outbox-position"]) > 0
    assert await probe.runtime.database.pool.fetchval("SELECT count(*) FROM outbox_pending") == 0


async def test_a_record_the_broker_refuses_is_dead_lettered_and_the_rest_of_its_batch_published(probe, platform):
    """The broker's own limit for the topic, lower than the contract's: the batch is refused, its other records
    go again one by one, and only the refused one becomes a letter."""
    plant = uuid.uuid4()
    before, refused, after = applied_event(plant, 1), padded(applied_event(plant, 2), 8_000), applied_event(plant, 3)
    admin = AdminClient({"bootstrap.servers": platform.bootstrap})

    def configure(operation: AlterConfigOpType) -> None:
        entry = ConfigEntry("max.message.bytes", "4096", incremental_operation=operation)
        [done] = admin.incremental_alter_configs([ConfluentResource("topic", "iomki.permits",
                                                                    incremental_configs=[entry])]).values()
        done.result(timeout=30)

    await asyncio.to_thread(configure, AlterConfigOpType.SET)
    try:
        await probe.emit(before, refused, after)  # one round, one batch: refused whole by the broker
        assert await probe.wait_applied([plant], 2) == [(before.id, plant, 1), (after.id, plant, 3)]
    finally:
        await asyncio.to_thread(configure, AlterConfigOpType.DELETE)
    headers = await dead_letters_from_the_relay(platform.bootstrap, refused.id)
    assert headers["iomki-dlq-reason"] == "refused" and headers["iomki-dlq-topic"] == "iomki.permits"
    assert "TooLarge" in headers["iomki-dlq-error"], headers["iomki-dlq-error"]
    dead_lettered = probe.runtime.metrics.events_dead_lettered.labels("iomki.permits", "refused")._value.get()
    assert dead_lettered >= 1
