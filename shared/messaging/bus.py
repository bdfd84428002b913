"""Kafka plumbing: the broker factory, connection security, and explicit topic creation."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
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
        settings.bootstrap.split(","),  # faststream takes a string as one address; aiokafka splits it
        client_id=f"iomki-{service}",
        security=_faststream_security(settings),
        logger=None,  # our own structlog lines carry the event context; faststream's would duplicate them
        request_timeout_ms=10_000,
        # The one subscriber (shared/messaging/consumer.py) takes the batch's records as they are and decodes them
        # itself; dependency injection would only resolve its arguments, one of them in a worker thread per batch.
        apply_types=False,
    )


async def partitions_of(settings: PlatformSettings, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of these topics as the cluster describes them; topics it does not have are left out."""
    async with admin_client(settings) as admin:
        described = await admin.describe_topics(list(topics))
    return [TopicPartition(topic["topic"], partition["partition"]) for topic in described
            if topic["error_code"] == 0 for partition in sorted(topic["partitions"], key=lambda p: p["partition"])]


def declare_publishers(broker: KafkaBroker, topic: Topic) -> None:
    """Document each event of a topic as a publication on it, so the AsyncAPI document shows its schema."""
    for event_type in events_on(topic):
        broker.publisher(
            topic.name,
            title=f"{topic.name}:{event_type.type_name()}",
            description=event_type.__doc__ or event_type.__name__,
            schema=event_type,
        )


async def ensure_topics(settings: PlatformSettings, topics: tuple[Topic, ...] = TOPICS, *, timeout: float = 30) -> None:
    """Create the topics the cluster lacks, with their partition counts and the configured replication.

    A write is acknowledged once `min.insync.replicas` copies hold it (producers send with acks=all), and a
    replica that fell behind never becomes leader: unclean election would drop acknowledged events.
    """
    async with admin_client(settings, timeout) as admin:
        existing = set(await admin.list_topics())
        missing = [topic for topic in topics if topic.name not in existing]
        if not missing:
            return
        configs = {"min.insync.replicas": str(settings.kafka_min_insync_replicas),
                   "unclean.leader.election.enable": "false"}
        response = await admin.create_topics(
            [NewTopic(t.name, t.partitions, settings.kafka_replication_factor, topic_configs=configs) for t in missing]
        )
    exists = 36  # another service created it meanwhile
    failed = [(name, code, *detail) for name, code, *detail in response.topic_errors if code not in (0, exists)]
    if failed:
        raise RuntimeError(f"topic creation refused: {failed}")
    log.info("topics_created", topics=[t.name for t in missing], replication_factor=settings.kafka_replication_factor,
             min_insync_replicas=settings.kafka_min_insync_replicas)


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
