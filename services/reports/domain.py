"""Reports: reporting schedules, submissions, overdue periods and the sanction ladder (DESIGN §1).

Pure: no I/O; time is always passed in. Every rule a reader might ask about ("when is a period overdue?",
"when is a freeze recommended?") is answered in this file.
"""

from __future__ import annotations

import calendar
import functools
import itertools
import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

from shared import refusals
from shared.regions import WIB, WIT, WITA, local_zone

def zone_of(province_code: str) -> str:
    """The plant's local time zone, by name, as schedules store it."""
    return local_zone(province_code).key


# ---------------------------------------------------------------------------------------- regimes

ZONES = (WIB.key, WITA.key, WIT.key)  # Indonesia's three zones, west to east

_DAYS = {"MON": 0, "TUE": 1, "WED": 2, "THU": 3, "FRI": 4, "SAT": 5, "SUN": 6}
# ASCII digits, matched whole (`fullmatch`): `\d` takes other scripts' digits, which int() reads as well.
_WEEKLY = re.compile(r"^(?P<kind>weekly|twice-weekly):(?P<days>[A-Z,]+)@(?P<h>[0-9]{2}):(?P<m>[0-9]{2})$")
_EVERY = re.compile(r"^every:(?P<n>[0-9]+)s$")


class InvalidRegime(ValueError):
    pass


@dataclass(frozen=True)
class WeeklyDeadlines:
    """Deadlines on fixed weekdays at a local time: SE 8/2020 (weekend), SE 3/2021 (twice weekly),
    SE 5/2021 (Friday)."""

    text: str
    weekdays: frozenset[int]
    at: time

    # Cached: a sweep opens the next period of every plant sharing a deadline, all from the same moment and
    # zone. Regimes are few and immutable, so the cache holding them costs nothing.
    @functools.lru_cache(maxsize=1024)  # noqa: B019 -- held instances are the few regimes, as said above
    def deadline_after(self, moment: datetime, zone: str) -> datetime:
        local = moment.astimezone(ZoneInfo(zone))
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            if day.weekday() not in self.weekdays:
                continue
            candidate = datetime.combine(day, self.at, tzinfo=ZoneInfo(zone))
            if candidate > local:
                return candidate.astimezone(UTC)
        raise AssertionError("a weekly regime has a deadline within eight days")


@dataclass(frozen=True)
class FixedInterval:
    """Back-to-back periods of a fixed length, for demonstrations and tests."""

    text: str
    length: timedelta

    def deadline_after(self, moment: datetime, zone: str) -> datetime:
        return (moment + self.length).astimezone(UTC)


Regime = WeeklyDeadlines | FixedInterval

def parse_regime(text: str) -> Regime:
    """`weekly:SAT@23:59`, `twice-weekly:TUE,FRI@23:59`, `weekly:FRI@23:59` or `every:<N>s`."""
    text = text.strip()
    if match := _EVERY.fullmatch(text):
        seconds = int(match["n"])
        if seconds < 1:
            raise InvalidRegime("every:<N>s needs N ≥ 1")
        return FixedInterval(text, timedelta(seconds=seconds))
    match = _WEEKLY.fullmatch(text)
    if not match:
        raise InvalidRegime(f"{text!r}: expected weekly:DAY@HH:MM, twice-weekly:DAY,DAY@HH:MM or every:<N>s")
    names = match["days"].split(",")
    unknown = [name for name in names if name not in _DAYS]
    if unknown:
        raise InvalidRegime(f"{text!r}: unknown day(s) {', '.join(unknown)}")
    expected = 1 if match["kind"] == "weekly" else 2
    if len(set(names)) != expected:
        raise InvalidRegime(f"{text!r}: {match['kind']} needs {expected} distinct day(s)")
    hour, minute = int(match["h"]), int(match["m"])
    if hour > 23 or minute > 59:
        raise InvalidRegime(f"{text!r}: no such time of day")
    return WeeklyDeadlines(text, frozenset(_DAYS[name] for name in names), time(hour, minute))


@dataclass(frozen=True)
class Timing:
    """When reminders and warnings go out relative to a deadline (configuration)."""

    due_lead: timedelta = timedelta(hours=6)
    # SE 3/2021: the warning is issued automatically "the next morning" after a missed 23:59 deadline.
    warning_delay: timedelta = timedelta(hours=9)


