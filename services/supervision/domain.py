"""Field supervision: which plants to inspect first, what an inspection found, the public's complaints and the
regional offices' requests for sanctions.

Pure: no I/O; time is passed in. The handlers load, ask these rules, save what they answer.

Risk is kept, not recomputed: each event that changes a plant's inputs changes its counts, and `RiskScore`
turns the counts into a stored `rank_key` whose order is the order of today's scores, whatever today is
(see `RiskScore`). A worklist is then an index scan over `rank_key`.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import date, timedelta
from enum import StrEnum

from shared import refusals
from shared.contract import (
    REPORTED_PROTOCOL_ITEMS, FindingResult, GroundCode, GroundEvidence, InspectionBody, ProtocolItem, SanctionGround,
)

# ---------------------------------------------------------------------------------------------- errors


class SupervisionError(Exception):
    """What a request is refused for; api.py maps each kind to its problem in one table."""


class NotFound(SupervisionError, refusals.NotFound):
    """No such plant, inspection, complaint or request, or none the caller may see."""


class Invalid(SupervisionError):
    """A field breaks a rule the schema cannot state (a date against today, a ground reserved to the ladders)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


class IllegalTransition(SupervisionError):
    def __init__(self, what: str, current: str, action: str) -> None:
        super().__init__(f"The {what} is {current}: it cannot {action}.")
        self.current = current


class TooManyPhotos(SupervisionError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"An inspection holds at most {limit} photos.")


# ---------------------------------------------------------------------------------------------- risk


@dataclass(frozen=True)
class RiskCounts:
    """What raised a plant's risk since its last inspection (or since its permit, when never inspected)."""

    missed_reports: int = 0
    late_reports: int = 0
    protocol_lapses: int = 0  # reported checklist items answered "no"
    capacity_breaches: int = 0
    cases: int = 0
    clusters: int = 0
    complaints: int = 0

    def plus(self, **deltas: int) -> RiskCounts:
        return replace(self, **{name: getattr(self, name) + delta for name, delta in deltas.items()})

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


RISK_INPUTS: tuple[str, ...] = tuple(f.name for f in fields(RiskCounts))


@dataclass(frozen=True)
class RiskWeights:
    """Points per input since the last inspection, and per day since it. A cluster weighs most: it closes the plant
    (Kepmenkes 4641/2021); a missed report or a capacity breach is a step on a sanction ladder (SE 3/2021, PPKM)."""

    missed_reports: float = 5.0
    late_reports: float = 2.0
    protocol_lapses: float = 3.0
    capacity_breaches: float = 6.0
    cases: float = 3.0
    clusters: float = 15.0
    complaints: float = 4.0
    per_day: float = 0.1  # ten uninspected days weigh one point

    def __post_init__(self) -> None:
        if any(getattr(self, f.name) < 0 for f in fields(self)):
            raise ValueError("a risk weight is never negative")


@dataclass(frozen=True)
class RiskScore:
    """score(today) = Σ weight × count + per_day × (today − since), `since` the last inspection's day (or the
    permit's, never inspected).

    The time term is linear, so score(today) = rank_key + per_day × day_number(today), with
    rank_key = Σ weight × count − per_day × day_number(since): today adds the same to every plant, and ordering by
    the stored rank_key is ordering by today's score on any day. A plant's rank_key changes only when its counts or
    its `since` do, which is when an event about it is applied."""

    weights: RiskWeights = RiskWeights()

    def static(self, counts: RiskCounts) -> float:
        return sum(getattr(self.weights, name) * getattr(counts, name) for name in RISK_INPUTS)

    def rank_key(self, counts: RiskCounts, since: date) -> float:
        return self.static(counts) - self.weights.per_day * since.toordinal()

    def score(self, counts: RiskCounts, since: date, today: date) -> float:
        return self.static(counts) + self.weights.per_day * days_between(since, today)

    def score_of_rank(self, rank_key: float, today: date) -> float:
        """Today's score from a stored rank_key alone."""
        return rank_key + self.weights.per_day * today.toordinal()


def days_between(since: date, today: date) -> int:
    """Days since, never negative (a clock behind an event's date counts none)."""
    return max(0, (today - since).days)


