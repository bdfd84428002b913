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
import uuid
from collections import Counter
from typing import Any

import asyncpg
import pydantic_core
import stamina
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    BrokerResponseError, InvalidProducerEpoch, InvalidProducerIdMapping, OutOfOrderSequenceNumber, ProducerFenced,
    UnknownProducerId,
)
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from shared.clock import wait_until_set
from shared.contract import DLQ, MAX_EVENT_BYTES
from shared.messaging.bus import connection_options
from shared.observability import Metrics, retried
from shared.settings import PlatformSettings
from shared.storage.unit_of_work import DEAD_LETTER_MAX_BYTES, Outbox

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


def _largest_record(topic: str) -> int:
    """What a record may take on a topic: an event the contract's limit, a dead letter its own."""
    return DEAD_LETTER_MAX_BYTES + DEAD_LETTER_HEADROOM if topic == DLQ.name else MAX_EVENT_BYTES


# A dead letter's headers (its error cut to 2 KiB) beside the bytes it keeps.
DEAD_LETTER_HEADROOM = 16 * 1024


def _headers(row: asyncpg.Record) -> list[tuple[str, bytes]]:
    return [(name, value.encode()) for name, value in pydantic_core.from_json(row["headers"]).items()]


def _refused(exc: BaseException) -> bool:
    """The broker refused a record for good (too large, invalid, not allowed): no retry will change its answer.
    A producer's own sequence out of step is no fault of a record."""
    return isinstance(exc, BrokerResponseError) and not exc.retriable and not isinstance(exc, _PRODUCER_OUT_OF_STEP)


_PRODUCER_OUT_OF_STEP = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch, InvalidProducerIdMapping,
                         ProducerFenced)


class ProducerSpoiled(Exception):
    """A record refused leaves an idempotent producer's sequence for its partition ahead of the broker's, and every
    later batch there refused as out of order: the relay starts again with a new producer (a new producer id)."""


async def _dead_letter(connection: asyncpg.Connection, rows: list[tuple[asyncpg.Record, str, str]]) -> None:
    """Records the broker will never take go to the dead-letter topic, with why, instead of holding back every
    event behind them; the letter names the outbox row it came from."""
    outbox = Outbox(connection)
    for row, reason, error in rows:
        log.warning("event_unpublishable", topic=row["topic"], position=row["position"], reason=reason, error=error)
        await outbox.dead_letter(key=row["key"], value=row["value"], headers={
            "iomki-dlq-reason": reason, "iomki-dlq-error": error[:2000], "iomki-dlq-topic": row["topic"],
            "iomki-dlq-outbox-position": str(row["position"]), "iomki-dlq-id": str(uuid.uuid4())})