# ---------------------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class Schedule:
    """A plant's duty to report, from the permit's issue until its revocation."""

    permit_id: uuid.UUID
    facility_id: uuid.UUID
    nib: str
    province_code: str
    regency_code: str
    zone: str
    issued_at: datetime
    frozen: bool = False
    freeze_count: int = 0
    closed: bool = False
    ended_at: datetime | None = None
    ladder_reset_seq: int = 0  # periods up to this one were already evidence of a sanction
    revoke_recommended: bool = False

    @property
    def ended(self) -> bool:
        return self.ended_at is not None


class PeriodStatus(StrEnum):
    OPEN = "open"
    SUBMITTED = "submitted"  # reported by the deadline
    LATE = "late"  # reported after the deadline
    OVERDUE = "overdue"  # deadline passed, nothing reported
    EXCUSED = "excused"  # the plant was closed at the deadline: it cannot report on operations
    ENDED = "ended"  # the permit was revoked before the deadline: nothing is owed


REPORTED = frozenset({PeriodStatus.SUBMITTED, PeriodStatus.LATE})


class NextAction(StrEnum):
    """What the deadline sweep does next with a period, and when (`next_action_at`)."""

    REMIND = "remind"
    DEADLINE = "deadline"
    WARN = "warn"


@dataclass(frozen=True)
class Period:
    period_id: uuid.UUID
    permit_id: uuid.UUID
    seq: int
    regime: str
    starts_at: datetime
    deadline: datetime
    status: PeriodStatus = PeriodStatus.OPEN
    next_action: NextAction | None = None
    next_action_at: datetime | None = None
    warning_id: uuid.UUID | None = None
    regime_name: str = ""  # the regime it opened under: its ladder judges the period if it is missed

    @property
    def reported(self) -> bool:
        return self.status in REPORTED


@dataclass(frozen=True)
class Opening:
    """A period as it opens, before it belongs to a plant: the regime, the plant's zone and the start decide
    it, so every plant sharing a zone and a deadline opens the same one (the sweep opens them together)."""

    regime: str
    starts_at: datetime
    deadline: datetime
    next_action: NextAction
    next_action_at: datetime
    regime_name: str = ""

    def period(self, permit_id: uuid.UUID, seq: int) -> Period:
        return Period(uuid.uuid4(), permit_id, seq, self.regime, self.starts_at, self.deadline,
                      next_action=self.next_action, next_action_at=self.next_action_at, regime_name=self.regime_name)


def opening(regime: Regime | RegimeTimeline, zone: str, *, starts_at: datetime, timing: Timing) -> Opening:
    """The next period begins where the previous ended; a regime change therefore applies from the next one: a
    period is judged by the regime in force, in the plant's zone, when it opens.
    Its reminder goes out `due_lead` before the deadline, or at once when the period is shorter than that."""
    name = ""
    if isinstance(regime, RegimeTimeline):
        entry = regime.in_force(starts_at, zone)
        name, regime = entry.name, entry.rule
    deadline = regime.deadline_after(starts_at, zone)
    return Opening(regime.text, starts_at, deadline, NextAction.REMIND, max(starts_at, deadline - timing.due_lead),
                   name)


def open_period(schedule: Schedule, regime: Regime | RegimeTimeline, *, starts_at: datetime, seq: int,
                timing: Timing) -> Period:
    return opening(regime, schedule.zone, starts_at=starts_at, timing=timing).period(schedule.permit_id, seq)


@dataclass(frozen=True)
class Situation:
    """All that a sweep step reads of a period and its plant. Periods in the same situation take the same step:
    when a deadline falls for every plant at once, the sweep decides once per situation, not once per plant."""

    next_action: NextAction | None
    status: PeriodStatus
    deadline: datetime
    ended: bool
    closed: bool

    @classmethod
    def of(cls, period: Period, schedule: Schedule) -> Situation:
        return cls(period.next_action, period.status, period.deadline, schedule.ended, schedule.closed)


@dataclass(frozen=True)
class Step:
    """What one sweep step decides: the period's status and next action afterwards, and which facts to publish
    (`open_next`: the plant's next period opens at this period's deadline)."""

    status: PeriodStatus
    next_action: NextAction | None = None
    next_action_at: datetime | None = None
    remind: bool = False
    overdue: bool = False
    warn: bool = False
    open_next: bool = False

    def applied_to(self, period: Period) -> Period:
        return replace(period, status=self.status, next_action=self.next_action, next_action_at=self.next_action_at)


