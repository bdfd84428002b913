"""Incidents: COVID cases at plants, isolation, contact quarantine, clusters and closures (DESIGN §1).

Pure: no I/O; time is passed in. Every duration is policy (`IncidentPolicy`), with the regulation that sets
its default beside it. The handlers load a `Plant`, ask it what a case, a timer or a clearance changes, and
save what it answers (`Outcome`): the changed rows, the events to publish and the durable timers to set.

Privacy by design: a case is a pseudonymous `case_ref` chosen by the company, dates and counts. No name,
NIK, phone number or address is ever held here (`PersonalReference` refuses what looks like one). Even so,
the company's reference stays in this service: events and closure reasons name a case by the platform's
opaque `Case.public_ref` only.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from shared import refusals
from shared.clock import Backoff
from shared.contract import (
    CASE_REF_PATTERN, CaseClosed, CaseCorrectable, CaseDetected, CaseLinkKind, CaseSource, CaseVerdict, CaseVerified,
    ClosureAuthority, ClosureRecommendationDecided, ClosureRecommendationOverdue, ClosureRecommended, ClosureScope,
    ClusterDeclared, ContactFollowUpClosed, ContactsQuarantined, Event, FacilityClosureOrdered, FacilityReopened,
    IsolationStarted, PossibleClusterRaised, RecommendationDecision,
)
from shared.regions import local_zone

# ---------------------------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class ClusterRule:
    """A cluster: more than `more_than` confirmed cases at one plant, linked to each other (`CaseLink`), whose
    confirmation dates lie within `window_days`. A possible cluster: more than `possible_more_than` confirmed cases
    within the window that are not one linked cluster, for the task force to judge.

    Default more than 2 linked cases in 14 days: local health offices used "more than two linked positives"; no
    formal definition was found, hence configurable. "Linked": connected through links among the cases of the
    window (A–B and B–C link A to C). "Within 14 days": the first and last confirmation are at most 13 days apart
    (day 0 and day 13 cluster, day 0 and day 14 do not).
    """

    more_than: int = 2
    window_days: int = 14
    possible_more_than: int = 2

    def __post_init__(self) -> None:
        if self.more_than < 1 or self.possible_more_than < 1 or self.window_days < 1:
            raise ValueError("a cluster needs more than one case and a window of at least 1 day")

    @property
    def words(self) -> str:
        return f"more than {self.more_than} linked confirmed cases within {self.window_days} days"

    @property
    def span(self) -> timedelta:
        return timedelta(days=self.window_days - 1)

    def find(self, cases: Iterable[tuple[uuid.UUID, date]], links: Iterable[tuple[uuid.UUID, uuid.UUID]],
             around: Collection[uuid.UUID]) -> ClusterFinding | None:
        """The largest group of cases linked within one window that holds a case of `around` and is large enough.

        `cases` are the plant's unclustered cases (id, confirmation date); links to any other case are ignored.
        """
        pairs = list(links)
        best: list[tuple[uuid.UUID, date]] = []
        for inside in self._windows(cases):
            for group in _linked_groups(inside, pairs):
                if len(group) > len(best) and any(case_id in around for case_id, _ in group):
                    best = group
        return ClusterFinding.of(best) if len(best) > self.more_than else None

    def possible(self, cases: Iterable[tuple[uuid.UUID, date]], around: Collection[uuid.UUID],
                 raised: Collection[uuid.UUID]) -> ClusterFinding | None:
        """The largest window of unclustered cases holding a case of `around`, above the possible-cluster count,
        with a case not yet raised in an earlier possible cluster (`raised`): a group is raised once, and again
        only when a new case joins it."""
        best: list[tuple[uuid.UUID, date]] = []
        for inside in self._windows(cases):
            if len(inside) > len(best) and any(c in around for c, _ in inside) and any(
                    c not in raised for c, _ in inside):
                best = inside
        return ClusterFinding.of(best) if len(best) > self.possible_more_than else None

    def _windows(self, cases: Iterable[tuple[uuid.UUID, date]]) -> Iterator[list[tuple[uuid.UUID, date]]]:
        """Every window that starts on a case's date, with the cases inside it, in date order."""
        ordered = sorted(cases, key=lambda c: (c[1], str(c[0])))
        for first in sorted({day for _, day in ordered}):
            yield [c for c in ordered if first <= c[1] <= first + self.span]


def _linked_groups(cases: list[tuple[uuid.UUID, date]],
                   links: list[tuple[uuid.UUID, uuid.UUID]]) -> list[list[tuple[uuid.UUID, date]]]:
    """The connected groups of `cases` through the links between two of them (in date order within a group)."""
    parent = {case_id: case_id for case_id, _ in cases}

    def root(case_id: uuid.UUID) -> uuid.UUID:
        while parent[case_id] != case_id:
            case_id = parent[case_id]
        return case_id

    for a, b in links:
        if a in parent and b in parent:
            parent[root(a)] = root(b)
    groups: dict[uuid.UUID, list[tuple[uuid.UUID, date]]] = {}
    for case in cases:
        groups.setdefault(root(case[0]), []).append(case)
    return list(groups.values())


@dataclass(frozen=True)
class ClusterFinding:
    case_ids: list[uuid.UUID]
    first: date
    last: date

    @classmethod
    def of(cls, cases: list[tuple[uuid.UUID, date]]) -> ClusterFinding:
        return cls([c[0] for c in cases], min(c[1] for c in cases), max(c[1] for c in cases))


# The longest closure a task force may order on a recommendation (the contract's bound).
MAX_CLOSURE_DAYS = 60
# The most close contacts one case lists: far above the 15 a tracer aims for; more is a mass-testing event, which the
# health office runs outside a case's line list.
MAX_CONTACTS_PER_CASE = 1000

# Kepmenkes 328/2020: a room or line closes at least 24 h for disinfection; DKI Jakarta (31) and Maluku (81)
# require a 3×24 h workplace stop.
ROOM_CLOSURE_BY_PROVINCE = {"31": timedelta(hours=72), "81": timedelta(hours=72)}


@dataclass(frozen=True)
class IncidentPolicy:
    # Kepmenkes HK.01.07/MENKES/4641/2021: an asymptomatic confirmed case isolates 10 days.
    isolation_days: int = 10
    # Kepmenkes 4641/2021: a symptomatic case isolates 10 days plus at least 3 symptom-free days.
    symptom_free_days: int = 3
    # Kepmenkes 4641/2021: a close contact quarantines 14 days from the last exposure when not tested out …
    quarantine_days: int = 14
    # … or until a negative exit test taken on day 5 or later (entry test day 1, exit test day 5).
    quarantine_with_exit_test_days: int = 5
    # Kepmenkes 328/2020: contacts are traced 14 days back from the case's onset (or swab, without symptoms).
    trace_back_days: int = 14
    # Kepmenkes 4641/2021: at least 15 close contacts traced per confirmed case.
    contacts_per_case_target: int = 15
    # Kepmenkes 328/2020: close the room or line ≥ 24 h for disinfection, longer where a province rules so.
    room_closure: timedelta = timedelta(hours=24)
    room_closure_by_province: Mapping[str, timedelta] = field(default_factory=lambda: dict(ROOM_CLOSURE_BY_PROVINCE))
    # Menko Perekonomian, 16 Aug 2021: an industrial site with a cluster closes for 5 days (the recommended length).
    plant_closure: timedelta = timedelta(days=5)
    cluster: ClusterRule = field(default_factory=ClusterRule)
    # No regulation sets how fast the task force answers a recommendation: a day, as for an alert, by inference.
    recommendation_answer: timedelta = timedelta(hours=24)
    # Provinces that close a cluster's plant at once, by rule, instead of asking their task force (none by default).
    automatic_closure_provinces: frozenset[str] = frozenset()

    def isolation_ends_on(self, starts_on: date, symptomatic: bool, symptoms_resolved_on: date | None = None) -> date:
        """The first day out of isolation. Symptoms still present on day 10 push the end past their last day."""
        minimum = starts_on + timedelta(days=self.isolation_days)
        if not symptomatic:
            return minimum
        symptom_free_from = max(minimum, symptoms_resolved_on or minimum)
        return symptom_free_from + timedelta(days=self.symptom_free_days)

    def quarantine_ends_on(self, last_exposure_on: date, exit_test: ContactTest | None = None) -> date:
        """A contact's first day out of quarantine: 14 days after the last exposure, or the day of a negative exit
        test taken on day 5 or later, whichever comes first."""
        full = last_exposure_on + timedelta(days=self.quarantine_days)
        if exit_test is None or exit_test.result is not ContactTestResult.NEGATIVE:
            return full
        return min(full, max(self.exit_test_from(last_exposure_on), exit_test.tested_on))

    def exit_test_from(self, last_exposure_on: date) -> date:
        """The first day an exit test counts: day 5 after the last exposure."""
        return last_exposure_on + timedelta(days=self.quarantine_with_exit_test_days)

    def room_closure_in(self, province_code: str) -> timedelta:
        return self.room_closure_by_province.get(province_code, self.room_closure)

    def closes_automatically(self, province_code: str) -> bool:
        return province_code in self.automatic_closure_provinces


