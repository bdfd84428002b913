"""Log epochs: which incarnation of a topic's log a consumer's offsets belong to.

An offset means something only in the log it was taken from. A topic's log is replaced when the embedded broker
restarts (it forgets everything) or when a relay recreates a topic that came back too small; the relay then
republishes its outbox window into the new log, whose offsets start again from 0. A consumer that goes on from
its old position, or from an offset committed by an instance that had not yet noticed (the embedded broker takes
commits from members of a group it has forgotten), would skip the first events of the new log. (Kafka's topic ids tell logs apart, but aiokafka does not speak the metadata versions that
carry them.)

So each log has an epoch, named by an empty marker topic `iomki.internal.epoch.<topic>.<id>` that the publishing
relay renews whenever it publishes into a log it did not see before; a broker that forgets everything forgets the
markers too. Consumers record each position in their own database with the epoch it was taken in (the embedded
broker keeps no metadata with a committed offset), start a partition from a recorded position only when its epoch
is still the topic's, and start a topic again from its beginning when its epoch changes under them. The inbox
makes re-reading harmless.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from shared.bus import rewind

log = structlog.get_logger(__name__)

EPOCH_PREFIX = "iomki.internal.epoch."


def _marker_prefix(topic: str) -> str:
    return f"{EPOCH_PREFIX}{topic}."


def _is_marker_of(name: str, topic: str) -> bool:
    prefix = _marker_prefix(topic)
    return name.startswith(prefix) and "." not in name[len(prefix):]  # not the marker of `<topic>.<more>`


def current_epochs(topic_names: Iterable[str], topics: Iterable[str]) -> dict[str, str]:
    """Each topic's epoch as the broker's list of topics shows it; "" when it has none (not known yet).

    While a relay renews an epoch both markers exist for a moment: the epoch is then both ids, a value of its own.
    """
    markers = sorted(name for name in topic_names if name.startswith(EPOCH_PREFIX))
    return {
        topic: ",".join(name[len(_marker_prefix(topic)):] for name in markers if _is_marker_of(name, topic))
        for topic in topics
    }


def offset_is_trusted(recorded_epoch: str, current_epoch: str) -> bool:
    """An offset counts only in the epoch it was taken in, and only once that epoch is known."""
    return current_epoch != "" and recorded_epoch == current_epoch


async def renew_epochs(admin: AIOKafkaAdminClient, topics: Iterable[str]) -> None:
    """Give these topics' logs new epochs: the new marker first, so that a topic is never seen without one."""
    topics = sorted(set(topics))
    if not topics:
        return
    old = [name for name in await admin.list_topics() if any(_is_marker_of(name, topic) for topic in topics)]
    await admin.create_topics([NewTopic(f"{_marker_prefix(topic)}{uuid.uuid4().hex}", 1, 1) for topic in topics])
    if old:
        await admin.delete_topics(old)
    log.info("log_epochs_renewed", topics=topics)


Positions = Callable[[list[TopicPartition]], Awaitable[dict[TopicPartition, tuple[int, str]]]]
"""Where the group stood in these partitions, as the service's database recorded it: (next offset, epoch)."""


