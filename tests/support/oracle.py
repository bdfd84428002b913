"""The oracle of the fault-injection tests: what the platform must hold once the load has settled, computed from
the requests it accepted alone, and its comparison with what each service holds (read by SQL as the admin) and
with how far each consumer group committed its offsets on the broker.

A request is ACCEPTED when the platform answered 2xx, REFUSED when it answered 503 or was never reached (it
must have changed nothing), and UNKNOWN when it was sent but the answer was lost (the connection was cut): the
oracle allows either outcome for those, and only those, then expects every downstream projection to agree
with whichever outcome the owning service shows.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from zoneinfo import ZoneInfo

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from shared.contract import INCIDENTS, INTERNAL_CONTACTS, PERMITS, REPORTS, SUPERVISION
from shared.regions import local_zone
from shared.storage.db import quote_identifier

SERVICES = ("permits", "reports", "incidents", "notifier", "supervision")

# Which producer's events each service consumes, by type (None: every event on the producer's topics).
CONSUMED: dict[str, dict[str, frozenset[str] | None]] = {
    "notifier": {"permits": None, "reports": None, "incidents": None, "supervision": None},
    "incidents": {"permits": frozenset({"PermitIssued"}), "reports": frozenset({"ReportSubmitted"})},
    "reports": {"permits": frozenset({"PermitIssued"}), "incidents": frozenset({"FacilityClosureOrdered"})},
    "permits": {"incidents": frozenset({"FacilityClosureOrdered"}), "supervision": frozenset({"SanctionRequested"})},
    "supervision": {"permits": frozenset({"PermitIssued"}), "reports": frozenset({"ReportSubmitted"}),
                    "incidents": frozenset({"CaseDetected", "ClusterDeclared"})},
}

# The topics each consumer group reads (services/*/app.py), whose committed offsets must reach the end.
GROUP_TOPICS: dict[str, tuple[str, ...]] = {
    "iomki-permits": (REPORTS.name, INCIDENTS.name, SUPERVISION.name),
    "iomki-reports": (PERMITS.name, INCIDENTS.name),
    "iomki-incidents": (PERMITS.name, REPORTS.name),
    "iomki-notifier": (PERMITS.name, REPORTS.name, INCIDENTS.name, SUPERVISION.name, INTERNAL_CONTACTS.name),
    "iomki-supervision": (PERMITS.name, REPORTS.name, INCIDENTS.name),
}

# Alerts the load causes: the incidents' go to the health division of the plant's regency task force, and the high
# ones (a cluster, a plant's closure) climb regency → province → national until acknowledged (the load acknowledges
# some of them on the way, and the next event for the same plant and kind opens a new alert); the national task
# force subscribed its feed to permits issued and reports.
SUBSCRIBED = ("PermitIssued", "ReportSubmitted")
LEVELS = ("regency", "province", "national")
# Alerts raised above the regency: an unanswered closure recommendation goes to the province first.
FIRST_LEVEL = {"ClosureRecommendationOverdue": "province"}
CLUSTER_LINKS = 2
# Kepmenkes 4641/2021: a close contact quarantines 14 days from the last exposure, or until a negative exit test
# taken on day 5 or later.
QUARANTINE_DAYS = 14
EXIT_TEST_FROM_DAY = 5


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    UNKNOWN = "unknown"


@dataclass
class Report:
    marker: str  # carried in case_handling, so that a report whose answer was lost can be found
    outcome: Outcome
    report_id: str | None = None


@dataclass
class Contact:
    """One close contact of an accepted case, as the load listed it (or counted it: then exposed, as the platform
    assumes, on the case's first day of isolation), and the exit test the platform accepted for it."""

    number: int  # within its case: 1, 2, …
    last_exposure_on: date
    assumed: bool = False  # entered as a count, not listed
    entry_test: str | None = None  # its result, taken on the day of the exposure
    planned_exit: str | None = None  # the exit test's result the load records, once the case's id is known
    exit_test: tuple[date, str] | None = None  # (tested_on, result), once accepted
    contact_id: str | None = None

    @property
    def full_end(self) -> date:
        """The first day out of quarantine without an exit test."""
        return self.last_exposure_on + timedelta(days=QUARANTINE_DAYS)

    def expected(self, at: datetime, zone: ZoneInfo) -> tuple[str, date | None, date]:
        """(status, left_on, quarantine_ends_on) at the moment `at`: out when a test says so, or released at its end
        once that day has begun where the plant is; in quarantine until then."""
        if self.entry_test == "positive":
            return "tested_positive", self.last_exposure_on, self.full_end
        if self.exit_test is not None:
            tested_on, result = self.exit_test
            if result == "positive":
                return "tested_positive", tested_on, self.full_end
            return "released", tested_on, tested_on  # taken on day 5 or later: released that day
        if start_of_day(self.full_end, zone) <= at:
            return "released", self.full_end, self.full_end
        return "quarantining", None, self.full_end


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    """When a plant's day begins: a quarantine's timer is due at the local midnight starting its last day out."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


@dataclass
class Plant:
    """One plant of the load and what the platform accepted about it."""

    index: int
    nib: str
    application: dict
    planned_decision: str  # "issue" or "reject"
    planned_cases: int
    permit_id: str | None = None
    facility_id: str | None = None
    decision: str | None = None  # "issue" or "reject", once accepted
    cases: list[str] = field(default_factory=list)  # accepted case references
    case_ids: list[str | None] = field(default_factory=list)  # their ids, None where the answer was lost
    links: int = 0  # links accepted between its cases, each to the next: case 1–2, then 2–3
    reports: list[Report] = field(default_factory=list)
    contacts: dict[str, list[Contact]] = field(default_factory=dict)  # by accepted case reference

    @property
    def zone(self) -> ZoneInfo:
        return local_zone(self.application["facility"]["regency_code"])

    @property
    def issued(self) -> bool:
        return self.decision == "issue"

    @property
    def clustered(self) -> bool:
        """Three cases linked in a chain: a cluster under the default rule (more than two linked cases)."""
        return self.links == CLUSTER_LINKS


@dataclass(frozen=True)
class Acknowledgement:
    """An acknowledgement the notifier accepted (or, after a lost answer, showed it had made)."""

    alert_id: str
    event_type: str
    level: str  # the alert's level when it was acknowledged
    role: str  # "operator" or "task_force"


@dataclass
class Oracle:
    plants: list[Plant]
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)  # (request, answer) → how many
    acknowledgements: list[Acknowledgement] = field(default_factory=list)

    def count(self, request: str, answer: str) -> None:
        self.requests[(request, answer)] += 1

    @property
    def applied(self) -> list[Plant]:
        return [p for p in self.plants if p.permit_id is not None]

    @property
    def issued(self) -> list[Plant]:
        return [p for p in self.plants if p.issued]

    def landed_reports(self, plant: Plant, state: State) -> list[Report]:
        """Accepted reports, and those of unknown outcome that the reports service shows."""
        return [r for r in plant.reports if r.outcome is Outcome.ACCEPTED
                or (r.outcome is Outcome.UNKNOWN and r.marker in state.report_markers)]

    @property
    def acknowledged(self) -> set[str]:
        return {ack.alert_id for ack in self.acknowledgements}

    def expected_alerts(self, state: State) -> dict[tuple[str, str], int]:
        """(alert kind, facility) → how many events its alerts must have counted together: each exactly once (an
        acknowledged alert takes no more events; the next one opens a new alert). The kind is the event type, and
        the rule where the notifier routes the type by content (`alert_kind`)."""
        alerts: dict[tuple[str, str], int] = {}
        for plant in self.issued:
            facility = plant.facility_id
            assert facility is not None
            alerts[("PermitIssued", facility)] = 1
            if reports := len(self.landed_reports(plant, state)):
                alerts[("ReportSubmitted", facility)] = reports
            if cases := len(plant.cases):
                alerts[("CaseDetected", facility)] = cases
                # One room closure per case, alerted apart from the plant's. The load never links its cases:
                # unlinked, they are no cluster and the plant stays open; three within the window are a possible
                # cluster for the task force to judge.
                alerts[("FacilityClosureOrdered:room-closure", facility)] = cases
                if cases >= 3:
                    alerts[("PossibleClusterRaised", facility)] = 1
            if plant.clustered:
                # Linked, the three are a cluster: its closure is recommended to the task force, which the load
                # never answers, so each recommendation falls overdue (the incidents' durable timer).
                for event_type in ("ClusterDeclared", "ClosureRecommended", "ClosureRecommendationOverdue"):
                    alerts[(event_type, facility)] = 1
        return alerts


# ------------------------------------------------------------------------------------------- what services hold


@dataclass
class OutboxEvent:
    event_id: uuid.UUID
    event_type: str  # the contract's name, e.g. PermitIssued; "dead-letter" for the DLQ
    key: str
    published: bool


@dataclass
class State:
    outbox: dict[str, list[OutboxEvent]]
    inbox: dict[str, set[uuid.UUID]]
    permits: list[asyncpg.Record]
    history: dict[str, list[str]]
    permit_closures: dict[str, Counter[str]]
    schedules: list[asyncpg.Record]
    reports: list[asyncpg.Record]
    plants: list[asyncpg.Record]
    cases: list[asyncpg.Record]
    clusters: Counter[str]
    incident_closures: dict[str, Counter[str]]
    report_closures: Counter[str]
    contacts: list[str]
    close_contacts: list[asyncpg.Record]  # incidents' line lists, with their case's reference
    quarantine_timers: list[asyncpg.Record]
    read_at: datetime  # the snapshot's moment, on the database's clock
    alerts: list[asyncpg.Record]
    escalations: dict[str, list[str]]
    deliveries: list[asyncpg.Record]
    attempts_succeeded: Counter[str]
    # group → "topic-partition" → messages behind the end of the partition (only those behind); None when unread
    lag: dict[str, dict[str, int]] | None = None
    lag_error: str | None = None

    @property
    def report_markers(self) -> set[str]:
        return {r["marker"] for r in self.reports}

    def overdue_quarantines(self) -> list[asyncpg.Record]:
        """Contacts still in quarantine though the day their quarantine ends has begun at their plant: their timer
        is due, and has not fired yet."""
        return [c for c in self.close_contacts if c["status"] == "quarantining"
                and start_of_day(c["quarantine_ends_on"], local_zone(c["regency_code"])) <= self.read_at]


async def read_state(connection: asyncpg.Connection, bootstrap: str | None = None) -> State:
    """Every service's tables, read through its schema in one repeatable-read snapshot, and then each consumer
    group's lag on the broker at `bootstrap`, when given."""
    state = await _read_tables(connection)
    if bootstrap is not None:
        try:
            state.lag = await consumer_lag(bootstrap)
        except (KafkaError, OSError, TimeoutError) as exc:
            state.lag_error = f"{type(exc).__name__}: {exc}"
    return state


async def _read_tables(connection: asyncpg.Connection) -> State:
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        outbox, inbox = {}, {}
        for service in SERVICES:
            schema = quote_identifier(service)
            outbox[service] = [
                OutboxEvent(r["event_id"], _short(r["event_type"]), bytes(r["key"]).decode(), r["published"])
                for r in await connection.fetch(
                    f"SELECT event_id, event_type, key, p.position IS NULL AS published FROM {schema}.outbox"  # noqa: S608 -- a schema name, quoted; values are parameters
                    f" LEFT JOIN {schema}.outbox_pending p USING (position)")]
            inbox[service] = {r["event_id"] for r in await connection.fetch(
                f"SELECT event_id FROM {schema}.inbox")}  # noqa: S608 -- a schema name, quoted; values are parameters
        history: dict[str, list[str]] = defaultdict(list)
        for r in await connection.fetch("SELECT permit_id::text, action FROM permits.permit_history ORDER BY seq"):
            history[r["permit_id"]].append(r["action"])
        return State(
            outbox=outbox, inbox=inbox,
            permits=await connection.fetch(
                "SELECT permit_id::text, facility_id::text, nib, status, permit_number FROM permits.permits"),
            history=history,
            permit_closures=_by_facility(await connection.fetch(
                "SELECT facility_id::text, scope FROM permits.facility_closures")),
            schedules=await connection.fetch(
                "SELECT permit_id::text, facility_id::text, closed FROM reports.schedules"),
            reports=await connection.fetch(
                "SELECT report_id::text, permit_id::text, payload->>'case_handling' AS marker,"
                " superseded_by IS NULL AS current FROM reports.reports ORDER BY submitted_at"),
            plants=await connection.fetch(
                "SELECT facility_id::text, permit_id::text, monitored, active_quarantines, contacts_total"
                " FROM incidents.plants"),
            cases=await connection.fetch(
                "SELECT facility_id::text, case_ref, source, close_contacts FROM incidents.cases"),
            clusters=Counter(r["facility_id"] for r in await connection.fetch(
                "SELECT facility_id::text FROM incidents.clusters")),
            incident_closures=_by_facility(await connection.fetch(
                "SELECT facility_id::text, scope FROM incidents.closures")),
            report_closures=Counter(r["facility_id"] for r in await connection.fetch(
                "SELECT facility_id::text FROM reports.closures")),
            contacts=[r["facility_id"] for r in await connection.fetch(
                "SELECT facility_id::text FROM notifier.company_contacts")],
            close_contacts=await connection.fetch(
                "SELECT k.facility_id::text, p.regency_code, c.case_ref, k.number, k.contact_id::text,"
                " k.last_exposure_on, k.exposure_assumed, k.quarantine_ends_on, k.status, k.left_on,"
                " k.entry_test_result, k.exit_test_on, k.exit_test_result"
                " FROM incidents.contacts k JOIN incidents.cases c USING (case_id)"
                " JOIN incidents.plants p ON p.facility_id = k.facility_id"),
            quarantine_timers=await connection.fetch(
                "SELECT subject_id::text, due_at, fired_at IS NOT NULL AS fired, cancelled_at IS NOT NULL AS cancelled"
                " FROM incidents.timers WHERE kind = 'quarantine_end'"),
            read_at=await connection.fetchval("SELECT now()"),
            alerts=await connection.fetch(
                "SELECT alert_id::text, alert_key, event_type, facility_id::text, severity, count, level, status,"
                " escalate_at IS NULL AS at_top, first_seen_at, acknowledged_role"
                " FROM notifier.alerts"),
            escalations=_grouped(await connection.fetch(
                "SELECT alert_id::text, to_level FROM notifier.escalations ORDER BY at"), "alert_id", "to_level"),
            deliveries=await connection.fetch(
                "SELECT delivery_id::text, alert_id::text, channel, level, target, status FROM notifier.deliveries"),
            attempts_succeeded=Counter(r["delivery_id"] for r in await connection.fetch(
                "SELECT delivery_id::text FROM notifier.delivery_attempts WHERE succeeded")),
        )


def _short(event_type: str) -> str:
    return event_type.split(".")[1] if event_type.startswith("iomki.") else event_type


def _by_facility(rows: list[asyncpg.Record]) -> dict[str, Counter[str]]:
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        found[r["facility_id"]][r["scope"]] += 1
    return found


def _grouped(rows: list[asyncpg.Record], key: str, value: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        found[r[key]].append(r[value])
    return found


# ------------------------------------------------------------------------------------------- consumer groups


async def consumer_lag(bootstrap: str, timeout: float = 10) -> dict[str, dict[str, int]]:
    """group → "topic-partition" → how many messages its committed offset is behind the partition's end, for the
    partitions of the topics the group consumes that are not at the end. Fresh clients each time: the read must
    work whichever broker is down or has come back since the last one."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5_000)
    ends_reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=5_000)  # no group: reads ends
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            await ends_reader.start()
            topics = sorted({topic for topics in GROUP_TOPICS.values() for topic in topics})
            partitions = [TopicPartition(t["topic"], p["partition"]) for t in await admin.describe_topics(topics)
                          for p in t["partitions"]]
            ends = await ends_reader.end_offsets(partitions)
            behind: dict[str, dict[str, int]] = {}
            for group, consumed in GROUP_TOPICS.items():
                committed = await admin.list_consumer_group_offsets(group)
                behind[group] = {}
                for tp in partitions:
                    if tp.topic not in consumed:
                        continue
                    # A partition the group never committed is read from its start (auto_offset_reset=earliest),
                    # and every log here starts at 0 (a week's retention).
                    offset = committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0
                    if ends[tp] != offset:
                        behind[group][f"{tp.topic}-{tp.partition}"] = ends[tp] - offset
            return behind
    finally:
        await ends_reader.stop()
        await admin.close()


# ------------------------------------------------------------------------------------------- webhook receipts


@dataclass(frozen=True)
class Receipt:
    """One POST a webhook receiver took (answered 200)."""

    receiver: str  # which task-force endpoint: regency, province, national, feed
    delivery_id: str
    alert_id: str
    level: str  # the alert's level in the notice: the escalation step it announces
    received_at: float


def receipts_of(receiver: str, deliveries: list) -> list[Receipt]:
    found = []
    for delivery in deliveries:
        body = json.loads(delivery.body)
        found.append(Receipt(receiver, delivery.headers["webhook-id"], body["alert_id"], body["level"],
                             delivery.received_at))
    return found


# ------------------------------------------------------------------------------------------- settling


def pending(oracle: Oracle, state: State, receipts: list[Receipt]) -> list[str]:
    """What the platform still has to do before the state can be compared: empty once it has settled."""
    waiting = []
    for service, events in state.outbox.items():
        if unpublished := sum(not e.published for e in events):
            waiting.append(f"{service}: {unpublished} outbox events unpublished")
    for consumer, missing in _missing_from_inboxes(state).items():
        if missing:
            waiting.append(f"{consumer}: {len(missing)} events not yet consumed")
    expected = oracle.expected_alerts(state)
    have = {(alert_kind(a), a["facility_id"]): a for a in state.alerts}
    if absent := [key for key in expected if key not in have]:
        waiting.append(f"notifier: {len(absent)} alerts not raised yet")
    if overdue := state.overdue_quarantines():
        waiting.append(f"incidents: {len(overdue)} contacts' quarantine over, not yet released")
    if climbing := [a for a in state.alerts if a["status"] == "open" and not a["at_top"]]:
        waiting.append(f"notifier: {len(climbing)} alerts still escalating")
    if undelivered := [d for d in state.deliveries if d["status"] == "pending"]:
        waiting.append(f"notifier: {len(undelivered)} deliveries pending")
    received = {r.delivery_id for r in receipts}
    if unseen := [d for d in state.deliveries if d["status"] == "delivered" and d["delivery_id"] not in received]:
        waiting.append(f"receivers: {len(unseen)} delivered notices not seen")
    if state.lag_error:
        waiting.append(f"consumer lag unreadable: {state.lag_error}")
    for group, behind in (state.lag or {}).items():
        if behind:
            waiting.append(f"{group}: {sum(behind.values())} messages behind on {len(behind)} partitions")
    return waiting


def fingerprint(state: State, receipts: list[Receipt]) -> tuple:
    """Changes whenever anything the checks read changes: equal twice apart means the state is stable."""
    return (tuple(len(e) for e in state.outbox.values()), tuple(len(i) for i in state.inbox.values()),
            len(state.permits), len(state.reports), len(state.cases),
            tuple(sorted(Counter(c["status"] for c in state.close_contacts).items())),
            sum(t["fired"] + t["cancelled"] for t in state.quarantine_timers), sum(a["count"] for a in state.alerts),
            len(state.alerts), sum(a["status"] == "acknowledged" for a in state.alerts), len(state.deliveries),
            len(receipts), sum(sum(behind.values()) for behind in (state.lag or {}).values()))


def _missing_from_inboxes(state: State) -> dict[str, set[uuid.UUID]]:
    missing = {}
    for consumer, producers in CONSUMED.items():
        wanted = {e.event_id for producer, types in producers.items() for e in state.outbox[producer]
                  if e.event_type != "dead-letter" and (types is None or e.event_type in types)}
        missing[consumer] = wanted - state.inbox[consumer]
    return missing


# ------------------------------------------------------------------------------------------- checks


@dataclass
class Check:
    name: str
    compared: int
    problems: list[str] = field(default_factory=list)

    def expect(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problems.append(problem)

    def __str__(self) -> str:
        mark = "ok  " if not self.problems else "FAIL"
        text = f"  {mark} {self.name}: {self.compared} compared"
        for problem in self.problems[:10]:
            text += f"\n         - {problem}"
        if len(self.problems) > 10:
            text += f"\n         … and {len(self.problems) - 10} more"
        return text


def compare(oracle: Oracle, state: State, receipts: list[Receipt], notifier_kills: list[float]) -> list[Check]:
    return [
        _messaging(state),
        _consumer_groups(state),
        _permits(oracle, state),
        _schedules(oracle, state),
        _reports(oracle, state),
        _incident_plants(oracle, state),
        _cases(oracle, state),
        _closures(oracle, state),
        _quarantines(oracle, state),
        _contacts(oracle, state),
        _alerts(oracle, state),
        _acknowledgements(oracle, state),
        _escalations(oracle, state),
        _deliveries(oracle, state),
        _webhooks(oracle, state, receipts, notifier_kills),
    ]


def _messaging(state: State) -> Check:
    check = Check("every event consumed by each consumer, no dead letter, outboxes drained",
                  sum(len(e) for e in state.outbox.values()))
    for consumer, missing in _missing_from_inboxes(state).items():
        check.expect(not missing, f"{consumer} never consumed {len(missing)} events, e.g. {sorted(missing)[:3]}")
    for service, events in state.outbox.items():
        letters = [e for e in events if e.event_type == "dead-letter"]
        check.expect(not letters, f"{service} dead-lettered {len(letters)} events")
        check.expect(all(e.published for e in events), f"{service} left events unpublished")
    return check


def _consumer_groups(state: State) -> Check:
    check = Check("every consumer group committed up to the end of the partitions it consumes", len(GROUP_TOPICS))
    if state.lag is None:
        check.problems.append(f"could not read the groups' offsets: {state.lag_error}")
        return check
    for group, behind in state.lag.items():
        check.expect(not behind, f"{group} is behind: {dict(sorted(behind.items()))}")
    return check


def _permits(oracle: Oracle, state: State) -> Check:
    check = Check("permits: one permit per accepted application, in its decided status, history once each",
                  len(oracle.plants))
    by_nib: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for permit in state.permits:
        by_nib[permit["nib"]].append(permit)
    for plant in oracle.plants:
        found = by_nib.pop(plant.nib, [])
        if plant.permit_id is None:
            check.expect(not found, f"plant {plant.index}: application never accepted, yet {len(found)} permits")
            continue
        if len(found) != 1:
            check.problems.append(f"plant {plant.index}: {len(found)} permits for one accepted application")
            continue
        permit = found[0]
        status = {"issue": "ISSUED", "reject": "REJECTED", None: "SUBMITTED"}[plant.decision]
        check.expect(permit["permit_id"] == plant.permit_id and permit["facility_id"] == plant.facility_id,
                     f"plant {plant.index}: permit {permit['permit_id']} is not the one accepted")
        check.expect(permit["status"] == status, f"plant {plant.index}: {permit['status']}, expected {status}")
        actions = ["apply"] + ([plant.decision] if plant.decision else [])
        check.expect(state.history[permit["permit_id"]] == actions,
                     f"plant {plant.index}: history {state.history[permit['permit_id']]}, expected {actions}")
    check.expect(not by_nib, f"permits nobody applied for: {sorted(by_nib)}")
    numbers = [p["permit_number"] for p in state.permits if p["permit_number"]]
    check.expect(len(numbers) == len(set(numbers)) == len(oracle.issued),
                 f"{len(numbers)} permit numbers ({len(set(numbers))} distinct) for {len(oracle.issued)} issued")
    return check


def _schedules(oracle: Oracle, state: State) -> Check:
    check = Check("reports: one schedule per issued permit, none closed (no closure was ordered)",
                  len(oracle.issued))
    schedules = Counter(s["permit_id"] for s in state.schedules)
    expected = {p.permit_id for p in oracle.issued}
    check.expect(set(schedules) == expected, f"schedules for {sorted(set(schedules) ^ expected)} differ")
    check.expect(all(n == 1 for n in schedules.values()), "a permit has two schedules")
    closed = {s["facility_id"] for s in state.schedules if s["closed"]}
    check.expect(closed == set(), f"closed schedules {sorted(closed)}, though no plant closure was ordered")
    check.expect(not state.report_closures, f"reports' plant closures {dict(state.report_closures)}, though none")
    return check


def _reports(oracle: Oracle, state: State) -> Check:
    submitted = [r for p in oracle.plants for r in p.reports]
    check = Check("reports: accepted ones present exactly once, refused ones absent, the last one current",
                  len(submitted))
    markers = Counter(r["marker"] for r in state.reports)
    by_plant = {p.permit_id: p for p in oracle.plants}
    for plant in oracle.plants:
        for report in plant.reports:
            present = markers.pop(report.marker, 0)
            allowed = {Outcome.ACCEPTED: {1}, Outcome.REFUSED: {0}, Outcome.UNKNOWN: {0, 1}}[report.outcome]
            check.expect(present in allowed, f"plant {plant.index}: {report.outcome.value} report present {present}×")
        landed = oracle.landed_reports(plant, state)
        current = [r["marker"] for r in state.reports if r["permit_id"] == plant.permit_id and r["current"]]
        if landed:
            check.expect(current == [landed[-1].marker],
                         f"plant {plant.index}: current report {current}, expected the last one landed")
    check.expect(not markers, f"reports nobody submitted: {sorted(markers)}")
    accepted_ids = {r.report_id for r in submitted if r.report_id}
    check.expect(accepted_ids <= {r["report_id"] for r in state.reports}, "an accepted report id is missing")
    check.expect(all(r["permit_id"] in by_plant for r in state.reports), "a report for an unknown permit")
    return check


def _incident_plants(oracle: Oracle, state: State) -> Check:
    check = Check("incidents: knows every issued plant once, monitored", len(oracle.issued))
    known = Counter(p["facility_id"] for p in state.plants)
    expected = {p.facility_id for p in oracle.issued}
    check.expect(set(known) == expected, f"plants {sorted(set(known) ^ expected)} differ")
    check.expect(all(p["monitored"] for p in state.plants), "a plant is not monitored")
    return check


def _cases(oracle: Oracle, state: State) -> Check:
    expected = {(p.facility_id, ref) for p in oracle.issued for ref in p.cases}
    check = Check("incidents: every accepted case once, a cluster where three were linked", len(expected))
    found = Counter((c["facility_id"], c["case_ref"]) for c in state.cases)
    check.expect(set(found) == expected, f"cases {sorted(set(found) ^ expected)} differ")
    check.expect(all(n == 1 for n in found.values()), "a case recorded twice")
    check.expect(all(c["source"] == "direct" for c in state.cases), "a case not entered directly")
    clustered = {p.facility_id for p in oracle.issued if p.clustered}
    check.expect(set(state.clusters) == clustered and all(n == 1 for n in state.clusters.values()),
                 f"clusters {dict(state.clusters)} ≠ one per plant whose three cases were linked")
    return check


def _closures(oracle: Oracle, state: State) -> Check:
    with_cases = [p for p in oracle.issued if p.cases]
    check = Check("closures: a room per case, in incidents and in permits", len(with_cases))
    for plant in with_cases:
        expected = Counter({"room": len(plant.cases)})
        for service, closures in (("incidents", state.incident_closures), ("permits", state.permit_closures)):
            have = closures.get(plant.facility_id, Counter())
            check.expect(have == expected,
                         f"plant {plant.index}: {service} holds {dict(have)}, expected {dict(expected)}")
    facilities = {p.facility_id for p in with_cases}
    for service, closures in (("incidents", state.incident_closures), ("permits", state.permit_closures)):
        check.expect(set(closures) <= facilities, f"{service} closed a plant without cases")
    return check


def _quarantines(oracle: Oracle, state: State) -> Check:
    """Each contact against what its own exposure and tests make of it at the moment the state was read: a
    contact's quarantine is over when its end's day has begun at the plant (its timer is due then), or on the day
    of a negative exit test; nothing else releases it, and nothing releases it twice: the plant's count of
    contacts in quarantine is its rows', and each contact has one timer at most, pending while it is in quarantine,
    spent (fired or cancelled) once it is out."""
    expected = {(p.facility_id, ref): (p, listed) for p in oracle.issued for ref, listed in p.contacts.items()}
    check = Check("incidents: close contacts listed once each, in quarantine until their own end (released at it "
                  "once it has passed, never before) or a negative exit test, one timer each, counted by the plant",
                  sum(len(listed) for _, listed in expected.values()))
    rows: dict[tuple[str, str], list[asyncpg.Record]] = defaultdict(list)
    for row in state.close_contacts:
        rows[(row["facility_id"], row["case_ref"])].append(row)
    timers: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for timer in state.quarantine_timers:
        timers[timer["subject_id"]].append(timer)
    counted = {(c["facility_id"], c["case_ref"]): c["close_contacts"] for c in state.cases}
    for key, (plant, listed) in expected.items():
        found = sorted(rows.pop(key, []), key=lambda row: row["number"])
        where = f"plant {plant.index} case {key[1]}"
        numbers = [row["number"] for row in found]
        check.expect(numbers == [c.number for c in listed] and counted.get(key) == len(listed),
                     f"{where}: contacts {numbers} (the case counts {counted.get(key)}), expected 1 to {len(listed)}")
        for contact, row in zip(listed, found, strict=False):
            status, left_on, ends_on = contact.expected(state.read_at, plant.zone)
            held = (row["status"], row["left_on"], row["quarantine_ends_on"], row["last_exposure_on"],
                    row["exposure_assumed"], row["entry_test_result"],
                    (row["exit_test_on"], row["exit_test_result"]) if row["exit_test_on"] else None)
            wanted = (status, left_on, ends_on, contact.last_exposure_on, contact.assumed, contact.entry_test,
                      contact.exit_test)
            check.expect(held == wanted, f"{where} contact {contact.number}: {held}, expected {wanted}")
            own = timers.pop(row["contact_id"], [])
            pending_timers = [t for t in own if not (t["fired"] or t["cancelled"])]
            due = [t["due_at"] for t in pending_timers]
            if status == "quarantining":
                check.expect(len(own) == 1 and due == [start_of_day(ends_on, plant.zone)],
                             f"{where} contact {contact.number}: in quarantine until {ends_on}, timers "
                             f"{[dict(t) for t in own]}")
            else:
                check.expect(len(own) <= 1 and not pending_timers and not (own and contact.entry_test == "positive"),
                             f"{where} contact {contact.number}: {status}, timers {[dict(t) for t in own]}")
    check.expect(not rows, f"contacts of cases nobody entered: {sorted(rows)}")
    check.expect(not timers, f"{len(timers)} quarantine timers of no contact listed")
    quarantining = Counter(row["facility_id"] for row in state.close_contacts if row["status"] == "quarantining")
    traced = Counter(row["facility_id"] for row in state.close_contacts)
    for known in state.plants:
        facility, counts = known["facility_id"], (known["active_quarantines"], known["contacts_total"])
        check.expect(counts == (quarantining[facility], traced[facility]),
                     f"plant {facility} counts {counts[0]} in quarantine of {counts[1]} contacts, its line lists "
                     f"{quarantining[facility]} of {traced[facility]}")
    return check


def _contacts(oracle: Oracle, state: State) -> Check:
    check = Check("notifier: the contacts of every accepted application, once", len(oracle.applied))
    found = Counter(state.contacts)
    check.expect(set(found) == {p.facility_id for p in oracle.applied}, "company contacts differ from the applications")
    return check


def _alerts(oracle: Oracle, state: State) -> Check:
    expected = oracle.expected_alerts(state)
    check = Check("notifier: per plant and alert kind, alerts counting each event exactly once, a second one only "
                  "after the first was acknowledged", len(expected))
    found: dict[tuple[str, str], list[asyncpg.Record]] = defaultdict(list)
    for alert in state.alerts:
        found[(alert_kind(alert), alert["facility_id"])].append(alert)
    for key, count in expected.items():
        alerts = sorted(found.pop(key, []), key=lambda a: a["first_seen_at"])
        if not alerts:
            check.problems.append(f"{key}: no alert")
            continue
        counted = sum(a["count"] for a in alerts)
        check.expect(counted == count, f"{key}: counted {counted} events in {len(alerts)} alerts, expected {count}")
        # Not compared with the moment of the acknowledgement: an event takes its time before it waits for the
        # plant's lock, which the acknowledgement may take first.
        unacknowledged = [a["alert_id"] for a in alerts[:-1] if a["status"] != "acknowledged"]
        check.expect(not unacknowledged, f"{key}: {len(alerts)} alerts, yet {unacknowledged} not acknowledged")
    check.expect(not found, f"alerts the oracle did not expect: {sorted(found)}")
    return check


def _acknowledgements(oracle: Oracle, state: State) -> Check:
    check = Check("notifier: each accepted acknowledgement holds, by its role; no other alert acknowledged",
                  len(oracle.acknowledgements))
    by_id = {a["alert_id"]: a for a in state.alerts}
    for ack in oracle.acknowledgements:
        alert = by_id.get(ack.alert_id)
        if alert is None:
            check.problems.append(f"acknowledged alert {ack.alert_id} ({ack.event_type}) is gone")
            continue
        check.expect(alert["status"] == "acknowledged" and alert["acknowledged_role"] == ack.role,
                     f"alert {ack.alert_id} ({ack.event_type}): {alert['status']} by {alert['acknowledged_role']}, "
                     f"acknowledged by {ack.role}")
    stray = [a["alert_id"] for a in state.alerts
             if a["status"] == "acknowledged" and a["alert_id"] not in oracle.acknowledged]
    check.expect(not stray, f"alerts acknowledged that nobody acknowledged: {stray}")
    return check


def alert_kind(alert: asyncpg.Record) -> str:
    """What the notifier groups an alert by, less its plant: `CaseDetected`, `FacilityClosureOrdered:room-closure`."""
    return alert["alert_key"].rsplit(":", 1)[0]


def _levels_reached(alert: asyncpg.Record) -> list[str]:
    first = LEVELS.index(FIRST_LEVEL.get(alert["event_type"], "regency"))
    return list(LEVELS[first:LEVELS.index(alert["level"]) + 1])


def _escalations(oracle: Oracle, state: State) -> Check:
    escalating = [a for a in state.alerts if a["severity"] == "high"]
    check = Check("notifier: each high alert escalated to province, then national, once each, up to its "
                  "acknowledgement", len(escalating))
    for alert in escalating:
        steps = state.escalations.get(alert["alert_id"], [])
        check.expect(steps == _levels_reached(alert)[1:],
                     f"alert {alert['event_type']}: escalations {steps}, at {alert['level']}")
        check.expect(alert["level"] == "national" or alert["status"] == "acknowledged",
                     f"alert {alert['event_type']} stopped at {alert['level']}, unacknowledged")
    others = [a for a in state.alerts if a["severity"] != "high" and state.escalations.get(a["alert_id"])]
    check.expect(not others, f"{len(others)} low alerts escalated")
    return check


def _expected_steps(alert: asyncpg.Record) -> list[tuple[str, str]]:
    """(receiver, level of the notice) for each notice the alert must send."""
    if alert["event_type"] in SUBSCRIBED:
        return [("feed", alert["level"])]
    return [(level, level) for level in _levels_reached(alert)]


def _deliveries(oracle: Oracle, state: State) -> Check:
    check = Check("notifier: one delivery per alert, recipient and step, all delivered", len(state.deliveries))
    by_alert: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for delivery in state.deliveries:
        by_alert[delivery["alert_id"]].append(delivery)
    for alert in state.alerts:
        deliveries = by_alert.pop(alert["alert_id"], [])
        expected = len(_expected_steps(alert))
        check.expect(len(deliveries) == expected,
                     f"alert {alert['event_type']}: {len(deliveries)} deliveries, expected {expected}")
        check.expect(len({(d["target"], d["level"]) for d in deliveries}) == len(deliveries),
                     f"alert {alert['event_type']}: a recipient planned twice for one step")
        check.expect(all(d["status"] == "delivered" and d["channel"] == "webhook" for d in deliveries),
                     f"alert {alert['event_type']}: {[d['status'] for d in deliveries]}")
    check.expect(not by_alert, "deliveries of unknown alerts")
    return check


def _webhooks(oracle: Oracle, state: State, receipts: list[Receipt], notifier_kills: list[float]) -> Check:
    """Each (alert, recipient, step) reached its receiver under one delivery id, and a notice answered 200 is
    not sent again. The one exception the contract allows (at-least-once on the wire, webhook-id for
    the receiver to deduplicate): the notifier was killed after the receiver's 200 and before it recorded it,
    so it holds a single successful attempt for what the receiver took twice."""
    check = Check("webhooks: each (alert, recipient, step) received once", len(receipts))
    expected = {(receiver, alert["alert_id"], level) for alert in state.alerts
                for receiver, level in _expected_steps(alert)}
    ids: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    copies: dict[str, list[Receipt]] = defaultdict(list)
    for receipt in receipts:
        ids[(receipt.receiver, receipt.alert_id, receipt.level)].add(receipt.delivery_id)
        copies[receipt.delivery_id].append(receipt)
    check.expect(set(ids) == expected, f"{len(expected - set(ids))} notices never received, "
                                       f"{len(set(ids) - expected)} received that no alert explains")
    for key, delivery_ids in ids.items():
        check.expect(len(delivery_ids) == 1, f"{key}: {len(delivery_ids)} different deliveries of one notice")
    for delivery_id, taken in copies.items():
        if len(taken) == 1:
            continue
        first, last = taken[0].received_at, taken[-1].received_at
        crashed = any(first <= kill <= last for kill in notifier_kills)
        check.expect(crashed and state.attempts_succeeded[delivery_id] == 1,
                     f"delivery {delivery_id} received {len(taken)}× after a 200 "
                     f"(notifier killed in between: {crashed}; successes recorded: "
                     f"{state.attempts_succeeded[delivery_id]})")
    return check


def resent_after_crash(receipts: list[Receipt]) -> int:
    """Copies of a notice the receiver already took (see `_webhooks` for when that is allowed)."""
    return len(receipts) - len({r.delivery_id for r in receipts})
