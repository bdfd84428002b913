"""Permits: the IOMKI permit lifecycle (DESIGN §1). Pure: no I/O, time is passed in."""

from __future__ import annotations

import re
import tomllib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from lokal import parse_npwp

from shared import refusals, regions
from shared.contract import (
    INT4_MAX, KBLI_PATTERN, LETTER_NUMBER_PATTERN, NIB_PATTERN, PERMIT_NUMBER_PATTERN, ClassBasis, GroundCode,
    GroundEvidence, LetterKind, ObjectionOutcome, PermitKind, RequestDecision, SanctionAction, SanctionGround,
    SectorClass, TenancyEndCause, WarningCause,
)


class PermitStatus(StrEnum):
    SUBMITTED = "SUBMITTED"
    ISSUED = "ISSUED"
    REJECTED = "REJECTED"
    FROZEN = "FROZEN"
    REVOKED = "REVOKED"


class Action(StrEnum):
    ISSUE = "issue"
    REJECT = "reject"
    FREEZE = "freeze"
    REACTIVATE = "reactivate"
    REVOKE = "revoke"
    # An objection decided for the company reverses the sanction: wholly (the permit as it was before it), or a
    # revocation reduced to a freeze. Taken only by `Objection.decide`, which knows the sanction reversed.
    REINSTATE = "reinstate"
    REDUCE_TO_FREEZE = "reduce_to_freeze"


# The whole lifecycle in one table: from which states each action may be taken, and where it leads.
TRANSITIONS: dict[Action, tuple[frozenset[PermitStatus], PermitStatus]] = {
    Action.ISSUE: (frozenset({PermitStatus.SUBMITTED}), PermitStatus.ISSUED),
    Action.REJECT: (frozenset({PermitStatus.SUBMITTED}), PermitStatus.REJECTED),
    Action.FREEZE: (frozenset({PermitStatus.ISSUED}), PermitStatus.FROZEN),
    Action.REACTIVATE: (frozenset({PermitStatus.FROZEN}), PermitStatus.ISSUED),
    Action.REVOKE: (frozenset({PermitStatus.ISSUED, PermitStatus.FROZEN}), PermitStatus.REVOKED),
    Action.REINSTATE: (frozenset({PermitStatus.FROZEN, PermitStatus.REVOKED}), PermitStatus.ISSUED),
    Action.REDUCE_TO_FREEZE: (frozenset({PermitStatus.REVOKED}), PermitStatus.FROZEN),
}

# The actions that sanction a permit: each names its ground (see "grounds" below); a company may object to one
# (see "objections"), and these actions reverse one.
SANCTIONS = frozenset({Action.FREEZE, Action.REVOKE})
REVERSALS = frozenset({Action.REINSTATE, Action.REDUCE_TO_FREEZE})

# A plant holds at most one permit in these states ("one IOMKI per plant address", SE 7/2020).
ACTIVE = frozenset({PermitStatus.SUBMITTED, PermitStatus.ISSUED, PermitStatus.FROZEN})

# SE 3/2021: a revoked company may reapply for the same plant no sooner than 14 days after revocation.
REAPPLY_AFTER_REVOCATION = timedelta(days=14)

# Who acts when a consumed event changes a permit (recorded in history like any officer).
SYSTEM_ROLE = "system"


class PermitsRefusal(Exception):
    """What a request is refused for: a rule says no, or what it names does not exist. api.py maps each kind to
    its problem in one table."""


class PermitNotFound(PermitsRefusal, refusals.NotFound):
    """No such permit, or none the caller may see."""


class IllegalTransition(PermitsRefusal):
    def __init__(self, current: PermitStatus, action: Action) -> None:
        super().__init__(f"cannot {action.value} a permit that is {current.value}")
        self.current = current
        self.action = action


@dataclass(frozen=True)
class Transition:
    """One row of a permit's history: what happened, who did it, why, and what caused it."""

    from_status: PermitStatus | None
    to_status: PermitStatus
    action: str
    actor: str
    role: str
    reason: str
    at: datetime
    causation_id: str | None = None
    ground: SanctionGround | None = None  # every freeze and revocation names one


@dataclass(frozen=True)
class Permit:
    permit_id: uuid.UUID
    facility_id: uuid.UUID
    nib: str
    company_name: str
    province_code: str
    regency_code: str
    sector_class: str
    workforce_total: int
    status: PermitStatus
    permit_number: str | None = None
    freeze_count: int = 0
    revoked_at: datetime | None = None
    issued_at: datetime | None = None
    plant_key: str = ""
    # The class in force (`sector_class` above) is the KBLI table's reading, or the company's claim an operator
    # accepted; None: a plant recorded before the table, its class self-declared until the service first derives it.
    export_oriented: bool = False
    class_basis: ClassBasis | None = ClassBasis.KBLI_TABLE
    class_table_version: str | None = None  # for an operator's class: the table's version it was set over
    kind: PermitKind = PermitKind.PLANT
    # The NIB of the estate that confirmed this plant as its tenant, while it is one: that estate reads the permit.
    estate_nib: str | None = None

    @classmethod
    def apply(cls, *, facility_id: uuid.UUID, nib: str, company_name: str, province_code: str,
              regency_code: str, sector_class: str, workforce_total: int, actor: str, role: str,
              now: datetime, plant_key: str = "", export_oriented: bool = False,
              kind: PermitKind = PermitKind.PLANT) -> tuple[Permit, Transition]:
        permit = cls(uuid.uuid4(), facility_id, nib, company_name, province_code, regency_code, sector_class,
                     workforce_total, PermitStatus.SUBMITTED, plant_key=plant_key, export_oriented=export_oriented,
                     kind=kind)
        return permit, Transition(None, PermitStatus.SUBMITTED, "apply", actor, role, "application submitted", now)

    @property
    def announced(self) -> bool:
        """Issued or frozen: the plant operates under its permit, and what changes its class is announced."""
        return self.status in (PermitStatus.ISSUED, PermitStatus.FROZEN)

    def act(self, action: Action, *, actor: str, role: str, reason: str, now: datetime,
            permit_number: str | None = None, causation_id: str | None = None,
            ground: SanctionGround | None = None, reversing: Sanction | None = None) -> tuple[Permit, Transition]:
        allowed_from, target = TRANSITIONS[action]
        if self.status not in allowed_from:
            raise IllegalTransition(self.status, action)
        if (action in SANCTIONS) != (ground is not None):
            raise ValueError(f"{action.value}: a freeze or a revocation names a ground, nothing else does")
        changed = replace(self, status=target)
        if action is Action.ISSUE:
            if permit_number is None:
                raise ValueError("issuing needs a permit number")
            changed = replace(changed, permit_number=permit_number, issued_at=now)
        elif action is Action.FREEZE:
            changed = replace(changed, freeze_count=self.freeze_count + 1)
        elif action is Action.REVOKE:
            changed = replace(changed, revoked_at=now)
        elif action in REVERSALS:
            if reversing is None or reversing.to_status is not self.status:
                raise ValueError(f"{action.value} reverses the sanction the permit is under")
            changed = replace(changed, revoked_at=None, freeze_count=self._freezes_after(action, reversing))
        return changed, Transition(self.status, target, action.value, actor, role, reason, now, causation_id,
                                   ground)

    def _freezes_after(self, action: Action, reversed_: Sanction) -> int:
        """The freezes that stand once a sanction is reversed: a freeze overturned no longer counts towards the
        next one (SE 3/2021's second freeze); a revocation reduced to a freeze counts as one, unless the permit
        was already frozen when it was revoked (that freeze is the one that stands)."""
        if reversed_.action is Action.FREEZE:
            return max(self.freeze_count - 1, 0)
        if action is Action.REDUCE_TO_FREEZE and reversed_.from_status is PermitStatus.ISSUED:
            return self.freeze_count + 1
        return self.freeze_count

    def apply_sanction(self, recommendation: SanctionRecommendation, *, now: datetime,
                       causation_id: str) -> tuple[Permit, Transition]:
        """The reports service recommends; the permit decides. Illegal in the current state → IllegalTransition.

        A second freeze of a frozen permit is not applied here: per the ladder (SE 3/2021) that is a revocation,
        and reports decides to recommend it.
        """
        return self.act(recommendation.action, actor=recommendation.source, role=SYSTEM_ROLE,
                        reason=recommendation.reason, now=now, causation_id=causation_id,
                        ground=recommendation.ground)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def reapply_after(self) -> date | None:
        return self.reapply_from.date() if self.reapply_from else None

    @property
    def reapply_from(self) -> datetime | None:
        return self.revoked_at + REAPPLY_AFTER_REVOCATION if self.revoked_at else None


def permit_number(year: int, sequence: int) -> str:
    return f"IOMKI-{year}-{sequence:06d}"


PERMIT_NUMBER = re.compile(PERMIT_NUMBER_PATTERN)  # fullmatch it: `$` also matches before a final newline


# ------------------------------------------------------------------------------------------- sanctions


@dataclass(frozen=True)
class SanctionRecommendation:
    """What the reports service recommends (SanctionRecommended), in the permit's own terms."""

    action: Action
    rule: str
    ladder: str | None
    evidence: GroundEvidence
    source: str = "reports"
    code: GroundCode = GroundCode.MISSED_REPORTS  # or CAPACITY_BREACHES: the two grounds a ladder judges

    def __post_init__(self) -> None:
        if self.code not in LADDER_GROUNDS:
            raise ValueError(f"a ladder recommends on {' or '.join(LADDER_GROUNDS)}, not {self.code.value}")

    @property
    def reason(self) -> str:
        if self.code is GroundCode.CAPACITY_BREACHES:
            return (f"{self.rule}: {len(self.evidence.breaches)} capacity breach(es), "
                    f"{len(self.evidence.warnings)} warning(s)")
        return (f"{self.rule}: {len(self.evidence.missed_periods)} missed period(s), "
                f"{len(self.evidence.warnings)} warning(s)")

    @property
    def ground(self) -> SanctionGround:
        """The ladder's ground (missed reports, or repeated capacity breaches) under the ladder that judged it,
        resting on what it counted: the periods, or the breaches, and the warnings."""
        return SanctionGround(code=self.code, ladder=self.ladder, rule=self.rule, evidence=self.evidence)


# The grounds only the reports service's ladders judge (see `LadderOnly`).
LADDER_GROUNDS = (GroundCode.MISSED_REPORTS, GroundCode.CAPACITY_BREACHES)


# ------------------------------------------------------------------------------------------- grounds


class InvalidGround(PermitsRefusal):
    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = list(errors)


@dataclass(frozen=True)
class GroundFacts:
    """What the permits service knows about the evidence an officer names, looked up before the rules run."""

    report_declared: bool = False  # the report is this permit's and was declared true (SE 5/2021)
    closure_of_plant: bool = False  # the closure was ordered for this permit's plant


class GroundRule(Protocol):
    @property
    def code(self) -> GroundCode: ...  # read-only: the rules are frozen dataclasses

    def errors(self, ground: SanctionGround, facts: GroundFacts) -> Iterable[FieldError]: ...


@dataclass(frozen=True)
class LadderOnly:
    """Missed reports are judged by the reporting regime's ladder in the reports service (SE 8/2020, SE 3/2021,
    SE 5/2021), which names the periods; repeated capacity breaches by the capacity ladder there, which names the
    breaches. An officer does not judge either by hand."""

    code: GroundCode = GroundCode.MISSED_REPORTS

    def errors(self, ground: SanctionGround, facts: GroundFacts) -> Iterable[FieldError]:
        what = ("missed reports", "pelaporan yang terlewat") if self.code is GroundCode.MISSED_REPORTS else (
            "repeated capacity breaches", "pelanggaran batas kapasitas yang berulang")
        yield FieldError("ground.code", f"{what[0]} are judged by the reports service's ladder, not by an officer "
                                        f"({what[1]} dinilai oleh tangga sanksi)")


