"""Kafka plumbing: the broker factory, connection security, and explicit topic creation."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.contract import TOPICS, Topic, events_on
from shared.settings import PlatformSettings

log = structlog.get_logger(__name__)


def connection_options(settings: PlatformSettings) -> dict[str, Any]:
    """aiokafka keyword arguments for the configured transport: plaintext, TLS, or SASL/SCRAM over TLS."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"bootstrap_servers": settings.bootstrap, "security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
    if protocol.startswith("SASL"):
        if not (settings.kafka_sasl_username and settings.kafka_sasl_password):
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password
    return options


def _faststream_security(settings: PlatformSettings) -> BaseSecurity | None:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = connection_options(settings).get("ssl_context")
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    user, password = settings.kafka_sasl_username or "", settings.kafka_sasl_password or ""
    mechanism = {"SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512, "PLAIN": SASLPlaintext}[
        settings.kafka_sasl_mechanism
    ]
    return mechanism(user, password, ssl_context=context, use_ssl=protocol == "SASL_SSL")


def create_broker(settings: PlatformSettings, service: str) -> KafkaBroker:
    """The service's consumers and its AsyncAPI document; events are published by the outbox relay."""
    return KafkaBroker(
        settings.bootstrap,
        client_id=f"iomki-{service}",
        security=_faststream_security(settings),
        logger=None,  # our own structlog lines carry the event context; faststream's would duplicate them
        request_timeout_ms=10_000,
        # A consumer learns that a topic it holds gained partitions only from fresh metadata (then its group
        # rebalances). The embedded broker recreates a topic that came back too small, and a member that took
        # the small one would otherwise never read the new partitions, or only after the default 5 minutes.
        metadata_max_age_ms=5_000,
        # The one subscriber (shared/consumer.py) takes the batch's records as they are and decodes them itself;
        # dependency injection would only resolve its arguments, one of them in a worker thread per batch.
        apply_types=False,
    )


def rewind(consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]) -> None:
    """Start reading these partitions at offset 0, not where the broker says they begin.

    The embedded broker sometimes reports a partition's beginning as 1 when several producers wrote to the new
    topic at once, though offset 0 holds a record: `seek_to_beginning` (and `auto_offset_reset="earliest"`)
    would skip it. Where retention has dropped offset 0 (Kafka), the fetch is out of range and the consumer's
    `auto_offset_reset="earliest"` moves it to the real beginning, so the consumer must be made with that.
    """
    for partition in partitions:
        consumer.seek(partition, 0)


async def assign_from_start(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Assign a started consumer (no group) every partition of these topics, each read from offset 0; topics the
    broker does not have are left out."""
    # Metadata for all topics, which creates none (a request naming a topic would); aiokafka has no public call
    # that refreshes the metadata `partitions_for_topic` reads.
    await consumer._client.force_metadata_update()
    partitions = [TopicPartition(topic, number) for topic in topics
                  for number in sorted(consumer.partitions_for_topic(topic) or ())]
    consumer.assign(partitions)
    rewind(consumer, partitions)
    return partitions


def declare_publishers(broker: KafkaBroker, topic: Topic) -> None:
    """Document each event of a topic as a publication on it, so the AsyncAPI document shows its schema."""
    for event_type in events_on(topic):
        broker.publisher(
            topic.name,
            title=f"{topic.name}:{event_type.type_name()}",
            description=event_type.__doc__ or event_type.__name__,
            schema=event_type,
        )


async def ensure_topics(
    settings: PlatformSettings,
    topics: tuple[Topic, ...] = TOPICS,
    *,
    repair: frozenset[str] = frozenset(),
    timeout: float = 30,
) -> None:
    """Create our topics with their partition counts.

    The embedded broker auto-creates an unknown topic with one partition on first use (after a restart, a
    client's metadata request is enough), so creation must be explicit, and a topic's owner may `repair` one
    that came back too small. The embedded broker cannot add partitions, so such a topic is recreated: safe
    for its owner, whose relay is about to republish everything the broker lost into it.
    """
    async with admin_client(settings, timeout) as admin:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if missing:
            await _create(admin, missing)
        present = [t for t in topics if t.name in existing and t.name in repair]
        too_small = await _too_small(admin, present)
        if too_small:
            await _grow(admin, too_small)


@asynccontextmanager
async def admin_client(settings: PlatformSettings, timeout: float = 30) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(**connection_options(settings), request_timeout_ms=10_000)
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
        yield admin
    except KafkaError as exc:
        raise RuntimeError(f"could not administer topics on {settings.bootstrap}: {exc}") from exc
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, topics: list[Topic]) -> None:
    response = await admin.create_topics([NewTopic(t.name, t.partitions, 1) for t in topics])
    failed = [(name, code) for name, code, *_ in response.topic_errors if code not in (0, 36)]  # 36: exists
    if failed:
        raise RuntimeError(f"topic creation refused: {failed}")
    log.info("topics_created", topics=[t.name for t in topics])


async def _too_small(admin: AIOKafkaAdminClient, topics: list[Topic]) -> list[Topic]:
    if not topics:
        return []
    counts = {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics([t.name for t in topics])}
    return [t for t in topics if counts.get(t.name, 0) < t.partitions]


async def _grow(admin: AIOKafkaAdminClient, topics: list[Topic], attempts: int = 5) -> None:
    """Give topics their partition counts: by adding partitions, or where the broker cannot (the embedded one),
    by recreating them. A client's metadata request naming a topic between its deletion and its creation makes
    the embedded broker create it again with its default count, so the result is checked and the repair tried
    again."""
    names = [t.name for t in topics]
    try:
        await admin.create_partitions({t.name: NewPartitions(t.partitions) for t in topics})
    except (KafkaError, AssertionError):
        for _ in range(attempts):
            await admin.delete_topics([t.name for t in topics])
            await _create(admin, topics)
            topics = await _too_small(admin, topics)
            if not topics:
                break
        else:
            raise RuntimeError(f"topics still short of partitions after {attempts} re-creations: "
                               f"{[t.name for t in topics]}")
    log.warning("topic_partitions_repaired", topics=names)