def step(situation: Situation, timing: Timing) -> Step:
    """Advance a period whose `next_action_at` has come. Each action happens once: the period leaves it."""
    status = situation.status
    if situation.ended:
        return Step(status)
    if situation.next_action is NextAction.REMIND:
        return Step(status, NextAction.DEADLINE, situation.deadline, remind=status is PeriodStatus.OPEN)
    if situation.next_action is NextAction.DEADLINE:
        if status in REPORTED:
            return Step(status, open_next=True)
        if situation.closed:
            # A closure is not a freeze: it does not count on the sanction ladder (DESIGN §2).
            return Step(PeriodStatus.EXCUSED, open_next=True)
        return Step(PeriodStatus.OVERDUE, NextAction.WARN, situation.deadline + timing.warning_delay, overdue=True,
                    open_next=True)
    if situation.next_action is NextAction.WARN:
        return Step(status, warn=status is PeriodStatus.OVERDUE)
    return Step(status)


# ---------------------------------------------------------------------------------------- submissions


class Refused(Exception):
    """What a request is refused for: a rule says no, or what it names does not exist. The caller's answer, not a
    fault: api.py maps each kind to its problem in one table."""


class ScheduleNotFound(Refused, refusals.NotFound):
    """No schedule for the permit, or none the caller may see; `what` is how the request named it (the schedule
    itself, or the permit a report is for)."""


class PeriodNotFound(Refused):
    """No such reporting period for the permit."""


class ObligationEnded(Refused):
    """The permit was revoked: it owes no reports and accepts none."""


class PeriodClosed(Refused):
    def __init__(self, status: PeriodStatus) -> None:
        super().__init__(f"the period is {status.value}: no report is owed for it")
        self.status = status


@dataclass(frozen=True)
class FieldIssue:
    field: str
    message: str


class InconsistentReport(Refused):
    def __init__(self, issues: list[FieldIssue]) -> None:
        super().__init__("; ".join(f"{i.field}: {i.message}" for i in issues))
        self.issues = issues


@dataclass(frozen=True)
class ReportFigures:
    workforce_total: int
    on_site_per_shift: tuple[int, ...]
    odp: int
    pdp: int
    new_positives: int  # newly confirmed positive since the plant's previous report (v1 `confirmed_positive`)
    tests_pcr: int
    tests_antigen: int
    dose1: int
    dose2: int
    booster: int
    case_handling: str
    # The offices, when the report states them: their staff and how many of them are on site (PPKM caps both).
    office_staff: int | None = None
    office_on_site: int | None = None
    # Workers isolating on the report's date, whenever confirmed; None when the report does not say.
    isolating_workers: int | None = None

    @property
    def on_site_total(self) -> int:
        return sum(self.on_site_per_shift)


def consistency_issues(f: ReportFigures) -> list[FieldIssue]:
    """Counts that contradict each other, each named by the payload field that is wrong."""
    issues = []
    if f.on_site_total > f.workforce_total:
        issues.append(FieldIssue(
            "workforce.on_site_per_shift",
            f"on site across shifts ({f.on_site_total}) exceeds the workforce ({f.workforce_total})"))
    for name, value in (("odp", f.odp), ("pdp", f.pdp), ("new_positives", f.new_positives),
                        ("isolating_workers", f.isolating_workers or 0), ("vaccinated.dose1", f.dose1)):
        if value > f.workforce_total:
            issues.append(FieldIssue(name, f"{value} exceeds the workforce ({f.workforce_total})"))
    # A worker in isolation is not on site: those on site and those isolating are different people.
    isolating = f.isolating_workers or 0
    if isolating <= f.workforce_total and f.on_site_total <= f.workforce_total < f.on_site_total + isolating:
        issues.append(FieldIssue(
            "isolating_workers",
            f"pekerja isolasi ({isolating}) ditambah yang di lokasi ({f.on_site_total}) melebihi jumlah pekerja "
            f"({f.workforce_total}) / isolating workers ({isolating}) plus those on site ({f.on_site_total}) exceed "
            f"the workforce ({f.workforce_total})"))
    # A second dose follows a first, a booster follows a second.
    if f.dose2 > f.dose1:
        issues.append(FieldIssue("vaccinated.dose2", f"{f.dose2} exceeds dose 1 ({f.dose1})"))
    if f.booster > f.dose2:
        issues.append(FieldIssue("vaccinated.booster", f"{f.booster} exceeds dose 2 ({f.dose2})"))
    if f.office_staff is not None and f.office_on_site is not None and f.office_on_site > f.office_staff:
        issues.append(FieldIssue("offices.on_site", f"office staff on site ({f.office_on_site}) exceeds the office"
                                                    f" staff ({f.office_staff})"))
    # SE 5/2021: a firm with a positive case must say how it handled it.
    if (f.new_positives > 0 or isolating > 0) and not f.case_handling.strip():
        issues.append(FieldIssue("case_handling", "required when new_positives or isolating_workers > 0"))
    return issues