@dataclass(frozen=True)
class ContradictedDeclaration:
    """SE 5/2021: a company declares each report true; a finding that contradicts a declared report grounds a
    sanction. The ground names the report and the finding."""

    code: GroundCode = GroundCode.FALSE_DECLARATION

    def errors(self, ground: SanctionGround, facts: GroundFacts) -> Iterable[FieldError]:
        if ground.evidence.report_id is None:
            yield FieldError("ground.evidence.report_id", "name the declared report the finding contradicts")
        elif not facts.report_declared:
            yield FieldError("ground.evidence.report_id",
                             "no report of this permit declared true has this id")
        if not ground.evidence.finding:
            yield FieldError("ground.evidence.finding", "name the finding that contradicts the report")


@dataclass(frozen=True)
class FindingNamed:
    """A violation of the health protocol (SE Menperin 4/2020) found on inspection: the ground names the finding."""

    code: GroundCode = GroundCode.INSPECTION_FINDING

    def errors(self, ground: SanctionGround, facts: GroundFacts) -> Iterable[FieldError]:
        if not ground.evidence.finding:
            yield FieldError("ground.evidence.finding", "name the inspection's finding")


@dataclass(frozen=True)
class ClosureOfThePlant:
    """Operating during an ordered closure: the ground names a closure ordered for this very plant."""

    code: GroundCode = GroundCode.CLOSURE_NOT_OBSERVED

    def errors(self, ground: SanctionGround, facts: GroundFacts) -> Iterable[FieldError]:
        if ground.evidence.closure_id is None:
            yield FieldError("ground.evidence.closure_id", "name the closure the plant did not observe")
        elif not facts.closure_of_plant:
            yield FieldError("ground.evidence.closure_id", "no closure of this plant has this id")


@dataclass(frozen=True)
class CompanysOwnRequest:
    """The company asked for it (a plant that stops, a permit it gives up): its request is the ground."""

    code: GroundCode = GroundCode.COMPANY_REQUEST

    def errors(self, ground: SanctionGround, facts: GroundFacts) -> Iterable[FieldError]:
        return ()


OTHER_GROUND_MIN_TEXT = 20  # a sentence, not a word: the letter and the ministry's count must say why


@dataclass(frozen=True)
class OtherStated:
    """Any other ground is stated in words, enough to be read in the letter and counted apart."""

    code: GroundCode = GroundCode.OTHER

    def errors(self, ground: SanctionGround, facts: GroundFacts) -> Iterable[FieldError]:
        if len((ground.text or "").strip()) < OTHER_GROUND_MIN_TEXT:
            yield FieldError("reason", f"another ground is stated in at least {OTHER_GROUND_MIN_TEXT} characters")


# Officers' grounds, one rule each; the closed list is GroundCode.
GROUND_RULES: dict[GroundCode, GroundRule] = {rule.code: rule for rule in (
    LadderOnly(), LadderOnly(GroundCode.CAPACITY_BREACHES), ContradictedDeclaration(), FindingNamed(),
    ClosureOfThePlant(), CompanysOwnRequest(), OtherStated(),
)}


def check_ground(ground: SanctionGround, facts: GroundFacts) -> None:
    """An officer's ground must rest on what it names; refused with every field that does not."""
    errors = list(GROUND_RULES[ground.code].errors(ground, facts))
    if errors:
        raise InvalidGround(errors)


# ------------------------------------------------------------------------------------------- sanction requests


class SanctionRequestStatus(StrEnum):
    PENDING = "pending"  # in the operators' worklist
    APPROVED = "approved"  # the permit was frozen or revoked on the request's ground
    DECLINED = "declined"  # by an operator, or at intake (its ground does not hold, or the permit cannot take it)


class SanctionRequestNotFound(PermitsRefusal, refusals.NotFound):
    """No such sanction request, or none the caller may see."""


class SanctionRequestAlreadyDecided(PermitsRefusal):
    def __init__(self, request: SanctionRequest) -> None:
        super().__init__(f"sanction request {request.request_id} was already {request.status.value}")
        self.request = request


INTAKE_ACTOR = "permits"  # who declines a request at intake, in its record


@dataclass(frozen=True)
class SanctionRequest:
    """A regional office's request that the ministry freeze or revoke a permit (the office never sanctions), from
    its arrival to an operator's decision."""

    request_id: uuid.UUID
    permit_id: uuid.UUID
    action: Action
    ground: SanctionGround
    reason: str
    office_region: str
    inspection_id: uuid.UUID | None
    requested_at: datetime
    received_at: datetime
    status: SanctionRequestStatus = SanctionRequestStatus.PENDING
    decided_by: str | None = None
    decided_role: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None

    @classmethod
    def receive(cls, *, request_id: uuid.UUID, permit: Permit, action: SanctionAction, ground: SanctionGround,
                reason: str, office_region: str, inspection_id: uuid.UUID | None, requested_at: datetime,
                facts: GroundFacts, now: datetime) -> SanctionRequest:
        """The request as it arrives: pending, or declined at once when its ground does not rest on its evidence
        (`GROUND_RULES`, as for an officer's own sanction) or the permit cannot take the action (`TRANSITIONS`)."""
        # The letter and the history quote the office's words where the ground itself states none.
        stated = ground if ground.text else ground.model_copy(update={"text": reason})
        request = cls(request_id, permit.permit_id, Action(action.value), stated, reason, office_region,
                      inspection_id, requested_at, now)
        refusal = request.refusal(permit, facts)
        if refusal is None:
            return request
        return replace(request, status=SanctionRequestStatus.DECLINED, decided_by=INTAKE_ACTOR,
                       decided_role=SYSTEM_ROLE, decided_at=now, decision_reason=refusal)

    def refusal(self, permit: Permit, facts: GroundFacts) -> str | None:
        """Why the request cannot be granted as it stands (naming the field, or the permit's state), or None."""
        errors = list(GROUND_RULES[self.ground.code].errors(self.ground, facts))
        if errors:
            named = "; ".join(f"{e.field}: {e.message}" for e in errors)
            return f"Dasar sanksi tidak terpenuhi / The ground does not hold: {named}"
        if permit.status not in TRANSITIONS[self.action][0]:
            return (f"Izin berstatus {permit.status.value} / The permit is {permit.status.value}: "
                    f"cannot {self.action.value} it")
        return None

    @property
    def pending(self) -> bool:
        return self.status is SanctionRequestStatus.PENDING

    @property
    def decision(self) -> RequestDecision | None:
        return {SanctionRequestStatus.APPROVED: RequestDecision.APPROVED,
                SanctionRequestStatus.DECLINED: RequestDecision.DECLINED}.get(self.status)

    def decide(self, decision: RequestDecision, permit: Permit, *, reason: str, actor: str, role: str, now: datetime,
               causation_id: str | None = None) -> tuple[SanctionRequest, tuple[Permit, Transition] | None]:
        """An operator's decision, once. Approved, the permit is frozen or revoked through its lifecycle on the
        request's ground (an illegal move is refused: `IllegalTransition`), the history naming the request and its
        office; declined, nothing changes."""
        if not self.pending:
            raise SanctionRequestAlreadyDecided(self)
        if not _says_something(reason):
            raise TextMissing("reason", "a decision on a sanction request must state its reasons")
        if permit.permit_id != self.permit_id:
            raise ValueError(f"request {self.request_id} is not about permit {permit.permit_id}")
        decided = replace(self, decided_by=actor, decided_role=role, decided_at=now, decision_reason=reason)
        if decision is RequestDecision.DECLINED:
            return replace(decided, status=SanctionRequestStatus.DECLINED), None
        change = permit.act(self.action, actor=actor, role=role, reason=(
            f"Permohonan sanksi {self.request_id} dari dinas wilayah {self.office_region} disetujui / Sanction "
            f"request {self.request_id} of the regional office of {self.office_region} approved: {reason}"),
            now=now, causation_id=causation_id, ground=self.ground)
        return replace(decided, status=SanctionRequestStatus.APPROVED), change


# The ministry works on Jakarta's calendar: it counts sanctions by its months and holds its worklists to its days.
MINISTRY_ZONE = ZoneInfo("Asia/Jakarta")


def counting_month(at: datetime) -> date:
    """The first day of the month, in Jakarta, in which a sanction counts."""
    return at.astimezone(MINISTRY_ZONE).date().replace(day=1)


# ------------------------------------------------------------------------------------------- reports filed


@dataclass(frozen=True)
class FiledReport:
    """A report the reports service accepted for one of our permits (ReportSubmitted), as far as permits needs it:
    which period it answers, whether it came late, whether the company declared it true (SE 5/2021)."""

    report_id: uuid.UUID
    permit_id: uuid.UUID
    period_id: uuid.UUID
    late: bool
    declared: bool
    at: datetime


# ------------------------------------------------------------------------------------------- reactivation
# SE 3/2021: a frozen permit operates again once the company has filed the reports it missed (late) and says how it
# will keep to the duty; an operator reviews each request. Each condition is a named rule; a request is filed only
# when every one is met, and refused naming each one that is not.

# What a statement of corrective action must hold to say anything: letters and digits, not spaces or dots.
CORRECTIVE_ACTION_MIN_CHARACTERS = 30
CORRECTIVE_ACTION_MAX_LENGTH = 4000


class RequestStatus(StrEnum):
    PENDING = "pending"  # in the operators' review queue
    APPROVED = "approved"  # the permit was reactivated
    REJECTED = "rejected"  # with the operator's reason; the permit stays frozen


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


def missed_periods_of(ground: SanctionGround | None) -> tuple[uuid.UUID, ...]:
    """The reporting periods a freeze rests on: the evidence of a freeze on the ground of missed reports. A freeze on
    any other ground (or one recorded before freezes named a ground) rests on none."""
    if ground is None or ground.code is not GroundCode.MISSED_REPORTS:
        return ()
    return tuple(dict.fromkeys(ground.evidence.missed_periods))


@dataclass(frozen=True)
class ReactivationFacts:
    """What the conditions read when a company asks: its permit, the periods the freeze rests on, which of those
    have a report filed, its statement, and its request still awaiting a decision, if any."""

    permit: Permit
    missed_periods: tuple[uuid.UUID, ...]
    filed_periods: frozenset[uuid.UUID]
    corrective_action: str
    open_request: uuid.UUID | None = None


@dataclass(frozen=True)
class ConditionCheck:
    """One condition as checked: met or not, and what it asks, in Bahasa Indonesia then English."""

    condition: str
    met: bool
    message: str
    missing_periods: tuple[uuid.UUID, ...] = ()  # MissedReportsFiled: the periods still without a report
    open_request: uuid.UUID | None = None  # OneOpenRequestAtATime: the request awaiting a decision


@dataclass(frozen=True)
class PermitIsFrozen:
    """Only a frozen permit is reactivated: an issued one operates already, a revoked one is ended (the company
    applies again after 14 days)."""

    name: str = "PermitIsFrozen"
    about_the_request: bool = False
    message: str = ("Izin tidak sedang dibekukan: hanya izin yang dibekukan yang dapat diaktifkan kembali / "
                    "The permit is not frozen: only a frozen permit can be reactivated")

    def check(self, facts: ReactivationFacts) -> ConditionCheck:
        return ConditionCheck(self.name, facts.permit.status is PermitStatus.FROZEN, self.message)