def isolation_counted_from(symptomatic: bool, symptom_onset_on: date | None, tested_on: date | None,
                           confirmed_on: date) -> date:
    """Kepmenkes 4641/2021: a symptomatic case isolates from symptom onset; one without symptoms from the swab (the
    confirmation day when the swab's day is not known)."""
    if symptomatic and symptom_onset_on is not None:
        return symptom_onset_on
    return tested_on or confirmed_on


# ---------------------------------------------------------------------------------------------- time zones


def start_of_day(day: date, zone: tzinfo) -> datetime:
    """A plant's day starts at its local midnight: that is when a day-counted period ends."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


# ---------------------------------------------------------------------------------------------- errors


class IncidentError(Exception):
    """What a request is refused for: a rule says no, or what it names does not exist. api.py maps each kind to
    its problem in one table."""


class NotFound(IncidentError, refusals.NotFound):
    """No such case, closure or plant, or none the caller may see."""


class InvalidCase(IncidentError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


class PlantNotMonitored(IncidentError):
    def __init__(self, facility_id: uuid.UUID) -> None:
        super().__init__(f"plant {facility_id} is no longer monitored: its permit was revoked")


class DuplicateCaseRef(IncidentError):
    def __init__(self, case_ref: str) -> None:
        super().__init__(f"case reference {case_ref!r} is already recorded at this plant")


class IsolationNotOver(IncidentError):
    def __init__(self, earliest: date) -> None:
        super().__init__(f"isolation lasts until {earliest.isoformat()}")
        self.earliest = earliest


class ClosureNotOver(IncidentError):
    def __init__(self, earliest: datetime) -> None:
        super().__init__(f"the closure period lasts until {earliest.isoformat()}")
        self.earliest = earliest


class IllegalClosureAction(IncidentError):
    def __init__(self, current: str, reason: str) -> None:
        super().__init__(reason)
        self.current = current


class InvalidLink(InvalidCase):
    """A link the rules refuse: to itself, to a case at another plant (or none), to a report's placeholder."""


class DuplicateLink(IncidentError):
    def __init__(self, case_id: uuid.UUID, linked_case_id: uuid.UUID) -> None:
        super().__init__(f"cases {case_id} and {linked_case_id} are already linked")


class InvalidDecision(InvalidCase):
    """A closure decision missing what it must say (a reason for a change or a refusal)."""


class ContactNotInQuarantine(IncidentError):
    """A contact who left quarantine (released or tested positive) takes no more tests or corrections."""

    def __init__(self, current: str) -> None:
        super().__init__(f"the contact is no longer in quarantine ({current})")
        self.current = current


class FollowUpClosed(IncidentError):
    def __init__(self) -> None:
        super().__init__("the follow-up of this case's contacts was closed by the health office")
        self.current = "closed"


class ContactsStillQuarantined(IncidentError):
    def __init__(self, quarantining: int, last_ends_on: date) -> None:
        super().__init__(f"{quarantining} contacts are still in quarantine, the last until {last_ends_on.isoformat()}")
        self.quarantining = quarantining
        self.last_ends_on = last_ends_on


class RecommendationDecided(IncidentError):
    def __init__(self, current: str) -> None:
        super().__init__(f"the recommendation was already decided ({current})")
        self.current = current


# ---------------------------------------------------------------------------------------------- values


class PersonalReference:
    """A reference that looks like a person's name, NIK or phone number is refused, whatever its characters.

    Checked before the reference's shape, so "Budi Santoso" is told why, not only that spaces are not allowed.
    The answer is in Bahasa Indonesia first, for the companies that type it, then English.
    """

    MESSAGE = ("Gunakan kode internal perusahaan, bukan nama, NIK atau nomor telepon / "
               "Use the company's internal code, not a name, NIK or phone number (e.g. C-2021-014, LAB/07/22)")
    # Letters (any script) only, two words or more, apart by spaces or the separators a name is written with in an
    # account name: "Budi Santoso", "Siti Nur Aisyah", "Budi.Santoso", "siti_nur". A code carries a number.
    NAME = re.compile(r"[^\W\d_]+(?:[\s._-]+[^\W\d_]+)+")
    SEPARATORS = re.compile(r"[\s._/()-]")
    # A NIK has 16 digits (written with or without separators).
    NIK = re.compile(r"[0-9]{16}")
    # An Indonesian phone number: +62 or 08, then 8 to 13 digits.
    PHONE = re.compile(r"(?:\+62|08)[0-9]{8,13}")
    # Ten or more digits in a row anywhere, separators ignored, is a NIK or phone number inside a longer text.
    LONG_NUMBER = re.compile(r"[0-9]{10,}")

    @classmethod
    def identifies_a_person(cls, reference: str) -> bool:
        if cls.NAME.fullmatch(reference.strip()):
            return True
        digits = cls.SEPARATORS.sub("", reference)
        return bool(cls.NIK.fullmatch(digits) or cls.PHONE.fullmatch(digits) or cls.LONG_NUMBER.search(digits))

    @classmethod
    def refuse(cls, reference: str) -> None:
        if cls.identifies_a_person(reference):
            raise InvalidCase("case_ref", cls.MESSAGE)


class CaseReference:
    """A company's pseudonymous label for a case: a short code, never personal data (`PersonalReference`)."""

    PATTERN = re.compile(CASE_REF_PATTERN)  # fullmatch it: `$` also matches before a final newline

    @classmethod
    def check(cls, case_ref: str) -> str:
        PersonalReference.refuse(case_ref)
        if not cls.PATTERN.fullmatch(case_ref):
            raise InvalidCase("case_ref", "1–40 letters, digits, '.', '_', '/' or '-', starting with a letter or digit")
        return case_ref


class FacilityStatus(StrEnum):
    OPEN = "open"
    ROOM_CLOSED = "room_closed"
    PLANT_CLOSED = "plant_closed"
    MONITORING = "monitoring"


class CaseStatus(StrEnum):
    ISOLATING = "isolating"
    CLOSED = "closed"


class ClosureStatus(StrEnum):
    ACTIVE = "active"
    REOPENED = "reopened"


class ContactStatus(StrEnum):
    QUARANTINING = "quarantining"
    RELEASED = "released"  # negative exit test, or the full quarantine served
    TESTED_POSITIVE = "tested_positive"  # an entry or exit test came back positive: a case of its own


class ContactTestResult(StrEnum):
    NEGATIVE = "negative"
    POSITIVE = "positive"


class ContactTestKind(StrEnum):
    ENTRY = "entry"  # day 1 of quarantine
    EXIT = "exit"  # day 5 or later


class Verification(StrEnum):
    """A case as the health office has (not yet) checked it."""

    UNVERIFIED = "unverified"
    CONFIRMED = "confirmed"
    CORRECTED = "corrected"


class RecommendationStatus(StrEnum):
    PENDING = "pending"
    ORDERED = "ordered"
    DECLINED = "declined"


class TimerKind(StrEnum):
    ISOLATION_END = "isolation_end"
    QUARANTINE_END = "quarantine_end"
    ROOM_CLOSURE_END = "room_closure_end"
    RECOMMENDATION_ANSWER = "recommendation_answer"  # a closure recommendation's answer is due


@dataclass(frozen=True)
class Timer:
    """Durable: stored with the state change that sets it, fired once by the sweep when due."""

    timer_id: uuid.UUID
    kind: TimerKind
    facility_id: uuid.UUID
    subject_id: uuid.UUID  # the case (isolation), the contact (quarantine), the closure or the recommendation
    due_at: datetime
    attempts: int = 0  # failed attempts to fire it so far


@dataclass(frozen=True)
class TimerRetry(Backoff):
    """When a timer whose firing failed is tried again: later after each failure, never later than `longest`.

    A timer is never given up: an isolation must end some day. Its retries wait behind it, so the timers due after
    a failing one fire on time.
    """

    first: timedelta = timedelta(seconds=10)
    longest: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class Actor:
    sub: str
    role: str


