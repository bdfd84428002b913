"""Hostile messages on the topics the services consume, over the real broker, against the five services.

Hypothesis generates each kind of hostile message (malformed JSON, truncated envelopes, oversized values,
wrongly-typed fields, unknown spec/type/major versions, a subject that is not the data's plant, missing
fields or message key, binary garbage); a real producer puts them all on the consumed topics at once, and
the test then checks, message by message, that every consumer group of that topic dead-lettered it in
`iomki.dlq` with its reason, the precise error and the original bytes; that no service's own tables changed;
and that valid events sent afterwards are applied (the consumers kept consuming). The examples are
generated first and verified as one batch (one round trip through the broker, not one per example), so a
failure names the offending message instead of shrinking it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pydantic_core
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from services.incidents.app import create_app as incidents_app
from services.notifier.app import create_app as notifier_app
from services.permits.app import create_app as permits_app
from services.reports.app import create_app as reports_app
from services.supervision.app import create_app as supervision_app
from shared.contract import (
    DLQ, EVENT_TYPES, INCIDENTS, INTERNAL_CONTACTS, MAX_EVENT_BYTES, PERMITS, PPKM, REPORTS, SUPERVISION, BaseEvent,
    ClosureScope, CompanyContactsUpdated, ComplaintCategory, ComplaintFiled, Envelope, FacilityClosureOrdered,
    PermitIssued, PpkmLevel, PpkmLevelSet, ReportSubmitted, SanctionAction, SanctionEvidence, SanctionRecommended,
    SectorClass,
)
from shared.storage.db import quote_identifier
from tests.support.kafka import read_topic
from tests.support.platform import TestPlatform, patched_environ, running_service, start_platform, stop_platform
from tests.support.waiting import until

pytestmark = pytest.mark.integration

APPS = {"permits": permits_app, "reports": reports_app, "incidents": incidents_app, "notifier": notifier_app,
        "supervision": supervision_app}
# Who consumes what (README); a dead letter from any other group would mean a service reads a topic it should not.
CONSUMED_BY = {
    PERMITS.name: {"reports", "incidents", "notifier", "supervision"},
    REPORTS.name: {"permits", "incidents", "notifier", "supervision"},
    INCIDENTS.name: {"permits", "reports", "notifier", "supervision"},
    INTERNAL_CONTACTS.name: {"notifier"},
    PPKM.name: {"reports"},
    SUPERVISION.name: {"permits", "notifier"},
}
# The consumers' bookkeeping, which a dead letter does change (the outbox and its relay's queue and record carry it
# to the DLQ; the positions move past it).
BOOKKEEPING = ("outbox", "outbox_pending", "outbox_publications", "inbox", "consumer_positions")
# aiokafka's default max_request_size, the relay's included: the largest record a producer sends.
PRODUCER_LIMIT = 1_048_576
AT_THE_LIMIT = "oversized, at the producer's limit"
EXAMPLES_PER_KIND = 10

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def sample_event(topic: str, facility_id: uuid.UUID) -> BaseEvent:
    """A valid event of the topic, about the plant (a PPKM level: about its province): the base of the hostile
    variants."""
    plant = {"facility_id": facility_id, "province_code": "32", "regency_code": "32.16"}
    permit_id = uuid.uuid5(facility_id, "permit")
    if topic == PERMITS.name:
        return PermitIssued(**plant, permit_id=permit_id, nib="8120000123456", permit_number="IOMKI-2026-000042",
                            company_name="PT Tekstil Cikarang", sector_class=SectorClass.ESSENTIAL,
                            workforce_total=420, issued_at=NOW)
    if topic == REPORTS.name:
        return ReportSubmitted(**plant, permit_id=permit_id, report_id=uuid.uuid4(), period_id=uuid.uuid4(),
                               period_starts_at=NOW - timedelta(days=7), deadline=NOW, late=False,
                               workforce_total=420, on_site_total=200, odp=0, pdp=0, confirmed_positive=0,
                               tests_pcr=0, tests_antigen=12, vaccinated_dose1=400, vaccinated_dose2=380,
                               vaccinated_booster=50)
    if topic == PPKM.name:
        return PpkmLevelSet(province_code="32", regency_code="32.16", level=PpkmLevel.LEVEL_4,
                            effective_from=NOW.date(), instruction="Inmendagri 22/2021")
    if topic == SUPERVISION.name:
        return ComplaintFiled(**plant, permit_id=permit_id, complaint_id=uuid.uuid4(),
                              category=ComplaintCategory.PROTOCOL, filed_at=NOW)
    if topic == INCIDENTS.name:
        return FacilityClosureOrdered(**plant, closure_id=uuid.uuid4(), scope=ClosureScope.PLANT,
                                      reason="cluster of 2 cases", starts_at=NOW, ends_at=NOW + timedelta(days=3))
    return CompanyContactsUpdated(**plant, permit_id=permit_id, nib="8120000123456",
                                  company_name="PT Tekstil Cikarang", email="k3@tekstil.example")


@dataclass(frozen=True)
class Hostile:
    kind: str
    topic: str
    key: bytes | None
    value: bytes | None
    reason: str
    errors: tuple[str, ...]  # what the dead letter's error may start with

    def __str__(self) -> str:
        shown = self.value[:300] if self.value is not None else None
        return f"{self.kind} on {self.topic} (key {self.key!r}, {len(self.value or b'')} bytes): {shown!r}"


@st.composite
def envelopes(draw: st.DrawFn) -> tuple[str, dict[str, Any], bytes]:
    """A valid envelope as the JSON object it travels as, on a topic the services consume, and its message key."""
    topic = draw(st.sampled_from(sorted(CONSUMED_BY)))
    event = sample_event(topic, draw(st.uuids()))
    envelope = Envelope.wrap(event, service=event.topic.owner, time=NOW)
    return topic, json.loads(envelope.to_bytes()), envelope.key


def encoded(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def data_error(document: dict[str, Any]) -> str:
    return f"invalid {document['type']} data"


@st.composite
def malformed_json(draw: st.DrawFn) -> Hostile:
    topic, document, key = draw(envelopes())
    text = json.dumps(document)
    fault = draw(st.sampled_from(["colon as equals", "single quotes", "trailing comma", "text after", "bare word"]))
    if fault == "colon as equals":
        at = draw(st.sampled_from([i for i, c in enumerate(text) if c == ":"]))
        text = text[:at] + "=" + text[at + 1:]
    elif fault == "single quotes":
        text = text.replace('"', "'", draw(st.integers(1, 6)))
    elif fault == "trailing comma":
        text = text[:-1] + ",}"
    elif fault == "text after":
        text += draw(st.sampled_from(["x", "}", ",", "]", " {}"]))
    else:
        field = draw(st.sampled_from(sorted(document)))
        text = json.dumps({**document, field: "<bare>"}).replace('"<bare>"', "undefined")
    return Hostile(f"malformed JSON ({fault})", topic, key, text.encode(), "invalid", ("value is not JSON",))


@st.composite
def truncated(draw: st.DrawFn) -> Hostile:
    topic, document, key = draw(envelopes())
    raw = encoded(document)
    cut = raw[:draw(st.integers(1, len(raw) - 1))]
    return Hostile("truncated", topic, key, cut, "invalid", ("value is not JSON",))


@st.composite
def oversized(draw: st.DrawFn) -> Hostile:
    """Valid in every other way: a huge value in a field the event has, or in one consumers would ignore."""
    topic, document, key = draw(envelopes())
    size = draw(st.integers(MAX_EVENT_BYTES + 1, 4 * MAX_EVENT_BYTES))
    field = draw(st.sampled_from(["company_name", "reason", "notes"]))
    letter = draw(st.sampled_from(["x", "é", "\u0000"]))
    document["data"][field] = letter * (size // (len(json.dumps(letter)) - 2))
    return Hostile("oversized", topic, key, encoded(document), "oversized", ("message value of",))


WRONG_VALUES = st.one_of(st.lists(st.integers(), min_size=1, max_size=3),
                         st.dictionaries(st.sampled_from(["x", "y"]), st.integers(), min_size=1, max_size=2))


@st.composite
def wrongly_typed(draw: st.DrawFn) -> Hostile:
    """A list or an object where the contract has a string, number, date, id or event: nothing coerces those."""
    topic, document, key = draw(envelopes())
    in_data = draw(st.booleans())
    target = document["data"] if in_data else document
    field = draw(st.sampled_from(sorted(target)))
    target[field] = draw(WRONG_VALUES)
    envelope_broken = not in_data and not (field == "data" and isinstance(target[field], dict))
    error = "invalid CloudEvents envelope" if envelope_broken else data_error(document)
    return Hostile(f"wrongly typed {'data.' if in_data else ''}{field}", topic, key, encoded(document), "invalid",
                   (error,))


@st.composite
def unknown_version(draw: st.DrawFn) -> Hostile:
    topic, document, key = draw(envelopes())
    name = document["type"].split(".")[1]
    change = draw(st.sampled_from(["specversion", "major", "type"]))
    if change == "specversion":
        document["specversion"] = draw(st.sampled_from(["0.3", "1.1", "2.0", "", "1"]))
        return Hostile("unknown spec version", topic, key, encoded(document), "invalid",
                       ("invalid CloudEvents envelope",))
    if change == "major":
        document["type"] = f"iomki.{name}.v{draw(st.integers(2, 99))}"
    else:
        document["type"] = f"iomki.{draw(st.from_regex(r'[A-Z][A-Za-z]{2,20}', fullmatch=True))}.v1"
        assume(document["type"] not in EVENT_TYPES)
    return Hostile(f"unknown {change}", topic, key, encoded(document), "invalid", ("unknown event type",))


@st.composite
def subject_mismatch(draw: st.DrawFn) -> Hostile:
    """Another plant's id (or another province, for a PPKM level) as subject and key: the event would be ordered
    with, and routed as, that plant's or province's."""
    topic, document, _ = draw(envelopes())
    if topic == PPKM.name:
        others = st.from_regex(r"[0-9]{2}", fullmatch=True).filter(lambda code: code != document["subject"])
    else:
        others = st.uuids().map(str).filter(lambda u: u != document["data"]["facility_id"])
    document["subject"] = draw(others)
    return Hostile("subject mismatch", topic, document["subject"].encode(), encoded(document), "invalid",
                   ("subject does not match the event's data",))


ENVELOPE_REQUIRED = ("id", "source", "type", "time", "subject", "data", "correlationid", "causationid")


@st.composite
def missing_key(draw: st.DrawFn) -> Hostile:
    """A required field of the envelope or of the event is not there, or the message key is not the plant."""
    topic, document, key = draw(envelopes())
    where = draw(st.sampled_from(["envelope", "data", "message key", "another plant's key"]))
    if where == "envelope":
        field = draw(st.sampled_from(ENVELOPE_REQUIRED))
        del document[field]
        return Hostile(f"missing {field}", topic, key, encoded(document), "invalid", ("invalid CloudEvents envelope",))
    if where == "data":
        required = sorted(name for name, f in EVENT_TYPES[document["type"]].model_fields.items() if f.is_required())
        field = draw(st.sampled_from(required))
        del document["data"][field]
        return Hostile(f"missing data.{field}", topic, key, encoded(document), "invalid", (data_error(document),))
    if where == "message key":
        return Hostile("missing message key", topic, None, encoded(document), "invalid", ("message has no key",))
    other = str(draw(st.uuids().filter(lambda u: str(u) != document["subject"]))).encode()
    return Hostile("another plant's key", topic, other, encoded(document), "invalid",
                   ("message key does not match subject",))


@st.composite
def binary_garbage(draw: st.DrawFn) -> Hostile:
    topic = draw(st.sampled_from(sorted(CONSUMED_BY)))
    raw = draw(st.binary(min_size=1, max_size=2048))
    key = draw(st.none() | st.binary(max_size=40))
    try:
        parsed = pydantic_core.from_json(raw)
    except ValueError:
        return Hostile("binary garbage", topic, key, raw, "invalid", ("value is not JSON",))
    assume(not isinstance(parsed, dict))
    return Hostile("binary garbage", topic, key, raw, "invalid", ("value is not a JSON object",))


KINDS: dict[str, st.SearchStrategy[Hostile]] = {
    "malformed JSON": malformed_json(), "truncated": truncated(), "oversized": oversized(),
    "wrongly typed": wrongly_typed(), "unknown version": unknown_version(), "subject mismatch": subject_mismatch(),
    "missing key": missing_key(), "binary garbage": binary_garbage(),
}


def generated(strategy: st.SearchStrategy[Hostile], count: int) -> list[Hostile]:
    """`count` examples of a strategy, drawn by hypothesis (varied, edge cases first), to verify as a batch."""
    found: list[Hostile] = []

    @settings(max_examples=count, deadline=None, database=None, derandomize=True, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example: Hostile) -> None:
        found.append(example)

    collect()
    return found


def explicit_cases() -> list[Hostile]:
    """What hypothesis would rarely draw: a tombstone, and an oversized message as large as a producer may send
    (1 MiB with its key and record overhead), whose dead letter, with its headers, would not be."""
    facility_id = uuid.uuid4()
    envelope = Envelope.wrap(sample_event(PERMITS.name, facility_id), service="permits")
    # A service can only speak for itself: another's event on its topic, or its event on another's.
    forged = Envelope.wrap(sample_event(PERMITS.name, facility_id), service="reports")
    misplaced = Envelope.wrap(sample_event(INCIDENTS.name, facility_id), service="incidents")
    document = json.loads(envelope.to_bytes()) | {"padding": ""}
    room = PRODUCER_LIMIT - DefaultRecordBatchBuilder.estimate_size_in_bytes(envelope.key, encoded(document), [])
    document["padding"] = "x" * (room - 16)  # the length prefixes grow with the value
    # A PPKM level for a regency outside its province, one the agency did not speak, and one off its topic.
    level = sample_event(PPKM.name, facility_id)
    outside = json.loads(Envelope.wrap(level, service="ppkm").to_bytes())
    outside["data"]["regency_code"] = "33.74"
    forged_level = Envelope.wrap(level, service="reports")
    level_elsewhere = Envelope.wrap(level, service="ppkm")
    return [
        Hostile("out-of-province level", PPKM.name, b"32", encoded(outside), "invalid",
                ("invalid iomki.PpkmLevelSet.v1 data",)),
        Hostile("forged level", PPKM.name, forged_level.key, forged_level.to_bytes(), "forged",
                (f"{forged_level.type} comes from",)),
        Hostile("a level on another topic", PERMITS.name, level_elsewhere.key, level_elsewhere.to_bytes(), "forged",
                (f"{level_elsewhere.type} belongs on {PPKM.name}",)),
        Hostile("tombstone", INCIDENTS.name, envelope.key, None, "invalid", ("empty message value",)),
        Hostile(AT_THE_LIMIT, PERMITS.name, envelope.key, encoded(document), "oversized", ("message value of",)),
        Hostile("forged source", PERMITS.name, forged.key, forged.to_bytes(), "forged", (f"{forged.type} comes from",)),
        Hostile("another topic's event", PERMITS.name, misplaced.key, misplaced.to_bytes(), "forged",
                (f"{misplaced.type} belongs on {INCIDENTS.name}",)),
    ]


# ---------------------------------------------------------------------------------------------- fixtures


@dataclass
class Services:
    platform: TestPlatform
    apps: dict[str, Any]

    async def snapshot(self) -> dict[str, list[tuple[str, ...]]]:
        """Every row of every service's own tables (not the consumers' bookkeeping), in a stable order."""
        connection = await asyncpg.connect(self.platform.admin_url)
        try:
            tables = await connection.fetch(
                "SELECT table_schema, table_name FROM information_schema.tables"
                " WHERE table_schema = ANY($1::text[]) AND table_type = 'BASE TABLE'"
                " AND table_name <> ALL($2::text[]) ORDER BY 1, 2", list(self.apps), list(BOOKKEEPING))
            contents = {}
            for schema, table in tables:
                # Identifiers, quoted; the names come from the catalogue query above.
                rows = await connection.fetch(f"SELECT * FROM {quote_identifier(schema)}.{quote_identifier(table)}")  # noqa: S608 -- names quoted; values are parameters
                contents[f"{schema}.{table}"] = sorted(tuple(map(repr, row.values())) for row in rows)
            return contents
        finally:
            await connection.close()

    async def applied(self, service: str, event_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        connection = await asyncpg.connect(self.platform.admin_url)
        try:
            rows = await connection.fetch(  # a schema name, quoted; the ids travel as a parameter
                f"SELECT event_id FROM {quote_identifier(service)}.inbox WHERE event_id = ANY($1::uuid[])",  # noqa: S608 -- names quoted; values are parameters
                event_ids)
            return {row["event_id"] for row in rows}
        finally:
            await connection.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services() -> AsyncIterator[Services]:
    """The five services in-process on a database and broker of their own: nothing else writes their tables."""
    platform = await start_platform("hostile", own_broker=True)
    try:
        with patched_environ(platform.env()):
            apps = {name: create() for name, create in APPS.items()}
            async with contextlib.AsyncExitStack() as stack:
                for app in apps.values():
                    await stack.enter_async_context(running_service(app))
                async with asyncio.timeout(60):
                    for app in apps.values():
                        await app.state.runtime.broker_connected.wait()
                yield Services(platform, apps)
    finally:
        await stop_platform(platform, stop_server=False)


async def produce(bootstrap: str, messages: list[tuple[str, bytes | None, bytes | None]]) -> list[tuple[str, int, int]]:
    """Send each (topic, key, value) as is; returns where each landed (topic, partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=key) for topic, key, value in messages]
        landed = await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return [(m.topic, m.partition, m.offset) for m in landed]