@dataclass(frozen=True)
class MissedReportsFiled:
    """Every missed period the freeze rests on has a report filed (late): the company makes good what it owed first.
    A freeze that rests on no missed period (another ground) asks for none."""

    name: str = "MissedReportsFiled"
    about_the_request: bool = False

    def check(self, facts: ReactivationFacts) -> ConditionCheck:
        missing = tuple(p for p in facts.missed_periods if p not in facts.filed_periods)
        message = (f"Laporan untuk {len(missing)} periode yang terlewat belum disampaikan; sampaikan laporan "
                   f"tersebut (terlambat) terlebih dahulu / The reports of {len(missing)} missed period(s) have not "
                   "been filed; file them (late) first") if missing else (
                   "Laporan untuk setiap periode yang terlewat telah disampaikan / "
                   "The report of every missed period has been filed")
        return ConditionCheck(self.name, not missing, message, missing_periods=missing)


@dataclass(frozen=True)
class CorrectiveActionStated:
    """The company states the corrective action it has taken: at least `min_characters` letters or digits, so that
    a blank or a row of dots is not a statement."""

    min_characters: int = CORRECTIVE_ACTION_MIN_CHARACTERS
    name: str = "CorrectiveActionStated"
    about_the_request: bool = True

    def check(self, facts: ReactivationFacts) -> ConditionCheck:
        written = sum(character.isalnum() for character in facts.corrective_action)
        message = (f"Pernyataan tindakan perbaikan wajib diisi, sekurang-kurangnya {self.min_characters} huruf atau "
                   f"angka / A statement of corrective action is required, at least {self.min_characters} letters "
                   "or digits")
        return ConditionCheck(self.name, written >= self.min_characters, message)


@dataclass(frozen=True)
class OneOpenRequestAtATime:
    """A company's request awaits its decision before it may ask again: the operators review one request per permit
    at a time."""

    name: str = "OneOpenRequestAtATime"
    about_the_request: bool = False
    message: str = ("Permohonan pengaktifan kembali sebelumnya masih menunggu keputusan / "
                    "An earlier reactivation request is still awaiting a decision")

    def check(self, facts: ReactivationFacts) -> ConditionCheck:
        return ConditionCheck(self.name, facts.open_request is None, self.message, open_request=facts.open_request)


class ReactivationCondition(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def about_the_request(self) -> bool: ...  # about what the request says (422), not the permit's state (409)

    def check(self, facts: ReactivationFacts) -> ConditionCheck: ...


REACTIVATION_CONDITIONS: tuple[ReactivationCondition, ...] = (
    PermitIsFrozen(), MissedReportsFiled(), CorrectiveActionStated(), OneOpenRequestAtATime(),
)


def reactivation_outlook(facts: ReactivationFacts,
                         conditions: Sequence[ReactivationCondition] = REACTIVATION_CONDITIONS) -> list[ConditionCheck]:
    """Where the permit stands before the company asks: the conditions about its state (the statement is judged
    when it is made)."""
    return [condition.check(facts) for condition in conditions if not condition.about_the_request]


class ReactivationRefused(PermitsRefusal):
    """A request that does not meet every condition: each one unmet, in the order the conditions are listed."""

    def __init__(self, unmet: Sequence[ConditionCheck], *, about_the_request_only: bool) -> None:
        super().__init__("; ".join(check.message for check in unmet))
        self.unmet = list(unmet)
        self.about_the_request_only = about_the_request_only


class ReactivationRequestNotFound(PermitsRefusal, refusals.NotFound):
    """No such reactivation request, or none the caller may see."""


class RequestAlreadyDecided(PermitsRefusal):
    def __init__(self, request: ReactivationRequest) -> None:
        super().__init__(f"reactivation request {request.request_id} was already {request.status.value}")
        self.request = request


class RequestForAnotherFreeze(PermitsRefusal):
    """The permit is no longer in the freeze the request answered (reactivated or revoked since): it can only be
    rejected."""

    def __init__(self, request: ReactivationRequest, permit: Permit) -> None:
        super().__init__(f"reactivation request {request.request_id} answered freeze {request.freeze_count}; the "
                         f"permit is {permit.status.value} after {permit.freeze_count} freeze(s)")
        self.request = request
        self.permit = permit


@dataclass(frozen=True)
class ReactivationRequest:
    """A frozen company's request to operate again, from filing to the operator's decision."""

    request_id: uuid.UUID
    permit_id: uuid.UUID
    status: RequestStatus
    corrective_action: str
    missed_periods: tuple[uuid.UUID, ...]  # the freeze's missed periods, filed late: excused once approved
    freeze_count: int  # which freeze of the permit it answers
    conditions: tuple[ConditionCheck, ...]  # as checked when it was filed
    requested_by: str
    requested_at: datetime
    decided_by: str | None = None
    decided_role: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None

    @classmethod
    def file(cls, facts: ReactivationFacts, *, actor: str, now: datetime,
             conditions: Sequence[ReactivationCondition] = REACTIVATION_CONDITIONS) -> ReactivationRequest:
        """The request, or `ReactivationRefused` naming every condition unmet."""
        checks = [(condition, condition.check(facts)) for condition in conditions]
        unmet = [(condition, check) for condition, check in checks if not check.met]
        if unmet:
            raise ReactivationRefused([check for _, check in unmet],
                                      about_the_request_only=all(condition.about_the_request for condition, _ in unmet))
        return cls(uuid.uuid4(), facts.permit.permit_id, RequestStatus.PENDING, facts.corrective_action.strip(),
                   facts.missed_periods, facts.permit.freeze_count, tuple(check for _, check in checks), actor, now)

    @property
    def pending(self) -> bool:
        return self.status is RequestStatus.PENDING

    def decide(self, decision: Decision, permit: Permit, *, reason: str, actor: str, role: str, now: datetime,
               causation_id: str | None = None) -> tuple[ReactivationRequest, tuple[Permit, Transition] | None]:
        """The operator's decision, once. Approving reactivates the permit through its lifecycle (`TRANSITIONS`), so
        only the freeze the request answers can be lifted by it; rejecting leaves the permit as it is."""
        if not self.pending:
            raise RequestAlreadyDecided(self)
        decided = replace(self, decided_by=actor, decided_role=role, decided_at=now, decision_reason=reason)
        if decision is Decision.REJECT:
            return replace(decided, status=RequestStatus.REJECTED), None
        if permit.permit_id != self.permit_id:
            raise ValueError(f"request {self.request_id} is not about permit {permit.permit_id}")
        if permit.status is PermitStatus.FROZEN and permit.freeze_count != self.freeze_count:
            raise RequestForAnotherFreeze(self, permit)
        change = permit.act(Action.REACTIVATE, actor=actor, role=role,
                            reason=f"reactivation request {self.request_id} approved: {reason}", now=now,
                            causation_id=causation_id)
        return replace(decided, status=RequestStatus.APPROVED), change

    def lapsed(self, transition: Transition) -> ReactivationRequest:
        """`RequestLapsesWithTheFreeze`: the permit left the freeze another way (an officer reactivated or revoked
        it, an objection reversed the freeze): the request has nothing left to decide and is closed as rejected,
        by whoever moved the permit, saying why, so that it leaves the worklist."""
        if not self.pending:
            raise RequestAlreadyDecided(self)
        return replace(self, status=RequestStatus.REJECTED, decided_by=transition.actor, decided_role=transition.role,
                       decided_at=transition.at,
                       decision_reason=f"Izin tidak lagi dibekukan ({transition.action}): permohonan tidak diperlukan "
                                       f"lagi. The permit is no longer frozen ({transition.action}): the request "
                                       "lapses.")


def leaves_the_freeze(transition: Transition) -> bool:
    return transition.from_status is PermitStatus.FROZEN and transition.to_status is not PermitStatus.FROZEN


# ------------------------------------------------------------------------------------------- sector classes
# What a plant may run under PPKM depends on its sector: critical, essential (the export-oriented industries among
# them) or neither (Inmendagri 15/2021 and 22/2021). The class is read from the plant's KBLI codes through a table
# shipped as data (kbli_sectors.toml); a company that reads its plant otherwise claims its class, and an operator
# accepts or rejects the claim.

KBLI_PREFIX = re.compile(r"[0-9]{2,5}")  # fullmatch it
SECTOR_TABLE_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,39}")  # fullmatch it
SECTOR_TABLE_MAX_ROWS = 2000  # more than the 5-digit codes of KBLI 2020's manufacturing section
SECTOR_TABLE_SOURCE_MAX_LENGTH = 1000
SECTOR_ROW_NAME_MAX_LENGTH = 200


class InvalidSectorTable(ValueError):
    """A malformed KBLI sector table: every problem found, each naming where it is."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("KBLI sector table: " + "; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Classing:
    """A plant's sector class and whether its activities are export-oriented."""

    sector_class: SectorClass
    export_oriented: bool


NOT_LISTED = Classing(SectorClass.NON_ESSENTIAL, False)  # what the table says of a code no row matches


@dataclass(frozen=True)
class SectorRow:
    """One row of the table: the KBLI 2020 codes under `prefix` (2 to 5 digits) are of this class."""

    prefix: str
    classing: Classing
    name: str = ""


@dataclass(frozen=True)
class SectorReading:
    """What the table says of one code: its class, and the row that said it (None: no row matched)."""

    classing: Classing
    row: SectorRow | None = None


@dataclass(frozen=True)
class KbliSectorTable:
    version: str
    source: str
    rows: tuple[SectorRow, ...]
    _by_prefix: dict[str, SectorRow] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems = [*_version_problems(self.version), *_source_problems(self.source)]
        seen: set[str] = set()
        for row in self.rows:
            if not isinstance(row.prefix, str) or not KBLI_PREFIX.fullmatch(row.prefix):
                problems.append(f"row {row.prefix!r}: a prefix is 2 to 5 ASCII digits of a KBLI 2020 code")
            elif row.prefix in seen:
                problems.append(f"row {row.prefix!r}: the prefix is listed twice")
            seen.add(row.prefix)
        if len(self.rows) > SECTOR_TABLE_MAX_ROWS:
            problems.append(f"{len(self.rows)} rows: at most {SECTOR_TABLE_MAX_ROWS}")
        if problems:
            raise InvalidSectorTable(problems)
        object.__setattr__(self, "_by_prefix", {row.prefix: row for row in self.rows})

    @classmethod
    def from_toml(cls, text: str) -> KbliSectorTable:
        """The table as shipped (kbli_sectors.toml): `version`, `source` and `[[rows]]` of `prefix`, `class`
        (critical | essential | non_essential), `export_oriented` (true | false) and an optional `name`. Refused
        with every problem found."""
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidSectorTable([f"not TOML: {exc}"]) from None
        return cls.from_document(document)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> KbliSectorTable:
        problems: list[str] = [f"unknown key {key!r}" for key in document if key not in ("version", "source", "rows")]
        version, source, rows = document.get("version"), document.get("source"), document.get("rows")
        problems += _version_problems(version) + _source_problems(source)
        if not isinstance(rows, list) or not rows:
            problems.append("no [[rows]]")
            rows = []
        parsed: list[SectorRow] = []
        seen: set[str] = set()
        for index, row in enumerate(rows, start=1):
            found = _row(index, row)
            if isinstance(found, SectorRow):
                parsed.append(found)
            else:
                problems += found
            prefix = row.get("prefix") if isinstance(row, dict) else None
            if isinstance(prefix, str) and prefix in seen:
                problems.append(f"row {prefix!r}: the prefix is listed twice")
            if isinstance(prefix, str):
                seen.add(prefix)
        if problems:
            raise InvalidSectorTable(problems)
        return cls(str(version), str(source), tuple(parsed))

    def read(self, code: str) -> SectorReading:
        """The longest prefix of `code` that a row names decides; a code no row matches is `NOT_LISTED`."""
        for length in range(min(len(code), 5), 1, -1):
            row = self._by_prefix.get(code[:length])
            if row is not None:
                return SectorReading(row.classing, row)
        return SectorReading(NOT_LISTED)


