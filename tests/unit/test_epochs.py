"""Which log a committed offset belongs to: the epochs read from the broker's topic list, and when to trust one."""

from __future__ import annotations

from aiokafka import ConsumerRecord, TopicPartition

from shared.epochs import ConsumerEpochs, current_epochs, offset_is_trusted

TOPICS = ["iomki.permits", "iomki.internal.contacts"]


def test_each_topic_reads_its_own_marker_and_no_other():
    names = [
        "iomki.permits", "iomki.internal.relay.permits",
        "iomki.internal.epoch.iomki.permits.aa11",
        "iomki.internal.epoch.iomki.internal.contacts.bb22",
        "iomki.internal.epoch.iomki.permits.extra.cc33",  # the marker of a topic named iomki.permits.extra
    ]
    assert current_epochs(names, TOPICS) == {"iomki.permits": "aa11", "iomki.internal.contacts": "bb22"}


def test_a_topic_without_a_marker_has_no_epoch_yet():
    assert current_epochs(["iomki.permits"], TOPICS) == {"iomki.permits": "", "iomki.internal.contacts": ""}


def test_while_an_epoch_is_renewed_both_markers_make_an_epoch_of_their_own():
    before = current_epochs(["iomki.internal.epoch.iomki.permits.aa11"], TOPICS)["iomki.permits"]
    during = current_epochs(["iomki.internal.epoch.iomki.permits.ff99", "iomki.internal.epoch.iomki.permits.aa11"],
                            TOPICS)["iomki.permits"]
    after = current_epochs(["iomki.internal.epoch.iomki.permits.ff99"], TOPICS)["iomki.permits"]
    assert during == "aa11,ff99"  # the same whichever order the broker lists them in
    assert len({before, during, after}) == 3


def test_an_offset_is_trusted_only_in_the_known_epoch_it_was_committed_in():
    assert offset_is_trusted("aa11", "aa11")
    assert not offset_is_trusted("aa11", "ff99")  # the log was replaced since
    assert not offset_is_trusted("", "aa11")  # committed before any epoch was known, or by an older release
    assert not offset_is_trusted("", "")  # no epoch known now: nothing tells the logs apart


def _record(topic: str, partition: int, offset: int) -> ConsumerRecord:
    return ConsumerRecord(topic, partition, offset, 0, 0, None, b"", None, 0, 0, [])


class _Positions:
    """What aiokafka's consumer answers for `position`: the next offset it will hand out per partition."""

    def __init__(self, positions: dict[tuple[str, int], int]) -> None:
        self._positions = positions

    async def position(self, partition: TopicPartition) -> int:
        return self._positions[partition.topic, partition.partition]


BATCH = [_record("iomki.permits", 2, 7), _record("iomki.permits", 2, 9), _record("iomki.permits", 4, 0),
         _record("iomki.internal.contacts", 0, 3)]


def _epochs(positions: dict[tuple[str, int], int]) -> ConsumerEpochs:
    epochs = ConsumerEpochs(topics=TOPICS, connection={}, consumer=lambda: _Positions(positions),  # type: ignore
                            stored=None)  # type: ignore[arg-type]
    epochs._believe({"iomki.permits": "aa11", "iomki.internal.contacts": ""})
    return epochs


async def test_a_batch_records_the_offset_after_its_last_record_of_each_partition_in_the_epoch_believed():
    epochs = _epochs({("iomki.permits", 2): 10, ("iomki.permits", 4): 1, ("iomki.internal.contacts", 0): 4})
    positions, resets = await epochs.positions(BATCH)
    assert sorted(positions) == [
        ("iomki.internal.contacts", 0, 4, ""), ("iomki.permits", 2, 10, "aa11"), ("iomki.permits", 4, 1, "aa11"),
    ]
    assert resets == epochs.resets


async def test_a_batch_taken_before_its_partition_was_started_over_records_no_position():
    # The consumer was sent back to the start of partition 2 after it handed out this batch.
    epochs = _epochs({("iomki.permits", 2): 0, ("iomki.permits", 4): 1, ("iomki.internal.contacts", 0): 4})
    assert (await epochs.positions(BATCH))[0] == []


class _Coordinator:
    def __init__(self) -> None:
        self.rejoined_as_new_member = 0

    def reset_generation(self) -> None:
        self.rejoined_as_new_member += 1


