"""The agency example, run as a script, decodes what the platform publishes on the real broker.

It uses a different client (confluent-kafka / librdkafka) and the official CloudEvents SDK, so this also checks
that our envelopes are valid CloudEvents to someone who does not share our code.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from shared.messaging.bus import partitions_of
from shared.settings import PlatformSettings
from shared.contract import (
    CONTENT_TYPE, EVENT_TYPES, TOPICS, AlertRaised, ClusterDeclared, CompanyContactsUpdated, Envelope, PermitIssued,
    SectorClass, Severity, TaskForceLevel, WarningIssued,
)

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agency_subscriber.py"
PUBLIC = [topic.name for topic in TOPICS if topic.public]


def _events(facility_id: uuid.UUID) -> list:
    region = {"facility_id": facility_id, "province_code": "32", "regency_code": "32.16"}
    permit_id = uuid.uuid4()
    return [
        PermitIssued(**region, permit_id=permit_id, nib="8120000123456", permit_number="IOMKI-2021-000001",
                     company_name="PT Baja Nusantara", sector_class=SectorClass.CRITICAL, workforce_total=1200,
                     issued_at=datetime(2021, 7, 5, 9, tzinfo=UTC)),
        WarningIssued(**region, permit_id=permit_id, warning_id=uuid.uuid4(), period_id=uuid.uuid4(),
                      deadline=datetime(2021, 7, 9, 16, 59, tzinfo=UTC), consecutive=1),
        ClusterDeclared(**region, cluster_id=uuid.uuid4(), case_count=3, window_days=14,
                        first_confirmed_on=date(2021, 7, 10), last_confirmed_on=date(2021, 7, 12)),
        AlertRaised(**region, alert_id=uuid.uuid4(), alert_key="cluster:32.16", event_type="iomki.ClusterDeclared.v1",
                    severity=Severity.HIGH, level=TaskForceLevel.REGENCY, count=1),
    ]


async def _publish(bootstrap: str, facility_id: uuid.UUID) -> list[Envelope]:
    events = _events(facility_id)
    envelopes = [Envelope.wrap(event, service=event.topic.owner) for event in events]
    contacts = CompanyContactsUpdated(facility_id=facility_id, province_code="32", regency_code="32.16",
                                      permit_id=uuid.uuid4(), nib="8120000123456", company_name="PT Baja Nusantara",
                                      email="k3@bajanusantara.example")
    internal = Envelope.wrap(contacts, service="permits")
    headers = [("content-type", CONTENT_TYPE.encode())]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        # Not a CloudEvent, ahead of AlertRaised in the same partition: the subscriber must skip it and carry on.
        await producer.send_and_wait("iomki.alerts", b"not json", key=envelopes[0].key, headers=headers)
        for envelope, event in zip(envelopes, events, strict=True):
            await producer.send_and_wait(event.topic.name, envelope.to_bytes(), key=envelope.key, headers=headers)
        await producer.send_and_wait("iomki.internal.contacts", internal.to_bytes(), key=internal.key,
                                     headers=headers)
    finally:
        await producer.stop()
    return envelopes


class _AsRead:
    """An aiokafka record with the accessors of the confluent-kafka message the example reads."""

    def __init__(self, record: ConsumerRecord) -> None:
        self._record = record

    def headers(self) -> list[tuple[str, bytes]]:
        return list(self._record.headers)

    def key(self) -> bytes | None:
        return self._record.key

    def value(self) -> bytes | None:
        return self._record.value


async def _cloudevents_on_public_topics(bootstrap: str) -> int:
    """How many messages on the public topics, from their start, the example takes for CloudEvents: other tests
    publish there too, malformed messages among them, and the example stops once it has decoded this many."""
    example = _load_example()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = await partitions_of(PlatformSettings(kafka_bootstrap=bootstrap), PUBLIC)
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        count = 0
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                count += sum(_decodes(example, record) for record in records)
        return count
    finally:
        await consumer.stop()


def _decodes(example: ModuleType, record: ConsumerRecord) -> bool:
    """Whether the example takes `record` for a CloudEvent."""
    try:
        example.to_cloudevent(_AsRead(record))
    except Exception:  # what the example skips as "not a CloudEvent": its SDK raises several unrelated types
        return False
    return True


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("agency_subscriber", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_agency_example_decodes_every_public_event(platform):
    facility_id = uuid.uuid4()
    envelopes = await _publish(platform.bootstrap, facility_id)
    # Everything on the public topics from the beginning (other tests' events too), less what is not a CloudEvent.
    expected = await _cloudevents_on_public_topics(platform.bootstrap)

    run = subprocess.run(  # noqa: S603 -- this interpreter running the example shipped in examples/
        [sys.executable, str(EXAMPLE), "--bootstrap", platform.bootstrap, "--group", f"agency-test-{uuid.uuid4()}",
         "--max", str(expected), "--timeout", "60"],
        capture_output=True, text=True, timeout=90,
    )

    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(lines) == expected
    assert {line["topic"] for line in lines} <= set(PUBLIC)
    assert "not a CloudEvent" in run.stderr
    ours = {line["id"]: line for line in lines if line["subject"] == str(facility_id)}
    assert set(ours) == {str(envelope.id) for envelope in envelopes}
    for envelope in envelopes:
        line = ours[str(envelope.id)]
        assert line["type"] == envelope.type
        assert line["source"] == envelope.source
        assert line["data"] == envelope.data
        assert line["topic"] == EVENT_TYPES[envelope.type].topic.name
        assert line["key"] == line["subject"] == str(facility_id)