def _version_problems(version: object) -> list[str]:
    if not isinstance(version, str) or not SECTOR_TABLE_VERSION.fullmatch(version):
        return [f"version {version!r}: 1 to 40 ASCII letters, digits, dots, hyphens or underscores"]
    return []


def _source_problems(source: object) -> list[str]:
    if not isinstance(source, str) or not source.strip() or len(source) > SECTOR_TABLE_SOURCE_MAX_LENGTH:
        return [f"source: name the lists the table is read from, in at most {SECTOR_TABLE_SOURCE_MAX_LENGTH} "
                "characters"]
    return []


_ROW_KEYS = ("prefix", "class", "export_oriented", "name")


def _row(index: int, row: object) -> SectorRow | list[str]:
    if not isinstance(row, dict):
        return [f"row {index}: a table of {', '.join(_ROW_KEYS)}"]
    where = f"row {row['prefix']!r}" if isinstance(row.get("prefix"), str) else f"row {index}"
    problems = [f"{where}: unknown key {key!r}" for key in row if key not in _ROW_KEYS]
    prefix, class_, export, name = row.get("prefix"), row.get("class"), row.get("export_oriented"), row.get("name", "")
    if not isinstance(prefix, str) or not KBLI_PREFIX.fullmatch(prefix):
        problems.append(f"{where}: prefix {prefix!r} is not 2 to 5 ASCII digits of a KBLI 2020 code")
    if class_ not in SECTOR_CLASSES:
        problems.append(f"{where}: class {class_!r} is not one of {', '.join(SECTOR_CLASSES)}")
    if not isinstance(export, bool):
        problems.append(f"{where}: export_oriented {export!r} is not true or false")
    if not isinstance(name, str) or len(name) > SECTOR_ROW_NAME_MAX_LENGTH:
        problems.append(f"{where}: name is text of at most {SECTOR_ROW_NAME_MAX_LENGTH} characters")
    if problems:
        return problems
    return SectorRow(str(prefix), Classing(SectorClass(str(class_)), bool(export)), str(name))


@dataclass(frozen=True)
class PrincipalActivity:
    """The plant's class and export orientation are the table's reading of its principal KBLI code: the first
    listed, as OSS orders a business's activities (its main activity first). A plant with no code (one recorded
    before codes were required) is read as a code no row matches."""

    table: KbliSectorTable

    def derive(self, kbli: Sequence[str]) -> SectorReading:
        return self.table.read(kbli[0]) if kbli else SectorReading(NOT_LISTED)


@dataclass(frozen=True)
class ClassClaim:
    """What a company says of its plant when it applies: its class, its export orientation, either or neither."""

    sector_class: SectorClass | None = None
    export_oriented: bool | None = None

    def against(self, reading: Classing) -> Classing | None:
        """`ClaimOverTheTable`: the class the company claims, the table's reading filling in what it does not say;
        None when that is the table's reading (there is nothing to review, and the table's class applies)."""
        claimed = Classing(self.sector_class if self.sector_class is not None else reading.sector_class,
                           self.export_oriented if self.export_oriented is not None else reading.export_oriented)
        return None if claimed == reading else claimed


class ReviewStatus(StrEnum):
    PENDING = "pending"  # in the operators' worklist; the table's class applies meanwhile
    ACCEPTED = "accepted"  # the claimed class applies, set by the operator
    REJECTED = "rejected"  # the table's class stays