class Relay:
    def __init__(
        self,
        *,
        schema: str,
        database_url: str,
        settings: PlatformSettings,
        metrics: Metrics,
        batch_size: int = 500,
        linger: float = 0.0,
    ) -> None:
        """`linger`: seconds the relay waits after a round that published something, so that the events
        committed meanwhile share the next round's produce request: for a service whose events can wait that
        long, a burst then costs the broker (shared with every service) a request per round, not per commit."""
        self._schema = schema
        self._database_url = database_url
        self._settings = settings
        self._metrics = metrics
        self._batch_size = batch_size
        self._linger = linger
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
            producer = self._producer()
            try:  # stopped even when starting fails (the broker is down): clients left open pile up
                await producer.start()
                await self._publish_forever(connection, producer)
            finally:
                await producer.stop()
        finally:
            self.is_leader = False
            await connection.close()

    def _producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(**connection_options(self._settings), client_id=f"iomki-{self._schema}-relay",
                                acks="all", enable_idempotence=True, linger_ms=1, request_timeout_ms=10_000,
                                max_batch_size=RECORD_BATCH_BYTES)

    async def _publish_forever(self, connection: asyncpg.Connection, producer: AIOKafkaProducer) -> None:
        next_prune = 0.0
        next_gauge = 0.0
        while True:
            self._wake.clear()
            now = time.monotonic()
            published = await self._publish_batch(connection, producer)
            while published == self._batch_size:
                published = await self._publish_batch(connection, producer)
            if now >= next_prune:
                await self._prune(connection)
                next_prune = now + 60.0
            if now >= next_gauge:  # a gauge: once a second is enough, not once per wake-up
                await self._report_backlog(connection)
                next_gauge = now + 1.0
            if published and self._linger:
                await asyncio.sleep(self._linger)
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
        batches: dict[tuple[str, int], tuple[BatchBuilder, list[asyncpg.Record]]] = {}
        sent: list[tuple[asyncio.Future[Any], tuple[str, int], list[asyncpg.Record]]] = []
        unpublishable: list[tuple[asyncpg.Record, str, str]] = []
        partitions = {topic: sorted(await producer.partitions_for(topic)) for topic in {row["topic"] for row in rows}}
        for row in rows:
            topic, key = row["topic"], row["key"]
            size, limit = len(key or b"") + len(row["value"]), _largest_record(topic)
            if size > limit:  # it would never be accepted: a letter now, rather than a round retried for ever
                unpublishable.append((row, "oversized", f"{size:,} bytes, over the {limit:,} a record on {topic} "
                                                        "may take"))
                continue
            target = (topic, _DEFAULT_PARTITIONER(key, partitions[topic], partitions[topic]))
            headers = _headers(row)
            batch, batch_rows = batches.get(target) or (None, [])
            if batch is None or batch.append(key=key, value=row["value"], timestamp=None, headers=headers) is None:
                if batch is not None:  # full: on its way, and the row starts the partition's next batch
                    sent.append((await producer.send_batch(batch, topic, partition=target[1]), target, batch_rows))
                batch, batch_rows = producer.create_batch(), []
                batches[target] = (batch, batch_rows)
                batch.append(key=key, value=row["value"], timestamp=None, headers=headers)  # a first record fits
            batch_rows.append(row)
        for target, (batch, batch_rows) in batches.items():
            sent.append((await producer.send_batch(batch, target[0], partition=target[1]), target, batch_rows))
        outcomes = await asyncio.gather(*(delivery for delivery, _, _ in sent), return_exceptions=True)
        spoiled = False
        for outcome, (_, target, batch_rows) in zip(outcomes, sent, strict=True):
            if isinstance(outcome, BaseException):
                if not _refused(outcome):
                    raise outcome  # the broker or the network: the round is retried, as any outage is
                unpublishable += await self._one_by_one(target, batch_rows)
                spoiled = True
        async with connection.transaction():
            await _dead_letter(connection, unpublishable)
            await connection.execute(
                "WITH published AS (DELETE FROM outbox_pending WHERE position = ANY($1::bigint[]))"
                " INSERT INTO outbox_publications (minute, first_position)"
                " VALUES (date_trunc('minute', clock_timestamp()), $2) ON CONFLICT (minute) DO UPDATE"
                " SET first_position = excluded.first_position"
                " WHERE excluded.first_position < outbox_publications.first_position",
                [row["position"] for row in rows], rows[0]["position"],
            )
        refused = {row["position"] for row, _, _ in unpublishable}
        for topic, count in Counter(row["topic"] for row in rows if row["position"] not in refused).items():
            self._metrics.events_published.labels(topic).inc(count)
        for row, reason, _ in unpublishable:
            self._metrics.events_dead_lettered.labels(row["topic"], reason).inc()
        if spoiled:
            raise ProducerSpoiled("the broker refused a record; the relay starts again with a new producer")
        return len(rows)

    async def _one_by_one(self, target: tuple[str, int],
                          rows: list[asyncpg.Record]) -> list[tuple[asyncpg.Record, str, str]]:
        """A refused batch's rows sent again one at a time, in order, so that only the record refused is held
        back; the rows refused, with why. A producer that met a refusal is replaced (see `ProducerSpoiled`)."""
        refused = []
        producer = self._producer()
        try:
            await producer.start()
            for row in rows:
                batch = producer.create_batch()
                batch.append(key=row["key"], value=row["value"], timestamp=None, headers=_headers(row))
                try:
                    await (await producer.send_batch(batch, target[0], partition=target[1]))
                except BrokerResponseError as exc:
                    if not _refused(exc):
                        raise
                    refused.append((row, "refused", f"{type(exc).__name__}: {exc}"))
                    await producer.stop()
                    producer = self._producer()
                    await producer.start()
        finally:
            await producer.stop()
        return refused

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