def letter_headers(letter: ConsumerRecord) -> dict[str, str]:
    return {name: value.decode() for name, value in letter.headers}


# ---------------------------------------------------------------------------------------------- the test


async def test_hostile_messages_are_dead_lettered_change_nothing_and_the_consumers_carry_on(services):
    messages = [m for strategy in KINDS.values() for m in generated(strategy, EXAMPLES_PER_KIND)] + explicit_cases()
    assert {m.kind for m in messages} >= {"truncated", "oversized", "binary garbage", "subject mismatch", AT_THE_LIMIT}
    before = await services.snapshot()
    assert {"permits.permits", "reports.schedules", "incidents.plants", "notifier.alerts",
            "supervision.plant_risk"} <= before.keys()

    landed = await produce(services.platform.bootstrap, [(m.topic, m.key, m.value) for m in messages])
    expected = {(*where, f"iomki-{group}"): message
                for message, where in zip(messages, landed, strict=True) for group in CONSUMED_BY[message.topic]}

    def letters_by_origin(records: list[ConsumerRecord]) -> dict[tuple[str, int, int, str], ConsumerRecord]:
        found = {}
        for record in records:
            h = letter_headers(record)
            found[(h["iomki-dlq-topic"], int(h["iomki-dlq-partition"]), int(h["iomki-dlq-offset"]),
                   h["iomki-dlq-consumer-group"])] = record
        return found

    dead: dict[tuple[str, int, int, str], ConsumerRecord] = {}

    def all_dead_lettered(records: list[ConsumerRecord]) -> bool:
        dead.update(letters_by_origin(records))
        return expected.keys() <= dead.keys()

    try:
        await read_topic(services.platform.bootstrap, DLQ.name, until=all_dead_lettered, timeout=90)
    except AssertionError:
        missing = sorted({f"{expected[origin]} (by {origin[3]})" for origin in expected.keys() - dead.keys()})
        raise AssertionError("not dead-lettered:\n" + "\n".join(missing)) from None
    assert dead.keys() == expected.keys(), "a dead letter from a group that does not consume the topic"
    problems = [f"{message}: {problem}" for origin, message in expected.items()
                if (problem := dead_letter_problem(dead[origin], message))]
    assert not problems, "\n".join(problems)

    assert await services.snapshot() == before, "a hostile message changed a service's state"

    # Valid events after the garbage, one of each consumed kind: every service still applies what it handles.
    valid = [Envelope.wrap(event, service=event.topic.owner) for event in sentinel_events()]
    await produce(services.platform.bootstrap, [(EVENT_TYPES[e.type].topic.name, e.key, e.to_bytes()) for e in valid])
    for service, handled in HANDLED.items():
        wanted = [e.id for e in valid if EVENT_TYPES[e.type] in handled]
        await until(lambda service=service, wanted=wanted: services.applied(service, wanted),
                    lambda found, wanted=wanted: found == set(wanted),
                    f"{service} stopped consuming after the hostile messages")


