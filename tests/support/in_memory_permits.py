"""The permits service's unit of work in memory, so that unit tests can drive its handlers without a database
(the cosmicpython pattern): repositories with the methods the handlers call, and an outbox that collects envelopes.

A transaction works on a copy of the committed state and replaces it only when its block ends without an
exception, so a refused command leaves nothing behind, as PostgreSQL's rollback would. What the SQL itself
guarantees (the plant lock, the one-active-permit index, gap-free numbers under concurrent issues) is held by the
integration tests against the real database; searches and counts are SQL and are tested only there.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.permits.app import sector_table
from services.permits.domain import (
    ApplicationRules, ClassReview, Closure, FiledReport, Letter, LetterPeriod, OperatingStatus, Permit,
    PrincipalActivity, ReactivationRequest, RequestStatus, Transition,
)
from services.permits.handlers import PermitHandlers
from services.permits.letters import PdfLetters
from shared.clock import Clock
from shared.contract import Envelope, LetterKind, SanctionGround, WarningCause
from tests.support.permit_factories import Regions


@dataclass
class PermitsState:
    """What the permits schema holds, as far as the handlers write it, and the outbox."""

    permits: dict[uuid.UUID, Permit] = field(default_factory=dict)  # in application order, as the table's seq
    applications: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    history: dict[uuid.UUID, list[Transition]] = field(default_factory=dict)
    last_numbers: dict[int, int] = field(default_factory=dict)  # year → last permit number drawn
    closures: dict[uuid.UUID, tuple[uuid.UUID, Closure]] = field(default_factory=dict)  # id → (facility, closure)
    reports_filed: dict[uuid.UUID, FiledReport] = field(default_factory=dict)  # by report id
    reactivations: dict[uuid.UUID, ReactivationRequest] = field(default_factory=dict)  # in filing order, as seq
    warnings: dict[uuid.UUID, tuple[uuid.UUID, uuid.UUID, datetime]] = field(default_factory=dict)  # id → (permit,
    # period, deadline)
    breaches: dict[uuid.UUID, tuple[uuid.UUID, uuid.UUID, datetime]] = field(default_factory=dict)  # breach id →
    # (permit, period, deadline), as capacity warnings named them
    letters: list[Letter] = field(default_factory=list)  # in the order issued
    letters_to_send: dict[uuid.UUID, str] = field(default_factory=dict)  # letter id → the correlation it carries
    letters_sent: set[uuid.UUID] = field(default_factory=set)
    class_reviews: dict[uuid.UUID, ClassReview] = field(default_factory=dict)  # in the order opened
    outbox: list[Envelope] = field(default_factory=list)


class InMemoryPermits:
    """`PermitRepository` as the handlers use it."""

    def __init__(self, state: PermitsState) -> None:
        self._state = state

    async def get(self, permit_id: uuid.UUID, *, for_update: bool = False) -> Permit | None:
        return self._state.permits.get(permit_id)

    async def by_number(self, number: str) -> Permit | None:
        return next((p for p in self._state.permits.values() if p.permit_number == number), None)

    async def application(self, permit_id: uuid.UUID) -> dict[str, Any]:
        return self._state.applications[permit_id]

    async def lock_plant(self, plant_key: str) -> None:
        """Nothing to serialise: these tests run one transaction at a time."""

    async def of_plant(self, plant_key: str) -> list[Permit]:
        return [p for p in reversed(self._state.permits.values()) if p.plant_key == plant_key]  # newest first

    async def add(self, permit: Permit, application: dict[str, Any], transition: Transition) -> None:
        self._state.permits[permit.permit_id] = permit
        self._state.applications[permit.permit_id] = json.loads(json.dumps(application))  # as the jsonb reads back
        self._state.history[permit.permit_id] = [transition]

    async def save_class(self, permit: Permit) -> None:
        self._state.permits[permit.permit_id] = permit

    async def save(self, permit: Permit, transition: Transition) -> None:
        if permit.permit_id not in self._state.permits:  # the history row's foreign key would refuse it
            raise KeyError(f"no permit {permit.permit_id} to save")
        self._state.permits[permit.permit_id] = permit
        self._state.history[permit.permit_id].append(transition)

    async def next_number(self, year: int) -> int:
        self._state.last_numbers[year] = self._state.last_numbers.get(year, 0) + 1
        return self._state.last_numbers[year]

    async def latest_freeze_ground(self, permit_id: uuid.UUID) -> SanctionGround | None:
        sanctions = [t for t in self._state.history.get(permit_id, []) if t.action in ("freeze", "revoke")]
        return sanctions[-1].ground if sanctions else None

    async def history(self, permit_id: uuid.UUID) -> list[dict[str, Any]]:
        """The rows `PermitRepository.history` reads: statuses as the table stores them, text."""
        return [{"from_status": t.from_status.value if t.from_status else None, "to_status": t.to_status.value,
                 "action": t.action, "actor": t.actor, "role": t.role, "reason": t.reason, "at": t.at,
                 "causation_id": t.causation_id, "ground": t.ground.model_dump(mode="json") if t.ground else None}
                for t in self._state.history.get(permit_id, [])]


class InMemoryFiledReports:
    """`FiledReports`: the reports filed for the permits, one per report id."""

    def __init__(self, state: PermitsState) -> None:
        self._state = state

    async def record(self, reports: list[FiledReport]) -> None:
        for report in reports:
            self._state.reports_filed.setdefault(report.report_id, report)

    async def periods_filed(self, permit_id: uuid.UUID, period_ids: Sequence[uuid.UUID]) -> frozenset[uuid.UUID]:
        return frozenset(r.period_id for r in self._state.reports_filed.values()
                         if r.permit_id == permit_id and r.period_id in period_ids)

    async def declared(self, permit_id: uuid.UUID, report_id: uuid.UUID) -> FiledReport | None:
        report = self._state.reports_filed.get(report_id)
        return report if report is not None and report.permit_id == permit_id and report.declared else None


class InMemoryReactivations:
    """`ReactivationRequests` as the handlers use it (the review queue is SQL, tested against the database)."""

    def __init__(self, state: PermitsState) -> None:
        self._state = state

    async def add(self, request: ReactivationRequest) -> None:
        if await self.open_request(request.permit_id) is not None:  # the one-open index would refuse it
            raise ValueError(f"permit {request.permit_id} already has a request awaiting a decision")
        self._state.reactivations[request.request_id] = request

    async def save(self, request: ReactivationRequest) -> None:
        self._state.reactivations[request.request_id] = request

    async def get(self, request_id: uuid.UUID, *, for_update: bool = False) -> ReactivationRequest | None:
        return self._state.reactivations.get(request_id)

    async def open_request(self, permit_id: uuid.UUID) -> uuid.UUID | None:
        return next((r.request_id for r in self._state.reactivations.values()
                     if r.permit_id == permit_id and r.status is RequestStatus.PENDING), None)

    async def of_permit(self, permit_id: uuid.UUID, limit: int) -> list[ReactivationRequest]:
        return [r for r in reversed(self._state.reactivations.values()) if r.permit_id == permit_id][:limit]


class InMemoryClosures:
    """`ClosureRepository`: closures ordered by incidents, per plant."""

    def __init__(self, state: PermitsState) -> None:
        self._state = state

    async def ordered(self, facility_id: uuid.UUID, closure: Closure, cause: uuid.UUID) -> None:
        if (earlier := self._state.closures.get(closure.closure_id)) is not None:  # a later order extends it
            closure = replace(earlier[1], reason=closure.reason, ends_at=max(earlier[1].ends_at, closure.ends_at))
        self._state.closures[closure.closure_id] = (facility_id, closure)

    async def reopened(self, closure_id: uuid.UUID, at: datetime) -> bool:
        found = self._state.closures.get(closure_id)
        if found is None or not found[1].open:
            return False
        self._state.closures[closure_id] = (found[0], replace(found[1], reopened_at=at))
        return True

    async def of_facility(self, facility_id: uuid.UUID, closure_id: uuid.UUID) -> bool:
        found = self._state.closures.get(closure_id)
        return found is not None and found[0] == facility_id

    async def operating_status(self, facility_id: uuid.UUID) -> OperatingStatus:
        still_open = [c for facility, c in self._state.closures.values() if facility == facility_id and c.open]
        return OperatingStatus(tuple(sorted(still_open, key=lambda c: c.starts_at)))


class InMemoryLetters:
    """`LetterRepository`: warnings as recorded, and letters."""

    def __init__(self, state: PermitsState) -> None:
        self._state = state

    async def record_warning(self, permit_id: uuid.UUID, warning_id: uuid.UUID, period_id: uuid.UUID,
                             deadline: datetime, consecutive: int, now: datetime,
                             cause: WarningCause = WarningCause.MISSED_REPORT,
                             breach_id: uuid.UUID | None = None) -> bool:
        if warning_id in self._state.warnings:
            return False
        self._state.warnings[warning_id] = (permit_id, period_id, deadline)
        if breach_id is not None:
            self._state.breaches[breach_id] = (permit_id, period_id, deadline)
        return True

    async def breach_periods(self, permit_id: uuid.UUID, breach_ids: list[uuid.UUID]) -> dict[uuid.UUID, LetterPeriod]:
        return {breach: LetterPeriod(period, deadline) for breach, (permit, period, deadline)
                in self._state.breaches.items() if permit == permit_id and breach in breach_ids}

    async def deadlines(self, permit_id: uuid.UUID, period_ids: list[uuid.UUID]) -> dict[uuid.UUID, datetime]:
        return {period: deadline for permit, period, deadline in self._state.warnings.values()
                if permit == permit_id and period in period_ids}

    async def last_sequence(self, permit_id: uuid.UUID, kind: LetterKind) -> int:
        return max((le.sequence for le in self._state.letters if le.permit_id == permit_id and le.kind is kind),
                   default=0)

    async def add(self, letter: Letter, *, to_send: bool, correlation_id: str) -> None:
        if any(le.number == letter.number for le in self._state.letters):  # the table's unique number
            raise KeyError(f"letter {letter.number} exists")
        self._state.letters.append(letter)
        if to_send:
            self._state.letters_to_send[letter.letter_id] = correlation_id

    async def unsent(self, limit: int) -> list[tuple[Letter, str]]:
        return [(le, self._state.letters_to_send[le.letter_id]) for le in self._state.letters
                if le.letter_id in self._state.letters_to_send and le.letter_id not in self._state.letters_sent][:limit]

    async def sent(self, letter_id: uuid.UUID, now: datetime) -> bool:
        if letter_id in self._state.letters_sent:
            return False
        self._state.letters_sent.add(letter_id)
        return True

    async def of_permit(self, permit_id: uuid.UUID) -> list[Letter]:
        return [le for le in self._state.letters if le.permit_id == permit_id]

    async def by_id(self, permit_id: uuid.UUID, letter_id: uuid.UUID) -> Letter | None:
        return next((le for le in self._state.letters if le.permit_id == permit_id and le.letter_id == letter_id),
                    None)

    async def by_sequence(self, permit_id: uuid.UUID, kind: LetterKind, sequence: int) -> Letter | None:
        return next((le for le in self._state.letters
                     if le.permit_id == permit_id and le.kind is kind and le.sequence == sequence), None)


class InMemoryClassReviews:
    """`ClassReviews` as the handlers use it (listing is SQL, tested against the database)."""

    def __init__(self, state: PermitsState) -> None:
        self._state = state

    async def add(self, review: ClassReview) -> None:
        if await self.open_of(review.permit_id) is not None:  # the one-open index would refuse it
            raise ValueError(f"permit {review.permit_id} already has a class review awaiting a decision")
        self._state.class_reviews[review.review_id] = review

    async def get(self, review_id: uuid.UUID, *, for_update: bool = False) -> ClassReview | None:
        return self._state.class_reviews.get(review_id)

    async def open_of(self, permit_id: uuid.UUID) -> ClassReview | None:
        return next((r for r in self._state.class_reviews.values() if r.permit_id == permit_id and r.pending), None)

    async def decided(self, review: ClassReview) -> None:
        if not self._state.class_reviews[review.review_id].pending:
            raise LookupError(f"class review {review.review_id} is not pending")
        self._state.class_reviews[review.review_id] = review


class CollectingOutbox:
    """Collects the envelopes a handler adds; they are published (committed) only if its transaction commits."""

    def __init__(self, state: PermitsState) -> None:
        self._state = state

    async def add(self, *envelopes: Envelope) -> None:
        self._state.outbox.extend(envelopes)


class InMemoryPermitsWork:
    """What `PermitsWork` gives a handler: its repositories and the outbox, in one transaction."""

    def __init__(self, state: PermitsState) -> None:
        self.permits = InMemoryPermits(state)
        self.closures = InMemoryClosures(state)
        self.reports_filed = InMemoryFiledReports(state)
        self.reactivations = InMemoryReactivations(state)
        self.letters = InMemoryLetters(state)
        self.class_reviews = InMemoryClassReviews(state)
        self.outbox = CollectingOutbox(state)


class InMemoryPermitsDatabase:
    """Stands where `Database[PermitsWork]` does. `committed` is what a later transaction would see."""

    def __init__(self) -> None:
        self.committed = PermitsState()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[InMemoryPermitsWork]:
        state = copy.deepcopy(self.committed)
        yield InMemoryPermitsWork(state)
        self.committed = state  # not reached when the block raised: the copy is dropped, as a rollback would

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[InMemoryPermitsWork]:
        yield InMemoryPermitsWork(copy.deepcopy(self.committed))


def permit_handlers(database: InMemoryPermitsDatabase, clock: Clock) -> PermitHandlers:
    """The permits service's handlers over this unit of work, as its composition root builds them: the regions of
    the test directory, a signing key of their own, the shipped KBLI sector table, the PDF printer."""
    return PermitHandlers(database, clock, ApplicationRules(Regions()), Ed25519PrivateKey.generate(),
                          PrincipalActivity(sector_table()), PdfLetters())


def published(database: InMemoryPermitsDatabase) -> list[str]:
    """The committed outbox, by event name."""
    return [envelope.type.split(".")[1] for envelope in database.committed.outbox]