class _AssignedConsumer:
    """What the listener uses of aiokafka's consumer when partitions are assigned: the topics' partition counts as
    its metadata shows them, `seek`, and the group coordinator. Its broker reports every partition's beginning as
    1, as the embedded broker can after concurrent writes to a new topic although offset 0 holds a record."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        self.seeks: dict[TopicPartition, int] = {}
        self._coordinator = _Coordinator()

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.counts[topic]))

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks[partition] = offset

    async def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {partition: 1 for partition in partitions}

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for partition in partitions:
            self.seeks[partition] = 1


class _Admin:
    def __init__(self, topic_names: list[str]) -> None:
        self.topic_names = topic_names

    async def list_topics(self) -> list[str]:
        return self.topic_names


def _listener(consumer: _AssignedConsumer, stored: dict[TopicPartition, tuple[int, str]]) -> ConsumerEpochs:
    async def positions(partitions: list[TopicPartition]) -> dict[TopicPartition, tuple[int, str]]:
        return {p: stored[p] for p in partitions if p in stored}

    epochs = ConsumerEpochs(topics=TOPICS, connection={}, consumer=lambda: consumer, stored=positions)  # type: ignore
    epochs._admin_client = _Admin(["iomki.permits", "iomki.internal.contacts",  # type: ignore[assignment]
                                   "iomki.internal.epoch.iomki.permits.aa11"])
    return epochs


def _partitions(topic: str, count: int) -> list[TopicPartition]:
    return [TopicPartition(topic, number) for number in range(count)]


async def test_assigned_partitions_start_where_the_group_stood_in_this_epoch_and_otherwise_at_offset_zero():
    consumer = _AssignedConsumer({"iomki.permits": 3, "iomki.internal.contacts": 1})
    permits = _partitions("iomki.permits", 3)
    epochs = _listener(consumer, {permits[0]: (12, "aa11"), permits[1]: (5, "ff99")})
    await epochs.on_partitions_assigned(permits + _partitions("iomki.internal.contacts", 1))
    assert consumer.seeks == {
        permits[0]: 12,  # recorded in the log's current epoch
        permits[1]: 0,  # recorded in a log the broker has since replaced
        permits[2]: 0,  # never read: offset 0, not the beginning the broker reports
        TopicPartition("iomki.internal.contacts", 0): 0,
    }
    assert consumer._coordinator.rejoined_as_new_member == 0


async def test_a_topic_started_over_is_read_again_from_offset_zero():
    consumer = _AssignedConsumer({"iomki.permits": 2, "iomki.internal.contacts": 1})
    held = _partitions("iomki.permits", 2)
    epochs = _listener(consumer, {p: (40, "aa11") for p in held})
    await epochs.on_partitions_assigned(held)
    epochs._start_over(held)
    assert consumer.seeks == {p: 0 for p in held}


async def test_the_same_partitions_handed_back_after_the_topic_grew_make_the_member_rejoin_as_a_new_one():
    consumer = _AssignedConsumer({"iomki.permits": 4, "iomki.internal.contacts": 1})
    small = _partitions("iomki.permits", 4)
    epochs = _listener(consumer, {})
    await epochs.on_partitions_assigned(small)
    consumer.counts["iomki.permits"] = 6  # recreated with its full count; the group answers with the old share
    await epochs.on_partitions_assigned(small)
    assert consumer._coordinator.rejoined_as_new_member == 1
    await epochs.on_partitions_assigned(_partitions("iomki.permits", 6))  # the new member's share
    await epochs.on_partitions_assigned(_partitions("iomki.permits", 6))  # a later rebalance, nothing changed
    assert consumer._coordinator.rejoined_as_new_member == 1


async def test_a_share_that_rightly_stays_the_same_costs_only_a_few_rejoins():
    consumer = _AssignedConsumer({"iomki.permits": 4, "iomki.internal.contacts": 1})
    share = [TopicPartition("iomki.permits", 0)]  # one of eight members: its share is the same at 4 and 6
    epochs = _listener(consumer, {})
    await epochs.on_partitions_assigned(share)
    consumer.counts["iomki.permits"] = 6
    for _ in range(10):
        await epochs.on_partitions_assigned(share)
    assert consumer._coordinator.rejoined_as_new_member == 3