def new_positives(named: int | None, alias: int | None) -> int:
    """The report's new positives, stated as `new_positives` or by its v1 name `confirmed_positive` (still accepted
    from clients written before the name): one of them, or both when they agree."""
    if named is None:
        if alias is None:
            raise InconsistentReport([FieldIssue(
                "new_positives", "wajib diisi: pekerja baru terkonfirmasi positif sejak laporan sebelumnya / "
                                 "required: workers newly confirmed positive since the previous report")])
        return alias
    if alias is not None and alias != named:
        raise InconsistentReport([FieldIssue(
            "confirmed_positive", f"nama lama new_positives, berbeda ({alias} ≠ {named}): kirim satu saja / "
                                  f"the older name of new_positives, differing ({alias} ≠ {named}): send one")])
    return named


# SE 5/2021, the latest circular, requires the declaration: so does a regime that does not state otherwise.
DECLARATION_UNLESS_STATED = True


class UndeclaredReport(Refused):
    """A report for a period whose regime requires the declaration of truth, sent without it (missing or false)."""

    FIELD = "declared_true"
    # In Bahasa Indonesia first, for the companies that send it, then English.
    MESSAGE = ("Perusahaan wajib menyatakan bahwa data laporan ini benar (declared_true: true) / "
               "The company must declare this report's data true (declared_true: true)")

    def __init__(self) -> None:
        super().__init__(f"{self.FIELD}: {self.MESSAGE}")


@dataclass(frozen=True)
class DeclarationOfTruth:
    """SE 5/2021: each company declares its report's data true. A report for a period opened under a regime that
    requires it (`RegimeEntry.declaration`) is refused without the declaration; under one that does not, a report is
    accepted with or without it, and a declaration given is still recorded. Who declared and when are the caller and
    the service's clock, never words of the report. A later finding that contradicts a declared report is a ground
    for revocation (SE 3/2021), which is why the declaration is kept."""

    required: bool

    @classmethod
    def of_regime(cls, stated: bool | None) -> DeclarationOfTruth:
        """The rule of the regime a period opened under: as the regime states, or, for a name the stored timeline
        does not hold (IOMKI_REPORT_REGIME's one rule), as the latest circular does."""
        return cls(DECLARATION_UNLESS_STATED if stated is None else stated)

    def check(self, declared: bool) -> None:
        if self.required and declared is not True:
            raise UndeclaredReport()


@dataclass(frozen=True)
class Submission:
    period: Period
    late: bool
    declared: bool = False  # the company declared the report's data true: record who and when


def submit(schedule: Schedule, period: Period, figures: ReportFigures, *, now: datetime, declared: bool = False,
           declaration: DeclarationOfTruth) -> Submission:
    """Accept a report (or a correction superseding the previous one, declared again) for an existing period. The
    declaration rule has no default: a caller that forgot it would accept undeclared reports."""
    if schedule.ended:
        raise ObligationEnded(schedule.permit_id)
    if period.status in (PeriodStatus.ENDED, PeriodStatus.EXCUSED):
        raise PeriodClosed(period.status)
    declaration.check(declared)
    issues = consistency_issues(figures)
    if issues:
        raise InconsistentReport(issues)
    late = now > period.deadline
    if period.status is PeriodStatus.SUBMITTED:
        return Submission(period, late, declared)  # a correction does not undo having reported on time
    changed = replace(period, status=PeriodStatus.LATE if late else PeriodStatus.SUBMITTED)
    if period.next_action is NextAction.WARN:
        # Reported after the deadline but before the warning went out ("the morning after"): no warning.
        changed = replace(changed, next_action=None, next_action_at=None)
    return Submission(changed, late, declared)


