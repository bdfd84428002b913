"""The event contract: every event travels in a CloudEvents envelope that outside clients can read."""

from __future__ import annotations

import json
import types
import typing
import uuid
from datetime import UTC, date, datetime

import pytest
from cloudevents.v1.kafka.conversion import KafkaMessage, from_structured
from pydantic import BaseModel

from shared.contract import (
    CONTENT_TYPE, EVENT_TYPES, TOPICS, BaseEvent, ContractViolation, Envelope, Event, PermitApplied, PermitIssued,
    ReportDue, ReportOverdue, SectorClass, SectorClassChanged, decode, envelope_format, events_on,
)

pytestmark = pytest.mark.unit

FACILITY = uuid.uuid4()


def sample(event_type: type[BaseEvent]) -> BaseEvent:
    """A valid instance of any event, built from its schema, so that every event type is covered."""
    values = {}
    for name, field in event_type.model_fields.items():
        values[name] = _value_for(name, field.annotation)
    return event_type.model_validate(values)


# Fields whose type is a constrained one (a pattern, or an optional or listed constrained string) take a value of
# their kind; the rest are told apart by their annotation below.
CONSTRAINED = {"nib": "8120000123456", "permit_number": "IOMKI-2026-000001", "kbli": ["24101"],
               "email": "k3@pabrik.example", "phone": "+62211234567", "letter_number": "IOMKI-2026-000001/SP-1",
               "estate_nib": "8120000654321", "estate_permit_number": "IOMKI-2026-000002",
               "reference": "INSP-2026-000001", "office_region": "32.16"}


def _value_for(name: str, annotation: object) -> object:
    text = str(annotation)
    if name == "facility_id":
        return str(FACILITY)
    if name in CONSTRAINED:
        return CONSTRAINED[name]
    if name.endswith("province_code"):
        return "32"
    if name.endswith("regency_code"):
        return "32.16"
    if "UUID" in text and "list" in text:
        return [str(uuid.uuid4())]
    if "UUID" in text:
        return str(uuid.uuid4())
    if annotation is datetime:
        return "2026-11-20T16:59:00+00:00"
    if annotation is date or date in typing.get_args(annotation):
        return "2026-11-20"
    if "bool" in text:
        return True
    optional = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
    enumerations = [kind for kind in (annotation, *optional) if isinstance(kind, type) and hasattr(kind, "__members__")]
    if enumerations:  # an enumeration ("ComplaintCategory"), or an optional one
        return next(iter(enumerations[0].__members__.values())).value
    if "StringConstraints" in text:
        return "x"  # a bounded string ("StringConstraints" would pass for an int below)
    if "int" in text:
        return 3
    if "float" in text:
        return 1.5
    if "list[str]" in text:
        return ["24101"]
    if typing.get_origin(annotation) is list:  # a list of models (a breach's excesses): one of them
        return [_value_for(name, typing.get_args(annotation)[0])]
    models = [arg for arg in typing.get_args(annotation) if isinstance(arg, type) and issubclass(arg, BaseModel)]
    if models:  # an optional model (`SanctionGround | None`): sampled as the model, so that it is covered too
        annotation = models[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {n: _value_for(n, f.annotation) for n, f in annotation.model_fields.items()}
    if "Literal" in text:
        return annotation.__args__[0]  # type: ignore[attr-defined]
    return "x"


@pytest.mark.parametrize("event_type", list(EVENT_TYPES.values()), ids=lambda t: t.__name__)
def test_every_event_round_trips_through_its_envelope(event_type):
    event = sample(event_type)
    envelope = Envelope.wrap(event, service="permits")
    decoded = decode(envelope.to_bytes())
    assert decoded.event == event
    assert decoded.envelope.type == f"iomki.{event_type.__name__}.v1"
    subject = str(FACILITY) if isinstance(event, Event) else "32"  # a PPKM level is keyed by its province
    assert decoded.envelope.subject == subject and envelope.key == subject.encode()
    # Parsed in one pass, the envelope carries the event itself, and writes back the very bytes it came as.
    assert isinstance(decoded.envelope, Envelope) and decoded.envelope.data is decoded.event
    assert decoded.envelope.to_bytes() == envelope.to_bytes()
    assert decoded.envelope.caused(event, service="reports").causationid == str(envelope.id)


@pytest.mark.parametrize("event_type", list(EVENT_TYPES.values()), ids=lambda t: t.__name__)
def test_the_official_cloudevents_sdk_reads_every_event(event_type):
    sampled = sample(event_type)
    envelope = Envelope.wrap(sampled, service="reports")
    message = KafkaMessage(headers={"content-type": CONTENT_TYPE.encode()}, key=envelope.key,
                           value=envelope.to_bytes())
    event = from_structured(message)
    assert event["specversion"] == "1.0"
    assert event["type"] == event_type.type_name()
    assert event["id"] == str(envelope.id)
    assert event["source"] == "/iomki/reports"
    # A plant's event is keyed by the plant; a PPKM level by its province.
    assert event["subject"] == (str(FACILITY) if isinstance(sampled, Event) else "32")
    assert event["correlationid"] == envelope.correlationid
    assert event["causationid"] == envelope.causationid
    assert event.data.get("facility_id") == (str(FACILITY) if isinstance(sampled, Event) else None)


def test_a_caused_event_keeps_the_correlation_and_names_its_cause():
    root = Envelope.wrap(sample(PermitIssued), service="permits")
    effect = root.caused(sample(PermitIssued), service="reports")
    assert effect.correlationid == root.correlationid == str(root.id)
    assert effect.causationid == str(root.id)
    assert effect.id != root.id


def test_consumers_ignore_fields_added_by_a_minor_version():
    envelope = Envelope.wrap(sample(PermitIssued), service="permits")
    document = json.loads(envelope.to_bytes())
    document["data"]["new_optional_field"] = "added later"
    document["extension_added_later"] = "x"
    assert decode(json.dumps(document).encode()).event == envelope_event(envelope)


def envelope_event(envelope: Envelope) -> Event:
    return PermitIssued.model_validate(envelope.data)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty message value"),
        (b"\xff\xfe not json", "value is not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"specversion": "1.0"}', "invalid CloudEvents envelope"),
    ],
)
def test_malformed_values_are_refused_with_a_specific_reason(value, reason):
    with pytest.raises(ContractViolation, match=reason):
        decode(value)