class ConsumerEpochs(ConsumerRebalanceListener):
    """One consumer group member's view of its topics' epochs.

    As a rebalance listener it starts each partition it is given where the service's database says the group
    stood, if that was in the log's current epoch, and from the log's start if not. `watch` starts a topic over
    when its epoch changes while its partitions are held. `resets` counts such changes of view, so that a batch
    taken before one does not record a position after it.
    """

    def __init__(
        self, *, topics: list[str], connection: dict[str, Any], consumer: Callable[[], AIOKafkaConsumer | None],
        stored: Positions, watch_interval: float = 1.0,
    ) -> None:
        self._topics = topics
        self._connection = connection
        self._consumer = consumer
        self._stored = stored
        self._watch_interval = watch_interval
        self._admin_client: AIOKafkaAdminClient | None = None
        self._admin_lock = asyncio.Lock()
        self._believed: dict[str, str] = {}
        self._settled: tuple[frozenset[TopicPartition], dict[str, int]] | None = None
        self._stale_rejoins = 0
        self.resets = 0

    async def positions(self, records: Iterable[ConsumerRecord]) -> tuple[list[tuple[str, int, int, str]], int]:
        """Where the group stands once these records are applied, (topic, partition, next offset, epoch), and the
        view of the logs they belong to (`resets`). None when the consumer was moved after it fetched them: a
        reset in between started their log over, and their offsets may be the old log's."""
        resets = self.resets
        ends: dict[TopicPartition, int] = {}
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            ends[partition] = max(ends.get(partition, -1), record.offset + 1)
        consumer = self._consumer()
        for partition, end in ends.items():
            try:
                moved = consumer is None or await consumer.position(partition) != end
            except KafkaError:  # no longer assigned
                moved = True
            if moved:
                return [], resets
        believed = self._believed
        return [(p.topic, p.partition, end, believed.get(p.topic, "")) for p, end in ends.items()], resets

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        assigned = list(assigned)
        try:
            current = current_epochs(await (await self._admin()).list_topics(), self._topics)
            stored = await self._stored(assigned)
        except Exception as exc:  # noqa: BLE001 - a position that cannot be vetted is not used
            log.warning("consumer_positions_unvetted", error=f"{type(exc).__name__}: {exc}")
            current, stored = {}, {partition: (0, "") for partition in assigned}
        self._believe(current)
        consumer = self._consumer()
        if consumer is None:
            return
        from_another_log = []
        for partition, (next_offset, epoch) in stored.items():
            if offset_is_trusted(epoch, current.get(partition.topic, "")):
                consumer.seek(partition, next_offset)
            else:
                from_another_log.append(partition)
        if from_another_log:
            log.warning("consumer_positions_from_another_log", partitions=len(from_another_log))
        never_read = [partition for partition in assigned if partition not in stored]
        self._start_over(from_another_log + never_read)
        if self._assignment_is_stale(consumer, assigned):
            log.warning("consumer_assignment_stale", partitions=len(assigned))
            consumer._coordinator.reset_generation()  # aiokafka has no public call that rejoins as a new member

    async def watch(self) -> None:
        """Run until cancelled: compare the topics' epochs with what this member believes, once per interval."""
        try:
            while True:
                await asyncio.sleep(self._watch_interval)
                if not self._believed:
                    continue  # nothing assigned yet: the listener vets positions as partitions arrive
                try:
                    current = current_epochs(await (await self._admin()).list_topics(), self._topics)
                except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                    log.debug("log_epochs_unreadable", error=str(exc))
                    continue
                changed = {topic for topic in self._topics if current[topic] != self._believed.get(topic)}
                if changed:
                    self._believe(current)
                    consumer = self._consumer()
                    held = [p for p in consumer.assignment() if p.topic in changed] if consumer is not None else []
                    log.warning("consumer_log_replaced", topics=sorted(changed), partitions=len(held))
                    self._start_over(held)
        finally:
            if self._admin_client is not None:
                await self._admin_client.close()

    async def _admin(self) -> AIOKafkaAdminClient:
        async with self._admin_lock:  # the listener and the watch may both want it first
            if self._admin_client is None:
                admin = AIOKafkaAdminClient(**self._connection, request_timeout_ms=5_000)
                await admin.start()
                self._admin_client = admin
            return self._admin_client

    def _assignment_is_stale(self, consumer: AIOKafkaConsumer, assigned: list[TopicPartition]) -> bool:
        """Whether the group handed this member its old partitions although a topic's partition count changed.

        The embedded broker answers a member that rejoins after its topic was recreated larger with the
        assignment it had before: the new partitions would never be read. Rejoining as a new member gets a fresh
        one. A few times at most per change: in a group larger than a topic, a member's share may rightly stay.
        """
        counts = {topic: len(consumer.partitions_for_topic(topic) or ()) for topic in self._topics}
        held = frozenset(assigned)
        if self._settled is not None and self._stale_rejoins < 3:
            held_before, counts_before = self._settled
            if held and held == held_before and counts != counts_before:
                self._stale_rejoins += 1
                return True
        self._settled, self._stale_rejoins = (held, counts), 0
        return False

    def _believe(self, current: dict[str, str]) -> None:
        self._believed = current
        self.resets += 1

    def _start_over(self, partitions: list[TopicPartition]) -> None:
        consumer = self._consumer()
        if consumer is None or not partitions:
            return
        try:
            rewind(consumer, partitions)
        except KafkaError as exc:  # a partition moved away meanwhile: its next holder vets it
            log.info("consumer_start_over_skipped", error=str(exc))