# ---------------------------------------------------------------------------------------- sanction ladder


class SanctionKind(StrEnum):
    FREEZE = "freeze"
    REVOKE = "revoke"


@dataclass(frozen=True)
class SettledPeriod:
    """A past period as the ladder sees it: missed (with its warning) or not."""

    period_id: uuid.UUID
    seq: int
    deadline: datetime
    warning_id: uuid.UUID | None
    regime_name: str = ""
    excused: bool = False  # filed late and excused on reactivation (`ExcusedOnReactivation`)

    @property
    def warned(self) -> bool:
        """Missed and warned, as every rule of every ladder counts it: an excused period is neither."""
        return self.warning_id is not None and not self.excused


@dataclass(frozen=True)
class ExcusedOnReactivation:
    """SE 3/2021's way back from a freeze: the company files the reports it missed, late, and an operator approves its
    request to be reactivated (PermitReactivated names the periods). From then on those periods are excused: no
    rule of any ladder counts them as missed or warned again (`SettledPeriod.warned`), so they are neither evidence
    of a later sanction nor part of a later row of warnings. The warning stays on record, and so does the report's
    lateness (compliance counts it as reported late).

    Only a period that was warned and has since been reported is excused: one the company has not filed (the reports
    service is the judge of that) still counts."""

    name: str = "ExcusedOnReactivation"

    def excusable(self, period: Period) -> bool:
        return period.warning_id is not None and period.reported

    def excused(self, periods: Sequence[Period], named: Collection[uuid.UUID]) -> list[Period]:
        """Of the plant's periods, those the reactivation names that may be excused."""
        return [period for period in periods if period.period_id in named and self.excusable(period)]


@dataclass(frozen=True)
class Sanction:
    action: SanctionKind
    rule: str
    missed_periods: tuple[uuid.UUID, ...]
    warnings: tuple[uuid.UUID, ...]
    through_seq: int  # the last period used as evidence: later rules count only after it


class LadderRule(Protocol):
    @property
    def name(self) -> str: ...  # read-only: the rules are frozen dataclasses

    def decide(self, schedule: Schedule, history: list[SettledPeriod]) -> Sanction | None: ...