SYSTEM = Actor("incidents", "system")
# The roles that act for a company (its own plants): they clear only the closures the company ordered.
COMPANY_ACTORS = frozenset({"company", "estate"})


# ---------------------------------------------------------------------------------------------- entities


@dataclass(frozen=True)
class Case:
    case_id: uuid.UUID
    facility_id: uuid.UUID
    case_ref: str
    confirmed_on: date
    symptomatic: bool
    close_contacts: int  # contacts on its line list (`Contact`)
    source: CaseSource
    tested_on: date | None
    isolation_starts_on: date
    isolation_ends_on: date
    status: CaseStatus
    recorded_by: Actor
    cluster_id: uuid.UUID | None = None
    closed_on: date | None = None
    closed_by: Actor | None = None
    report_id: uuid.UUID | None = None
    # A report's placeholder: the report period (plant's local dates, both included) it was counted in.
    report_period: tuple[date, date] | None = None
    # Who entered the real case that claimed this placeholder (PlaceholderClaim), and when.
    claimed_by: Actor | None = None
    claimed_at: datetime | None = None
    symptom_onset_on: date | None = None
    verification: Verification = Verification.UNVERIFIED
    verified_by: Actor | None = None
    verified_at: datetime | None = None
    follow_up_closed_by: Actor | None = None
    follow_up_closed_at: datetime | None = None

    @property
    def public_ref(self) -> str:
        """How the case is named outside this service (events, closure reasons, hence alerts): the platform's
        own id. The company's `case_ref` is shown only to those who may read the case."""
        return str(self.case_id)

    @property
    def is_placeholder(self) -> bool:
        """A case known only from a report's positive count, not yet matched by a case a company entered."""
        return self.source is CaseSource.REPORT and self.claimed_by is None


@dataclass(frozen=True)
class ContactTest:
    tested_on: date
    result: ContactTestResult


@dataclass(frozen=True)
class Contact:
    """One close contact of a case, on its line list: a platform-issued id and a number within the case, never a
    name. Quarantined from its own last exposure, until its own end (`IncidentPolicy.quarantine_ends_on`)."""

    contact_id: uuid.UUID
    case_id: uuid.UUID
    facility_id: uuid.UUID
    number: int  # 1, 2, … within its case
    last_exposure_on: date
    exposure_assumed: bool  # entered as a count: exposure taken as the case's isolation start until corrected
    quarantine_ends_on: date  # the first day out
    status: ContactStatus
    recorded_by: Actor
    recorded_at: datetime
    entry_test: ContactTest | None = None
    exit_test: ContactTest | None = None
    left_on: date | None = None  # the day it left quarantine (released or tested positive)
    became_case_id: uuid.UUID | None = None  # the case it became, once entered


@dataclass(frozen=True)
class NewContact:
    last_exposure_on: date
    entry_test: ContactTest | None = None
    exposure_assumed: bool = False


@dataclass(frozen=True)
class CaseCorrection:
    """The facts of a case the health office corrects; None: as entered."""

    confirmed_on: date | None = None
    tested_on: date | None = None
    symptomatic: bool | None = None
    symptom_onset_on: date | None = None


@dataclass(frozen=True)
class Closure:
    closure_id: uuid.UUID
    facility_id: uuid.UUID
    scope: ClosureScope
    reason: str
    starts_at: datetime
    ends_at: datetime
    status: ClosureStatus = ClosureStatus.ACTIVE
    cluster_id: uuid.UUID | None = None
    reopened_at: datetime | None = None
    cleared_by: Actor | None = None
    ordered_by: ClosureAuthority = ClosureAuthority.RULE
    ordered_by_actor: str | None = None  # the account, when a person ordered it
    recommendation_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Cluster:
    cluster_id: uuid.UUID
    facility_id: uuid.UUID
    case_ids: list[uuid.UUID]
    first_confirmed_on: date
    last_confirmed_on: date
    declared_at: datetime
    rule: str | None = None  # the rule that declared it, in words


@dataclass(frozen=True)
class CaseLink:
    """Two cases of one plant that are one chain of transmission, as the company or the task force traced it."""

    case_id: uuid.UUID
    linked_case_id: uuid.UUID
    facility_id: uuid.UUID
    kind: CaseLinkKind
    linked_by: Actor
    linked_at: datetime


@dataclass(frozen=True)
class PossibleCluster:
    """Unlinked cases above the possible-cluster count, raised to the task force once (`ClusterRule.possible`)."""

    possible_cluster_id: uuid.UUID
    facility_id: uuid.UUID
    case_ids: list[uuid.UUID]
    first_confirmed_on: date
    last_confirmed_on: date
    raised_at: datetime


@dataclass(frozen=True)
class Recommendation:
    """A cluster's closure recommended to the regency task force, with its evidence, until a person decides it."""

    recommendation_id: uuid.UUID
    facility_id: uuid.UUID
    cluster_id: uuid.UUID
    scope: ClosureScope
    days: int
    rule: str
    case_count: int
    first_confirmed_on: date
    last_confirmed_on: date
    recommended_at: datetime
    answer_by: datetime
    status: RecommendationStatus = RecommendationStatus.PENDING
    overdue_at: datetime | None = None
    decided_at: datetime | None = None
    decided_by: Actor | None = None
    closure_id: uuid.UUID | None = None
    ordered_scope: ClosureScope | None = None
    ordered_days: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class NewCase:
    """What a company (or a report's positive count) tells us about one case."""

    case_ref: str
    confirmed_on: date
    symptomatic: bool
    close_contacts: int  # how many, when `contacts` does not list them
    source: CaseSource
    tested_on: date | None = None
    report_id: uuid.UUID | None = None
    report_period: tuple[date, date] | None = None
    symptom_onset_on: date | None = None
    contacts: tuple[NewContact, ...] | None = None  # the line list, when the company has it
    from_contact_id: uuid.UUID | None = None  # the close contact of another case this case was

    @property
    def isolation_starts_on(self) -> date:
        """The first day of its isolation (`isolation_counted_from`)."""
        return isolation_counted_from(self.symptomatic, self.symptom_onset_on, self.tested_on, self.confirmed_on)

    def contact_list(self) -> tuple[NewContact, ...]:
        """The contacts as listed, or as many as counted, each exposed (until corrected) the day the case began to
        isolate: the last day it could have been among them."""
        if self.contacts is not None:
            return self.contacts
        return (NewContact(self.isolation_starts_on, exposure_assumed=True),) * self.close_contacts


@dataclass
class Outcome:
    """What a decision changed: rows to save, events to publish (in order), timers to set.

    `cancelled_timers` (kind, subject) are pending timers cancelled before `timers` are set: a claim or a
    correction re-times a case's isolation, a test or a corrected exposure a contact's quarantine.
    """

    plant: Plant
    cases: list[Case] = field(default_factory=list)
    closures: list[Closure] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    links: list[CaseLink] = field(default_factory=list)
    possible_clusters: list[PossibleCluster] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    cancelled_timers: list[tuple[TimerKind, uuid.UUID]] = field(default_factory=list)