def dead_letter_problem(letter: ConsumerRecord, message: Hostile) -> str | None:
    headers = letter_headers(letter)
    if headers["iomki-dlq-reason"] != message.reason:
        return f"reason {headers['iomki-dlq-reason']!r}, expected {message.reason!r}"
    if not headers["iomki-dlq-error"].startswith(message.errors):
        return f"error {headers['iomki-dlq-error'][:300]!r}, expected one starting {message.errors}"
    original = message.value or b""
    if "iomki-dlq-truncated" in headers:
        if not (original.startswith(letter.value) and len(letter.value) < len(original)):
            return "a truncated dead letter that is not a prefix of the original"
        if message.kind != AT_THE_LIMIT:
            return "truncated although the original would have fitted"
    elif letter.value != original:
        return "the dead letter does not carry the original bytes"
    if (letter.key or None) != (message.key or None):
        return f"key {letter.key!r}, expected {message.key!r}"
    return None


def sentinel_events() -> list[BaseEvent]:
    plant = uuid.uuid4()
    sanction = SanctionRecommended(
        facility_id=plant, province_code="32", regency_code="32.16", permit_id=uuid.uuid4(),
        action=SanctionAction.FREEZE, rule="ThreeWarningsInARow",
        evidence=SanctionEvidence(missed_periods=[uuid.uuid4()], warnings=[uuid.uuid4()]))
    return [sample_event(topic, plant) for topic in CONSUMED_BY] + [sanction]


# What each service applies of the sentinel events (its handlers; the notifier routes every public event).
HANDLED = {
    "permits": {SanctionRecommended, FacilityClosureOrdered},
    "reports": {PermitIssued, FacilityClosureOrdered, PpkmLevelSet},
    "incidents": {PermitIssued, ReportSubmitted},
    "supervision": {PermitIssued, ReportSubmitted},
    "notifier": {PermitIssued, ReportSubmitted, SanctionRecommended, FacilityClosureOrdered, CompanyContactsUpdated,
                 ComplaintFiled},
}
