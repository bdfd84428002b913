"""The spine's delivery guarantees, proven on the real broker and database with a probe service (tests/probe.py)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.partitioner import murmur2

from shared.bus import admin_client, ensure_topics
from shared.contract import CONTENT_TYPE, Envelope, Topic
from shared.db import migrate, migrations_in
from shared.epochs import current_epochs, renew_epochs
from shared.runtime import PLATFORM_MIGRATIONS, ServiceRuntime
from shared.settings import PlatformSettings
from shared.unit_of_work import Outbox, UnitOfWork
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


async def new_epoch(settings: PlatformSettings) -> str:
    """What iomki.permits' owner does when it recreated the topic and republished into it."""
    async with admin_client(settings) as admin:
        await renew_epochs(admin, ["iomki.permits"])
        return current_epochs(await admin.list_topics(), ["iomki.permits"])["iomki.permits"]


async def position_reached(probe: Probe, next_offset: int, epoch: str) -> tuple[str, int]:
    """The partition where the probe's group has recorded `next_offset` in `epoch`."""
    async with asyncio.timeout(30):
        while not (row := await probe.runtime.database.pool.fetchrow(
            "SELECT topic, partition FROM consumer_positions WHERE next_offset = $1 AND epoch = $2", next_offset, epoch
        )):
            await asyncio.sleep(0.1)
    return row["topic"], row["partition"]


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


async def test_a_position_taken_in_a_log_the_broker_lost_is_not_used_in_its_new_one():
    """An instance that commits its old position just after the broker restarted, and is killed before it notices,
    leaves an offset of the old log in the new one (the embedded broker takes commits from members of groups it
    has forgotten): the next instance must not start there, or it would skip events republished and new."""
    own = await start_platform("epochs", own_broker=True)
    try:
        with patched_environ(own.env()):
            settings = PlatformSettings()
        plant = uuid.uuid4()
        events = [applied_event(plant, sequence) for sequence in range(30)]
        first = Probe(settings)
        await first.start()
        try:
            before = await new_epoch(settings)
            await first.emit(*events[:10])
            await first.wait_applied([plant], 10)
            # The old log holds the ten twice (as after a relay crashed between publishing and marking published).
            await publish_raw(own.bootstrap, *((event.key, event.to_bytes()) for event in events[:10]))
            topic, partition = await position_reached(first, 20, before)
        finally:
            await first.stop()
        own.broker.restart()
        await ensure_topics(settings)
        await new_epoch(settings)
        last_words = AIOKafkaConsumer(bootstrap_servers=own.bootstrap, group_id="iomki-probe", enable_auto_commit=False)
        await last_words.start()
        try:
            last_words.assign([TopicPartition(topic, partition)])
            await last_words.commit({TopicPartition(topic, partition): 20})
        finally:
            await last_words.stop()

        second = Probe(settings)
        await second.start()
        try:
            await second.emit(*events[10:])
            rows = await second.wait_applied([plant], 30)
        finally:
            await second.stop()
        assert sorted(sequence for _, _, sequence in rows) == list(range(30))
        assert len({event_id for event_id, _, _ in rows}) == 30, "an event was applied twice"
    finally:
        await stop_platform(own, stop_server=False)


async def test_a_consumer_reads_its_topic_again_from_the_start_when_the_topic_gets_a_new_epoch():
    """A consumer holding a position in a log that was replaced under it does not go on from there: it reads
    the topic again from its start, and the inbox skips what it had already applied."""
    own = await start_platform("epoch", own_broker=True)
    try:
        with patched_environ(own.env()):
            settings = PlatformSettings()
        plant = uuid.uuid4()
        probe = Probe(settings)
        await probe.start()
        try:
            before = await new_epoch(settings)
            await probe.emit(*(applied_event(plant, sequence) for sequence in range(10)))
            await probe.wait_applied([plant], 10)
            held = await position_reached(probe, 10, before)
            duplicates = probe.runtime.metrics.events_duplicate.labels("iomki.permits")
            read_before = duplicates._value.get()
            after = await new_epoch(settings)
            assert await position_reached(probe, 10, after) == held
            rows = await probe.applied([plant])
        finally:
            await probe.stop()
        assert duplicates._value.get() - read_before == 10  # read again, applied once
        assert len(rows) == 10
    finally:
        await stop_platform(own, stop_server=False)