def test_an_unknown_type_or_major_version_is_refused():
    document = json.loads(Envelope.wrap(sample(PermitIssued), service="permits").to_bytes())
    document["type"] = "iomki.PermitIssued.v2"
    with pytest.raises(ContractViolation, match="unknown event type 'iomki.PermitIssued.v2'"):
        decode(json.dumps(document).encode())


def test_wrongly_typed_data_names_the_field():
    document = json.loads(Envelope.wrap(sample(PermitIssued), service="permits").to_bytes())
    document["data"]["workforce_total"] = "many"
    with pytest.raises(ContractViolation, match="workforce_total"):
        decode(json.dumps(document).encode())


def test_subject_must_be_the_facility():
    document = json.loads(Envelope.wrap(sample(PermitIssued), service="permits").to_bytes())
    document["subject"] = str(uuid.uuid4())
    with pytest.raises(ContractViolation, match="subject"):
        decode(json.dumps(document).encode())


def test_time_must_carry_an_offset():
    document = json.loads(Envelope.wrap(sample(PermitIssued), service="permits").to_bytes())
    document["time"] = "2026-11-20T10:00:00"
    with pytest.raises(ContractViolation, match="time"):
        decode(json.dumps(document).encode())


def test_topics_have_owners_and_partitions_and_every_event_has_a_topic():
    names = {topic.name for topic in TOPICS}
    assert {"iomki.permits", "iomki.reports", "iomki.incidents", "iomki.alerts", "iomki.ppkm", "iomki.supervision",
            "iomki.dlq", "iomki.internal.contacts"} == names
    for event_type in EVENT_TYPES.values():
        assert event_type.topic in TOPICS
    assert sum(len(events_on(topic)) for topic in TOPICS) == len(EVENT_TYPES)


def test_envelope_is_utc_rfc3339_and_json_data():
    event = PermitIssued(facility_id=FACILITY, province_code="32", regency_code="32.16", permit_id=uuid.uuid4(),
                         nib="8120000123456", permit_number="IOMKI-2026-000001", company_name="PT A",
                         sector_class=SectorClass.CRITICAL, workforce_total=10,
                         issued_at=datetime(2026, 11, 20, tzinfo=UTC))
    document = json.loads(Envelope.wrap(event, service="permits").to_bytes())
    assert document["datacontenttype"] == "application/json"
    assert datetime.fromisoformat(document["time"]).utcoffset().total_seconds() == 0
    assert document["data"]["issued_at"].startswith("2026-11-20T00:00:00")
    assert date.fromisoformat(document["data"]["issued_at"][:10]) == date(2026, 11, 20)


def test_an_envelope_pattern_holds_only_fields_it_can_write_and_one_serves_both_reminders():
    """The pattern writes ids, moments and scalars; a list (an application's KBLI codes) is refused, not mangled."""
    with pytest.raises(TypeError, match="PermitApplied.kbli "):
        envelope_format(PermitApplied)
    assert envelope_format(ReportDue) == envelope_format(ReportOverdue)
    assert envelope_format(ReportDue).count("%") == 13  # id ×3, source, type, time, facility ×2, five more fields


def test_an_envelope_pattern_writes_enumerations_and_fields_that_may_be_none_as_their_json():
    """SectorClassChanged: a permit number that may be None, a class and a basis from closed lists; each is given
    as its JSON (`null` for None), unquoted by the pattern. An id or a moment that may be None is refused."""
    pattern = envelope_format(SectorClassChanged)
    assert '"permit_number":%10$s,"sector_class":%11$s,"export_oriented":%12$s,"basis":%13$s' in pattern
    assert pattern.count("%") == 4 + 2 + 1 + len(SectorClassChanged.model_fields)  # id ×3, the subject twice

    class Reopened(ReportDue):
        reopened_at: datetime | None = None

    with pytest.raises(TypeError, match="Reopened.reopened_at "):
        envelope_format(Reopened)