class ReviewDecision(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"


class ReviewOrigin(StrEnum):
    APPLICATION = "application"  # the company claimed it when it applied
    UPGRADE = "upgrade"  # the class it had declared before the table, where the table reads the plant otherwise


class ClassReviewNotFound(PermitsRefusal, refusals.NotFound):
    """No such class review, or none the caller may see."""


class ReviewAlreadyDecided(PermitsRefusal):
    def __init__(self, review: ClassReview) -> None:
        super().__init__(f"class review {review.review_id} was already {review.status.value}")
        self.review = review


@dataclass(frozen=True)
class ClassReview:
    """A company's claim that the table reads its plant wrongly, pending until an operator decides it."""

    review_id: uuid.UUID
    permit_id: uuid.UUID
    status: ReviewStatus
    claimed: Classing
    derived: Classing  # the table's reading when the claim was made
    table_version: str
    origin: ReviewOrigin
    opened_by: str
    opened_at: datetime
    decided_by: str | None = None
    decided_role: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None

    @classmethod
    def open(cls, permit: Permit, claimed: Classing, derived: Classing, *, table_version: str, actor: str,
             now: datetime, origin: ReviewOrigin = ReviewOrigin.APPLICATION) -> ClassReview:
        if claimed == derived:
            raise ValueError("a claim that is the table's reading needs no review")
        return cls(uuid.uuid4(), permit.permit_id, ReviewStatus.PENDING, claimed, derived, table_version, origin,
                   actor, now)

    @property
    def pending(self) -> bool:
        return self.status is ReviewStatus.PENDING

    def decide(self, decision: ReviewDecision, permit: Permit, *, reason: str, actor: str, role: str, now: datetime,
               table_version: str) -> tuple[ClassReview, Permit | None]:
        """The operator's decision, once, with its reasons. Accepted, the plant's class becomes the claim, set by the
        operator over the table in force (`table_version`): later revisions of the table leave it. Rejected, the
        table's class stays."""
        if not self.pending:
            raise ReviewAlreadyDecided(self)
        if not _says_something(reason):
            raise TextMissing("reason", "a decision on a class review must state its reasons")
        if permit.permit_id != self.permit_id:
            raise ValueError(f"review {self.review_id} is not about permit {permit.permit_id}")
        decided = replace(self, decided_by=actor, decided_role=role, decided_at=now, decision_reason=reason)
        if decision is ReviewDecision.REJECT:
            return replace(decided, status=ReviewStatus.REJECTED), None
        changed = replace(permit, sector_class=self.claimed.sector_class.value,
                          export_oriented=self.claimed.export_oriented, class_basis=ClassBasis.OPERATOR,
                          class_table_version=table_version)
        return replace(decided, status=ReviewStatus.ACCEPTED), changed


def accepted_claim_reason(review: ClassReview, reason: str) -> str:
    """Why an operator's decision changed a plant's class, as SectorClassChanged says it."""
    return (f"Klaim kelas sektor perusahaan diterima operator (tinjauan {review.review_id}) / The company's sector "
            f"class claim was accepted by an operator (review {review.review_id}): {reason}")


def revision_reason(version: str) -> str:
    """Why a table revision changed a plant's class, as SectorClassChanged says it."""
    return f"Tabel sektor KBLI direvisi ke versi {version} / The KBLI sector table was revised to version {version}"


def first_reading_reason(version: str) -> str:
    """Why a plant recorded before the table has the table's class now, in place of the one it declared (the same or
    another)."""
    return (f"Kelas sektor dibaca dari tabel KBLI versi {version}, menggantikan kelas yang dinyatakan sendiri / "
            f"The sector class is read from KBLI table version {version}, in place of the self-declared class")


# ------------------------------------------------------------------------------------------- applications


@dataclass(frozen=True)
class Application:
    """An application as the company submitted it, before any rule has looked at it."""

    nib: str
    npwp: str
    company_name: str
    facility_name: str
    address: str
    province_code: str
    regency_code: str
    kbli: list[str]
    sector_class: str | None  # with `export_oriented`, the company's claim (ClassClaim): optional
    workforce_total: int
    on_site_per_shift: list[int]
    health_protocol_commitment: bool
    contact_email: str | None
    contact_phone: str | None
    export_oriented: bool | None = None
    kind: PermitKind = PermitKind.PLANT
    estate_permit_number: str | None = None  # a plant's claim to lie in that estate, which the estate confirms

    @property
    def plant_key(self) -> str:
        return plant_key(self.nib, self.address, self.regency_code)

    @property
    def claim(self) -> ClassClaim:
        """What the company says of its plant's class (checked by `ApplicationRules` first)."""
        return ClassClaim(SectorClass(self.sector_class) if self.sector_class is not None else None,
                          self.export_oriented)


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class InvalidApplication(PermitsRefusal):
    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = list(errors)


class RegionDirectory(Protocol):
    """Kemendagri region codes (`32`, `32.16`): the adapter reads a maintained dataset."""

    def name_of(self, code: str) -> str | None: ...


SECTOR_CLASSES = ("critical", "essential", "non_essential")
# Matched whole (`fullmatch`): in Python's `re`, `$` also matches before a final newline.
_NIB = re.compile(NIB_PATTERN)
_KBLI = re.compile(KBLI_PATTERN)
# 15 or 16 ASCII digits, each pair at most one space, dot or hyphen apart (01.234.567.8-901.000); the library
# that checks the number would also take other whitespace, repeated separators and a final newline.
NPWP_PATTERN = r"^[0-9](?:[ .-]?[0-9]){14,15}$"
_NPWP = re.compile(NPWP_PATTERN)


@dataclass(frozen=True)
class ApplicationRules:
    """Every check an application must pass before it is accepted, each with its own field and message."""

    regions: RegionDirectory

    def check(self, application: Application) -> None:
        errors = list(self.errors(application))
        if errors:
            raise InvalidApplication(errors)

    def errors(self, a: Application) -> Iterable[FieldError]:
        if not _NIB.fullmatch(a.nib):
            yield FieldError("company.nib", "NIB must be exactly 13 digits")
        npwp = parse_npwp(a.npwp)
        if not _NPWP.fullmatch(a.npwp) or not npwp.valid:
            yield FieldError("company.npwp", "; ".join(["NPWP must be 15 digits (01.234.567.8-901.000) or 16 digits",
                                                        *(issue.message for issue in npwp.errors)]))
        yield from self._region_errors(a.province_code, a.regency_code)
        if not a.kbli:
            yield FieldError("kbli", "at least one KBLI code is required")
        for index, code in enumerate(a.kbli):
            if not _KBLI.fullmatch(code):
                yield FieldError(f"kbli.{index}", f"KBLI code {code!r} must be exactly 5 digits")
        if len(set(a.kbli)) != len(a.kbli):
            yield FieldError("kbli", "KBLI codes must not repeat")
        if a.sector_class is not None and a.sector_class not in SECTOR_CLASSES:
            yield FieldError("sector_class", f"sector class must be one of {', '.join(SECTOR_CLASSES)}")
        yield from _workforce_errors(a.workforce_total, a.on_site_per_shift)
        if a.health_protocol_commitment is not True:
            yield FieldError("health_protocol_commitment",
                             "the signed health-protocol commitment (SE Menperin 4/2020) is required")
        if not normalise_address(a.address):
            yield FieldError("facility.address", "the plant address must contain letters or digits")
        yield from _estate_errors(a)

    def _region_errors(self, province: str, regency: str) -> Iterable[FieldError]:
        province_known = regions.is_province(province) and self.regions.name_of(province) is not None
        if not province_known:
            yield FieldError("facility.province_code", f"{province!r} is not a Kemendagri province code (e.g. 32)")
        if not regions.is_regency(regency) or self.regions.name_of(regency) is None:
            yield FieldError("facility.regency_code",
                             f"{regency!r} is not a Kemendagri regency or city code (e.g. 32.16)")
        elif province_known and not regency.startswith(province + "."):
            yield FieldError("facility.regency_code",
                             f"regency {regency} is not in province {province}")


# KBLI 2020 68130 "Kawasan Industri": the activity of an industrial-estate company (PP 142/2015 names the holder of
# an industrial estate's business licence). It lies outside manufacturing (divisions 10-33), which the KBLI sector
# table covers, so an estate reads as the table's default, non_essential and not export-oriented [inference: no
# PPKM instruction names estate management; each tenant plant holds its own class].
ESTATE_KBLI = "68130"


def _estate_errors(a: Application) -> Iterable[FieldError]:
    if a.kind is PermitKind.ESTATE:
        if a.kbli and a.kbli[0] != ESTATE_KBLI:
            yield FieldError("kbli.0", f"an industrial estate's principal KBLI code is {ESTATE_KBLI} (Kawasan "
                                       "Industri)")
        if a.estate_permit_number is not None:
            yield FieldError("facility.estate_permit_number", "an industrial estate does not lie in another estate")
    elif a.estate_permit_number is not None and not PERMIT_NUMBER.fullmatch(a.estate_permit_number):
        yield FieldError("facility.estate_permit_number", "an estate's permit number reads IOMKI-<year>-<6 digits>")


def estate_claim_errors(a: Application, estate: Permit | None) -> Iterable[FieldError]:
    """A plant's claim to lie in an estate names an issued estate permit in the plant's own regency."""
    field_ = "facility.estate_permit_number"
    if estate is None or estate.kind is not PermitKind.ESTATE:
        yield FieldError(field_, f"no industrial estate has permit {a.estate_permit_number}")
    elif estate.status is not PermitStatus.ISSUED:
        yield FieldError(field_, f"the estate's permit {a.estate_permit_number} is {estate.status.value}, not ISSUED")
    elif estate.regency_code != a.regency_code:
        yield FieldError(field_, f"the estate lies in regency {estate.regency_code}, the plant in {a.regency_code}")


def _workforce_errors(total: int, shifts: list[int]) -> Iterable[FieldError]:
    if total < 1:
        yield FieldError("workforce.total", "the workforce total must be at least 1")
    if not shifts:
        yield FieldError("workforce.on_site_per_shift", "at least one shift is required")
    for index, on_site in enumerate(shifts):
        if on_site < 0:
            yield FieldError(f"workforce.on_site_per_shift.{index}", "a shift cannot have a negative headcount")
        elif on_site > total:
            yield FieldError(f"workforce.on_site_per_shift.{index}",
                             f"{on_site} on site in one shift exceeds the workforce total {total}")


_NOT_WORD = re.compile(r"[^0-9a-z]+")


def normalise_address(address: str) -> str:
    """Case, punctuation and spacing do not make another plant: "Jl. Raya 5" is "JL RAYA  5"."""
    return " ".join(_NOT_WORD.sub(" ", address.lower()).split())


def plant_key(nib: str, address: str, regency_code: str) -> str:
    """A company's plant: its NIB, regency and address. Another company at the same address is another plant, so it
    can neither block this one's application nor inherit its facility after its permit ends."""
    return f"{nib}|{regency_code}|{normalise_address(address)}"


# ------------------------------------------------------------------------------------------- one plant, one permit


class PlantAlreadyPermitted(PermitsRefusal):
    def __init__(self, existing: Permit) -> None:
        super().__init__(f"the plant already has permit {existing.permit_id} ({existing.status.value})")
        self.existing = existing


class ReapplyTooSoon(PermitsRefusal):
    def __init__(self, revoked: Permit, reapply_from: datetime) -> None:
        super().__init__(f"permit {revoked.permit_id} for this plant was revoked; "
                         f"the company may reapply from {reapply_from.date().isoformat()}")
        self.revoked = revoked
        self.reapply_from = reapply_from


@dataclass(frozen=True)
class OnePermitPerPlant:
    """SE 7/2020: one IOMKI per plant address. SE 3/2021: after a revocation, reapply no sooner than 14 days."""

    def check(self, permits_of_plant: Sequence[Permit], *, now: datetime) -> None:
        for permit in permits_of_plant:
            if permit.is_active:
                raise PlantAlreadyPermitted(permit)
        for permit in permits_of_plant:
            if permit.reapply_from is not None and now < permit.reapply_from:
                raise ReapplyTooSoon(permit, permit.reapply_from)

    @staticmethod
    def facility_of(permits_of_plant: Sequence[Permit]) -> uuid.UUID:
        """A plant keeps its facility id across permits, so reports and incidents keep following it."""
        return permits_of_plant[0].facility_id if permits_of_plant else uuid.uuid4()


# ------------------------------------------------------------------------------------------- estate tenancies


class TenancyStatus(StrEnum):
    PENDING = "pending"  # the plant named the estate when it applied; the estate has not answered
    CONFIRMED = "confirmed"  # the estate says the plant lies inside it, and reads the plant's permit
    DECLINED = "declined"  # the estate says it does not
    RELEASED = "released"  # it did, and no longer does (the estate released it, or the estate's permit was revoked)


class TenancyDecision(StrEnum):
    CONFIRM = "confirm"
    DECLINE = "decline"


class TenancyNotFound(PermitsRefusal, refusals.NotFound):
    """No such tenancy, or none the caller may see."""


class IllegalTenancyMove(PermitsRefusal):
    def __init__(self, tenancy: Tenancy, move: str) -> None:
        super().__init__(f"cannot {move} a tenancy that is {tenancy.status.value}")
        self.tenancy = tenancy


class EstateNotOperating(PermitsRefusal):
    def __init__(self, estate: Permit) -> None:
        super().__init__(f"the estate's permit is {estate.status.value}: it confirms no tenant")
        self.estate = estate


class PlantInAnotherEstate(PermitsRefusal):
    def __init__(self, other: Tenancy) -> None:
        super().__init__(f"the plant is already a confirmed tenant of estate permit {other.estate_permit_id}")
        self.other = other


# While an estate's permit stands (issued or frozen) it answers its tenants' claims.
ESTATE_ANSWERS = frozenset({PermitStatus.ISSUED, PermitStatus.FROZEN})


@dataclass(frozen=True)
class Tenancy:
    """A plant's claim to lie in an industrial estate, from its application to the estate's answer and its end."""

    estate_permit_id: uuid.UUID
    tenant_permit_id: uuid.UUID
    tenant_facility_id: uuid.UUID
    status: TenancyStatus
    claimed_by: str
    claimed_at: datetime
    decided_by: str | None = None
    decided_role: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    ended_by: str | None = None
    ended_role: str | None = None
    ended_at: datetime | None = None
    end_cause: TenancyEndCause | None = None
    end_reason: str | None = None

    @classmethod
    def claim(cls, estate: Permit, tenant: Permit, *, actor: str, now: datetime) -> Tenancy:
        return cls(estate.permit_id, tenant.permit_id, tenant.facility_id, TenancyStatus.PENDING, actor, now)

    def decide(self, decision: TenancyDecision, estate: Permit, *, other: Tenancy | None, reason: str, actor: str,
               role: str, now: datetime) -> Tenancy:
        """The estate's answer, once. It confirms only while its own permit stands, and a plant lies in one estate
        at a time (`other`: the plant's confirmed tenancy elsewhere, if any)."""
        if self.status is not TenancyStatus.PENDING:
            raise IllegalTenancyMove(self, decision.value)
        if not _says_something(reason):
            raise TextMissing("reason", "a decision on a tenancy must state its reasons")
        decided = replace(self, decided_by=actor, decided_role=role, decided_at=now, decision_reason=reason)
        if decision is TenancyDecision.DECLINE:
            return replace(decided, status=TenancyStatus.DECLINED)
        if estate.status not in ESTATE_ANSWERS:
            raise EstateNotOperating(estate)
        if other is not None and other.tenant_permit_id != self.tenant_permit_id:
            raise PlantInAnotherEstate(other)
        return replace(decided, status=TenancyStatus.CONFIRMED)

    def end(self, cause: TenancyEndCause, *, reason: str, actor: str, role: str, now: datetime) -> Tenancy:
        """A confirmed tenancy ends: the estate releases the plant, or the estate's own permit is revoked."""
        if self.status is not TenancyStatus.CONFIRMED:
            raise IllegalTenancyMove(self, "release")
        if not _says_something(reason):
            raise TextMissing("reason", "a release must state its reasons")
        return replace(self, status=TenancyStatus.RELEASED, ended_by=actor, ended_role=role, ended_at=now,
                       end_cause=cause, end_reason=reason)


def estate_revoked_reason(estate: Permit) -> str:
    """Why each tenancy of an estate ends with the estate's revocation, as EstateTenancyEnded says it."""
    return (f"Izin kawasan industri {estate.permit_number} dicabut / The industrial estate's permit "
            f"{estate.permit_number} was revoked")


# ------------------------------------------------------------------------------------------- operating status


@dataclass(frozen=True)
class Closure:
    """A closure ordered by incidents (cluster, disinfection). Not a freeze: it never counts on the ladder."""

    closure_id: uuid.UUID
    scope: str
    reason: str
    starts_at: datetime
    ends_at: datetime
    reopened_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.reopened_at is None


@dataclass(frozen=True)
class OperatingStatus:
    closures: tuple[Closure, ...] = field(default_factory=tuple)

    @property
    def plant_closed(self) -> bool:
        """Only a plant-wide closure stops the plant; a closed room or line does not."""
        return any(c.open and c.scope == "plant" for c in self.closures)

    @property
    def label(self) -> str:
        if self.plant_closed:
            return "closed"
        return "partially_closed" if any(c.open for c in self.closures) else "operating"


class RegistryStatus(StrEnum):
    VALID = "valid"
    FROZEN = "frozen"
    REVOKED = "revoked"
    CLOSED = "closed"


def registry_status(permit: Permit, operating: OperatingStatus) -> RegistryStatus:
    """What an officer scanning the QR is told; a decided sanction outranks a temporary closure."""
    if permit.status is PermitStatus.REVOKED:
        return RegistryStatus.REVOKED
    if permit.status is PermitStatus.FROZEN:
        return RegistryStatus.FROZEN
    if operating.plant_closed:
        return RegistryStatus.CLOSED
    return RegistryStatus.VALID


# ------------------------------------------------------------------------------------------- objections
# UU 30/2014 on Government Administration, Pasal 75-77: a person harmed by a decision may object to the official
# who made it, in writing, within 21 working days of the decision being announced (Pasal 77(1)); the official
# decides it, and an objection found justified changes or annuls the decision. A freeze and a revocation are such
# decisions.


class HolidayCalendar(Protocol):
    """Indonesia's national holidays and the government's collective leave days: the adapter reads a maintained
    calendar (services/permits/calendar.py)."""

    def is_holiday(self, day: date) -> bool: ...


@dataclass(frozen=True)
class WorkingDays:
    """Government working days: Monday to Friday (Perpres 21/2023, five working days a week) that are not holidays."""

    calendar: HolidayCalendar

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and not self.calendar.is_holiday(day)

    def nth_after(self, day: date, n: int) -> date:
        """The `n`th working day after `day`; `day` itself is not counted."""
        counted = 0
        while counted < n:
            day += timedelta(days=1)
            counted += self.is_working_day(day)
        return day


OBJECTION_WORKING_DAYS = 21  # UU 30/2014 Pasal 77(1)


_SANCTION_WORDS = {Action.FREEZE: ("pembekuan", "freeze"), Action.REVOKE: ("pencabutan", "revocation")}


@dataclass(frozen=True)
class Sanction:
    """A freeze or a revocation as the permit's history records it: what an objection is against."""

    seq: int  # its row in the permit's history
    action: Action
    from_status: PermitStatus
    at: datetime  # when it was decided, and so announced: the permits topic carries it at once

    @property
    def to_status(self) -> PermitStatus:
        return TRANSITIONS[self.action][1]

    @classmethod
    def in_force(cls, permit: Permit, latest: tuple[int, Transition] | None) -> Sanction:
        """The sanction a company may object to: its permit's latest transition, if that is a freeze or a
        revocation. One reactivated, revoked further or already reversed no longer stands by itself."""
        if latest is not None:
            seq, transition = latest
            if transition.action in {a.value for a in SANCTIONS} and transition.from_status is not None:
                return cls(seq, Action(transition.action), transition.from_status, transition.at)
        raise NothingToObject(permit.status)


class NothingToObject(PermitsRefusal):
    def __init__(self, status: PermitStatus) -> None:
        super().__init__(f"Izin ini ({status.value}) tidak sedang dibekukan atau dicabut: tidak ada sanksi yang dapat "
                         f"diajukan keberatan / This permit ({status.value}) is not under a freeze or a revocation: "
                         "there is no sanction to object to")
        self.status = status


class ObjectionTooLate(PermitsRefusal):
    def __init__(self, sanction: Sanction, last_day: date, working_days: int) -> None:
        indonesian, english = _SANCTION_WORDS[sanction.action]
        super().__init__(
            f"Batas waktu keberatan atas {indonesian} ini berakhir pada {last_day.isoformat()} ({working_days} hari "
            f"kerja sejak {indonesian} pada {sanction.at.date().isoformat()}, UU 30/2014 Pasal 77 ayat (1)) / "
            f"The time to object to this {english} ended on {last_day.isoformat()} ({working_days} working days "
            f"from the {english} on {sanction.at.date().isoformat()}, UU 30/2014 Article 77(1))")
        self.sanction = sanction
        self.last_day = last_day


class AlreadyObjected(PermitsRefusal):
    def __init__(self, existing: Objection) -> None:
        indonesian, english = _SANCTION_WORDS[existing.sanction.action]
        super().__init__(f"Keberatan atas {indonesian} ini sudah diajukan ({existing.objection_id}) / "
                         f"An objection to this {english} was already filed ({existing.objection_id})")
        self.existing = existing


class TextMissing(PermitsRefusal):
    """A text a rule requires is blank: `field` names it in the request."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ObjectionAlreadyDecided(PermitsRefusal):
    def __init__(self, objection: Objection) -> None:
        super().__init__(f"objection {objection.objection_id} was already decided: "
                         f"{objection.outcome.value if objection.outcome else ''}")
        self.objection = objection


class OutcomeNotApplicable(PermitsRefusal):
    def __init__(self, outcome: ObjectionOutcome, sanction: Sanction) -> None:
        super().__init__(f"'{outcome.value}' applies only to a revocation (it reduces it to a freeze); "
                         f"this objection is against a {_SANCTION_WORDS[sanction.action][1]}")
        self.outcome = outcome


class SanctionNoLongerStands(PermitsRefusal):
    def __init__(self, sanction: Sanction, permit: Permit) -> None:
        super().__init__(f"the {_SANCTION_WORDS[sanction.action][1]} objected to is no longer the permit's latest "
                         f"decision (the permit is now {permit.status.value}): it can be upheld, not reversed")
        self.current = permit.status


class PlantPermittedMeanwhile(PermitsRefusal):
    def __init__(self, other: Permit) -> None:
        super().__init__(f"the plant meanwhile has another permit, {other.permit_id} ({other.status.value}): "
                         "reversing the revocation would give it two (SE 7/2020: one IOMKI per plant)")
        self.other = other


@dataclass(frozen=True)
class StatementGiven:
    """The objection is the company's written statement of why the sanction is wrong (UU 30/2014 Pasal 77(2)):
    one that says nothing is no objection."""

    def check(self, statement: str) -> None:
        if not _says_something(statement):
            raise TextMissing("statement", "Pernyataan keberatan wajib diisi / The objection must state its grounds")


@dataclass(frozen=True)
class OneObjectionPerSanction:
    """A sanction is objected to once; its decision is final here (what remains is an appeal to the official's
    superior, UU 30/2014 Pasal 78, outside this platform)."""

    def check(self, sanction: Sanction, earlier: Sequence[Objection]) -> None:
        for objection in earlier:
            if objection.sanction.seq == sanction.seq:
                raise AlreadyObjected(objection)


@dataclass(frozen=True)
class ObjectionWindow:
    """UU 30/2014 Pasal 77(1): within `working_days` working days of the sanction. The day it was announced is not
    counted; the last day counts whole, to midnight in the plant's own time zone (WIB, WITA or WIT), where the
    company reads the letter and counts its days."""

    working_days: WorkingDays
    days: int = OBJECTION_WORKING_DAYS

    def last_day(self, sanction: Sanction, zone: tzinfo) -> date:
        return self.working_days.nth_after(sanction.at.astimezone(zone).date(), self.days)

    def is_open(self, sanction: Sanction, *, now: datetime, zone: tzinfo) -> bool:
        return now.astimezone(zone).date() <= self.last_day(sanction, zone)

    def check(self, sanction: Sanction, *, now: datetime, zone: tzinfo) -> date:
        """The window's last day, or ObjectionTooLate naming it."""
        last = self.last_day(sanction, zone)
        if now.astimezone(zone).date() > last:
            raise ObjectionTooLate(sanction, last, self.days)
        return last


@dataclass(frozen=True)
class ObjectionStillPending:
    def check(self, objection: Objection) -> None:
        if not objection.pending:
            raise ObjectionAlreadyDecided(objection)


@dataclass(frozen=True)
class ReasonGiven:
    """A decision on an objection states its reasons, whatever the outcome (UU 30/2014 Pasal 55(1): every decision
    gives the reasons it rests on)."""

    def check(self, reason: str) -> None:
        if not _says_something(reason):
            raise TextMissing("reason", "a decision on an objection must state its reasons")


@dataclass(frozen=True)
class OutcomeFitsSanction:
    """`partly` reduces a revocation to a freeze; a freeze has nothing lesser to become."""

    def check(self, objection: Objection, outcome: ObjectionOutcome) -> None:
        if outcome is ObjectionOutcome.PARTLY and objection.sanction.action is not Action.REVOKE:
            raise OutcomeNotApplicable(outcome, objection.sanction)


@dataclass(frozen=True)
class SanctionStillStands:
    """Only the sanction in force is reversed: one followed by another decision (a reactivation, a revocation) is
    no longer what the permit's state rests on, and reversing it would undo that later decision too."""

    def check(self, objection: Objection, permit: Permit, latest: tuple[int, Transition] | None) -> None:
        if latest is None or latest[0] != objection.sanction.seq or permit.status is not objection.sanction.to_status:
            raise SanctionNoLongerStands(objection.sanction, permit)


@dataclass(frozen=True)
class ReversalKeepsOnePermitPerPlant:
    """SE 7/2020: one IOMKI per plant. A revoked plant may have applied again (SE 3/2021, after 14 days): its
    revocation is then not reversed while that other permit is active."""

    def check(self, permit: Permit, permits_of_plant: Sequence[Permit]) -> None:
        for other in permits_of_plant:
            if other.permit_id != permit.permit_id and other.is_active:
                raise PlantPermittedMeanwhile(other)


def _says_something(text: str) -> bool:
    return any(character.isalnum() for character in text)


def reversal_for(sanction: Sanction, outcome: ObjectionOutcome) -> Action | None:
    """What a decision does to the permit: nothing when upheld; overturned, the permit returns to the status it had
    before the sanction; partly, a revocation becomes a freeze."""
    if outcome is ObjectionOutcome.UPHELD:
        return None
    if outcome is ObjectionOutcome.PARTLY or sanction.from_status is PermitStatus.FROZEN:
        return Action.REDUCE_TO_FREEZE
    return Action.REINSTATE


@dataclass(frozen=True)
class Objection:
    """A company's objection to a freeze or a revocation, pending until an operator decides it."""

    objection_id: uuid.UUID
    permit_id: uuid.UUID
    sanction: Sanction
    statement: str
    filed_by: str
    filed_role: str
    filed_at: datetime
    last_day: date  # the window's last day, as it was when the objection was filed
    outcome: ObjectionOutcome | None = None
    reason: str | None = None
    decided_by: str | None = None
    decided_role: str | None = None
    decided_at: datetime | None = None

    @property
    def pending(self) -> bool:
        return self.outcome is None

    @classmethod
    def file(cls, permit: Permit, latest: tuple[int, Transition] | None, earlier: Sequence[Objection],
             statement: str, *, window: ObjectionWindow, actor: str, role: str, now: datetime) -> Objection:
        sanction = Sanction.in_force(permit, latest)
        StatementGiven().check(statement)
        OneObjectionPerSanction().check(sanction, earlier)
        last_day = window.check(sanction, now=now, zone=regions.local_zone(permit.province_code))
        return cls(uuid.uuid4(), permit.permit_id, sanction, statement, actor, role, now, last_day)

    def decide(self, outcome: ObjectionOutcome, reason: str, *, permit: Permit,
               latest: tuple[int, Transition] | None, permits_of_plant: Sequence[Permit], actor: str, role: str,
               now: datetime, causation_id: str | None = None) -> ObjectionDecision:
        ObjectionStillPending().check(self)
        ReasonGiven().check(reason)
        OutcomeFitsSanction().check(self, outcome)
        decided = replace(self, outcome=outcome, reason=reason, decided_by=actor, decided_role=role, decided_at=now)
        action = reversal_for(self.sanction, outcome)
        if action is None:
            return ObjectionDecision(decided)
        SanctionStillStands().check(self, permit, latest)
        ReversalKeepsOnePermitPerPlant().check(permit, permits_of_plant)
        changed, transition = permit.act(action, actor=actor, role=role, now=now, causation_id=causation_id,
                                         reason=f"objection {self.objection_id} {outcome.value}: {reason}",
                                         reversing=self.sanction)
        ground = latest[1].ground if latest is not None else None  # the sanction's own row: it still stands
        recount = None if ground is None else Recount(
            ground, self.sanction.at, self.sanction.action,
            Action.FREEZE if changed.freeze_count > permit.freeze_count else None)
        return ObjectionDecision(decided, changed, transition, recount)


@dataclass(frozen=True)
class OpenToObjection:
    """The sanction in force that no objection is against yet, and the last day one may be filed."""

    sanction: Sanction
    last_day: date
    open: bool  # still within the window now


def open_to_objection(permit: Permit, latest: tuple[int, Transition] | None, earlier: Sequence[Objection], *,
                      window: ObjectionWindow, now: datetime) -> OpenToObjection | None:
    try:
        sanction = Sanction.in_force(permit, latest)
        OneObjectionPerSanction().check(sanction, earlier)
    except (NothingToObject, AlreadyObjected):
        return None
    zone = regions.local_zone(permit.province_code)
    return OpenToObjection(sanction, window.last_day(sanction, zone), window.is_open(sanction, now=now, zone=zone))


@dataclass(frozen=True)
class Recount:
    """What a reversal changes in the sanctions counted by ground, province and month: the reversed sanction no
    longer counts, and a revocation reduced to a freeze that counts as one (as in `freeze_count`) counts as a freeze,
    on the same ground and in the same month: the decision it amends is the same."""

    ground: SanctionGround
    at: datetime  # when the reversed sanction was decided
    removed: Action
    added: Action | None = None


@dataclass(frozen=True)
class ObjectionDecision:
    """A decided objection, and the permit as a reversal left it (with its history row and what it changes in the
    counts), if it reversed anything."""

    objection: Objection
    permit: Permit | None = None
    transition: Transition | None = None
    recount: Recount | None = None


# ------------------------------------------------------------------------------------------- worklists


class WorkKind(StrEnum):
    """What waits for an operator's decision."""

    APPLICATION = "application"
    REACTIVATION_REQUEST = "reactivation_request"
    OBJECTION = "objection"
    CLASS_REVIEW = "class_review"
    SANCTION_REQUEST = "sanction_request"  # a regional office's request for a freeze or a revocation


# Working days each kind is held to. UU 30/2014 Pasal 77(4): the official decides an objection within 10 working
# days. No circular sets one for an application, a reactivation request or a class review: three working days is the
# platform's default, each configurable (IOMKI_SLA_*_WORKING_DAYS). A regional office's sanction request: five
# working days [inference: a working week to weigh an inspection's evidence; no circular sets it].
DEFAULT_SERVICE_LEVELS: dict[WorkKind, int] = {
    WorkKind.APPLICATION: 3, WorkKind.REACTIVATION_REQUEST: 3, WorkKind.OBJECTION: 10, WorkKind.CLASS_REVIEW: 3,
    WorkKind.SANCTION_REQUEST: 5,
}


@dataclass(frozen=True)
class WorkItem:
    """One thing waiting for a decision, with the permit it concerns."""

    kind: WorkKind
    item_id: uuid.UUID
    permit_id: uuid.UUID
    permit_number: str | None
    company_name: str
    province_code: str
    regency_code: str
    received_at: datetime


@dataclass(frozen=True)
class QueuedItem:
    item: WorkItem
    due_at: datetime
    overdue: bool
    age: timedelta


@dataclass(frozen=True)
class ServiceLevels:
    """How long each kind may wait: the end (Jakarta midnight) of the Nth working day after the day it came in."""

    working_days: Mapping[WorkKind, int]
    days: WorkingDays

    def due(self, kind: WorkKind, received_at: datetime) -> datetime:
        received_on = received_at.astimezone(MINISTRY_ZONE).date()
        last_day = self.days.nth_after(received_on, self.working_days[kind])
        return datetime.combine(last_day + timedelta(days=1), time(0), MINISTRY_ZONE)

    def overdue_before(self, kind: WorkKind, now: datetime) -> datetime:
        """Everything received before this moment is overdue at `now`, and nothing received at or after it: due
        dates only move forward with the day received, so the boundary is the start of the first day whose items
        are still on time."""
        day = now.astimezone(MINISTRY_ZONE).date()
        while self.due(kind, datetime.combine(day - timedelta(days=1), time(0), MINISTRY_ZONE)) > now:
            day -= timedelta(days=1)
        return datetime.combine(day, time(0), MINISTRY_ZONE)

    def queue(self, items: Iterable[WorkItem], now: datetime) -> list[QueuedItem]:
        """Overdue first, most overdue first; then the rest by how soon they fall due."""
        queued = [QueuedItem(item, due := self.due(item.kind, item.received_at), due <= now, now - item.received_at)
                  for item in items]
        return sorted(queued, key=lambda q: (not q.overdue, q.due_at, q.item.received_at, str(q.item.item_id)))


# ------------------------------------------------------------------------------------------- letters

# Each warning and each sanction is a letter to the company, numbered per permit and kind: the permit's number, the
# kind's abbreviation and its count, so IOMKI-2026-000123/SP-2 is that permit's second warning. "SP" is how
# Indonesian administration abbreviates a Surat Peringatan (SP-1, SP-2, SP-3); a Surat Pembekuan (freeze) and a
# Surat Pencabutan (revocation) take SPB and SPC after it.
LETTER_ABBREVIATIONS: dict[LetterKind, str] = {
    LetterKind.WARNING: "SP", LetterKind.FREEZE: "SPB", LetterKind.REVOCATION: "SPC"}
LETTER_KIND_OF_ACTION: dict[Action, LetterKind] = {Action.FREEZE: LetterKind.FREEZE,
                                                  Action.REVOKE: LetterKind.REVOCATION}
LETTER_NUMBER = re.compile(LETTER_NUMBER_PATTERN)  # fullmatch it
# A letter lists at most this many periods (the latest), and says how many more there were: a letter is read by
# people, and its PDF must fit the event that carries it to the notifier (LETTER_PDF_MAX_BYTES).
LETTER_PERIODS_SHOWN = 24


def letter_number(permit_number: str, kind: LetterKind, sequence: int) -> str:
    if sequence < 1:
        raise ValueError(f"a letter's sequence starts at 1, not {sequence}")
    return f"{permit_number}/{LETTER_ABBREVIATIONS[kind]}-{sequence}"


def letter_reference(reference: str) -> tuple[str | None, LetterKind, int] | None:
    """A letter as a caller names it within its permit: `SP-2`, or the whole number `IOMKI-2026-000123/SP-2`.
    Returns (the permit number it names or None, kind, sequence), or None for anything else."""
    permit, _, short = reference.rpartition("/")
    if permit and not LETTER_NUMBER.fullmatch(reference):
        return None
    abbreviation, _, sequence = short.partition("-")
    kinds = {a: k for k, a in LETTER_ABBREVIATIONS.items()}
    if abbreviation not in kinds or not sequence.isascii() or not sequence.isdigit() or len(sequence) > 10:
        return None
    number = int(sequence)
    if not 1 <= number <= INT4_MAX:
        return None
    return permit or None, kinds[abbreviation], number


class LetterNotFound(PermitsRefusal, refusals.NotFound):
    """No such letter of this permit."""


class NoPermitNumber(ValueError):
    """A letter names its permit by number: a permit never issued has none, and gets no letter."""


@dataclass(frozen=True)
class LetterGround:
    """Why, as the letter states it: a code from the closed list, the ladder and its rule, the officer's words."""

    code: GroundCode
    ladder: str | None = None
    rule: str | None = None
    text: str | None = None
    cause: WarningCause | None = None  # a warning's: a missed report or a capacity breach
    breach_id: uuid.UUID | None = None  # a capacity warning's breach (CapacityBreachDetected)

    @classmethod
    def of(cls, ground: SanctionGround) -> LetterGround:
        return cls(ground.code, ground.ladder, ground.rule, ground.text)


@dataclass(frozen=True)
class LetterPeriod:
    """A reporting period the letter concerns, by its deadline (None: no warning recorded here gave it)."""

    period_id: uuid.UUID
    deadline: datetime | None


@dataclass(frozen=True)
class Letter:
    """The facts a letter states, kept so that its PDF can be printed again, the same, at any time."""

    letter_id: uuid.UUID
    permit_id: uuid.UUID
    kind: LetterKind
    sequence: int
    number: str
    permit_number: str
    company_name: str
    nib: str
    regency_code: str
    issued_at: datetime
    ground: LetterGround
    periods: tuple[LetterPeriod, ...]
    cause_event_id: uuid.UUID  # the public event it accompanies: WarningIssued, PermitFrozen or PermitRevoked
    warning_id: uuid.UUID | None = None
    consecutive: int | None = None  # a warning's count of warnings in a row
    more_periods: int = 0  # periods concerned beyond those listed

    @classmethod
    def issue(cls, permit: Permit, kind: LetterKind, *, last_sequence: int, ground: LetterGround,
              periods: Sequence[LetterPeriod], cause_event_id: uuid.UUID, now: datetime,
              warning_id: uuid.UUID | None = None, consecutive: int | None = None) -> Letter:
        """The next letter of this kind for the permit: numbered after `last_sequence` (the last one drawn in
        this transaction's lock of the permit, so numbers are gap-free), listing the latest periods."""
        if permit.permit_number is None:
            raise NoPermitNumber(f"permit {permit.permit_id} has no number, so no letter")
        sequence = last_sequence + 1
        shown = tuple(periods)[-LETTER_PERIODS_SHOWN:]
        return cls(uuid.uuid4(), permit.permit_id, kind, sequence, letter_number(permit.permit_number, kind, sequence),
                   permit.permit_number, permit.company_name, permit.nib, permit.regency_code, now, ground, shown,
                   cause_event_id, warning_id, consecutive, len(periods) - len(shown))

    @property
    def short_number(self) -> str:
        """The number within its permit: `SP-2`."""
        return f"{LETTER_ABBREVIATIONS[self.kind]}-{self.sequence}"

    @property
    def filename(self) -> str:
        """ASCII only, no separator: `IOMKI-2026-000123_SP-2.pdf`."""
        return f"{self.permit_number}_{self.short_number}.pdf"


def warning_ground(cause: WarningCause = WarningCause.MISSED_REPORT,
                   breach_id: uuid.UUID | None = None) -> LetterGround:
    """What a warning is for: a missed report (the period's deadline passed without one), or a capacity breach (the
    period's report counted more people on site than the PPKM cap), on the ground its ladder sanctions it on."""
    if cause is WarningCause.CAPACITY_BREACH:
        return LetterGround(GroundCode.CAPACITY_BREACHES, cause=cause, breach_id=breach_id)
    return LetterGround(GroundCode.MISSED_REPORTS, cause=cause)


def sanction_periods(evidence_periods: Sequence[uuid.UUID],
                     deadlines: dict[uuid.UUID, datetime]) -> tuple[LetterPeriod, ...]:
    """The evidence's missed periods, in deadline order (those with none known last, as listed)."""
    periods = [LetterPeriod(p, deadlines.get(p)) for p in dict.fromkeys(evidence_periods)]
    known = sorted((p for p in periods if p.deadline is not None), key=lambda p: p.deadline or datetime.min)
    return tuple(known + [p for p in periods if p.deadline is None])


# What a letter says, in Bahasa Indonesia first and English second. The ground's label per code, the ladder's
# rules by name (as the reports service names them), the circulars' words for months and days.
GROUND_LABELS: dict[GroundCode, tuple[str, str]] = {
    GroundCode.MISSED_REPORTS: ("Tidak menyampaikan laporan pelaksanaan IOMKI sesuai ketentuan",
                                "Reports not submitted as required"),
    GroundCode.FALSE_DECLARATION: ("Pernyataan kebenaran laporan terbukti tidak benar",
                                   "A report declared true was found false"),
    GroundCode.INSPECTION_FINDING: ("Pelanggaran protokol kesehatan berdasarkan hasil pemeriksaan",
                                    "Health-protocol violation found on inspection"),
    GroundCode.CLOSURE_NOT_OBSERVED: ("Tetap beroperasi selama penutupan sementara yang diperintahkan",
                                      "Operated during an ordered closure"),
    GroundCode.COMPANY_REQUEST: ("Atas permohonan perusahaan", "At the company's own request"),
    GroundCode.CAPACITY_BREACHES: ("Berulang kali melampaui batas jumlah pekerja di lokasi pada masa PPKM",
                                   "Repeatedly over the PPKM cap on staff on site"),
    GroundCode.OTHER: ("Alasan lain", "Other"),
}
RULE_LABELS: dict[str, tuple[str, str]] = {
    "ThreeWarningsInARow": ("tiga peringatan berturut-turut", "three warnings in a row"),
    "ThreeWarningsWithinAMonth": ("tiga peringatan dalam satu bulan", "three warnings within a month"),
    "MissedWhileFrozen": ("tidak melapor selama IOMKI dibekukan", "a report missed while frozen"),
    "SecondFreeze": ("dibekukan untuk kedua kalinya", "frozen a second time"),
    "ThreeMissedPeriods": ("tiga periode pelaporan tidak dilaporkan", "three reporting periods missed"),
    "RepeatedCapacityBreaches": ("jumlah pekerja di lokasi berulang kali melampaui batas PPKM",
                                 "staff on site repeatedly over the PPKM cap"),
}
# A warning's own ground, by its cause: one breach is not yet the repeated breaches a sanction rests on.
WARNING_CAUSE_LABELS: dict[WarningCause, tuple[str, str]] = {
    WarningCause.MISSED_REPORT: GROUND_LABELS[GroundCode.MISSED_REPORTS],
    WarningCause.CAPACITY_BREACH: ("Jumlah pekerja di lokasi melampaui batas PPKM", "Staff on site over the PPKM cap"),
}
LETTER_TITLES: dict[LetterKind, tuple[str, str]] = {
    LetterKind.WARNING: ("SURAT PERINGATAN", "Warning letter"),
    LetterKind.FREEZE: ("SURAT PEMBEKUAN IOMKI", "Letter freezing the permit"),
    LetterKind.REVOCATION: ("SURAT PENCABUTAN IOMKI", "Letter revoking the permit"),
}
MONTHS = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
          "November", "Desember")