@dataclass(frozen=True)
class PlantRisk:
    facility_id: uuid.UUID
    counts: RiskCounts
    since: date  # the last inspection's day, or the permit's when never inspected
    last_inspected_on: date | None = None

    def raised(self, **deltas: int) -> PlantRisk:
        return replace(self, counts=self.counts.plus(**deltas))

    def inspected(self, on: date) -> PlantRisk:
        """An inspection resets what it looked at: counts start again from its day. An inspection recorded late
        (an earlier day than one already recorded) does not move the clock back."""
        if self.last_inspected_on is not None and on < self.last_inspected_on:
            return self
        return replace(self, counts=RiskCounts(), since=on, last_inspected_on=on)

    def issued(self, on: date) -> PlantRisk:
        """A permit issued (again): a plant never inspected counts its days from it."""
        return self if self.last_inspected_on is not None else replace(self, since=on)


# ---------------------------------------------------------------------------------------------- inspections

TEAM_MAX = 12
PLANNED_AHEAD_MAX_DAYS = 366
INSPECTED_BEFORE_PLANNED_MAX_DAYS = 30
# A finding contradicts the report whose period started at most this many days before the inspection: the report
# that declared the plant's state at the time (SE 5/2021 weekly reports, with slack for a twice-weekly regime).
CONTRADICTION_WINDOW_DAYS = 14
PHOTOS_MAX = 10
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def has_control_characters(text: str, *, newline_allowed: bool = False) -> bool:
    return (_CONTROL_BUT_NEWLINE if newline_allowed else _CONTROL).search(text) is not None


class InspectionStatus(StrEnum):
    PLANNED = "planned"
    RECORDED = "recorded"


@dataclass(frozen=True)
class Inspector:
    name: str
    body: InspectionBody


def check_planned_on(planned_on: date, today: date) -> None:
    if planned_on < today - timedelta(days=1):
        raise Invalid("planned_on", "an inspection is planned from yesterday on")
    if planned_on > today + timedelta(days=PLANNED_AHEAD_MAX_DAYS):
        raise Invalid("planned_on", f"an inspection is planned at most {PLANNED_AHEAD_MAX_DAYS} days ahead")


def check_inspected_on(inspected_on: date, planned_on: date, today: date) -> None:
    if inspected_on > today:
        raise Invalid("inspected_on", "an inspection is recorded once it has happened, not for a day to come")
    if inspected_on < planned_on - timedelta(days=INSPECTED_BEFORE_PLANNED_MAX_DAYS):
        raise Invalid("inspected_on", f"more than {INSPECTED_BEFORE_PLANNED_MAX_DAYS} days before the planned day")


def complete_findings(given: Mapping[ProtocolItem, FindingResult]) -> dict[ProtocolItem, FindingResult]:
    """Every item of the protocol, in its order; an item not given was not checked."""
    return {item: given.get(item, FindingResult.NOT_CHECKED) for item in ProtocolItem}


@dataclass(frozen=True)
class DeclaredReport:
    """A report the company declared true (SE 5/2021), as ReportSubmitted tells it."""

    report_id: uuid.UUID
    period_starts_on: date
    protocol_lapses: frozenset[ProtocolItem]


class FindingContradictsDeclaration:
    """A health-protocol item found violated that the plant's declared report answered yes: field data contradicting
    the signed statement, a ground for revocation (SE 3/2021, SE 5/2021). The report is the latest declared one whose
    period started within `CONTRADICTION_WINDOW_DAYS` before the inspection (on its day included)."""

    @staticmethod
    def applies_to(report: DeclaredReport, inspected_on: date) -> bool:
        return timedelta(0) <= inspected_on - report.period_starts_on <= timedelta(days=CONTRADICTION_WINDOW_DAYS)

    @staticmethod
    def contradicted(findings: Mapping[ProtocolItem, FindingResult], report: DeclaredReport | None,
                     inspected_on: date) -> uuid.UUID | None:
        """The report a violation contradicts, or None."""
        if report is None or not FindingContradictsDeclaration.applies_to(report, inspected_on):
            return None
        contradicting = [item for item, result in findings.items() if result is FindingResult.VIOLATED
                         and item in REPORTED_PROTOCOL_ITEMS and item not in report.protocol_lapses]
        return report.report_id if contradicting else None


def inspection_reference(year: int, sequence: int) -> str:
    """INSP-YYYY-NNNNNN: the year's counter, at least six digits."""
    return f"INSP-{year:04d}-{sequence:06d}"


# ---------------------------------------------------------------------------------------------- complaints