async def test_a_member_holding_a_topic_recreated_larger_goes_on_to_read_its_new_partitions():
    """After a restart the embedded broker creates a topic a client names with its own default partition count;
    a member that took those partitions must also read the ones the topic's owner adds when it recreates the
    topic at its full count (the broker then hands the member its old share again when it rejoins)."""
    own = await start_platform("grown", own_broker=True)
    try:
        with patched_environ(own.env()):
            settings = PlatformSettings()
        probe = Probe(settings)
        await probe.start()
        try:
            async with admin_client(settings) as admin:
                await admin.delete_topics(["iomki.permits"])
                await admin.create_topics([NewTopic("iomki.permits", 4, 1)])  # as the broker auto-creates it
            consumer = probe.runtime.consumer._aiokafka_consumer()
            async with asyncio.timeout(90):
                while {p.partition for p in consumer.assignment() if p.topic == "iomki.permits"} != set(range(4)):
                    await asyncio.sleep(0.2)
            await ensure_topics(settings, repair=frozenset({"iomki.permits"}))
            events = _events_on_partitions({4, 5}, of=6)
            await probe.emit(*events.values())
            rows = await probe.wait_applied(list(events), len(events), timeout=90)
        finally:
            await probe.stop()
        assert sorted(event_id for event_id, _, _ in rows) == sorted(event.id for event in events.values())
    finally:
        await stop_platform(own, stop_server=False)


def _events_on_partitions(wanted: set[int], *, of: int) -> dict[uuid.UUID, Envelope]:
    """By plant, an event of a plant of its own for each of these partitions, placed as the relay places keys."""
    found: dict[int, tuple[uuid.UUID, Envelope]] = {}
    while set(found) != wanted:
        plant = uuid.uuid4()
        event = applied_event(plant, 0)
        partition = (murmur2(event.key) & 0x7FFFFFFF) % of
        if partition in wanted:
            found[partition] = plant, event
    return dict(found.values())


async def test_a_topic_repaired_while_clients_ask_for_it_ends_with_its_full_partition_count(platform):
    """Between the deletion and the creation of a topic being recreated, a client's metadata request naming it
    makes the embedded broker create it with its default count: the repair checks and goes again."""
    settings = platform.settings()
    topic = Topic(f"iomki.test.repair.{uuid.uuid4().hex[:8]}", 8, public=False, owner="probe")
    async with admin_client(settings) as admin:
        await admin.create_topics([NewTopic(topic.name, 1, 1)])
    client = AIOKafkaConsumer(topic.name, bootstrap_servers=platform.bootstrap, group_id=None)
    await client.start()
    asking = asyncio.create_task(_ask_for_metadata_until_cancelled(client))
    try:
        for _ in range(5):
            await ensure_topics(settings, (topic,), repair=frozenset({topic.name}))
            async with admin_client(settings) as admin:
                described = await admin.describe_topics([topic.name])
                assert len(described[0]["partitions"]) == topic.partitions
                await admin.delete_topics([topic.name])  # small again, for the next round
                await admin.create_topics([NewTopic(topic.name, 1, 1)])
    finally:
        asking.cancel()
        await client.stop()
        async with admin_client(settings) as admin:
            await admin.delete_topics([topic.name])


async def _ask_for_metadata_until_cancelled(client: AIOKafkaConsumer) -> None:
    while True:
        await client._client.force_metadata_update()  # names the client's topic
        await asyncio.sleep(0.001)


async def test_the_relay_prunes_only_what_the_retention_no_longer_needs(platform):
    """Published events leave the outbox after the retention (the window a broker that lost its data is given
    again), inbox ids after seven retentions; an event not yet published stays, however old."""
    runtime = ServiceRuntime(name="probe_prune", settings=PlatformSettings(),
                             migrations=Path(__file__).parent / "probe_migrations", unit_of_work=UnitOfWork)
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
                             migrations=Path(__file__).parent / "probe_migrations", unit_of_work=UnitOfWork)
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
