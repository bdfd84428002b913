"""The outbox relay: publishes committed events in outbox order.

One relay per service publishes at a time (a PostgreSQL advisory lock elects it), so that two instances of a
service never publish one plant's events out of order. It wakes on LISTEN/NOTIFY and polls as a fallback. What
is left to publish is a queue of outbox positions, `outbox_pending`, which every insert into the outbox fills;
`outbox_publications` keeps the lowest position published in each minute
(shared/storage/migrations/0003_outbox_pending.sql).
It sends with a plain aiokafka producer: the outbox rows are already the exact bytes, key and headers to send,
so faststream's per-message publishing pipeline would only add cost (faststream still documents the topics).
The producer is idempotent and waits for every in-sync replica: a batch retried after a lost answer is neither
written twice nor reordered, and an acknowledged event survives the loss of its leader.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import asyncpg
import pydantic_core
import stamina
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from shared.clock import wait_until_set
from shared.messaging.bus import connection_options
from shared.observability import Metrics, retried
from shared.settings import PlatformSettings

log = structlog.get_logger(__name__)

_RELAY_LOCK = 0x10_4B_2
# An idempotent producer has one request in flight per broker, carrying one record batch per partition: Kafka's
# 16 KiB default bounded a round's events per partition to that much per round trip (a replicated write's).
RECORD_BATCH_BYTES = 256 * 1024
# The lowest position published in the minutes of the retention ($1), or past the end when nothing was: published
# events are kept for the retention (for inspection), and one below it that is no longer pending was published before.
_WINDOW_START = ("coalesce((SELECT min(first_position) FROM outbox_publications"
                 " WHERE minute >= date_trunc('minute', clock_timestamp() - $1::interval)),"
                 " (SELECT coalesce(max(position), 0) + 1 FROM outbox))")


# Kafka's default partitioner, as aiokafka's producer has it: every producer places a plant's key on the same
# partition, so the relay's batches and any other client's sends agree.
_DEFAULT_PARTITIONER = DefaultPartitioner()


class Relay:
    def __init__(
        self,
        *,
        schema: str,
        database_url: str,
        settings: PlatformSettings,
        metrics: Metrics,
        batch_size: int = 500,
    ) -> None:
        self._schema = schema
        self._database_url = database_url
        self._settings = settings
        self._metrics = metrics
        self._batch_size = batch_size
        self._poll_interval = settings.relay_poll_interval.total_seconds()
        self._retention = settings.outbox_retention
        self._wake = asyncio.Event()
        self.is_leader = False

    async def run(self) -> None:
        """Run until cancelled: wait to be the leader, then publish; on any failure, reconnect and go on."""
        async for attempt in stamina.retry_context(on=retried("relay_interrupted"), attempts=None, timeout=None):
            with attempt:
                try:
                    await self._lead()
                finally:
                    self.is_leader = False

    async def _lead(self) -> None:
        # The relay's statements reach rows through indexes only, whatever the tables' sizes. A prepared statement's
        # plan is kept from its first calls: one made while the outbox was nearly empty (a new service) would read
        # the whole outbox on every round once it holds a day of events. Planning each call instead costs more
        # than a small round's work.
        connection = await asyncpg.connect(self._database_url, server_settings={
            "search_path": self._schema, "enable_seqscan": "off", "enable_hashjoin": "off", "enable_mergejoin": "off"})
        try:
            leading = "SELECT pg_try_advisory_lock($1, hashtext($2))"
            while not await connection.fetchval(leading, _RELAY_LOCK, self._schema):
                await asyncio.sleep(1.0)
            self.is_leader = True
            await connection.add_listener(f"{self._schema}_outbox", lambda *_: self._wake.set())
            producer = AIOKafkaProducer(**connection_options(self._settings), client_id=f"iomki-{self._schema}-relay",
                                        acks="all", enable_idempotence=True, linger_ms=1, request_timeout_ms=10_000,
                                        max_batch_size=RECORD_BATCH_BYTES)
            try:  # stopped even when starting fails (the broker is down): clients left open pile up
                await producer.start()
                await self._publish_forever(connection, producer)
            finally:
                await producer.stop()
        finally:
            self.is_leader = False
            await connection.close()

    async def _publish_forever(self, connection: asyncpg.Connection, producer: AIOKafkaProducer) -> None:
        next_prune = 0.0
        next_gauge = 0.0
        while True:
            self._wake.clear()
            now = time.monotonic()
            while await self._publish_batch(connection, producer) == self._batch_size:
                pass
            if now >= next_prune:
                await self._prune(connection)
                next_prune = now + 60.0
            if now >= next_gauge:  # a gauge: once a second is enough, not once per wake-up
                await self._report_backlog(connection)
                next_gauge = now + 1.0
            await wait_until_set(self._wake, self._poll_interval)

    async def _publish_batch(self, connection: asyncpg.Connection, producer: AIOKafkaProducer) -> int:
        rows = await connection.fetch(
            "WITH next AS MATERIALIZED (SELECT position FROM outbox_pending ORDER BY position LIMIT $1)"
            " SELECT position, topic, key, value, headers FROM next JOIN outbox USING (position) ORDER BY position",
            self._batch_size,
        )
        if not rows:
            return 0
        # Each partition's rows go into record batches in outbox order and the batches are sent in that order,
        # so per-plant order holds; everything is awaited together. A batch per partition spares a future and a
        # metadata lookup per row: the relay spent more CPU per event than the producing service did.
        batches: dict[tuple[str, int], BatchBuilder] = {}
        delivered = []
        published = Counter[str]()
        partitions = {topic: sorted(await producer.partitions_for(topic)) for topic in {row["topic"] for row in rows}}
        for row in rows:
            topic, key = row["topic"], row["key"]
            target = (topic, _DEFAULT_PARTITIONER(key, partitions[topic], partitions[topic]))
            headers = [(name, value.encode()) for name, value in pydantic_core.from_json(row["headers"]).items()]
            batch = batches.get(target)
            if batch is None or batch.append(key=key, value=row["value"], timestamp=None, headers=headers) is None:
                if batch is not None:  # full: on its way, and the row starts the partition's next batch
                    delivered.append(await producer.send_batch(batch, topic, partition=target[1]))
                batch = batches[target] = producer.create_batch()
                batch.append(key=key, value=row["value"], timestamp=None, headers=headers)  # a first record fits
            published[topic] += 1
        for (topic, partition), batch in batches.items():
            delivered.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*delivered)
        await connection.execute(
            "WITH published AS (DELETE FROM outbox_pending WHERE position = ANY($1::bigint[]))"
            " INSERT INTO outbox_publications (minute, first_position)"
            " VALUES (date_trunc('minute', clock_timestamp()), $2) ON CONFLICT (minute) DO UPDATE"
            " SET first_position = excluded.first_position"
            " WHERE excluded.first_position < outbox_publications.first_position",
            [row["position"] for row in rows], rows[0]["position"],
        )
        for topic, count in published.items():
            self._metrics.events_published.labels(topic).inc(count)
        return len(rows)

    async def _prune(self, connection: asyncpg.Connection) -> None:
        await connection.execute(
            f"DELETE FROM outbox WHERE position < {_WINDOW_START}"
            " AND NOT EXISTS (SELECT FROM outbox_pending WHERE outbox_pending.position = outbox.position)",
            self._retention,
        )
        await connection.execute(
            "DELETE FROM outbox_publications WHERE minute < date_trunc('minute', clock_timestamp() - $1::interval)",
            self._retention,
        )
        # Inbox ids outlive by far any redelivery (a batch whose offsets were not committed before a crash).
        await connection.execute(
            "DELETE FROM inbox WHERE received_at < clock_timestamp() - $1::interval", self._retention * 7
        )

    async def _report_backlog(self, connection: asyncpg.Connection) -> None:
        row = await connection.fetchrow(
            "SELECT (SELECT count(*) FROM outbox_pending) AS backlog, extract(epoch FROM clock_timestamp() -"
            " (SELECT created_at FROM outbox WHERE position = (SELECT min(position) FROM outbox_pending))) AS lag"
        )
        if row is None:  # a query of aggregates answers one row; none only if the connection lost it
            return
        self._metrics.outbox_backlog.set(row["backlog"])
        self._metrics.outbox_lag.set(float(row["lag"] or 0.0))

