"""Idempotent event consumers: inbox dedup, bounded retries, dead letters, offsets after commit.

A batch of messages is handled in one database transaction. Each message is decoded against the contract;
one that is not a valid event goes to `iomki.dlq` (through the outbox, in the same transaction) with the
original bytes, where it came from, and why. Valid events are claimed in the inbox in one statement, so a
redelivered event is skipped; the rest run through the service's handlers. If a handler fails, the transaction
rolls back and the batch is redone in a new one, event by event, each in a savepoint with bounded retries, so
that only the culprit is dead-lettered. The group's offsets are committed to Kafka after the transaction commits:
a crash in between redelivers the batch, which the inbox makes harmless. If the batch fails as a whole (the
database went away), it is rewound and delivered again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker

from shared.contract import BaseEvent, ContractViolation, Decoded, Envelope, Topic, decode_record
from shared.observability import Metrics
from shared.settings import PlatformSettings
from shared.storage.db import DATABASE_UNREACHABLE
from shared.storage.unit_of_work import Database, UnitOfWork

log = structlog.get_logger(__name__)

Handler = Callable[[Any, Envelope, Any], Awaitable[None]]
"""`handler(unit_of_work, envelope, event)`: one function per consumed event type."""


@dataclass(frozen=True)
class InBatches:
    """A handler that applies a run of consecutive events of one type in one call, with set-based SQL.

    A round trip to the database per event is what bounds a consumer's throughput (the socket write of each
    statement is much of its CPU), so a projection whose work is one write of the same shape
    per event declares `InBatches(apply)` instead: `apply(unit_of_work, [Decoded, …])`, one statement for the
    run. Runs never reorder events. When a batch fails the consumer retries one event at a time (a run of one),
    so only the culprit is retried and dead-lettered, as for any handler.
    """

    apply: Callable[[Any, list[Decoded]], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    first_delay: float = 0.05
    max_delay: float = 2.0

    def delay(self, attempt: int) -> float:
        return min(self.first_delay * 2**attempt, self.max_delay)


class EventConsumer:
    def __init__(
        self,
        *,
        service: str,
        broker: KafkaBroker,
        database: Database[Any],
        metrics: Metrics,
        settings: PlatformSettings,
        retry: RetryPolicy = RetryPolicy(),
        max_records: int = 500,
    ) -> None:
        self.group_id = f"iomki-{service}"
        self._broker = broker
        self._database = database
        self._metrics = metrics
        self._retry = retry
        self._max_records = max_records
        self._fetch_wait_ms = max(1, round(settings.consumer_fetch_wait.total_seconds() * 1000))
        self._outage_backoff = 0.1
        self._topics: list[str] = []
        self._handlers: dict[str, Handler | InBatches] = {}
        self._subscriber: Any = None
        self._offsets = _OffsetCommits()

    def subscribe(self, topic: Topic, handlers: Mapping[type[BaseEvent], Handler | InBatches]) -> None:
        """Consume `topic` with these handlers; events of other types on it are acknowledged and skipped."""
        self._topics.append(topic.name)
        self._handlers.update({event_type.type_name(): handler for event_type, handler in handlers.items()})

    def attach(self) -> None:
        """Register one group member for all subscribed topics (one member per topic would rebalance the
        group once for each as they join). Called once, before the broker starts."""
        if not self._topics:
            return
        handlers = dict(self._handlers)

        async def raw_records(message: Any) -> tuple[ConsumerRecord, ...]:
            return message.raw_message  # decoding is ours: a malformed value must reach the DLQ, not crash the loop

        self._subscriber = self._broker.subscriber(
            *self._topics,
            group_id=self.group_id,
            batch=True,
            max_records=self._max_records,
            fetch_max_wait_ms=self._fetch_wait_ms,
            # Records are fetched in the background; after a poll that found none the loop sleeps this long too,
            # and an event arriving meanwhile waits it out (faststream's default sleep is twenty times as long).
            batch_timeout_ms=10,
            auto_offset_reset="earliest",  # a new group reads each topic from its start
            ack_policy=AckPolicy.MANUAL,  # `on_batch` commits once the batch's transaction has committed
            decoder=raw_records,
            title=f"{self.group_id}:{','.join(self._topics)}",
            description=f"Handles {', '.join(sorted(handlers))}; other types are skipped.",
        )

        @self._subscriber
        async def on_batch(records: tuple[ConsumerRecord, ...]) -> None:
            consumer = self._aiokafka_consumer()
            try:
                await self.handle_batch(records, handlers)
            except Exception:
                _read_again(consumer, records)
                raise
            self._offsets.commit(consumer, records)

    async def flush_offsets(self, timeout: float = 5.0) -> None:
        """Wait a while for the offsets of the batches applied so far to be committed (at a stop)."""
        await self._offsets.flush(timeout)

    def _aiokafka_consumer(self) -> Any:
        return self._subscriber.consumer if self._subscriber is not None else None

    def assignment(self) -> set[tuple[str, int]]:
        """The (topic, partition) pairs this instance consumes now: the group divides them among instances."""
        consumer = self._aiokafka_consumer()
        return {(part.topic, part.partition) for part in consumer.assignment()} if consumer is not None else set()

    async def handle_batch(self, records: tuple[ConsumerRecord, ...],
                           handlers: Mapping[str, Handler | InBatches]) -> None:
        try:
            try:  # the fast path: the whole batch in one transaction, runs of events in one statement each
                await self._handle_in_transaction(records, handlers, one_by_one=False)
            except DATABASE_UNREACHABLE:  # no fault of the events: never dead-letter for it, retry the batch
                raise
            except Exception:
                # Something in the batch failed and the transaction rolled back: redo it one event at a time,
                # so that only the culprit is retried and, if it keeps failing, dead-lettered.
                await self._handle_in_transaction(records, handlers, one_by_one=True)
        except DATABASE_UNREACHABLE as exc:
            # `on_batch` reads the batch again; wait so that an outage is not a hot loop.
            log.warning("consumer_batch_retry", error=str(exc), retry_in=self._outage_backoff)
            await asyncio.sleep(self._outage_backoff)
            self._outage_backoff = min(self._outage_backoff * 2, 5.0)
            raise
        self._outage_backoff = 0.1

    async def _handle_in_transaction(
        self, records: tuple[ConsumerRecord, ...], handlers: Mapping[str, Handler | InBatches], *, one_by_one: bool
    ) -> None:
        tally = _Tally()  # counted once the transaction commits, so that a batch redone is not counted twice
        async with self._database.transaction() as work:
            wanted: list[tuple[ConsumerRecord, Decoded]] = []
            for record in records:
                try:
                    decoded = decode_record(record.topic, record.key, record.value)
                except ContractViolation as exc:
                    await self._dead_letter(work, record, exc.reason, str(exc), tally)
                    continue
                if decoded.envelope.type in handlers:
                    wanted.append((record, decoded))
            fresh = await work.inbox.claim([(d.envelope.id, d.envelope.type) for _, d in wanted])
            todo = []
            for record, decoded in wanted:
                if decoded.envelope.id in fresh:
                    fresh.discard(decoded.envelope.id)  # the same event twice in one batch runs once
                    todo.append((record, decoded))
                else:
                    tally.add(self._metrics.events_duplicate.labels(record.topic))
            if one_by_one:
                for record, decoded in todo:
                    await self._run_with_retries(work, record, decoded, handlers, tally)
            else:
                for run in _runs(todo, handlers):
                    await self._run(work, run, handlers, tally)
        tally.count()

    async def _run(
        self, work: UnitOfWork, run: list[tuple[ConsumerRecord, Decoded]], handlers: Mapping[str, Handler | InBatches],
        tally: _Tally,
    ) -> None:
        """Apply one event, or a run of consecutive events of one type to an `InBatches` handler."""
        record, first = run[0]
        envelope = first.envelope
        context = {"event_id": str(envelope.id)} if len(run) == 1 else {"events": len(run)}
        with structlog.contextvars.bound_contextvars(
            **context, event_type=envelope.type, correlation_id=envelope.correlationid
        ):
            started = time.perf_counter()
            handler = handlers[envelope.type]
            if isinstance(handler, InBatches):
                await handler.apply(work, [decoded for _, decoded in run])
            else:
                await handler(work, envelope, first.event)
            self._metrics.handler_latency.labels(envelope.type).observe(time.perf_counter() - started)
            tally.add(self._metrics.events_consumed.labels(record.topic, envelope.type), len(run))
            log.debug("event_handled")

    async def _run_with_retries(
        self, work: UnitOfWork, record: ConsumerRecord, decoded: Decoded, handlers: Mapping[str, Handler | InBatches],
        tally: _Tally,
    ) -> None:
        for attempt in range(self._retry.attempts):
            try:
                async with work.connection.transaction():
                    await self._run(work, [(record, decoded)], handlers, tally)
                return
            except DATABASE_UNREACHABLE:
                raise
            except Exception as exc:
                self._metrics.events_failed.labels(record.topic, decoded.envelope.type).inc()
                last = attempt + 1 == self._retry.attempts
                log.warning(
                    "event_handler_failed", event_id=str(decoded.envelope.id), event_type=decoded.envelope.type,
                    attempt=attempt + 1, error=f"{type(exc).__name__}: {exc}", dead_letter=last,
                )
                if last:
                    await work.inbox.release(decoded.envelope.id)
                    await self._dead_letter(work, record, "handler-failed", f"{type(exc).__name__}: {exc}", tally)
                    return
                await asyncio.sleep(self._retry.delay(attempt))

    async def _dead_letter(
        self, work: UnitOfWork, record: ConsumerRecord, reason: str, error: str, tally: _Tally
    ) -> None:
        headers = {
            "iomki-dlq-reason": reason,
            "iomki-dlq-error": error[:2000],
            "iomki-dlq-topic": record.topic,
            "iomki-dlq-partition": str(record.partition),
            "iomki-dlq-offset": str(record.offset),
            "iomki-dlq-consumer-group": self.group_id,
            "iomki-dlq-id": str(uuid.uuid4()),
        }
        await work.outbox.dead_letter(key=record.key, value=record.value or b"", headers=headers)
        tally.add(self._metrics.events_dead_lettered.labels(record.topic, reason))
        log.warning("event_dead_lettered", topic=record.topic, partition=record.partition, offset=record.offset,
                    reason=reason, error=error[:500])


# Each commit is a replicated write to the offsets topic and work for the group coordinator: committing after
# every batch of a busy consumer was a large share of a three-broker cluster's CPU (docs/performance.md).
OFFSET_COMMIT_INTERVAL = 0.2


class _OffsetCommits:
    """Commits the group's offsets after the batches' transactions without holding up the next batch (a commit
    waits for the offsets topic's replicas): one commit in flight at a time, at most one per
    `OFFSET_COMMIT_INTERVAL`, the newest offsets going next. A commit lost to a crash or a rebalance only delivers
    its batches again, which the inbox skips."""

    def __init__(self) -> None:
        self._next: dict[TopicPartition, int] = {}
        self._committing: asyncio.Task[None] | None = None

    def commit(self, consumer: AIOKafkaConsumer, records: tuple[ConsumerRecord, ...]) -> None:
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            self._next[partition] = max(self._next.get(partition, 0), record.offset + 1)
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_while_any(consumer))

    async def flush(self, timeout: float) -> None:
        if self._committing is not None:
            await asyncio.wait([self._committing], timeout=timeout)  # a broker that is away must not hold a stop

    async def _commit_while_any(self, consumer: AIOKafkaConsumer) -> None:
        while self._next:
            offsets, self._next = self._next, {}
            started = time.monotonic()
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:  # the partitions moved to another member, or the broker is away
                log.info("offsets_not_committed", partitions=len(offsets), error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(max(0.0, OFFSET_COMMIT_INTERVAL - (time.monotonic() - started)))


def _read_again(consumer: AIOKafkaConsumer, records: tuple[ConsumerRecord, ...]) -> None:
    """Move each partition back to the batch's first record in it, so that a batch that failed is fetched again."""
    first: dict[TopicPartition, int] = {}
    for record in records:
        partition = TopicPartition(record.topic, record.partition)
        first[partition] = min(first.get(partition, record.offset), record.offset)
    for partition, offset in first.items():
        try:
            consumer.seek(partition, offset)
        except IllegalStateError:  # no longer assigned: its next holder reads from the committed offset
            pass


class _Tally:
    """Counter increments held until the batch's transaction commits."""

    def __init__(self) -> None:
        self._pending: list[tuple[Any, int]] = []

    def add(self, counter: Any, amount: int = 1) -> None:
        self._pending.append((counter, amount))

    def count(self) -> None:
        for counter, amount in self._pending:
            counter.inc(amount)


def _runs(
    todo: list[tuple[ConsumerRecord, Decoded]], handlers: Mapping[str, Handler | InBatches]
) -> list[list[tuple[ConsumerRecord, Decoded]]]:
    """Consecutive events of one type with an `InBatches` handler form one run; every other event is its own."""
    runs: list[list[tuple[ConsumerRecord, Decoded]]] = []
    for item in todo:
        event_type = item[1].envelope.type
        if runs and isinstance(handlers[event_type], InBatches) and runs[-1][-1][1].envelope.type == event_type:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs
