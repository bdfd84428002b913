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
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from shared import refusals
from shared.clock import Backoff
from shared.contract import (
    CASE_REF_PATTERN, CaseClosed, CaseDetected, CaseSource, ClosureScope, ClusterDeclared, ContactsQuarantined, Event,
    FacilityClosureOrdered, FacilityReopened, IsolationStarted,
)
from shared.regions import local_zone

# ---------------------------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class ClusterPolicy:
    """A cluster: `threshold` confirmed cases at one plant whose confirmation dates lie within `window_days`.

    Default 2 cases in 14 days (DESIGN §1; local health offices used "more than two linked positives", no
    formal definition was found, hence configurable). "Within 14 days": the first and last confirmation
    are at most 13 days apart (day 0 and day 13 cluster, day 0 and day 14 do not).
    """

    threshold: int = 2
    window_days: int = 14

    def __post_init__(self) -> None:
        if self.threshold < 2 or self.window_days < 1:
            raise ValueError("a cluster needs at least 2 cases and a window of at least 1 day")

    def find(self, new_case: tuple[uuid.UUID, date], others: list[tuple[uuid.UUID, date]]) -> ClusterFinding | None:
        """The largest window holding the new case and at least `threshold` cases, or None."""
        _, day = new_case
        span = timedelta(days=self.window_days - 1)
        candidates = sorted([new_case, *(o for o in others if abs(o[1] - day) <= span)], key=lambda c: c[1])
        best: list[tuple[uuid.UUID, date]] = []
        for first in (c[1] for c in candidates if day - span <= c[1] <= day):
            inside = [c for c in candidates if first <= c[1] <= first + span]
            if len(inside) > len(best):
                best = inside
        if len(best) < self.threshold:
            return None
        return ClusterFinding(case_ids=[c[0] for c in best], first=best[0][1], last=best[-1][1])


@dataclass(frozen=True)
class ClusterFinding:
    case_ids: list[uuid.UUID]
    first: date
    last: date


@dataclass(frozen=True)
class IncidentPolicy:
    # Kepmenkes HK.01.07/MENKES/4641/2021: an asymptomatic confirmed case isolates 10 days.
    isolation_days: int = 10
    # Kepmenkes 4641/2021: a symptomatic case isolates 10 days plus at least 3 symptom-free days.
    symptom_free_days: int = 3
    # Kepmenkes 4641/2021: close contacts quarantine 14 days when not tested out …
    quarantine_days: int = 14
    # … or 5 days with a negative exit test (entry test day 1, exit test day 5).
    quarantine_with_exit_test_days: int = 5
    # Kepmenkes 328/2020: close the room or line ≥ 24 h for disinfection (DKI and Maluku: 3×24 h).
    room_closure: timedelta = timedelta(hours=24)
    # Menko Perekonomian, 16 Aug 2021: an industrial site with a cluster closes for 5 days.
    plant_closure: timedelta = timedelta(days=5)
    cluster: ClusterPolicy = field(default_factory=ClusterPolicy)

    def isolation_ends_on(self, starts_on: date, symptomatic: bool, symptoms_resolved_on: date | None = None) -> date:
        """The first day out of isolation. Symptoms still present on day 10 push the end past their last day."""
        minimum = starts_on + timedelta(days=self.isolation_days)
        if not symptomatic:
            return minimum
        symptom_free_from = max(minimum, symptoms_resolved_on or minimum)
        return symptom_free_from + timedelta(days=self.symptom_free_days)

    def quarantine_ends_on(self, starts_on: date, exit_test_negative: bool) -> date:
        days = self.quarantine_with_exit_test_days if exit_test_negative else self.quarantine_days
        return starts_on + timedelta(days=days)


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


class TimerKind(StrEnum):
    ISOLATION_END = "isolation_end"
    QUARANTINE_END = "quarantine_end"
    ROOM_CLOSURE_END = "room_closure_end"


@dataclass(frozen=True)
class Timer:
    """Durable: stored with the state change that sets it, fired once by the sweep when due."""

    timer_id: uuid.UUID
    kind: TimerKind
    facility_id: uuid.UUID
    subject_id: uuid.UUID  # the case (isolation, quarantine) or the closure (room closure)
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


# ---------------------------------------------------------------------------------------------- entities


@dataclass(frozen=True)
class Case:
    case_id: uuid.UUID
    facility_id: uuid.UUID
    case_ref: str
    confirmed_on: date
    symptomatic: bool
    close_contacts: int
    source: CaseSource
    tested_on: date | None
    contacts_exit_test_negative: bool
    isolation_starts_on: date
    isolation_ends_on: date
    quarantine_ends_on: date | None
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


@dataclass(frozen=True)
class Cluster:
    cluster_id: uuid.UUID
    facility_id: uuid.UUID
    case_ids: list[uuid.UUID]
    first_confirmed_on: date
    last_confirmed_on: date
    declared_at: datetime


@dataclass(frozen=True)
class NewCase:
    """What a company (or a report's positive count) tells us about one case."""

    case_ref: str
    confirmed_on: date
    symptomatic: bool
    close_contacts: int
    source: CaseSource
    tested_on: date | None = None
    contacts_exit_test_negative: bool = False
    report_id: uuid.UUID | None = None
    report_period: tuple[date, date] | None = None


@dataclass
class Outcome:
    """What a decision changed: rows to save, events to publish (in order), timers to set.

    `cancelled_isolations` are cases whose pending isolation-end timer is cancelled before `timers` are set
    (a claim re-times a placeholder's isolation from the real dates).
    """

    plant: Plant
    cases: list[Case] = field(default_factory=list)
    closures: list[Closure] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    cancelled_isolations: list[uuid.UUID] = field(default_factory=list)


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

    def validate(self, new: NewCase, now: datetime) -> None:
        """What a company tells us directly is checked; a report's positives were checked by reports."""
        if not self.monitored:
            raise PlantNotMonitored(self.facility_id)
        if new.source is CaseSource.REPORT:
            return
        CaseReference.check(new.case_ref)
        today = self.today(now)
        if new.confirmed_on > today:
            raise InvalidCase("confirmed_on", f"is after today ({today.isoformat()}) at the plant")
        if new.tested_on is not None and new.tested_on > new.confirmed_on:
            raise InvalidCase("tested_on", "a case is confirmed on or after its test date")
        if self.workforce_total is not None and new.close_contacts > self.workforce_total:
            raise InvalidCase("close_contacts", f"exceeds the plant's workforce ({self.workforce_total})")

    def detect_case(self, new: NewCase, *, unclustered: list[tuple[uuid.UUID, date]], now: datetime,
                    policy: IncidentPolicy, recorded_by: Actor) -> Outcome:
        """A confirmed case: isolate it, quarantine its contacts, close its room, and look for a cluster.

        `unclustered` are the plant's earlier cases not yet part of a cluster (their id and confirmation
        date): a case belongs to at most one cluster, so a plant that reopened is not closed again by one
        new case alone.
        """
        self.validate(new, now)
        starts_on = new.tested_on or new.confirmed_on  # isolation counts from the swab when it is known
        quarantine_ends_on = (policy.quarantine_ends_on(new.confirmed_on, new.contacts_exit_test_negative)
                              if new.close_contacts else None)
        case = Case(
            case_id=uuid.uuid4(), facility_id=self.facility_id, case_ref=new.case_ref,
            confirmed_on=new.confirmed_on, symptomatic=new.symptomatic, close_contacts=new.close_contacts,
            source=new.source, tested_on=new.tested_on, contacts_exit_test_negative=new.contacts_exit_test_negative,
            isolation_starts_on=starts_on,
            isolation_ends_on=policy.isolation_ends_on(starts_on, new.symptomatic),
            quarantine_ends_on=quarantine_ends_on, status=CaseStatus.ISOLATING, recorded_by=recorded_by,
            report_id=new.report_id, report_period=new.report_period,
        )
        room = Closure(uuid.uuid4(), self.facility_id, ClosureScope.ROOM,
                       f"disinfection after case {case.public_ref}", now, now + policy.room_closure)
        plant = replace(self, active_isolations=self.active_isolations + 1,
                        active_quarantines=self.active_quarantines + (1 if quarantine_ends_on else 0),
                        active_room_closures=self.active_room_closures + 1)
        outcome = Outcome(plant, closures=[room])
        outcome.events.append(CaseDetected(**self._where(), case_id=case.case_id, case_ref=case.public_ref,
                                           confirmed_on=case.confirmed_on, symptomatic=case.symptomatic,
                                           close_contacts=case.close_contacts, source=case.source))
        self._isolate(outcome, case)
        self._quarantine_contacts(outcome, case)
        outcome.events.append(self._closure_ordered(room))
        outcome.timers.append(self._timer(TimerKind.ROOM_CLOSURE_END, room.closure_id, room.ends_at))

        if self.plant_closure is not None:
            case = replace(case, cluster_id=self.plant_closure.cluster_id)
            self._extend_closure(outcome, self.plant_closure, now, policy)
        else:
            finding = policy.cluster.find((case.case_id, case.confirmed_on), unclustered)
            if finding is not None:
                case = self._declare_cluster(outcome, case, finding, now, policy)
        outcome.cases.insert(0, case)
        return outcome

    def enter_case(self, new: NewCase, *, placeholders: Iterable[Case], unclustered: list[tuple[uuid.UUID, date]],
                   now: datetime, policy: IncidentPolicy, by: Actor) -> Outcome:
        """A case a company or health office enters: it claims a report's placeholder that counted it already
        (`PlaceholderClaim`), or else it is a new case."""
        self.validate(new, now)
        placeholder = PlaceholderClaim.pick(new, placeholders)
        if placeholder is None:
            return self.detect_case(new, unclustered=unclustered, now=now, policy=policy, recorded_by=by)
        return self.claim(placeholder, new, unclustered=unclustered, now=now, policy=policy, by=by)

    def claim(self, placeholder: Case, new: NewCase, *, unclustered: list[tuple[uuid.UUID, date]], now: datetime,
              policy: IncidentPolicy, by: Actor) -> Outcome:
        """The real case takes over a placeholder: same case, now with the company's reference and dates.

        No second `CaseDetected`: the case was detected (and alerted on) when the report counted it, and it is
        the same person. Its isolation is re-timed from the real dates (`IsolationStarted` again, same
        `case_id`, as a correction; the old timer is cancelled) unless it is already closed — a closed
        isolation is a fact and stays as it ran. Its contacts are new knowledge: `ContactsQuarantined` as for
        any case. The room was closed when the report came in, so no second room closure. Cluster detection
        sees the same case id at its real date, never a second case; a case already in a cluster stays there.
        """
        starts_on = new.tested_on or new.confirmed_on
        case = replace(placeholder, case_ref=new.case_ref, confirmed_on=new.confirmed_on,
                       symptomatic=new.symptomatic, close_contacts=new.close_contacts, tested_on=new.tested_on,
                       contacts_exit_test_negative=new.contacts_exit_test_negative,
                       quarantine_ends_on=(policy.quarantine_ends_on(new.confirmed_on, new.contacts_exit_test_negative)
                                           if new.close_contacts else None),
                       claimed_by=by, claimed_at=now)
        outcome = Outcome(replace(self, active_quarantines=self.active_quarantines
                                  + (1 if case.quarantine_ends_on else 0)))
        if case.status is CaseStatus.ISOLATING:
            case = replace(case, isolation_starts_on=starts_on,
                           isolation_ends_on=policy.isolation_ends_on(starts_on, new.symptomatic))
            outcome.cancelled_isolations.append(case.case_id)
            self._isolate(outcome, case)
        self._quarantine_contacts(outcome, case)
        if case.cluster_id is None and self.plant_closure is None:
            others = [c for c in unclustered if c[0] != case.case_id]
            finding = policy.cluster.find((case.case_id, case.confirmed_on), others)
            if finding is not None:
                case = self._declare_cluster(outcome, case, finding, now, policy)
        outcome.cases.insert(0, case)
        return outcome

    def _isolate(self, outcome: Outcome, case: Case) -> None:
        outcome.events.append(IsolationStarted(**self._where(), case_id=case.case_id,
                                               starts_on=case.isolation_starts_on, ends_on=case.isolation_ends_on))
        outcome.timers.append(self._timer(TimerKind.ISOLATION_END, case.case_id,
                                          start_of_day(case.isolation_ends_on, self.zone)))

    def _quarantine_contacts(self, outcome: Outcome, case: Case) -> None:
        if case.quarantine_ends_on is None:
            return
        outcome.events.append(ContactsQuarantined(**self._where(), case_id=case.case_id,
                                                  contacts=case.close_contacts, starts_on=case.confirmed_on,
                                                  ends_on=case.quarantine_ends_on))
        outcome.timers.append(self._timer(TimerKind.QUARANTINE_END, case.case_id,
                                          start_of_day(case.quarantine_ends_on, self.zone)))

    def _declare_cluster(self, outcome: Outcome, case: Case, finding: ClusterFinding, now: datetime,
                         policy: IncidentPolicy) -> Case:
        cluster = Cluster(uuid.uuid4(), self.facility_id, finding.case_ids, finding.first, finding.last, now)
        closure = Closure(uuid.uuid4(), self.facility_id, ClosureScope.PLANT,
                          f"cluster of {len(finding.case_ids)} cases within {policy.cluster.window_days} days",
                          now, now + policy.plant_closure, cluster_id=cluster.cluster_id)
        outcome.plant = replace(outcome.plant, plant_closure=closure)
        outcome.clusters.append(cluster)
        outcome.closures.append(closure)
        outcome.events += [
            ClusterDeclared(**self._where(), cluster_id=cluster.cluster_id, case_count=len(finding.case_ids),
                            window_days=policy.cluster.window_days, first_confirmed_on=finding.first,
                            last_confirmed_on=finding.last),
            self._closure_ordered(closure),
        ]
        return replace(case, cluster_id=cluster.cluster_id)

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

    def end_quarantine(self) -> Outcome:
        return Outcome(replace(self, active_quarantines=max(0, self.active_quarantines - 1)))

    def end_room_closure(self, closure: Closure, now: datetime) -> Outcome:
        if closure.status is not ClosureStatus.ACTIVE:
            return Outcome(self)
        reopened = replace(closure, status=ClosureStatus.REOPENED, reopened_at=now, cleared_by=SYSTEM)
        outcome = Outcome(replace(self, active_room_closures=max(0, self.active_room_closures - 1)),
                          closures=[reopened])
        outcome.events.append(FacilityReopened(**self._where(), closure_id=closure.closure_id, reopened_at=now))
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
        """Reopen after a plant closure: only when its period has passed and the task force clears it."""
        if closure.scope is ClosureScope.ROOM:
            raise IllegalClosureAction(closure.status.value,
                                       "a room closure ends by itself once disinfection time has passed")
        if closure.status is not ClosureStatus.ACTIVE:
            raise IllegalClosureAction(closure.status.value, "the closure was already cleared")
        if now < closure.ends_at:
            raise ClosureNotOver(closure.ends_at)
        reopened = replace(closure, status=ClosureStatus.REOPENED, reopened_at=now, cleared_by=by)
        plant = replace(self, plant_closure=None)
        return Outcome(plant, closures=[reopened],
                       events=[FacilityReopened(**self._where(), closure_id=closure.closure_id, reopened_at=now)])

    def _closure_ordered(self, closure: Closure) -> FacilityClosureOrdered:
        return FacilityClosureOrdered(**self._where(), closure_id=closure.closure_id, scope=closure.scope,
                                      reason=closure.reason, starts_at=closure.starts_at, ends_at=closure.ends_at,
                                      cluster_id=closure.cluster_id)

    def _timer(self, kind: TimerKind, subject_id: uuid.UUID, due_at: datetime) -> Timer:
        return Timer(uuid.uuid4(), kind, self.facility_id, subject_id, due_at)


# ---------------------------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class ReportedPositives:
    """A report's confirmed positives against what is already known for that plant in that period.

    Only the excess becomes new cases, so a case entered by POST /cases and counted again in the report
    is not counted twice; a report that says fewer than we know removes nothing (cases are facts).
    """

    confirmed_positive: int
    known_in_period: int

    @property
    def new_cases(self) -> int:
        return max(0, self.confirmed_positive - self.known_in_period)

    @staticmethod
    def period_days(plant: Plant, starts_at: datetime, deadline: datetime) -> tuple[date, date]:
        """The report period as the plant's local dates, which is how case confirmation dates are kept."""
        return starts_at.astimezone(plant.zone).date(), deadline.astimezone(plant.zone).date()

    @staticmethod
    def confirmed_on(plant: Plant, submitted_at: datetime, deadline: datetime) -> date:
        """A reported case has no date of its own: the day of the report, or the deadline's day if late."""
        return min(submitted_at, deadline).astimezone(plant.zone).date()

    @staticmethod
    def cases(report_id: uuid.UUID, count: int, on: date, already: int,
              period: tuple[date, date]) -> list[NewCase]:
        """Placeholder cases for reported positives; the report carries no symptoms or contact counts."""
        return [NewCase(case_ref=f"R-{report_id.hex[:12]}-{already + n + 1}", confirmed_on=on, symptomatic=False,
                        close_contacts=0, source=CaseSource.REPORT, report_id=report_id, report_period=period)
                for n in range(count)]


class PlaceholderClaim:
    """A company enters a case a report already counted: the case claims the report's placeholder.

    The mirror of `ReportedPositives`, which counts the cases confirmed inside a report's period: a case
    entered directly and confirmed on day D claims a placeholder whose report period (the plant's local
    dates, first and last day both included) contains D. So "reported first, entered later" counts once,
    as "entered first, reported later" already does. A placeholder is claimed at most once. Among several
    that fit, the earliest dated (then the lowest reference) is claimed, so the same entries always claim
    the same placeholders.
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