DAYS = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
ZONE_NAMES = {regions.WIB.key: "WIB", regions.WITA.key: "WITA", regions.WIT.key: "WIT"}


def tanggal(day: date) -> str:
    """A date as Indonesian letters write it: 5 Juli 2021."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def local_deadline(deadline: datetime, regency_code: str) -> str:
    """A deadline where the plant is: Jumat, 9 Juli 2021 pukul 23.59 WIB."""
    zone = regions.local_zone(regency_code)
    local = deadline.astimezone(zone)
    return f"{DAYS[local.weekday()]}, {tanggal(local.date())} pukul {local:%H.%M} {ZONE_NAMES[zone.key]}"


@dataclass(frozen=True)
class LetterDocument:
    """A letter as it is printed, top to bottom: what the PDF adapter lays out, and nothing it has to decide."""

    title: str
    subtitle: str
    number: str
    date_line: str
    addressee: tuple[str, ...]
    paragraphs: tuple[str, ...]
    ground: tuple[tuple[str, str], ...]  # (label, value) rows
    periods_heading: str
    periods: tuple[str, ...]
    english: str
    verification: str
    filename: str


def letter_document(letter: Letter, *, regency_name: str | None) -> LetterDocument:
    title, english_title = LETTER_TITLES[letter.kind]
    local_day = letter.issued_at.astimezone(regions.local_zone(letter.regency_code)).date()
    plant = f"{regency_name} ({letter.regency_code})" if regency_name else letter.regency_code
    label, english_label = (WARNING_CAUSE_LABELS[letter.ground.cause] if letter.ground.cause is not None
                            else GROUND_LABELS[letter.ground.code])
    ground_rows = [("Dasar", label)]
    if letter.ground.ladder:
        ladder = letter.ground.ladder
        ground_rows.append(("Ketentuan", f"SE {ladder.removeprefix('SE-')}" if ladder.startswith("SE-") else ladder))
    if letter.ground.rule:
        ground_rows.append(("Aturan", RULE_LABELS.get(letter.ground.rule, (letter.ground.rule,))[0]))
    if letter.ground.text:
        ground_rows.append(("Keterangan petugas", letter.ground.text))
    periods = [f"{i}. Batas waktu {local_deadline(p.deadline, letter.regency_code)}" if p.deadline else
               f"{i}. Periode {p.period_id} (batas waktu tidak tercatat pada surat peringatan)"
               for i, p in enumerate(letter.periods, start=1)]
    if letter.more_periods:
        periods.append(f"... dan {letter.more_periods} periode sebelumnya")
    paragraphs, english = _letter_body(letter, english_title, english_label)
    return LetterDocument(
        title=title, subtitle="Izin Operasional dan Mobilitas Kegiatan Industri (IOMKI)",
        number=f"Nomor: {letter.number}", date_line=f"Tanggal: {tanggal(local_day)}",
        addressee=("Kepada Yth.", f"Pimpinan {letter.company_name}", f"NIB {letter.nib}",
                   f"Nomor izin: {letter.permit_number}", f"Lokasi pabrik: {plant}"),
        paragraphs=paragraphs, ground=tuple(ground_rows),
        periods_heading="Periode pelaporan yang bersangkutan:" if periods else "", periods=tuple(periods),
        english=english,
        verification=(f"Keabsahan IOMKI {letter.permit_number} dapat diperiksa dengan memindai kode QR ini "
                      "(token registri yang ditandatangani) atau di /registry/" + letter.permit_number + "."),
        filename=letter.filename,
    )


class NoCertificate(PermitsRefusal):
    """Only a permit in force (ISSUED) has a certificate: a frozen, revoked or undecided one has none to print."""

    def __init__(self, status: PermitStatus) -> None:
        super().__init__(f"Sertifikat hanya tersedia untuk IOMKI yang berlaku; izin ini berstatus {status.value} / "
                         f"A certificate is printed only for an issued permit in force; this permit is "
                         f"{status.value}")
        self.status = status


# The sector classes as the certificate names them (Bahasa Indonesia, English).
CLASS_LABELS: dict[str, tuple[str, str]] = {
    "critical": ("Sektor kritikal", "critical sector"),
    "essential": ("Sektor esensial", "essential sector"),
    "non_essential": ("Sektor non-esensial", "non-essential sector"),
}


def certificate_document(permit: Permit, *, facility_name: str, address: str, regency_name: str | None,
                         province_name: str | None) -> LetterDocument:
    """The permit's certificate, laid out as a letter is (the same printer): what the permit is, for whom, where,
    in which class and since when, Bahasa Indonesia first and English beneath, and the registry's signed QR."""
    if permit.status is not PermitStatus.ISSUED or permit.permit_number is None or permit.issued_at is None:
        raise NoCertificate(permit.status)
    number = permit.permit_number
    local_day = permit.issued_at.astimezone(regions.local_zone(permit.regency_code)).date()
    regency = f"{regency_name} ({permit.regency_code})" if regency_name else permit.regency_code
    province = f"{province_name} ({permit.province_code})" if province_name else permit.province_code
    label, english_label = CLASS_LABELS.get(permit.sector_class, (permit.sector_class, permit.sector_class))
    export = " (berorientasi ekspor)" if permit.export_oriented else ""
    return LetterDocument(
        title="SERTIFIKAT IZIN OPERASIONAL DAN MOBILITAS KEGIATAN INDUSTRI",
        subtitle="Izin Operasional dan Mobilitas Kegiatan Industri (IOMKI)",
        number=f"Nomor: {number}", date_line=f"Tanggal terbit: {tanggal(local_day)}",
        addressee=(),
        paragraphs=(f"Kementerian Perindustrian menerangkan bahwa perusahaan dan pabrik di bawah ini memiliki IOMKI "
                    f"nomor {number} yang berlaku sejak {tanggal(local_day)} selama masa kedaruratan kesehatan "
                    "masyarakat, kecuali dibekukan atau dicabut. Status yang berlaku setiap saat dapat diperiksa "
                    "pada registri dengan memindai kode QR di bawah.",),
        ground=(("Nomor izin", number), ("Perusahaan", permit.company_name), ("NIB", permit.nib),
                ("Pabrik", facility_name), ("Alamat", address), ("Kabupaten/Kota", regency),
                ("Provinsi", province), ("Kelas sektor", label + export),
                ("Masa berlaku", f"Sejak {tanggal(local_day)}, selama masa kedaruratan (SE Menperin 7/2020)")),
        periods_heading="", periods=(),
        english=(f"Certificate of permit {number} (IOMKI, operating and mobility permit for industrial activity). "
                 f"The Ministry of Industry certifies that {permit.company_name} (NIB {permit.nib}) holds permit "
                 f"{number} for its plant {facility_name}, {address}, {regency}, {province}, in the "
                 f"{english_label}{' (export-oriented)' if permit.export_oriented else ''}, valid from "
                 f"{local_day.isoformat()} for the duration of the emergency unless frozen or revoked. Scan the QR "
                 "code to read the permit's status in the registry at any time."),
        verification=(f"Keabsahan IOMKI {number} dapat diperiksa dengan memindai kode QR ini (token registri yang "
                      f"ditandatangani) atau di /registry/{number}. / Scan to verify the permit in the registry."),
        filename=f"{number}_sertifikat.pdf",
    )