@dataclass(frozen=True)
class Plant:
    """A plant under monitoring, as far as incidents needs it: where it is, whose it is, what is active."""

    facility_id: uuid.UUID
    permit_id: uuid.UUID
    nib: str | None
    province_code: str
    regency_code: str
    workforce_total: int | None
    monitored: bool = True
    active_isolations: int = 0
    active_quarantines: int = 0
    active_room_closures: int = 0
    plant_closure: Closure | None = None

    @property
    def zone(self) -> tzinfo:
        return local_zone(self.regency_code)

    def today(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()

    @property
    def status(self) -> FacilityStatus:
        if self.plant_closure is not None:
            return FacilityStatus.PLANT_CLOSED
        if self.active_room_closures:
            return FacilityStatus.ROOM_CLOSED
        if self.active_isolations or self.active_quarantines:
            return FacilityStatus.MONITORING
        return FacilityStatus.OPEN

    def _where(self) -> dict:
        return dict(facility_id=self.facility_id, province_code=self.province_code, regency_code=self.regency_code)

    # -- a case is confirmed -----------------------------------------------------------------------

    def validate(self, new: NewCase, now: datetime, policy: IncidentPolicy) -> None:
        """What a company tells us directly is checked; a report's positives were checked by reports."""
        if not self.monitored:
            raise PlantNotMonitored(self.facility_id)
        if new.source is CaseSource.REPORT:
            return
        CaseReference.check(new.case_ref)
        self._check_facts(new.confirmed_on, new.tested_on, new.symptomatic, new.symptom_onset_on, now, policy)
        contacts = new.contact_list()
        if len(contacts) > MAX_CONTACTS_PER_CASE:
            raise InvalidCase("close_contacts", f"at most {MAX_CONTACTS_PER_CASE} per case")
        if self.workforce_total is not None and len(contacts) > self.workforce_total:
            raise InvalidCase("close_contacts", f"exceeds the plant's workforce ({self.workforce_total})")
        if new.contacts is not None:
            for n, contact in enumerate(new.contacts):
                self._check_contact(contact, new.isolation_starts_on,
                                    policy.isolation_ends_on(new.isolation_starts_on, new.symptomatic), now, policy,
                                    where=f"contacts[{n}].")

    def _check_facts(self, confirmed_on: date, tested_on: date | None, symptomatic: bool,
                     symptom_onset_on: date | None, now: datetime, policy: IncidentPolicy) -> None:
        today = self.today(now)
        if confirmed_on > today:
            raise InvalidCase("confirmed_on", f"is after today ({today.isoformat()}) at the plant")
        if tested_on is not None and tested_on > confirmed_on:
            raise InvalidCase("tested_on", "a case is confirmed on or after its test date")
        if not symptomatic:
            if symptom_onset_on is not None:
                raise InvalidCase("symptom_onset_on", "Hanya untuk kasus bergejala / Only for a symptomatic case")
            return
        if symptom_onset_on is None:
            raise InvalidCase("symptom_onset_on", "Wajib untuk kasus bergejala: isolasi dihitung sejak gejala "
                                                  "pertama / Required for a symptomatic case: isolation counts "
                                                  "from symptom onset (Kepmenkes 4641/2021)")
        earliest = confirmed_on - timedelta(days=policy.trace_back_days)
        if not earliest <= symptom_onset_on <= today:
            raise InvalidCase("symptom_onset_on", f"must lie between {earliest.isoformat()} ({policy.trace_back_days}"
                                                  f" days before confirmation) and today ({today.isoformat()})")

    def _check_contact(self, contact: NewContact, reference_on: date, isolation_ends_on: date, now: datetime,
                       policy: IncidentPolicy, where: str = "") -> None:
        """A contact's last exposure lies within the trace-back before the case's onset (or swab) and before its
        isolation ended; its entry test on or after that exposure; nothing after today."""
        today = self.today(now)
        earliest = reference_on - timedelta(days=policy.trace_back_days)
        latest = min(today, isolation_ends_on - timedelta(days=1))
        if not earliest <= contact.last_exposure_on <= latest:
            raise InvalidCase(f"{where}last_exposure_on",
                              f"Paparan terakhir antara {earliest.isoformat()} dan {latest.isoformat()} / The last "
                              f"exposure lies between {earliest.isoformat()} ({policy.trace_back_days} days before "
                              f"the case's onset or swab) and {latest.isoformat()} (today, within its isolation)")
        if contact.entry_test is not None:
            self._check_test(contact.entry_test, ContactTestKind.ENTRY, contact.last_exposure_on, today, policy,
                             f"{where}entry_test.tested_on")

    @staticmethod
    def _check_test(test: ContactTest, kind: ContactTestKind, last_exposure_on: date, today: date,
                    policy: IncidentPolicy,
                    field_name: str) -> None:
        earliest = policy.exit_test_from(last_exposure_on) if kind is ContactTestKind.EXIT else last_exposure_on
        if test.tested_on > today:
            raise InvalidCase(field_name, f"is after today ({today.isoformat()}) at the plant")
        if test.tested_on < earliest:
            raise InvalidCase(field_name, (
                f"Tes keluar diambil hari ke-{policy.quarantine_with_exit_test_days} karantina atau sesudahnya, mulai "
                f"{earliest.isoformat()} / The exit test is taken on day {policy.quarantine_with_exit_test_days} of "
                f"quarantine or later, from {earliest.isoformat()}") if kind is ContactTestKind.EXIT else (
                f"Tes masuk diambil sesudah paparan terakhir ({earliest.isoformat()}) / The entry test is taken on or "
                f"after the last exposure ({earliest.isoformat()})"))

    def detect_case(self, new: NewCase, *, unclustered: list[tuple[uuid.UUID, date]], now: datetime,
                    policy: IncidentPolicy, recorded_by: Actor, raised: Collection[uuid.UUID] = frozenset()) -> Outcome:
        """A confirmed case: isolate it, quarantine its contacts, close its room, and look for a possible cluster.

        `unclustered` are the plant's earlier cases not yet part of a cluster (their id and confirmation
        date): a case belongs to at most one cluster. A new case has no links yet, so it declares no cluster
        (`link_cases` does); with the unclustered cases of its window it may raise a possible cluster, once
        for the same cases (`raised`: those already raised in one).
        """
        self.validate(new, now, policy)
        starts_on = new.isolation_starts_on
        case = Case(
            case_id=uuid.uuid4(), facility_id=self.facility_id, case_ref=new.case_ref,
            confirmed_on=new.confirmed_on, symptomatic=new.symptomatic, close_contacts=0,
            source=new.source, tested_on=new.tested_on, isolation_starts_on=starts_on,
            isolation_ends_on=policy.isolation_ends_on(starts_on, new.symptomatic),
            status=CaseStatus.ISOLATING, recorded_by=recorded_by,
            report_id=new.report_id, report_period=new.report_period, symptom_onset_on=new.symptom_onset_on,
        )
        room = Closure(uuid.uuid4(), self.facility_id, ClosureScope.ROOM,
                       f"disinfection after case {case.public_ref}", now,
                       now + policy.room_closure_in(self.province_code))
        plant = replace(self, active_isolations=self.active_isolations + 1,
                        active_room_closures=self.active_room_closures + 1)
        outcome = Outcome(plant, closures=[room])
        contacts = new.contact_list()
        outcome.events.append(CaseDetected(**self._where(), case_id=case.case_id, case_ref=case.public_ref,
                                           confirmed_on=case.confirmed_on, symptomatic=case.symptomatic,
                                           close_contacts=len(contacts), source=case.source))
        self._isolate(outcome, case)
        case = self._quarantine_contacts(outcome, case, contacts, now, policy, recorded_by)
        outcome.events.append(self._closure_ordered(room))
        outcome.timers.append(self._timer(TimerKind.ROOM_CLOSURE_END, room.closure_id, room.ends_at))

        if self.plant_closure is not None:
            case = replace(case, cluster_id=self.plant_closure.cluster_id)
            self._extend_closure(outcome, self.plant_closure, now, policy)
        else:
            self._raise_possible_cluster(outcome, case, unclustered, raised, now, policy)
        outcome.cases.insert(0, case)
        return outcome

    def enter_case(self, new: NewCase, *, placeholders: Iterable[Case], unclustered: list[tuple[uuid.UUID, date]],
                   now: datetime, policy: IncidentPolicy, by: Actor,
                   raised: Collection[uuid.UUID] = frozenset()) -> Outcome:
        """A case a company or health office enters: it claims a report's placeholder that counted it already
        (`PlaceholderClaim`), or else it is a new case."""
        self.validate(new, now, policy)
        placeholder = PlaceholderClaim.pick(new, placeholders)
        if placeholder is None:
            return self.detect_case(new, unclustered=unclustered, now=now, policy=policy, recorded_by=by,
                                    raised=raised)
        return self.claim(placeholder, new, unclustered=unclustered, now=now, policy=policy, by=by, raised=raised)

    def claim(self, placeholder: Case, new: NewCase, *, unclustered: list[tuple[uuid.UUID, date]], now: datetime,
              policy: IncidentPolicy, by: Actor, raised: Collection[uuid.UUID] = frozenset()) -> Outcome:
        """The real case takes over a placeholder: same case, now with the company's reference and dates.

        No second `CaseDetected`: the case was detected (and alerted on) when the report counted it, and it is
        the same person. Its isolation is re-timed from the real dates (`IsolationStarted` again, same
        `case_id`, as a correction; the old timer is cancelled) unless it is already closed — a closed
        isolation is a fact and stays as it ran. Its contacts are new knowledge: `ContactsQuarantined` as for
        any case. The room was closed when the report came in, so no second room closure. Possible-cluster
        detection sees the same case id at its real date, never a second case; a case already in a cluster stays
        there.
        """
        case = replace(placeholder, case_ref=new.case_ref, confirmed_on=new.confirmed_on,
                       symptomatic=new.symptomatic, tested_on=new.tested_on, symptom_onset_on=new.symptom_onset_on,
                       claimed_by=by, claimed_at=now)
        outcome = Outcome(self)
        if case.status is CaseStatus.ISOLATING:
            case = self._retime_isolation(outcome, case, policy)
        case = self._quarantine_contacts(outcome, case, new.contact_list(), now, policy, by)
        if case.cluster_id is None and self.plant_closure is None:
            self._raise_possible_cluster(outcome, case, unclustered, raised, now, policy)
        outcome.cases.insert(0, case)
        return outcome

    def _retime_isolation(self, outcome: Outcome, case: Case, policy: IncidentPolicy) -> Case:
        """An isolating case's isolation from its facts as now known; a moved period is announced again
        (`IsolationStarted`, same case) and its timer set anew."""
        starts_on, ends_on = self._isolation_of(case, policy)
        retimed = replace(case, isolation_starts_on=starts_on, isolation_ends_on=ends_on)
        outcome.cancelled_timers.append((TimerKind.ISOLATION_END, case.case_id))
        self._isolate(outcome, retimed)
        return retimed

    @staticmethod
    def _isolation_of(case: Case, policy: IncidentPolicy) -> tuple[date, date]:
        """Its isolation from its facts (`isolation_counted_from`)."""
        starts_on = isolation_counted_from(case.symptomatic, case.symptom_onset_on, case.tested_on, case.confirmed_on)
        return starts_on, policy.isolation_ends_on(starts_on, case.symptomatic)

    def _isolate(self, outcome: Outcome, case: Case) -> None:
        outcome.events.append(IsolationStarted(**self._where(), case_id=case.case_id,
                                               starts_on=case.isolation_starts_on, ends_on=case.isolation_ends_on))
        outcome.timers.append(self._timer(TimerKind.ISOLATION_END, case.case_id,
                                          start_of_day(case.isolation_ends_on, self.zone)))

    # -- close contacts ----------------------------------------------------------------------------

    def _quarantine_contacts(self, outcome: Outcome, case: Case, contacts: Iterable[NewContact], now: datetime,
                             policy: IncidentPolicy, by: Actor) -> Case:
        """Contacts join the case's line list, numbered after those it has. Each quarantines from its own last
        exposure, with a timer for its own end; one whose entry test was positive is a case of its own and does not
        quarantine; one whose quarantine already ended is listed as released. The case counts them."""
        today = self.today(now)
        added: list[Contact] = []
        for new in contacts:
            ends_on = policy.quarantine_ends_on(new.last_exposure_on)
            contact = Contact(uuid.uuid4(), case.case_id, self.facility_id, case.close_contacts + len(added) + 1,
                              new.last_exposure_on, new.exposure_assumed, ends_on, ContactStatus.QUARANTINING, by,
                              now, entry_test=new.entry_test)
            if new.entry_test is not None and new.entry_test.result is ContactTestResult.POSITIVE:
                contact = replace(contact, status=ContactStatus.TESTED_POSITIVE, left_on=new.entry_test.tested_on)
            elif ends_on <= today:
                contact = replace(contact, status=ContactStatus.RELEASED, left_on=ends_on)
            added.append(contact)
        quarantining = [c for c in added if c.status is ContactStatus.QUARANTINING]
        outcome.contacts += added
        outcome.plant = replace(outcome.plant, active_quarantines=outcome.plant.active_quarantines + len(quarantining))
        for contact in quarantining:
            outcome.timers.append(self._timer(TimerKind.QUARANTINE_END, contact.contact_id,
                                              start_of_day(contact.quarantine_ends_on, self.zone)))
        if quarantining:
            outcome.events.append(ContactsQuarantined(
                **self._where(), case_id=case.case_id, contacts=len(quarantining),
                starts_on=min(c.last_exposure_on for c in quarantining),
                ends_on=max(c.quarantine_ends_on for c in quarantining)))
        return replace(case, close_contacts=case.close_contacts + len(added))

    def add_contacts(self, case: Case, contacts: list[NewContact], *, now: datetime, policy: IncidentPolicy,
                     by: Actor) -> Outcome:
        """More close contacts of a case, as tracing finds them, until the health office closes the follow-up."""
        self._may_trace(case)
        if case.close_contacts + len(contacts) > MAX_CONTACTS_PER_CASE:
            raise InvalidCase("contacts", f"a case lists at most {MAX_CONTACTS_PER_CASE} contacts; it has "
                                          f"{case.close_contacts}")
        for n, contact in enumerate(contacts):
            self._check_contact(contact, case.isolation_starts_on, case.isolation_ends_on, now, policy,
                                where=f"contacts[{n}].")
        outcome = Outcome(self)
        outcome.cases.append(self._quarantine_contacts(outcome, case, contacts, now, policy, by))
        return outcome

    @staticmethod
    def _may_trace(case: Case) -> None:
        if case.is_placeholder:
            raise InvalidCase("case_id", "Positif dari laporan dilacak setelah perusahaan mencatat kasusnya "
                                         "(POST /cases) / A report's positive is traced once the company has entered "
                                         "its case (POST /cases)")
        if case.follow_up_closed_at is not None:
            raise FollowUpClosed()

    def record_test(self, case: Case, contact: Contact, kind: ContactTestKind, test: ContactTest, *, now: datetime,
                    policy: IncidentPolicy) -> Outcome:
        """A contact's entry or exit test. Positive: a case of its own, out of quarantine. A negative exit test on
        day 5 or later releases it that day."""
        self._may_trace(case)
        self._quarantining(contact)
        recorded = contact.entry_test if kind is ContactTestKind.ENTRY else contact.exit_test
        if recorded is not None:
            raise InvalidCase("kind", f"Tes {kind.value} sudah dicatat / The {kind.value} test is already recorded")
        self._check_test(test, kind, contact.last_exposure_on, self.today(now), policy, "tested_on")
        entry = contact.entry_test
        if kind is ContactTestKind.EXIT and entry is not None and test.tested_on < entry.tested_on:
            raise InvalidCase("tested_on", "the exit test is taken on or after the entry test")
        if kind is ContactTestKind.ENTRY and contact.exit_test is not None:
            raise InvalidCase("kind", "the exit test is recorded: an entry test comes before it")
        tested = (replace(contact, entry_test=test) if kind is ContactTestKind.ENTRY
                  else replace(contact, exit_test=test))
        if test.result is ContactTestResult.POSITIVE:
            return self._leave_quarantine(tested, ContactStatus.TESTED_POSITIVE, test.tested_on)
        if kind is ContactTestKind.EXIT:
            released_on = policy.quarantine_ends_on(contact.last_exposure_on, test)
            return self._leave_quarantine(replace(tested, quarantine_ends_on=released_on), ContactStatus.RELEASED,
                                          released_on)
        return Outcome(self, contacts=[tested])

    def correct_exposure(self, case: Case, contact: Contact, last_exposure_on: date, *, now: datetime,
                         policy: IncidentPolicy) -> Outcome:
        """The contact's last exposure as traced (an assumed one corrected): its quarantine counts from it."""
        self._may_trace(case)
        self._quarantining(contact)
        corrected = NewContact(last_exposure_on, contact.entry_test)
        self._check_contact(corrected, case.isolation_starts_on, case.isolation_ends_on, now, policy)
        ends_on = policy.quarantine_ends_on(last_exposure_on)
        moved = replace(contact, last_exposure_on=last_exposure_on, exposure_assumed=False, quarantine_ends_on=ends_on)
        if ends_on <= self.today(now):
            return self._leave_quarantine(moved, ContactStatus.RELEASED, ends_on)
        outcome = Outcome(self, contacts=[moved])
        outcome.cancelled_timers.append((TimerKind.QUARANTINE_END, contact.contact_id))
        outcome.timers.append(self._timer(TimerKind.QUARANTINE_END, contact.contact_id,
                                          start_of_day(ends_on, self.zone)))
        return outcome

    def contact_became_case(self, contact: Contact, case: Case, *, now: datetime) -> Outcome:
        """A contact entered as a case of its own (`NewCase.from_contact_id`): out of quarantine if still in it,
        and the two cases are then linked (`CaseLinkKind.NAMED_CONTACT`)."""
        if contact.facility_id != self.facility_id:
            raise InvalidCase("from_contact_id", "Tidak ada kontak itu di pabrik ini / No such contact at this plant")
        if contact.became_case_id is not None:
            raise InvalidCase("from_contact_id", f"the contact already became case {contact.became_case_id}")
        became = replace(contact, became_case_id=case.case_id)
        if contact.status is ContactStatus.QUARANTINING:
            return self._leave_quarantine(became, ContactStatus.TESTED_POSITIVE,
                                          min(case.confirmed_on, self.today(now)))
        if contact.status is ContactStatus.RELEASED:
            became = replace(became, status=ContactStatus.TESTED_POSITIVE)
        return Outcome(self, contacts=[became])

    @staticmethod
    def _quarantining(contact: Contact) -> None:
        if contact.status is not ContactStatus.QUARANTINING:
            raise ContactNotInQuarantine(contact.status.value)

    def _leave_quarantine(self, contact: Contact, status: ContactStatus, on: date) -> Outcome:
        left = replace(contact, status=status, left_on=on)
        outcome = Outcome(replace(self, active_quarantines=max(0, self.active_quarantines - 1)), contacts=[left])
        outcome.cancelled_timers.append((TimerKind.QUARANTINE_END, contact.contact_id))
        return outcome

    def end_quarantine(self, contact: Contact | None, due_at: datetime) -> Outcome:
        """A contact's quarantine end is due: released, unless a test or a correction moved it since (the timer
        no longer matches its end) or it already left. A timer of a case's whole quarantine, from before contacts
        had their own (`contact` None), only counts down."""
        if contact is None:
            return Outcome(replace(self, active_quarantines=max(0, self.active_quarantines - 1)))
        if (contact.status is not ContactStatus.QUARANTINING
                or due_at != start_of_day(contact.quarantine_ends_on, self.zone)):
            return Outcome(self)
        return self._leave_quarantine(contact, ContactStatus.RELEASED, contact.quarantine_ends_on)

    def close_follow_up(self, case: Case, contacts: Collection[Contact], *, now: datetime, by: Actor) -> Outcome:
        """The health office closes the follow-up of a case's contacts, once none is in quarantine any more."""
        self._may_trace(case)
        quarantining = [c for c in contacts if c.status is ContactStatus.QUARANTINING]
        if quarantining:
            raise ContactsStillQuarantined(len(quarantining), max(c.quarantine_ends_on for c in quarantining))
        closed = replace(case, follow_up_closed_at=now, follow_up_closed_by=by)
        positive = sum(c.status is ContactStatus.TESTED_POSITIVE for c in contacts)
        return Outcome(self, cases=[closed], events=[ContactFollowUpClosed(
            **self._where(), case_id=case.case_id, contacts=len(contacts), released=len(contacts) - positive,
            tested_positive=positive, closed_by_role=by.role)])

    # -- the health office checks a case -----------------------------------------------------------

    def verify_case(self, case: Case, verdict: CaseVerdict, correction: CaseCorrection, reason: str | None, *,
                    now: datetime, policy: IncidentPolicy, by: Actor) -> Outcome:
        """Confirm a case as entered, or correct its dates or symptoms (saying why). An isolating case's isolation
        is re-timed from the corrected facts; a closed one's stays as it ran. A correction does not move the case
        between clusters: a health office that finds a cluster wrong says so to the task force."""
        if case.is_placeholder:
            raise InvalidCase("case_id", "Positif dari laporan diverifikasi setelah perusahaan mencatat kasusnya / "
                                         "A report's positive is verified once the company has entered its case")
        if verdict is CaseVerdict.CONFIRMED:
            if correction != CaseCorrection():
                raise InvalidDecision("corrections", "a confirmation corrects nothing: use the verdict corrected")
            verified = replace(case, verification=Verification.CONFIRMED, verified_by=by, verified_at=now)
            return Outcome(self, cases=[verified], events=[CaseVerified(
                **self._where(), case_id=case.case_id, verdict=verdict, verified_by_role=by.role)])
        if not (reason or "").strip():
            raise InvalidDecision("reason", "Sebutkan alasan koreksi / Give the reason for the correction")
        symptomatic = case.symptomatic if correction.symptomatic is None else correction.symptomatic
        onset = (None if not symptomatic
                 else correction.symptom_onset_on if correction.symptom_onset_on is not None else case.symptom_onset_on)
        corrected = replace(case, confirmed_on=correction.confirmed_on or case.confirmed_on,
                            tested_on=correction.tested_on or case.tested_on, symptomatic=symptomatic,
                            symptom_onset_on=onset, verification=Verification.CORRECTED, verified_by=by,
                            verified_at=now)
        changed = [CaseCorrectable(name) for name in vars(correction)
                   if getattr(corrected, name) != getattr(case, name)]
        if not changed:
            raise InvalidDecision("corrections", "Tidak ada yang berubah / Nothing differs from the case as entered")
        self._check_facts(corrected.confirmed_on, corrected.tested_on, corrected.symptomatic,
                          corrected.symptom_onset_on, now, policy)
        outcome = Outcome(self)
        outcome.events.append(CaseVerified(**self._where(), case_id=case.case_id, verdict=verdict, corrected=changed,
                                           reason=reason, verified_by_role=by.role))
        if (corrected.status is CaseStatus.ISOLATING
                and self._isolation_of(corrected, policy) != (case.isolation_starts_on, case.isolation_ends_on)):
            corrected = self._retime_isolation(outcome, corrected, policy)
        outcome.cases.append(corrected)
        return outcome

    def _raise_possible_cluster(self, outcome: Outcome, case: Case, unclustered: list[tuple[uuid.UUID, date]],
                                raised: Collection[uuid.UUID], now: datetime, policy: IncidentPolicy) -> None:
        cases = [c for c in unclustered if c[0] != case.case_id] + [(case.case_id, case.confirmed_on)]
        finding = policy.cluster.possible(cases, around={case.case_id}, raised=raised)
        if finding is None:
            return
        outcome.possible_clusters.append(PossibleCluster(uuid.uuid4(), self.facility_id, finding.case_ids,
                                                         finding.first, finding.last, now))
        outcome.events.append(PossibleClusterRaised(**self._where(), case_count=len(finding.case_ids),
                                                    window_days=policy.cluster.window_days,
                                                    first_confirmed_on=finding.first, last_confirmed_on=finding.last))

    # -- cases are linked --------------------------------------------------------------------------

    def link_cases(self, case: Case, other: Case, kind: CaseLinkKind, *, links: Collection[tuple[uuid.UUID, uuid.UUID]],
                   unclustered: list[tuple[uuid.UUID, date]], now: datetime, policy: IncidentPolicy,
                   by: Actor) -> Outcome:
        """Two cases of this plant are one chain of transmission. The link may complete a cluster: with the
        plant's other links (`links`), its unclustered cases linked to each other within the window are then more
        than the rule's count (`ClusterRule.find`). During a plant closure, its cases already belong to it."""
        if other.case_id == case.case_id:
            raise InvalidLink("linked_case_id", "Kasus tidak dapat ditautkan ke dirinya sendiri / "
                                                "A case cannot be linked to itself")
        if other.facility_id != self.facility_id:
            raise InvalidLink("linked_case_id", "Tidak ada kasus itu di pabrik ini / No such case at this plant")
        for linked, field_name in ((case, "case_id"), (other, "linked_case_id")):
            if linked.is_placeholder:
                raise InvalidLink(field_name, "Positif dari laporan ditautkan setelah perusahaan mencatat kasusnya "
                                              "(POST /cases) / A report's positive is linked once the company has "
                                              "entered its case (POST /cases)")
        pair = {case.case_id, other.case_id}
        if any({a, b} == pair for a, b in links):
            raise DuplicateLink(case.case_id, other.case_id)
        link = CaseLink(case.case_id, other.case_id, self.facility_id, kind, by, now)
        outcome = Outcome(self, links=[link])
        if self.plant_closure is None:
            finding = policy.cluster.find(unclustered, [*links, (case.case_id, other.case_id)], around=pair)
            if finding is not None:
                self._declare_cluster(outcome, finding, now, policy)
        return outcome

    # -- a cluster: recommended, then ordered or declined ------------------------------------------

    def _declare_cluster(self, outcome: Outcome, finding: ClusterFinding, now: datetime,
                         policy: IncidentPolicy) -> None:
        """A cluster is declared and its plant's closure recommended to the task force, or, in a province that
        closes automatically, ordered at once by rule (the recommendation recorded as so ordered)."""
        rule = policy.cluster.words
        cluster = Cluster(uuid.uuid4(), self.facility_id, finding.case_ids, finding.first, finding.last, now, rule)
        recommendation = Recommendation(
            uuid.uuid4(), self.facility_id, cluster.cluster_id, ClosureScope.PLANT, policy.plant_closure.days, rule,
            len(finding.case_ids), finding.first, finding.last, now, now + policy.recommendation_answer)
        outcome.clusters.append(cluster)
        outcome.events += [
            ClusterDeclared(**self._where(), cluster_id=cluster.cluster_id, case_count=len(finding.case_ids),
                            window_days=policy.cluster.window_days, first_confirmed_on=finding.first,
                            last_confirmed_on=finding.last, rule=rule),
            ClosureRecommended(**self._where(), recommendation_id=recommendation.recommendation_id,
                               cluster_id=cluster.cluster_id, scope=recommendation.scope, days=recommendation.days,
                               rule=rule, case_count=recommendation.case_count, first_confirmed_on=finding.first,
                               last_confirmed_on=finding.last, answer_by=recommendation.answer_by),
        ]
        if policy.closes_automatically(self.province_code):
            self._order(outcome, recommendation, recommendation.scope, recommendation.days, None, now, SYSTEM,
                        ClosureAuthority.RULE)
            return
        outcome.recommendations.append(recommendation)
        outcome.timers.append(self._timer(TimerKind.RECOMMENDATION_ANSWER, recommendation.recommendation_id,
                                          recommendation.answer_by))

    def order_closure(self, recommendation: Recommendation, *, scope: ClosureScope | None, days: int | None,
                      reason: str | None, now: datetime, by: Actor) -> Outcome:
        """The task force orders the recommended closure, as recommended or with its scope or length changed
        (then saying why)."""
        self._undecided(recommendation)
        scope = scope or recommendation.scope
        days = days or recommendation.days
        if not 1 <= days <= MAX_CLOSURE_DAYS:
            raise InvalidDecision("days", f"1–{MAX_CLOSURE_DAYS} hari / days")
        if (scope, days) != (recommendation.scope, recommendation.days) and not (reason or "").strip():
            raise InvalidDecision("reason", "Sebutkan alasan mengubah cakupan atau lama penutupan / "
                                            "Give the reason for changing the scope or length of the closure")
        outcome = Outcome(self)
        self._order(outcome, recommendation, scope, days, reason, now, by, ClosureAuthority.TASK_FORCE)
        return outcome

    def decline_closure(self, recommendation: Recommendation, *, reason: str, now: datetime, by: Actor) -> Outcome:
        self._undecided(recommendation)
        if not reason.strip():
            raise InvalidDecision("reason", "Sebutkan alasan menolak penutupan / Give the reason for declining")
        declined = replace(recommendation, status=RecommendationStatus.DECLINED, decided_at=now, decided_by=by,
                           reason=reason)
        return Outcome(self, recommendations=[declined], events=[ClosureRecommendationDecided(
            **self._where(), recommendation_id=declined.recommendation_id, cluster_id=declined.cluster_id,
            decision=RecommendationDecision.DECLINED, reason=reason, decided_by_role=by.role)])

    def recommendation_overdue(self, recommendation: Recommendation, now: datetime) -> Outcome:
        """Its answer time has passed: a recommendation still undecided escalates, once."""
        if recommendation.status is not RecommendationStatus.PENDING or recommendation.overdue_at is not None:
            return Outcome(self)
        overdue = replace(recommendation, overdue_at=now)
        return Outcome(self, recommendations=[overdue], events=[ClosureRecommendationOverdue(
            **self._where(), recommendation_id=overdue.recommendation_id, cluster_id=overdue.cluster_id,
            answer_by=overdue.answer_by)])

    @staticmethod
    def _undecided(recommendation: Recommendation) -> None:
        if recommendation.status is not RecommendationStatus.PENDING:
            raise RecommendationDecided(recommendation.status.value)

    def _order(self, outcome: Outcome, recommendation: Recommendation, scope: ClosureScope, days: int,
               reason: str | None, now: datetime, by: Actor, authority: ClosureAuthority) -> None:
        """The closure a decision orders: the plant's (an active one is extended, never shortened) or a room's,
        which reopens by itself as a disinfection closure does."""
        actor = by.sub if authority is ClosureAuthority.TASK_FORCE else None
        closure = self._put_in_force(outcome, Closure(
            uuid.uuid4(), self.facility_id, scope,
            f"{recommendation.rule}: cluster {recommendation.cluster_id}, {recommendation.case_count} cases", now,
            now + timedelta(days=days), cluster_id=recommendation.cluster_id, ordered_by=authority,
            ordered_by_actor=actor, recommendation_id=recommendation.recommendation_id))
        decided = replace(recommendation, status=RecommendationStatus.ORDERED, decided_at=now, decided_by=by,
                          closure_id=closure.closure_id, ordered_scope=scope, ordered_days=days, reason=reason)
        outcome.recommendations.append(decided)
        outcome.events.append(ClosureRecommendationDecided(
            **self._where(), recommendation_id=decided.recommendation_id, cluster_id=decided.cluster_id,
            decision=RecommendationDecision.ORDERED, closure_id=closure.closure_id, reason=reason,
            decided_by_role=by.role))

    def _put_in_force(self, outcome: Outcome, ordered: Closure) -> Closure:
        """A closure ordered: a plant's extends the one in force (never shortening it), or else starts; a room's
        starts, with the timer that reopens it."""
        plant = outcome.plant
        current = plant.plant_closure
        if ordered.scope is ClosureScope.PLANT and current is not None:
            closure = replace(current, ends_at=max(current.ends_at, ordered.ends_at), ordered_by=ordered.ordered_by,
                              ordered_by_actor=ordered.ordered_by_actor, recommendation_id=ordered.recommendation_id)
            outcome.plant = replace(plant, plant_closure=closure)
        elif ordered.scope is ClosureScope.PLANT:
            closure = ordered
            outcome.plant = replace(plant, plant_closure=closure)
        else:
            closure = ordered
            outcome.plant = replace(plant, active_room_closures=plant.active_room_closures + 1)
            outcome.timers.append(self._timer(TimerKind.ROOM_CLOSURE_END, closure.closure_id, closure.ends_at))
        outcome.closures.append(closure)
        outcome.events.append(self._closure_ordered(closure))
        return closure

    def close_voluntarily(self, scope: ClosureScope, days: int, reason: str, *, now: datetime,
                          by: Actor) -> Outcome:
        """The company closes its own plant or a room of it, as the rules allow it to (ordered by the company). A
        plant already closed by someone else stays theirs to clear: the company cannot take it over (409)."""
        if not self.monitored:
            raise PlantNotMonitored(self.facility_id)
        if not 1 <= days <= MAX_CLOSURE_DAYS:
            raise InvalidDecision("days", f"1–{MAX_CLOSURE_DAYS} hari / days")
        if not reason.strip():
            raise InvalidDecision("reason", "Sebutkan alasan penutupan / Give the reason for the closure")
        current = self.plant_closure
        if scope is ClosureScope.PLANT and current is not None:
            raise IllegalClosureAction(current.status.value, f"the plant is already closed until "
                                                             f"{current.ends_at.isoformat()}")
        outcome = Outcome(self)
        self._put_in_force(outcome, Closure(uuid.uuid4(), self.facility_id, scope, reason, now,
                                            now + timedelta(days=days), ordered_by=ClosureAuthority.COMPANY,
                                            ordered_by_actor=by.sub))
        return outcome

    def _extend_closure(self, outcome: Outcome, current: Closure, now: datetime, policy: IncidentPolicy) -> None:
        """A case during the plant closure `current` extends it to a full closure period from now; never shortens it."""
        ends_at = now + policy.plant_closure
        if ends_at <= current.ends_at:
            return
        extended = replace(current, ends_at=ends_at)
        outcome.plant = replace(outcome.plant, plant_closure=extended)
        outcome.closures.append(extended)
        outcome.events.append(self._closure_ordered(extended))

    # -- timers fire -------------------------------------------------------------------------------

    def end_isolation(self, case: Case, due_at: datetime) -> Outcome:
        """The isolation period is over: the case closes. A case already closed by hand stays as it is.

        It closes on the day isolation ended, even when the timer fires later (the service was down). A
        timer due at another moment than the case's isolation end was superseded by a claim that re-timed
        the case (a sweeper held it while the claim cancelled the others): it does nothing.
        """
        if case.status is CaseStatus.CLOSED or due_at != start_of_day(case.isolation_ends_on, self.zone):
            return Outcome(self)
        return self._close(case, case.isolation_ends_on, SYSTEM)

    def end_room_closure(self, closure: Closure, now: datetime) -> Outcome:
        if closure.status is not ClosureStatus.ACTIVE:
            return Outcome(self)
        reopened = replace(closure, status=ClosureStatus.REOPENED, reopened_at=now, cleared_by=SYSTEM)
        outcome = Outcome(replace(self, active_room_closures=max(0, self.active_room_closures - 1)),
                          closures=[reopened])
        outcome.events.append(FacilityReopened(**self._where(), closure_id=closure.closure_id, reopened_at=now,
                                               scope=closure.scope))
        return outcome

    # -- people act --------------------------------------------------------------------------------

    def close_case(self, case: Case, *, now: datetime, symptoms_resolved_on: date | None, by: Actor,
                   policy: IncidentPolicy) -> Outcome:
        """Close a case by hand, only once its isolation is over; closing a closed case changes nothing."""
        if case.status is CaseStatus.CLOSED:
            return Outcome(self, cases=[case])
        today = self.today(now)
        if symptoms_resolved_on is not None:
            if not case.symptomatic:
                raise InvalidCase("symptoms_resolved_on", "the case was recorded as asymptomatic")
            if symptoms_resolved_on > today or symptoms_resolved_on < case.isolation_starts_on:
                raise InvalidCase("symptoms_resolved_on", "must lie between the isolation start and today")
        earliest = policy.isolation_ends_on(case.isolation_starts_on, case.symptomatic, symptoms_resolved_on)
        if today < earliest:
            raise IsolationNotOver(earliest)
        return self._close(case, today, by)

    def _close(self, case: Case, today: date, by: Actor) -> Outcome:
        closed = replace(case, status=CaseStatus.CLOSED, closed_on=today, closed_by=by)
        plant = replace(self, active_isolations=max(0, self.active_isolations - 1))
        return Outcome(plant, cases=[closed],
                       events=[CaseClosed(**self._where(), case_id=case.case_id, closed_on=today)])

    def clear_closure(self, closure: Closure, *, now: datetime, by: Actor) -> Outcome:
        """Reopen after a plant closure: only when its period has passed and the task force clears it (a company, only
        a closure it ordered itself)."""
        if closure.scope is ClosureScope.ROOM:
            raise IllegalClosureAction(closure.status.value,
                                       "a room closure ends by itself once disinfection time has passed")
        if closure.status is not ClosureStatus.ACTIVE:
            raise IllegalClosureAction(closure.status.value, "the closure was already cleared")
        if by.role in COMPANY_ACTORS and closure.ordered_by is not ClosureAuthority.COMPANY:
            raise IllegalClosureAction(closure.status.value, "a company clears only a closure it ordered itself")
        if now < closure.ends_at:
            raise ClosureNotOver(closure.ends_at)
        reopened = replace(closure, status=ClosureStatus.REOPENED, reopened_at=now, cleared_by=by)
        plant = replace(self, plant_closure=None)
        return Outcome(plant, closures=[reopened],
                       events=[FacilityReopened(**self._where(), closure_id=closure.closure_id, reopened_at=now,
                                                scope=closure.scope)])

    def _closure_ordered(self, closure: Closure) -> FacilityClosureOrdered:
        return FacilityClosureOrdered(**self._where(), closure_id=closure.closure_id, scope=closure.scope,
                                      reason=closure.reason, starts_at=closure.starts_at, ends_at=closure.ends_at,
                                      cluster_id=closure.cluster_id, ordered_by=closure.ordered_by,
                                      ordered_by_actor=closure.ordered_by_actor,
                                      recommendation_id=closure.recommendation_id)

    def _timer(self, kind: TimerKind, subject_id: uuid.UUID, due_at: datetime) -> Timer:
        return Timer(uuid.uuid4(), kind, self.facility_id, subject_id, due_at)


# ---------------------------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class ReportedPositives:
    """A report's positives against what is already known for that plant: each worker counted once.

    A report names two counts: the workers newly confirmed positive since the plant's previous report, and the
    workers isolating on the report's day, whenever they were confirmed. The same worker isolating on two reports
    running is one case, not two. So:

    - new positives not matched by the cases already confirmed in the report's period (entered by POST /cases or
      counted by an earlier report of that period) become placeholders for the period (`new_cases`);
    - isolating workers beyond the cases known to isolate on the report's day (entered or placeholders) and beyond
      those new placeholders were confirmed before the period, unknown to us: placeholders too (`earlier_cases`).
      A worker of the isolating count who is a known isolating case adds nothing;
    - a report that says fewer than we know removes nothing (cases are facts).

    Every placeholder is dated the report's day, the one day the report shows its worker positive: an earlier
    one keeps isolating as long as a new one, and counts among the period's known cases when a correction
    restates the period's counts.

    A v1 report names neither count: its `confirmed_positive` is the new positives, its isolation unstated.
    """

    new_positives: int
    isolating_workers: int | None  # None: the report does not say
    known_in_period: int = 0
    known_isolating: int = 0

    @classmethod
    def stated_by(cls, *, confirmed_positive: int, new_positives: int | None,
                  isolating_workers: int | None) -> ReportedPositives:
        """As a `ReportSubmitted` states them, v1 (only `confirmed_positive`) or later."""
        return cls(confirmed_positive if new_positives is None else new_positives, isolating_workers)

    @property
    def stated(self) -> bool:
        """The report counts someone: there is something to reconcile."""
        return bool(self.new_positives or self.isolating_workers)

    def against(self, *, known_in_period: int, known_isolating: int) -> ReportedPositives:
        return replace(self, known_in_period=known_in_period, known_isolating=known_isolating)

    @property
    def new_cases(self) -> int:
        return max(0, self.new_positives - self.known_in_period)

    @property
    def earlier_cases(self) -> int:
        if self.isolating_workers is None:
            return 0
        return max(0, self.isolating_workers - self.known_isolating - self.new_cases)

    @staticmethod
    def period_days(plant: Plant, starts_at: datetime, deadline: datetime) -> tuple[date, date]:
        """The report period as the plant's local dates, which is how case confirmation dates are kept."""
        return starts_at.astimezone(plant.zone).date(), deadline.astimezone(plant.zone).date()

    @staticmethod
    def confirmed_on(plant: Plant, submitted_at: datetime, deadline: datetime) -> date:
        """A reported case has no date of its own: the day of the report, or the deadline's day if late."""
        return min(submitted_at, deadline).astimezone(plant.zone).date()

    @staticmethod
    def earlier_days(on: date, period: tuple[date, date], policy: IncidentPolicy) -> tuple[date, date]:
        """The days a worker isolating on day `on` but not newly positive in the period was confirmed on: before
        the period, within the isolation of a symptomatic case whose symptoms end by day 10 (Kepmenkes 4641/2021)."""
        before = period[0] - timedelta(days=1)
        longest = policy.isolation_ends_on(on, symptomatic=True) - on
        return min(on - longest, before), before

    def placeholders(self, report_id: uuid.UUID, on: date, period: tuple[date, date],
                     policy: IncidentPolicy) -> list[NewCase]:
        """Placeholder cases, all dated `on` (the report carries no symptoms, contacts or dates of its own), each
        keeping the days its real case may be confirmed on, which an entered case claims it by
        (`PlaceholderClaim`): the period for a new positive, the days before it for an earlier one."""
        days = [period] * self.new_cases + [self.earlier_days(on, period, policy)] * self.earlier_cases
        return [NewCase(case_ref=f"R-{report_id.hex[:12]}-{self.known_in_period + n}", confirmed_on=on,
                        symptomatic=False, close_contacts=0, source=CaseSource.REPORT, report_id=report_id,
                        report_period=confirmable)
                for n, confirmable in enumerate(days, start=1)]


class PlaceholderClaim:
    """A company enters a case a report already counted: the case claims the report's placeholder.

    The mirror of `ReportedPositives`, which counts the cases confirmed inside a report's period: a case
    entered directly and confirmed on day D claims a placeholder whose kept days (`report_period`, the plant's
    local dates, first and last day both included) contain D: the report's period for a new positive, the days
    before it for an isolating worker confirmed earlier. So "reported first, entered later" counts once,
    as "entered first, reported later" already does. A placeholder is claimed at most once. Among several
    that fit, the earliest dated (then the lowest reference) is claimed, so the same entries always claim
    the same placeholders. Those not claimed yet are the company's to complete (GET /facilities/{id}/status).
    """

    @staticmethod
    def covers(placeholder: Case, on: date) -> bool:
        period = placeholder.report_period
        return placeholder.is_placeholder and period is not None and period[0] <= on <= period[1]

    @classmethod
    def pick(cls, new: NewCase, placeholders: Iterable[Case]) -> Case | None:
        if new.source is not CaseSource.DIRECT:
            return None
        fitting = [p for p in placeholders if cls.covers(p, new.confirmed_on)]
        return min(fitting, key=lambda p: (p.confirmed_on, p.case_ref), default=None)