def add_month(moment: datetime) -> datetime:
    """The same day one calendar month later (31 Jan → 28/29 Feb)."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class MissedWhileFrozen:
    """SE 3/2021: a frozen plant that misses the next report is revoked."""

    name: str = "MissedWhileFrozen"

    def decide(self, schedule: Schedule, history: list[SettledPeriod]) -> Sanction | None:
        if not schedule.frozen or schedule.revoke_recommended:
            return None
        latest = history[-1]
        return Sanction(SanctionKind.REVOKE, self.name, (latest.period_id,),
                        (latest.warning_id,) if latest.warning_id else (), latest.seq)


@dataclass(frozen=True)
class ThreeWarningsInARow:
    """SE 3/2021: warnings for `count` consecutive periods freeze the permit."""

    count: int = 3
    name: str = "ThreeWarningsInARow"

    def decide(self, schedule: Schedule, history: list[SettledPeriod]) -> Sanction | None:
        if schedule.frozen:
            return None
        recent = [p for p in history if p.seq > schedule.ladder_reset_seq][-self.count:]
        consecutive = all(b.seq == a.seq + 1 for a, b in itertools.pairwise(recent))
        if len(recent) < self.count or not consecutive or not all(p.warned for p in recent):
            return None
        return _evidence(SanctionKind.FREEZE, self.name, recent)


@dataclass(frozen=True)
class ThreeWarningsWithinAMonth:
    """SE 3/2021: `count` warnings within one calendar month of the first (inclusive) freeze the permit."""

    count: int = 3
    name: str = "ThreeWarningsWithinAMonth"

    def decide(self, schedule: Schedule, history: list[SettledPeriod]) -> Sanction | None:
        if schedule.frozen:
            return None
        warned = [p for p in history if p.seq > schedule.ladder_reset_seq and p.warned]
        if not warned:
            return None
        latest = warned[-1]
        window = [p for p in warned if add_month(p.deadline) >= latest.deadline]
        if len(window) < self.count:
            return None
        return _evidence(SanctionKind.FREEZE, self.name, window[-self.count:])


@dataclass(frozen=True)
class SecondFreeze:
    """SE 3/2021: a permit frozen a second time is revoked."""

    name: str = "SecondFreeze"

    def decide(self, schedule: Schedule, history: list[SettledPeriod]) -> Sanction | None:
        if schedule.freeze_count < 2 or schedule.revoke_recommended:
            return None
        warned = [p for p in history if p.warned]
        return Sanction(SanctionKind.REVOKE, self.name, tuple(p.period_id for p in warned),
                        tuple(p.warning_id for p in warned if p.warning_id), history[-1].seq if history else 0)


def _evidence(action: SanctionKind, rule: str, periods: list[SettledPeriod]) -> Sanction:
    return Sanction(action, rule, tuple(p.period_id for p in periods),
                    tuple(p.warning_id for p in periods if p.warning_id), periods[-1].seq)


@dataclass(frozen=True)
class SanctionLadder:
    """The configurable policy: which rules apply after a missed period and after a freeze, first match wins."""

    on_missed: tuple[LadderRule, ...] = (MissedWhileFrozen(), ThreeWarningsInARow(), ThreeWarningsWithinAMonth())
    on_frozen: tuple[LadderRule, ...] = (SecondFreeze(),)

    # How much history the rules need: the periods of the last month (a month is at most 31 days, plus a
    # day of slack) and, however long the periods, the last three.
    lookback: timedelta = timedelta(days=32)
    min_periods: int = 3

    def after_missed(self, schedule: Schedule, history: list[SettledPeriod]) -> Sanction | None:
        return _first(self.on_missed, schedule, history)

    def after_frozen(self, schedule: Schedule, history: list[SettledPeriod]) -> Sanction | None:
        return _first(self.on_frozen, schedule, history)


def _first(rules: tuple[LadderRule, ...], schedule: Schedule, history: list[SettledPeriod]) -> Sanction | None:
    for rule in rules:
        if (sanction := rule.decide(schedule, history)) is not None:
            return sanction
    return None


def after_sanction(schedule: Schedule, sanction: Sanction) -> Schedule:
    """Evidence counts once: warnings behind a freeze do not count towards the next one."""
    if sanction.action is SanctionKind.REVOKE:
        return replace(schedule, revoke_recommended=True)
    return replace(schedule, ladder_reset_seq=max(schedule.ladder_reset_seq, sanction.through_seq))


def after_reversal(schedule: Schedule, *, frozen: bool, freeze_count: int, through_seq: int) -> Schedule:
    """An objection reversed a sanction (UU 30/2014 Pasal 77): the plant reports as its permit now stands, frozen or
    not, with the freezes that still stand (one overturned no longer counts towards SE 3/2021's second freeze), and
    the ladder free to recommend again. A reversed revocation resumes an ended schedule: the periods up to
    `through_seq` stay as they ended, owing nothing, and do not count again as evidence; the caller opens the next
    period from now, never for the time the revocation stood."""
    resumed = replace(schedule, frozen=frozen, freeze_count=freeze_count, revoke_recommended=False)
    if schedule.ended:
        resumed = replace(resumed, ended_at=None, ladder_reset_seq=max(schedule.ladder_reset_seq, through_seq))
    return resumed


def consecutive_warnings(history: list[SettledPeriod]) -> int:
    """Warnings in a row up to the latest period, this one included (carried in WarningIssued)."""
    count = 0
    previous_seq = None
    for period in reversed(history):
        if not period.warned or (previous_seq is not None and period.seq != previous_seq - 1):
            break
        count += 1
        previous_seq = period.seq
    return count


# ---------------------------------------------------------------------------------------- each circular's ladder


@dataclass(frozen=True)
class ThreeMissedPeriods:
    """SE 8/2020: a plant that misses three reporting periods is revoked.

    How misses are counted: the circular, as reported (missing three periods revokes; in Nov 2020 about 9,300
    permits were at risk of revocation), says three periods and not three in a row, so any `count` missed periods
    count, in a row or not, however far apart *[inference: no window is stated]*. A missed period is one that went
    overdue and was warned (a period reported late, before its warning, or excused by a closure is not missed).
    Periods already used as evidence of a sanction do not count again. SE 8/2020 knows no freeze.
    """

    count: int = 3
    name: str = "ThreeMissedPeriods"

    def decide(self, schedule: Schedule, history: list[SettledPeriod]) -> Sanction | None:
        if schedule.revoke_recommended:
            return None
        missed = [p for p in history if p.seq > schedule.ladder_reset_seq and p.warned]
        if len(missed) < self.count:
            return None
        return _evidence(SanctionKind.REVOKE, self.name, missed[-self.count:])


class LadderName(StrEnum):
    """The ladders a regime may name (a closed list: each is a circular's own rules)."""

    SE_8_2020 = "SE-8/2020"
    SE_3_2021 = "SE-3/2021"
    SE_5_2021 = "SE-5/2021"


LADDERS: dict[LadderName, SanctionLadder] = {
    # No freeze and no window: the whole history since the permit was issued (at most the repository's cap).
    LadderName.SE_8_2020: SanctionLadder(on_missed=(ThreeMissedPeriods(),), on_frozen=(),
                                         lookback=timedelta(days=3660), min_periods=3),
    LadderName.SE_3_2021: SanctionLadder(),
    # SE 5/2021 changes the reporting days (weekly, Friday) and keeps SE 3/2021's ladder. What it adds to the grounds
    # for revocation, operating while frozen, is found by an inspection in the field, not by a missed report, so it
    # is no rule of the reporting ladder.
    LadderName.SE_5_2021: SanctionLadder(),
}


def ladder_named(name: str) -> SanctionLadder:
    return LADDERS[LadderName(name)]


# ---------------------------------------------------------------------------------------- the regime timeline

# A regime's name: a circular's number ("SE-8/2020"), bounded, ASCII only.
REGIME_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9./_-]{0,39}$"
REGIME_SOURCE_MAX = 500
# The zone that reaches a date first (WIT, UTC+9): a date has begun nowhere while its midnight there is to come.
EARLIEST_ZONE = "Asia/Jayapura"


@dataclass(frozen=True)
class RegimeEntry:
    """One regime of the timeline: a circular's deadline rule and ladder, in force from `effective_on`."""

    name: str
    source: str
    effective_on: date
    rule: Regime
    ladder: LadderName
    # Whether a report for a period opened under it must carry the declaration of truth (`DeclarationOfTruth`).
    declaration: bool = DECLARATION_UNLESS_STATED

    def in_force_at(self, moment: datetime, zone: str) -> bool:
        """From the local midnight of `effective_on` in the plant's zone (compared as local dates, which is the same
        and holds for `date.min` as well)."""
        return moment.astimezone(ZoneInfo(zone)).date() >= self.effective_on

    def begun_anywhere(self, now: datetime) -> bool:
        return self.in_force_at(now, EARLIEST_ZONE)


# IOMKI_REPORT_REGIME (demonstrations and tests): one rule from the beginning of time under SE 3/2021's ladder
# (which SE 5/2021 keeps), requiring the declaration as SE 5/2021 does: it plays the regime in force today at
# another pace, so a client that passes a demonstration meets the same rules in production.
CONFIGURED_REGIME = "configured"


def configured_timeline(rule: Regime) -> RegimeTimeline:
    return RegimeTimeline((RegimeEntry(CONFIGURED_REGIME, "IOMKI_REPORT_REGIME", date.min, rule,
                                       LadderName.SE_3_2021, declaration=True),))


@dataclass(frozen=True)
class RegimeTimeline:
    """The regimes in order of their effective dates. Before the first, the first applies (no plant reported
    before it)."""

    entries: tuple[RegimeEntry, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(sorted(self.entries, key=lambda e: e.effective_on)))

    def in_force(self, moment: datetime, zone: str) -> RegimeEntry:
        """The last entry whose effective date's local midnight in `zone` is at or before `moment`."""
        if not self.entries:
            raise LookupError("the regime timeline is empty")
        found = self.entries[0]
        for entry in self.entries:
            if entry.in_force_at(moment, zone):
                found = entry
        return found

    def named(self, name: str) -> RegimeEntry | None:
        return next((entry for entry in self.entries if entry.name == name), None)

    def ladder_for(self, regime_name: str) -> SanctionLadder:
        return LADDERS[self.ladder_name_for(regime_name)]

    def ladder_name_for(self, regime_name: str) -> LadderName:
        """The ladder of the regime a period opened under. A name the timeline no longer holds (a period opened
        under IOMKI_REPORT_REGIME, say) is judged by SE 3/2021's ladder, the platform's default."""
        entry = self.named(regime_name)
        return entry.ladder if entry else LadderName.SE_3_2021

    def evidence(self, ladder: SanctionLadder, history: list[SettledPeriod]) -> list[SettledPeriod]:
        """The periods a ladder may count: those opened under regimes with the same rules. Never retroactive: misses
        under SE 8/2020 do not count towards SE 3/2021's freezes; SE 5/2021 keeps SE 3/2021's ladder, so a plant's
        warnings carry over from one to the other."""
        return [period for period in history if self.ladder_for(period.regime_name) == ladder]


class RegimeRefused(Refused):
    """An operator's change to the timeline that a rule refuses; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class RegimeExists(Refused):
    """A regime of that name is already in the timeline."""


class RegimeNotFound(Refused, refusals.NotFound):
    """No regime of that name."""


class RegimeInEffect(Refused):
    """The regime has taken effect somewhere: the timeline is never changed retroactively."""


def scheduled_entry(timeline: RegimeTimeline, *, name: str, source: str, effective_on: date, rule: str,
                    ladder: str, now: datetime, declaration: bool = DECLARATION_UNLESS_STATED) -> RegimeEntry:
    """A new regime an operator schedules ahead of time: a date not yet begun in any zone, a weekly rule, a
    circular's ladder, a name of its own, and whether its reports must carry the declaration of truth (unless
    stated, they must, as under the latest circular)."""
    if not re.fullmatch(REGIME_NAME_PATTERN, name):
        raise RegimeRefused("name", "letters, digits and . / _ - only, at most 40")
    if not source.strip() or len(source) > REGIME_SOURCE_MAX:
        raise RegimeRefused("source", f"the circular that sets the regime, 1 to {REGIME_SOURCE_MAX} characters")
    try:
        parsed = parse_regime(rule)
    except InvalidRegime as exc:
        raise RegimeRefused("rule", str(exc)) from exc
    if not isinstance(parsed, WeeklyDeadlines):
        raise RegimeRefused("rule", "a circular's rule is weekly or twice-weekly; every:<N>s is for demonstrations")
    try:
        ladder_name = LadderName(ladder)
    except ValueError:
        raise RegimeRefused("ladder", f"one of {', '.join(n.value for n in LadderName)}") from None
    entry = RegimeEntry(name, source.strip(), effective_on, parsed, ladder_name, declaration)
    if entry.begun_anywhere(now):
        raise RegimeRefused("effective_on", f"must be a date not yet begun in any zone (after "
                                            f"{now.astimezone(ZoneInfo(EARLIEST_ZONE)).date().isoformat()})")
    if timeline.named(name) is not None:
        raise RegimeExists(name)
    if any(e.effective_on == effective_on for e in timeline.entries):
        raise RegimeRefused("effective_on", "another regime takes effect that day")
    return entry


def withdrawn_entry(timeline: RegimeTimeline, name: str, *, now: datetime) -> RegimeEntry:
    """An entry an operator withdraws: only while it has not taken effect anywhere."""
    entry = timeline.named(name)
    if entry is None:
        raise RegimeNotFound("Regime")
    if entry.begun_anywhere(now):
        raise RegimeInEffect(name)
    return entry


def timeline_from_toml(document: dict[str, object]) -> tuple[RegimeEntry, ...]:
    """The `[[regime]]` tables of the shipped configuration, each checked as an operator's entry would be."""
    tables = document.get("regime")
    if not isinstance(tables, list) or not tables:
        raise InvalidRegime("the configuration names no [[regime]]")
    entries = []
    for table in tables:
        name, source, effective_on = table["name"], table["source"], table["effective_on"]
        declaration = table.get("declaration")
        if not (isinstance(name, str) and re.fullmatch(REGIME_NAME_PATTERN, name) and isinstance(source, str)
                and type(effective_on) is date and isinstance(declaration, bool)):
            raise InvalidRegime(f"[[regime]] {name!r}: a name, a source, a date and declaration = true or false")
        entries.append(RegimeEntry(name, source, effective_on, parse_regime(table["rule"]),
                                   LadderName(table["ladder"]), declaration))
    if len({e.name for e in entries}) != len(entries) or len({e.effective_on for e in entries}) != len(entries):
        raise InvalidRegime("each regime has a name and an effective date of its own")
    return tuple(entries)