# Crockford's base32: no I, L, O or U, so a reference read aloud or copied by hand is not mistaken.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
COMPLAINT_REF_LENGTH = 16  # 80 bits from `secrets`: not guessable, so it alone lets a filer follow a complaint
COMPLAINT_REF_PATTERN = rf"^ADU-[{CROCKFORD}]{{{COMPLAINT_REF_LENGTH}}}$"
COMPLAINT_TEXT_MIN, COMPLAINT_TEXT_MAX = 20, 2000


def new_complaint_reference() -> str:
    """`ADU-` (aduan, a complaint) and 16 random Crockford base32 characters."""
    return "ADU-" + "".join(secrets.choice(CROCKFORD) for _ in range(COMPLAINT_REF_LENGTH))


class ComplaintStatus(StrEnum):
    UNMATCHED = "unmatched"  # filed with an address, or a permit number the registry does not hold
    RECEIVED = "received"  # matched to a plant
    UNDER_REVIEW = "under_review"
    INSPECTED = "inspected"  # an inspection it was linked to was recorded
    CLOSED_UNFOUNDED = "closed_unfounded"
    CLOSED_RESOLVED = "closed_resolved"

    @property
    def open(self) -> bool:
        """Waiting for the office: counted on the plant's worklist row."""
        return self in (ComplaintStatus.RECEIVED, ComplaintStatus.UNDER_REVIEW)


CLOSED = frozenset({ComplaintStatus.CLOSED_UNFOUNDED, ComplaintStatus.CLOSED_RESOLVED})


class ComplaintLifecycle:
    """unmatched → received (matched to a plant) → under_review → inspected → closed_unfounded | closed_resolved.

    An office may close a complaint at any open step (an unmatched one only as unfounded: it names no plant to have
    resolved anything at); an inspection marks linked complaints inspected; closed is final."""

    _MOVES: dict[ComplaintStatus, frozenset[ComplaintStatus]] = {
        ComplaintStatus.UNMATCHED: frozenset({ComplaintStatus.RECEIVED, ComplaintStatus.CLOSED_UNFOUNDED}),
        ComplaintStatus.RECEIVED: frozenset({ComplaintStatus.UNDER_REVIEW, ComplaintStatus.INSPECTED} | CLOSED),
        ComplaintStatus.UNDER_REVIEW: frozenset({ComplaintStatus.INSPECTED} | CLOSED),
        ComplaintStatus.INSPECTED: CLOSED,
        ComplaintStatus.CLOSED_UNFOUNDED: frozenset(),
        ComplaintStatus.CLOSED_RESOLVED: frozenset(),
    }

    @classmethod
    def move(cls, current: ComplaintStatus, to: ComplaintStatus) -> ComplaintStatus:
        if to not in cls._MOVES[current]:
            raise IllegalTransition("complaint", current.value, f"become {to.value}")
        return to

    @classmethod
    def may_link(cls, current: ComplaintStatus) -> bool:
        """An inspection can be planned on a complaint that is matched and not yet inspected or closed."""
        return ComplaintStatus.INSPECTED in cls._MOVES[current]


# ---------------------------------------------------------------------------------------------- sanction requests


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"


# The ladders' grounds are the reports service's to recommend, from the reports themselves (SE 3/2021, PPKM).
LADDER_GROUNDS = frozenset({GroundCode.MISSED_REPORTS, GroundCode.CAPACITY_BREACHES})


@dataclass(frozen=True)
class RecordedInspection:
    reference: str
    contradicted_report_id: uuid.UUID | None


def request_ground(ground: SanctionGround, inspection: RecordedInspection | None) -> SanctionGround:
    """The ground a regional office asks on, its evidence completed from the inspection it rests on."""
    if ground.code in LADDER_GROUNDS:
        raise Invalid("ground.code", f"{ground.code.value} is the reporting ladders' ground alone; a regional office "
                                     "asks on a finding, a false declaration, an unobserved closure or another ground")
    if ground.code is GroundCode.OTHER and not (ground.text or "").strip():
        raise Invalid("ground.text", "a ground of `other` says what it is")
    if inspection is None:
        return ground
    evidence = ground.evidence
    if evidence.finding is None:
        evidence = evidence.model_copy(update={"finding": inspection.reference})
    if (ground.code is GroundCode.FALSE_DECLARATION and evidence.report_id is None
            and inspection.contradicted_report_id is not None):
        evidence = evidence.model_copy(update={"report_id": inspection.contradicted_report_id})
    return ground.model_copy(update={"evidence": GroundEvidence.model_validate(evidence.model_dump())})