def _letter_body(letter: Letter, english_title: str, english_label: str) -> tuple[tuple[str, ...], str]:
    number = letter.permit_number
    if letter.kind is LetterKind.WARNING and letter.ground.cause is WarningCause.CAPACITY_BREACH:
        return _capacity_warning(letter, english_title)
    if letter.kind is LetterKind.WARNING:
        deadline = letter.periods[-1].deadline if letter.periods else None
        when = local_deadline(deadline, letter.regency_code) if deadline else "batas waktunya"
        row = f" Ini adalah peringatan ke-{letter.consecutive} berturut-turut." if letter.consecutive else ""
        return (
            (f"Sampai dengan batas waktu {when}, laporan pelaksanaan IOMKI nomor {number} untuk periode tersebut "
             f"belum diterima.{row}",
             "Perusahaan wajib menyampaikan laporan berikutnya tepat waktu. Peringatan yang berulang dapat "
             "mengakibatkan IOMKI dibekukan atau dicabut."),
            f"{english_title} {letter.number}: the report for the period above was not received by its deadline"
            + (f" (warning {letter.consecutive} in a row)" if letter.consecutive else "")
            + ". Repeated warnings may lead to the permit being frozen or revoked.",
        )
    if letter.kind is LetterKind.FREEZE:
        return (
            (f"Dengan ini IOMKI nomor {number} dibekukan terhitung sejak tanggal surat ini, atas dasar yang tersebut "
             "di bawah.",
             "Selama dibekukan, perusahaan dapat mengajukan pengaktifan kembali setelah menyampaikan laporan yang "
             "belum disampaikan dan pernyataan tindakan perbaikan, atau mengajukan keberatan sesuai ketentuan."),
            f"{english_title} {letter.number}: permit {number} is frozen from the date of this letter "
            f"({english_label}). The company may request reactivation once it has filed the missing reports and a "
            "statement of corrective action, or object as the rules provide.",
        )
    reapply = tanggal((letter.issued_at + REAPPLY_AFTER_REVOCATION).astimezone(
        regions.local_zone(letter.regency_code)).date())
    return (
        (f"Dengan ini IOMKI nomor {number} dicabut terhitung sejak tanggal surat ini, atas dasar yang tersebut di "
         "bawah.",
         f"Perusahaan dapat mengajukan permohonan IOMKI baru untuk pabrik ini paling cepat tanggal {reapply} "
         "(SE Menteri Perindustrian 3/2021), atau mengajukan keberatan sesuai ketentuan."),
        f"{english_title} {letter.number}: permit {number} is revoked from the date of this letter "
        f"({english_label}). The company may apply again for this plant from {reapply}, or object as the rules "
        "provide.",
    )


def _capacity_warning(letter: Letter, english_title: str) -> tuple[tuple[str, ...], str]:
    """A warning for a capacity breach: what the report of the period counted was over the PPKM cap."""
    deadline = letter.periods[-1].deadline if letter.periods else None
    when = f"dengan batas waktu {local_deadline(deadline, letter.regency_code)}" if deadline else "tersebut"
    row = (f" Ini adalah peringatan ke-{letter.consecutive} atas pelampauan batas dalam kurun penilaian."
           if letter.consecutive else "")
    return (
        (f"Jumlah pekerja di lokasi melampaui batas PPKM: laporan pelaksanaan IOMKI nomor {letter.permit_number} "
         f"untuk periode pelaporan {when} mencatat lebih banyak pekerja di lokasi daripada yang diizinkan bagi "
         f"pabrik ini pada level PPKM yang berlaku.{row}",
         "Perusahaan wajib membatasi jumlah pekerja di lokasi sesuai ketentuan PPKM. Pelampauan yang berulang dapat "
         "mengakibatkan IOMKI dibekukan atau dicabut."),
        f"{english_title} {letter.number}: the staff on site were over the PPKM cap: the report for the period above "
        "counted more people on site than the plant's PPKM level allows"
        + (f" (warning {letter.consecutive} for a breach within the ladder's window)" if letter.consecutive else "")
        + ". Repeated breaches may lead to the permit being frozen or revoked.",
    )


class LetterPrinter(Protocol):
    """Prints a letter as a PDF, the QR carrying the registry token: the adapter is services/permits/letters.py."""

    def render(self, document: LetterDocument, *, token: str, issued_at: datetime) -> bytes: ...
