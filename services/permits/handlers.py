"""One function per command and consumed event: load, ask the domain, save, add outgoing events."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, cast

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.permits.domain import (
    LETTER_KIND_OF_ACTION, Action, Application, ApplicationRules, ClassReview, ClassReviewNotFound, Closure,
    ConditionCheck, Decision, FiledReport, GroundFacts, IllegalTransition, KbliSectorTable, Letter, LetterGround,
    LetterNotFound, LetterPeriod, LetterPrinter, Objection, ObjectionOutcome, ObjectionWindow, OnePermitPerPlant,
    OpenToObjection, OperatingStatus, Permit, PermitNotFound, PermitStatus, PrincipalActivity, QueuedItem,
    ReactivationFacts, ReactivationRequest, ReactivationRequestNotFound, RegistryStatus, RequestStatus, ReviewDecision,
    SanctionRecommendation, ServiceLevels, Transition, WorkItem, WorkKind, accepted_claim_reason,
    certificate_document, check_ground,
    leaves_the_freeze, letter_document, missed_periods_of, open_to_objection, permit_number, reactivation_outlook,
    registry_status, sanction_periods, warning_ground,
)
from services.permits.domain import (
    InvalidApplication, SanctionRequest, SanctionRequestNotFound, Tenancy, TenancyDecision,
    TenancyNotFound, TenancyStatus, estate_claim_errors, estate_revoked_reason,
)
from services.permits.letters import PdfLetters
from services.permits.repository import (
    ListedReview, ListedSanctionRequest, ListedTenancy, PermitSearch, PermitsWork, QueuedRequest, ReviewSearch,
    SanctionRequestSearch, TableApplied,
)
from shared import registry_tokens
from shared.clock import Clock
from shared.web.access import Access
from shared.contract import (
    LETTER_PDF_MAX_BYTES, CompanyContactsUpdated, CompanyLetterIssued, Decoded, Envelope, Event, FacilityClosureOrdered,
    GroundCode,
    FacilityReopened, GroundEvidence, LetterKind, ObjectionDecided, ObjectionFiled, PermitApplied, PermitFrozen,
    PermitIssued, PermitReactivated, PermitRejected, PermitRevoked, ReactivationRejected, ReactivationRequested,
    ClassBasis, ReportSubmitted, SanctionAction, SanctionGround, SanctionRecommended, SanctionReversed, SectorClass,
    SectorClassChanged, WarningCause, WarningIssued,
)
from shared.contract import (
    EstateTenancyConfirmed, EstateTenancyEnded, PermitKind, RequestDecision, SanctionRequestDecided, SanctionRequested,
    TenancyEndCause,
)
from shared.observability import record
from shared.storage.unit_of_work import Database

SERVICE = "permits"

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PermitView:
    permit: Permit
    application: dict
    operating: OperatingStatus
    table_version: str | None = None  # the table its class was read from (or set over), if any
    open_review: ClassReview | None = None


@dataclass(frozen=True)
class RegistryEntry:
    permit: Permit
    status: RegistryStatus
    regency_name: str | None
    token: str


@dataclass(frozen=True)
class ReactivationStanding:
    """Where a permit stands with reactivation: the conditions a new request would meet now (its statement aside),
    and every request made, the latest first."""

    permit: Permit
    outlook: list[ConditionCheck]
    requests: list[ReactivationRequest]


@dataclass
class PermitHandlers:
    database: Database[PermitsWork]
    clock: Clock
    rules: ApplicationRules
    signing_key: Ed25519PrivateKey
    activity: PrincipalActivity  # the KBLI sector table, read through the plant's principal code
    # The PDF adapter unless the composition root says otherwise: printing has no I/O, so every test can use it.
    printer: LetterPrinter = field(default_factory=PdfLetters)
    one_permit_per_plant: OnePermitPerPlant = OnePermitPerPlant()

    # -- commands ------------------------------------------------------------------------------------

    async def apply(self, application: Application, access: Access) -> Permit:
        """The application, its class the table's reading of its principal KBLI code; a company's claim of another
        class waits for an operator's review meanwhile."""
        self.rules.check(application)
        now = self.clock.now()
        derived = self.activity.derive(application.kbli).classing
        claimed = application.claim.against(derived)
        async with self.database.transaction() as work:
            estate = None
            if application.estate_permit_number is not None:
                estate = await work.permits.by_number(application.estate_permit_number)
                errors = list(estate_claim_errors(application, estate))
                if errors:
                    raise InvalidApplication(errors)
            await work.permits.lock_plant(application.plant_key)
            earlier = await work.permits.of_plant(application.plant_key)
            self.one_permit_per_plant.check(earlier, now=now)
            permit, transition = Permit.apply(
                facility_id=self.one_permit_per_plant.facility_of(earlier), nib=application.nib,
                company_name=application.company_name, province_code=application.province_code,
                regency_code=application.regency_code, sector_class=derived.sector_class.value,
                workforce_total=application.workforce_total, actor=access.actor,
                role=access.principal.role.value, now=now, plant_key=application.plant_key,
                export_oriented=derived.export_oriented, kind=application.kind,
            )
            await work.permits.add(permit, application.__dict__, transition)
            if estate is not None:  # pending until the estate answers
                await work.tenancies.add(Tenancy.claim(estate, permit, actor=access.actor, now=now))
            if claimed is not None:
                await work.class_reviews.add(ClassReview.open(permit, claimed, derived, actor=access.actor, now=now,
                                                              table_version=self.activity.table.version))
            applied = Envelope.wrap(PermitApplied(
                **_about(permit), company_name=permit.company_name, facility_name=application.facility_name,
                kbli=application.kbli, sector_class=derived.sector_class, export_oriented=derived.export_oriented,
                workforce_total=application.workforce_total, kind=permit.kind,
                estate_permit_number=application.estate_permit_number,
            ), service=SERVICE, time=now)
            contacts = applied.caused(CompanyContactsUpdated(
                **_about(permit), company_name=permit.company_name,
                email=application.contact_email, phone=application.contact_phone,
            ), service=SERVICE, time=now)
            await work.outbox.add(applied, contacts)
        record("permit_applied", permit_id=str(permit.permit_id), actor=access.actor)
        return permit

    async def act(self, permit_id: uuid.UUID, action: Action, reason: str, access: Access,
                  request_id: str | None = None, ground: SanctionGround | None = None) -> Permit:
        """An officer's decision: issue, reject, freeze, reactivate or revoke (the last two with a ground)."""
        now = self.clock.now()
        async with self.database.transaction() as work:
            permit = await self._visible(work, permit_id, access, for_update=True)
            number = None
            if action is Action.ISSUE and permit.status is PermitStatus.SUBMITTED:
                # Drawn only once the transition is known to be legal, so a refused issue burns no number.
                number = permit_number(now.year, await work.permits.next_number(now.year))
            if ground is not None:
                check_ground(ground, await self._ground_facts(work, permit, ground))
            changed, transition = permit.act(action, actor=access.actor, role=access.principal.role.value,
                                             reason=reason, now=now, permit_number=number, causation_id=request_id,
                                             ground=ground)
            await work.permits.save(changed, transition)
            await self._announce(work, changed, transition, Envelope.wrap(
                _event_of(changed, transition), service=SERVICE, time=now, correlation_id=request_id), now)
        record("permit_transition", permit_id=str(permit_id), action=action.value, actor=access.actor,
               permit_status=changed.status.value)
        return changed

    async def _announce(self, work: PermitsWork, permit: Permit, transition: Transition, public: Envelope,
                        now: datetime) -> None:
        """A transition's public event, and what follows from it in the same transaction: a reactivation request
        lapses, an estate's tenancies end, a sanction's letter is issued."""
        await work.outbox.add(public)
        await lapse_open_request(work, permit, transition, public)
        await end_tenancies(work, permit, transition, public)
        await self._sanction_letter(work, permit, transition, public, now)

    @staticmethod
    async def _ground_facts(work: PermitsWork, permit: Permit, ground: SanctionGround) -> GroundFacts:
        evidence = ground.evidence
        closure = evidence.closure_id
        report = evidence.report_id
        return GroundFacts(
            report_declared=report is not None and await work.reports_filed.declared(permit.permit_id,
                                                                                   report) is not None,
            closure_of_plant=closure is not None and await work.closures.of_facility(permit.facility_id, closure),
        )

    async def request_reactivation(self, permit_id: uuid.UUID, corrective_action: str, access: Access,
                                   request_id: str | None = None) -> ReactivationRequest:
        """A frozen company asks to operate again: filed only when every condition is met, into the review queue."""
        now = self.clock.now()
        async with self.database.transaction() as work:
            # The permit's row lock serialises a company's requests, so two at once cannot both be the open one.
            permit = await self._visible(work, permit_id, access, for_update=True)
            facts = await self._reactivation_facts(work, permit, corrective_action)
            request = ReactivationRequest.file(facts, actor=access.actor, now=now)
            await work.reactivations.add(request)
            await work.outbox.add(Envelope.wrap(ReactivationRequested(
                **_about(permit), request_id=request.request_id, permit_number=_number(permit),
                missed_periods=list(request.missed_periods), requested_at=now,
            ), service=SERVICE, time=now, correlation_id=request_id))
        record("reactivation_requested", permit_id=str(permit_id), request_id=str(request.request_id),
               actor=access.actor, missed_periods=len(request.missed_periods))
        return request

    async def decide_reactivation(self, request_id: uuid.UUID, decision: Decision, reason: str, access: Access,
                                  http_request_id: str | None = None) -> tuple[ReactivationRequest, Permit]:
        """An operator approves (the permit is reactivated, the periods filed late excused) or rejects, once."""
        now = self.clock.now()
        async with self.database.transaction() as work:
            found = await work.reactivations.get(request_id)
            if found is None:
                raise ReactivationRequestNotFound("Reactivation request")
            # Locked in the order a filing locks them: the permit, then its requests.
            permit = await self._visible(work, found.permit_id, access, for_update=True)
            request = await work.reactivations.get(request_id, for_update=True)
            if request is None:  # requests are never deleted
                raise ReactivationRequestNotFound("Reactivation request")
            decided, change = request.decide(decision, permit, reason=reason, actor=access.actor,
                                             role=access.principal.role.value, now=now, causation_id=http_request_id)
            await work.reactivations.save(decided)
            event: Event
            if change is not None:
                permit, transition = change
                await work.permits.save(permit, transition)
                event = PermitReactivated(**_about(permit), permit_number=_number(permit), reason=transition.reason,
                                          request_id=decided.request_id, excused_periods=list(decided.missed_periods))
            else:
                event = ReactivationRejected(**_about(permit), request_id=decided.request_id,
                                             permit_number=_number(permit), reason=reason)
            await work.outbox.add(Envelope.wrap(event, service=SERVICE, time=now, correlation_id=http_request_id))
        record("reactivation_decided", request_id=str(request_id), decision=decision.value, actor=access.actor,
               permit_status=permit.status.value)
        return decided, permit

    # -- queries -------------------------------------------------------------------------------------

    async def get(self, permit_id: uuid.UUID, access: Access) -> PermitView:
        async with self.database.reading() as work:
            permit = await self._visible(work, permit_id, access)
            # A class the table gives is the reading of the table this service applied at its start.
            version = permit.class_table_version if permit.class_basis is ClassBasis.OPERATOR else (
                self.activity.table.version if permit.class_basis is ClassBasis.KBLI_TABLE else None)
            return PermitView(permit, await work.permits.application(permit_id),
                              await work.closures.operating_status(permit.facility_id), version,
                              await work.class_reviews.open_of(permit_id))

    async def search(self, search: PermitSearch) -> list[tuple[int, Permit]]:
        async with self.database.reading() as work:
            return await work.permits.search(search)

    async def summary(self, *, province: str | None, regency: str | None) -> list[dict]:
        """Permits per province and status, each province with its Kemendagri name."""
        async with self.database.reading() as work:
            rows = await work.permits.count_by_province_and_status(province=province, regency=regency)
        provinces: dict[str, dict] = {}
        for row in rows:
            code = row["province_code"]
            entry = provinces.setdefault(code, {
                "province_code": code, "province_name": self.rules.regions.name_of(code), "total": 0,
                "by_status": dict.fromkeys((s.value for s in PermitStatus), 0)})
            entry["by_status"][row["status"]] = row["permits"]
            entry["total"] += row["permits"]
        return list(provinces.values())

    async def sanctions(self, *, province: str | None, regency: str | None) -> list[dict]:
        """Freezes and revocations by province, month and ground (the ministry's "why", in numbers)."""
        async with self.database.reading() as work:
            return [dict(row) for row in await work.permits.sanction_counts(province=province, regency=regency)]

    async def history(self, permit_id: uuid.UUID, access: Access) -> list[dict]:
        async with self.database.reading() as work:
            await self._visible(work, permit_id, access)
            return await work.permits.history(permit_id)

    async def registry_entry(self, number: str) -> RegistryEntry:
        async with self.database.reading() as work:
            permit = await work.permits.by_number(number)
            if permit is None or permit.issued_at is None:
                raise PermitNotFound("Permit", f"No issued permit {number}.")
            operating = await work.closures.operating_status(permit.facility_id)
        region = self.rules.regions.name_of(permit.regency_code)
        return RegistryEntry(permit, registry_status(permit, operating), region, self._token(permit))

    def _token(self, permit: Permit) -> str:
        """What the QR of the permit, and of each of its letters, carries (deterministic: the same every time)."""
        if permit.permit_number is None or permit.issued_at is None:  # only issued permits are in the registry
            raise ValueError(f"permit {permit.permit_id} was never issued")
        claims = registry_tokens.claims_for(permit_number=permit.permit_number, company_name=permit.company_name,
                                            regency_code=permit.regency_code, sector_class=permit.sector_class,
                                            issued_at=permit.issued_at, public_key=self.signing_key.public_key())
        return registry_tokens.sign(claims, self.signing_key)

    # -- letters -------------------------------------------------------------------------------------

    async def letters(self, permit_id: uuid.UUID, access: Access) -> list[Letter]:
        async with self.database.reading() as work:
            await self._visible(work, permit_id, access)
            return await work.letters.of_permit(permit_id)

    async def letter_pdf(self, permit_id: uuid.UUID, reference: uuid.UUID | tuple[str | None, LetterKind, int],
                         access: Access) -> tuple[Letter, bytes]:
        """A letter by its id, or by its kind and sequence (and, if named, its permit's number), printed again."""
        async with self.database.reading() as work:
            permit = await self._visible(work, permit_id, access)
            if isinstance(reference, uuid.UUID):
                letter = await work.letters.by_id(permit_id, reference)
            else:
                named, kind, sequence = reference
                letter = (await work.letters.by_sequence(permit_id, kind, sequence)
                          if named in (None, permit.permit_number) else None)
        if letter is None:
            raise LetterNotFound("Letter")
        return letter, await self._print(permit, letter)

    async def certificate_pdf(self, permit_id: uuid.UUID, access: Access) -> tuple[str, bytes]:
        """An issued permit's certificate (its file name and PDF), on the letters' printer, with the QR the
        registry's `/registry/{number}/qr.png` carries."""
        async with self.database.reading() as work:
            permit = await self._visible(work, permit_id, access)
            application = await work.permits.application(permit_id)
        regions_ = self.rules.regions
        document = certificate_document(
            permit, facility_name=str(application.get("facility_name") or ""),
            address=str(application.get("address") or ""), regency_name=regions_.name_of(permit.regency_code),
            province_name=regions_.name_of(permit.province_code))
        return document.filename, await asyncio.to_thread(
            self.printer.render, document, token=self._token(permit), issued_at=permit.issued_at or self.clock.now())

    async def _print(self, permit: Permit, letter: Letter) -> bytes:
        """Printed in a worker thread: printing is long CPU work (docs/performance.md), which the event loop serving
        the service's requests should not wait out in one piece."""
        document = letter_document(letter, regency_name=self.rules.regions.name_of(letter.regency_code))
        return await asyncio.to_thread(self.printer.render, document, token=self._token(permit),
                                       issued_at=letter.issued_at)

    async def _sanction_letter(self, work: PermitsWork, permit: Permit, transition: Transition, public: Envelope,
                               now: datetime) -> None:
        """A freeze's or revocation's letter, listing the missed periods of its ground by the deadlines that the
        warnings recorded here gave them."""
        kind = LETTER_KIND_OF_ACTION.get(Action(transition.action))
        if kind is None or transition.ground is None:
            return
        evidence = transition.ground.evidence
        if transition.ground.code is GroundCode.CAPACITY_BREACHES:  # the periods of its breaches
            breaches = evidence.breaches
            periods = await work.letters.breach_periods(permit.permit_id, breaches) if breaches else {}
            listed = tuple(sorted(periods.values(), key=lambda p: p.deadline or datetime.min))
        else:
            missed = evidence.missed_periods
            deadlines = await work.letters.deadlines(permit.permit_id, missed) if missed else {}
            listed = sanction_periods(missed, deadlines)
        await self._issue_letter(work, permit, kind, ground=LetterGround.of(transition.ground), periods=listed,
                                 cause=public, now=now)

    async def _issue_letter(self, work: PermitsWork, permit: Permit, kind: LetterKind, *, ground: LetterGround,
                            periods: tuple[LetterPeriod, ...], cause: Envelope, now: datetime,
                            warning_id: uuid.UUID | None = None, consecutive: int | None = None) -> Letter:
        """Number and keep the letter; `send_letters` prints it for the company's e-mail (if it gave one)."""
        letter = Letter.issue(permit, kind, last_sequence=await work.letters.last_sequence(permit.permit_id, kind),
                              ground=ground, periods=periods, cause_event_id=cause.id, now=now,
                              warning_id=warning_id, consecutive=consecutive)
        to_send = bool((await work.permits.application(permit.permit_id)).get("contact_email"))
        await work.letters.add(letter, to_send=to_send, correlation_id=cause.correlationid)
        return letter

    async def send_letters(self) -> int:
        """Print the letters issued for a company's e-mail and send each to the notifier (CompanyLetterIssued on
        the internal topic), once. Printing takes far longer than recording, so it happens here, outside the
        transaction that issued the letter, and each letter's event is added in a short transaction of its own."""
        async with self.database.reading() as work:
            due = await work.letters.unsent(LETTERS_PER_ROUND)
            permits = {letter.permit_id: await work.permits.get(letter.permit_id) for letter, _ in due}
        sent = 0
        for letter, correlation_id in due:
            permit = permits[letter.permit_id]
            if permit is None:  # letters are of permits, which are never deleted
                raise LookupError(f"letter {letter.number} names no permit")
            pdf = await self._print(permit, letter)
            if len(pdf) > LETTER_PDF_MAX_BYTES:  # never expected (a letter's lists are bounded): sent without it
                log.error("letter_too_large_to_send", letter_number=letter.number, size=len(pdf))
            now = self.clock.now()
            async with self.database.transaction() as work:
                if not await work.letters.sent(letter.letter_id, now):
                    continue
                await work.outbox.add(Envelope.wrap(CompanyLetterIssued(
                    **_about(permit), letter_id=letter.letter_id, letter_number=letter.number, kind=letter.kind,
                    cause_type=_CAUSE_TYPES[letter.kind], cause_event_id=letter.cause_event_id,
                    issued_at=letter.issued_at,
                    pdf_base64=base64.b64encode(pdf).decode() if len(pdf) <= LETTER_PDF_MAX_BYTES else None,
                ), service=SERVICE, time=now, correlation_id=correlation_id, causation_id=str(letter.cause_event_id)))
            sent += 1
            log.info("letter_sent", letter_number=letter.number, size=len(pdf))
        return sent

    async def reactivation_standing(self, permit_id: uuid.UUID, access: Access, limit: int) -> ReactivationStanding:
        async with self.database.reading() as work:
            permit = await self._visible(work, permit_id, access)
            outlook = reactivation_outlook(await self._reactivation_facts(work, permit, ""))
            return ReactivationStanding(permit, outlook, await work.reactivations.of_permit(permit_id, limit))

    async def reactivation_queue(self, status: RequestStatus, *, region: str | None, after: int,
                                 limit: int) -> list[QueuedRequest]:
        """Requests in one status, the oldest first, in `region` (the one asked, else the caller's own)."""
        async with self.database.reading() as work:
            return await work.reactivations.queue(status=status, region=region, after=after, limit=limit)

    @staticmethod
    async def _reactivation_facts(work: PermitsWork, permit: Permit, corrective_action: str) -> ReactivationFacts:
        missed = missed_periods_of(await work.permits.latest_freeze_ground(permit.permit_id))
        return ReactivationFacts(permit, missed, await work.reports_filed.periods_filed(permit.permit_id, missed),
                                 corrective_action, await work.reactivations.open_request(permit.permit_id))

    # -- sanction requests ---------------------------------------------------------------------------

    async def sanction_requests(self, search: SanctionRequestSearch) -> list[ListedSanctionRequest]:
        async with self.database.reading() as work:
            return await work.sanction_requests.listed(search)

    async def sanction_request(self, request_id: uuid.UUID, access: Access) -> tuple[SanctionRequest, Permit]:
        async with self.database.reading() as work:
            return await self._request_of(work, request_id, access)

    async def _request_of(self, work: PermitsWork, request_id: uuid.UUID, access: Access, *,
                          for_update: bool = False) -> tuple[SanctionRequest, Permit]:
        """The request and its permit, which the caller must be able to see (else it is not found); locked in the
        order a transition takes them: the permit, then the request."""
        found = await work.sanction_requests.get(request_id)
        if found is None:
            raise SanctionRequestNotFound("Sanction request")
        try:
            permit = await self._visible(work, found.permit_id, access, for_update=for_update)
        except PermitNotFound:
            raise SanctionRequestNotFound("Sanction request") from None
        request = await work.sanction_requests.get(request_id, for_update=True) if for_update else found
        return request or found, permit

    async def decide_sanction_request(self, request_id: uuid.UUID, decision: RequestDecision, reason: str,
                                      access: Access, http_request_id: str | None = None
                                      ) -> tuple[SanctionRequest, Permit]:
        """An operator approves (the permit is frozen or revoked on the request's ground, as by the operator's own
        sanction: history, counts, letter, event) or declines, once; either is announced to the office."""
        now = self.clock.now()
        async with self.database.transaction() as work:
            request, permit = await self._request_of(work, request_id, access, for_update=True)
            if decision is RequestDecision.APPROVED and request.pending:
                check_ground(request.ground, await self._ground_facts(work, permit, request.ground))
            decided, change = request.decide(decision, permit, reason=reason, actor=access.actor,
                                             role=access.principal.role.value, now=now, causation_id=http_request_id)
            await work.sanction_requests.decided(decided)
            announced = Envelope.wrap(SanctionRequestDecided(
                **_about(permit), request_id=request_id, action=SanctionAction(decided.action.value),
                decision=decision, reason=reason), service=SERVICE, time=now, correlation_id=http_request_id)
            await work.outbox.add(announced)
            if change is not None:
                permit, transition = change
                await work.permits.save(permit, transition)
                await self._announce(work, permit, transition,
                                     announced.caused(_event_of(permit, transition), service=SERVICE, time=now), now)
        record("sanction_request_decided", request_id=str(request_id), decision=decision.value, actor=access.actor,
               permit_status=permit.status.value)
        return decided, permit

    # -- consumed events -----------------------------------------------------------------------------

    async def on_sanction_recommended(self, work: PermitsWork, envelope: Envelope, event: SanctionRecommended) -> None:
        permit = await work.permits.get(event.permit_id, for_update=True)
        if permit is None:
            log.warning("sanction_for_unknown_permit", permit_id=str(event.permit_id))
            return
        recommendation = SanctionRecommendation(
            Action(event.action.value), event.rule, event.ladder,
            GroundEvidence(missed_periods=event.evidence.missed_periods, warnings=event.evidence.warnings,
                           breaches=event.evidence.breaches), code=event.ground)
        now = self.clock.now()
        try:
            changed, transition = permit.apply_sanction(recommendation, now=now, causation_id=str(envelope.id))
        except IllegalTransition as exc:
            # Already sanctioned further (or revoked by an officer meanwhile): the recommendation is moot.
            log.warning("sanction_not_applicable", permit_id=str(permit.permit_id), action=event.action.value,
                        status=exc.current.value, rule=event.rule)
            return
        await work.permits.save(changed, transition)
        await self._announce(work, changed, transition,
                             envelope.caused(_event_of(changed, transition), service=SERVICE, time=now), now)
        log.info("sanction_applied", permit_id=str(permit.permit_id), action=event.action.value, rule=event.rule,
                 ground=event.ground.value)

    async def on_sanction_requested(self, work: PermitsWork, envelope: Envelope, event: SanctionRequested) -> None:
        """A regional office's request: into the operators' worklist, or declined at once when its ground does not
        rest on its evidence or the permit cannot take the action (announced to the office)."""
        permit = await work.permits.get(event.permit_id, for_update=True)
        if permit is None:
            log.warning("sanction_request_for_unknown_permit", permit_id=str(event.permit_id),
                        request_id=str(event.request_id))
            return
        now = self.clock.now()
        request = SanctionRequest.receive(
            request_id=event.request_id, permit=permit, action=event.action, ground=event.ground,
            reason=event.reason, office_region=event.office_region, inspection_id=event.inspection_id,
            requested_at=event.requested_at, facts=await self._ground_facts(work, permit, event.ground), now=now)
        if not await work.sanction_requests.add(request):
            return  # received before (a redelivery): answered then
        if request.decision is RequestDecision.DECLINED:
            await work.outbox.add(envelope.caused(SanctionRequestDecided(
                **_about(permit), request_id=request.request_id, action=event.action,
                decision=RequestDecision.DECLINED, reason=request.decision_reason or ""), service=SERVICE, time=now))
        log.info("sanction_request_received", permit_id=str(permit.permit_id), request_id=str(request.request_id),
                 action=event.action.value, ground=event.ground.code.value, status=request.status.value)

    async def on_reports_submitted(self, work: PermitsWork, run: list[Decoded]) -> None:
        """A run of ReportSubmitted at once (`InBatches`): every report of every plant passes through here."""
        submitted: list[tuple[Envelope, ReportSubmitted]] = [(d.envelope, d.event) for d in run]  # type: ignore[misc]
        await work.reports_filed.record([
            FiledReport(event.report_id, event.permit_id, event.period_id, event.late, event.declared, envelope.time)
            for envelope, event in submitted])

    async def on_warning_issued(self, work: PermitsWork, envelope: Envelope, event: WarningIssued) -> None:
        """Reports warned the company: record the warning (its period's deadline) and issue its letter."""
        permit = await work.permits.get(event.permit_id, for_update=True)  # the lock that keeps numbers gap-free
        if permit is None or permit.permit_number is None:
            log.warning("warning_for_unknown_permit", permit_id=str(event.permit_id))
            return
        now = self.clock.now()
        breach = event.breach_id if event.cause is WarningCause.CAPACITY_BREACH else None
        if not await work.letters.record_warning(permit.permit_id, event.warning_id, event.period_id, event.deadline,
                                                 event.consecutive, now, event.cause, breach):
            return  # the same warning in another event: its letter exists
        letter = await self._issue_letter(work, permit, LetterKind.WARNING, ground=warning_ground(event.cause, breach),
                                          periods=(LetterPeriod(event.period_id, event.deadline),), cause=envelope,
                                          now=now, warning_id=event.warning_id, consecutive=event.consecutive)
        log.info("warning_letter_issued", permit_id=str(permit.permit_id), letter_number=letter.number,
                 cause=event.cause.value)

    async def on_closure_ordered(self, work: PermitsWork, envelope: Envelope, event: FacilityClosureOrdered) -> None:
        await work.closures.ordered(event.facility_id, Closure(event.closure_id, event.scope.value, event.reason,
                                                               event.starts_at, event.ends_at), envelope.id)
        log.info("facility_closed", facility_id=str(event.facility_id), closure_id=str(event.closure_id),
                 scope=event.scope.value)

    async def on_reopened(self, work: PermitsWork, envelope: Envelope, event: FacilityReopened) -> None:
        if not await work.closures.reopened(event.closure_id, event.reopened_at):
            log.warning("reopening_of_unknown_closure", closure_id=str(event.closure_id))
            return
        log.info("facility_reopened", facility_id=str(event.facility_id), closure_id=str(event.closure_id))

    # -- helpers -------------------------------------------------------------------------------------

    @staticmethod
    async def _visible(work: PermitsWork, permit_id: uuid.UUID, access: Access, *, for_update: bool = False) -> Permit:
        permit = await work.permits.get(permit_id, for_update=for_update)
        if permit is None or not access.may_see(region_code=permit.regency_code, nib=permit.nib,
                                                estate_nib=permit.estate_nib):
            raise PermitNotFound("Permit")
        return permit


@dataclass(frozen=True)
class PermitObjections:
    permit: Permit
    objections: list[Objection]
    open: OpenToObjection | None  # the sanction in force that may still be objected to


@dataclass
class ObjectionHandlers:
    """Objections to freezes and revocations (UU 30/2014 Pasal 77): filed by the company within the window, decided
    by an operator with reasons; a decision for the company reverses the sanction as a transition of the permit."""

    database: Database[PermitsWork]
    clock: Clock
    window: ObjectionWindow

    async def file(self, permit_id: uuid.UUID, statement: str, access: Access,
                   request_id: str | None = None) -> Objection:
        now = self.clock.now()
        async with self.database.transaction() as work:
            # Locked: two objections filed at once see each other (OneObjectionPerSanction).
            permit = await PermitHandlers._visible(work, permit_id, access, for_update=True)
            objection = Objection.file(permit, await work.permits.latest_transition(permit_id),
                                       await work.objections.of_permit(permit_id), statement, window=self.window,
                                       actor=access.actor, role=access.principal.role.value, now=now)
            await work.objections.add(objection)
            await work.outbox.add(Envelope.wrap(ObjectionFiled(
                **_about(permit), objection_id=objection.objection_id,
                sanction=SanctionAction(objection.sanction.action.value), sanctioned_at=objection.sanction.at,
                filed_at=now,
            ), service=SERVICE, time=now, correlation_id=request_id))
        record("objection_filed", permit_id=str(permit_id), objection_id=str(objection.objection_id),
               sanction=objection.sanction.action.value, last_day=objection.last_day.isoformat(), actor=access.actor)
        return objection

    async def decide(self, objection_id: uuid.UUID, outcome: ObjectionOutcome, reason: str, access: Access,
                     request_id: str | None = None) -> tuple[Objection, Permit]:
        now = self.clock.now()
        async with self.database.transaction() as work:
            found = await work.objections.get(objection_id)
            unlocked = await work.permits.get(found.permit_id) if found else None
            if found is None or unlocked is None:
                raise PermitNotFound("Objection")
            # The plant first, as an application takes it, then the permit: a reversal and an application for the
            # same plant are serialised, so the one-permit check below holds.
            await work.permits.lock_plant(unlocked.plant_key)
            permit = await PermitHandlers._visible(work, found.permit_id, access, for_update=True)
            # Read again under the locks: a decision taken meanwhile is seen (ObjectionStillPending).
            objection = await work.objections.get(objection_id, for_update=True) or found
            decision = objection.decide(
                outcome, reason, permit=permit, latest=await work.permits.latest_transition(permit.permit_id),
                # Permits from before plant keys share the empty key, and the one-permit index leaves them out.
                permits_of_plant=await work.permits.of_plant(permit.plant_key) if permit.plant_key else [],
                actor=access.actor, role=access.principal.role.value, now=now, causation_id=request_id)
            await work.objections.decided(decision.objection)
            decided = Envelope.wrap(ObjectionDecided(
                **_about(permit), objection_id=objection_id, outcome=outcome, reason=reason,
            ), service=SERVICE, time=now, correlation_id=request_id)
            events = [decided]
            if decision.permit is not None and decision.transition is not None:
                permit = decision.permit
                await work.permits.save(permit, decision.transition)
                if decision.recount is not None:
                    await work.permits.recount(permit, decision.recount)
                events.append(decided.caused(SanctionReversed(
                    **_about(permit), objection_id=objection_id, permit_number=permit.permit_number,
                    reversed=SanctionAction(objection.sanction.action.value),
                    to_status=cast(Literal["ISSUED", "FROZEN"], permit.status.value), reason=reason,
                    freeze_count=permit.freeze_count,
                ), service=SERVICE, time=now))
            await work.outbox.add(*events)
            if decision.permit is not None and decision.transition is not None:
                await lapse_open_request(work, decision.permit, decision.transition, events[-1])
        record("objection_decided", permit_id=str(permit.permit_id), objection_id=str(objection_id),
               outcome=outcome.value, permit_status=permit.status.value, actor=access.actor)
        return decision.objection, permit

    async def of_permit(self, permit_id: uuid.UUID, access: Access) -> PermitObjections:
        now = self.clock.now()
        async with self.database.reading() as work:
            permit = await PermitHandlers._visible(work, permit_id, access)
            objections = await work.objections.of_permit(permit_id)
            latest = await work.permits.latest_transition(permit_id)
        return PermitObjections(permit, objections, open_to_objection(permit, latest, objections,
                                                                      window=self.window, now=now))


LETTERS_PER_ROUND = 20  # printed one after another between two looks at the table

_CAUSE_TYPES: dict[LetterKind, Literal["WarningIssued", "PermitFrozen", "PermitRevoked"]] = {
    LetterKind.WARNING: "WarningIssued", LetterKind.FREEZE: "PermitFrozen", LetterKind.REVOCATION: "PermitRevoked"}


async def lapse_open_request(work: PermitsWork, permit: Permit, transition: Transition, cause: Envelope) -> None:
    """A reactivation request still pending when the permit leaves its freeze another way lapses with it
    (`ReactivationRequest.lapsed`), announced as rejected, caused by what moved the permit."""
    if not leaves_the_freeze(transition):
        return
    open_id = await work.reactivations.open_request(permit.permit_id)
    if open_id is None:
        return
    request = await work.reactivations.get(open_id, for_update=True)
    if request is None:  # requests are never deleted
        raise LookupError(f"reactivation request {open_id} vanished within its transaction")
    lapsed = request.lapsed(transition)
    await work.reactivations.save(lapsed)
    await work.outbox.add(cause.caused(ReactivationRejected(
        **_about(permit), request_id=lapsed.request_id, permit_number=_number(permit),
        reason=lapsed.decision_reason or ""), service=SERVICE, time=transition.at))


async def end_tenancies(work: PermitsWork, estate: Permit, transition: Transition, cause: Envelope) -> None:
    """An estate whose permit is revoked no longer has tenants: each confirmed tenancy ends (`estate_revoked`),
    announced, caused by the revocation; the estate stops reading its plants."""
    if estate.kind is not PermitKind.ESTATE or transition.to_status is not PermitStatus.REVOKED:
        return
    reason = estate_revoked_reason(estate)
    for tenancy in await work.tenancies.of_estate(estate.permit_id, TenancyStatus.CONFIRMED, for_update=True):
        ended = tenancy.end(TenancyEndCause.ESTATE_REVOKED, reason=reason, actor=transition.actor,
                            role=transition.role, now=transition.at)
        await work.tenancies.save(ended)
        await work.permits.set_estate(tenancy.tenant_permit_id, None)
        tenant = await work.permits.get(tenancy.tenant_permit_id)
        if tenant is None:  # tenancies are of permits, which are never deleted
            raise LookupError(f"tenancy names no permit {tenancy.tenant_permit_id}")
        await work.outbox.add(cause.caused(EstateTenancyEnded(
            **_about(tenant), estate_facility_id=estate.facility_id, estate_nib=estate.nib,
            cause=TenancyEndCause.ESTATE_REVOKED, reason=reason), service=SERVICE, time=transition.at))


def _about(permit: Permit) -> dict:
    return dict(facility_id=permit.facility_id, province_code=permit.province_code,
                regency_code=permit.regency_code, permit_id=permit.permit_id, nib=permit.nib)


def _event_of(permit: Permit, transition: Transition) -> Event:
    """The public event announcing a transition that just happened."""
    base, reason = _about(permit), transition.reason
    match transition.action:
        case Action.ISSUE:
            if permit.permit_number is None or permit.issued_at is None:  # issuing sets both
                raise ValueError(f"issued permit {permit.permit_id} has no number or no issue time")
            return PermitIssued(**base, permit_number=permit.permit_number, company_name=permit.company_name,
                                sector_class=SectorClass(permit.sector_class), export_oriented=permit.export_oriented,
                                workforce_total=permit.workforce_total, issued_at=permit.issued_at,
                                kind=permit.kind)
        case Action.REJECT:
            return PermitRejected(**base, reason=reason)
        case Action.FREEZE:
            return PermitFrozen(**base, permit_number=_number(permit), reason=reason,
                                freeze_count=permit.freeze_count, ground=transition.ground)
        case Action.REACTIVATE:
            return PermitReactivated(**base, permit_number=_number(permit), reason=reason)
        case Action.REVOKE:
            if permit.reapply_after is None:  # revoking sets the revocation time it is counted from
                raise ValueError(f"revoked permit {permit.permit_id} has no revocation time")
            return PermitRevoked(**base, permit_number=permit.permit_number, reason=reason,
                                 reapply_after=permit.reapply_after, ground=transition.ground)
    raise ValueError(f"no event for {transition.action}")


def _number(permit: Permit) -> str:
    if permit.permit_number is None:  # only issued permits are frozen or reactivated
        raise ValueError(f"permit {permit.permit_id} has no number")
    return permit.permit_number


@dataclass(frozen=True)
class Worklist:
    kind: WorkKind
    working_days: int
    total: int
    overdue: int
    items: list[QueuedItem]
    continues_after: WorkItem | None = None  # the last item in arrival order, when more follow it


@dataclass
class WorklistHandlers:
    """What waits for an operator's decision, held to its service level; a task force sees its region's."""

    database: Database[PermitsWork]
    clock: Clock
    levels: ServiceLevels

    async def worklists(self, region: str | None, kinds: Sequence[WorkKind], limit: int,
                        after: tuple[datetime, uuid.UUID] | None = None) -> tuple[datetime, list[Worklist]]:
        """`region`: the caller's own (a task force's) or one it may see, already checked; None for all. Each list
        holds up to `limit` items, and says after which one others follow; `after` continues the one list asked."""
        now = self.clock.now()
        found = []
        async with self.database.reading() as work:
            for kind in kinds:
                total, overdue = await work.worklists.count(kind, region=region,
                                                            overdue_before=self.levels.overdue_before(kind, now))
                items = await work.worklists.waiting(kind, region=region, after=after, limit=limit + 1)
                found.append(Worklist(kind, self.levels.working_days[kind], total, overdue,
                                      self.levels.queue(items[:limit], now),
                                      items[limit - 1] if len(items) > limit else None))
        return now, found


# Plants recorded before the KBLI table, derived per transaction at the first start: each transaction takes seconds
# at most, so a first start at a million plants that is stopped (a probe's deadline) resumes where it was.
DECLARED_PER_TRANSACTION = 20_000


@dataclass
class SectorHandlers:
    """Sector classes: the KBLI table applied at start, and the companies' claims an operator reviews."""

    database: Database[PermitsWork]
    clock: Clock
    activity: PrincipalActivity

    @property
    def table(self) -> KbliSectorTable:
        return self.activity.table

    async def apply_table(self) -> TableApplied:
        """At start: when this table is not the one applied here, every plant whose class the table gives is brought
        to its reading in one transaction, set-based in SQL, the permits that operate and whose class changed
        announced in the same transaction. Plants recorded before any table (their class declared) are derived in
        transactions of `DECLARED_PER_TRANSACTION`: a start stopped midway keeps what it did, and the next goes on."""
        now = self.clock.now()
        applied: TableApplied | None = None
        while True:
            async with self.database.transaction() as work:
                batch = await work.sector_tables.apply(self.table, service=SERVICE, now=now, actor=SERVICE,
                                                       declared=DECLARED_PER_TRANSACTION)
            applied = batch if applied is None else applied + batch
            if batch.declared < DECLARED_PER_TRANSACTION:
                break
        if applied.revised or applied.changed:
            log.info("kbli_table_applied", previous=applied.previous, version=applied.version,
                     changed=applied.changed, reviews=applied.reviews, events=applied.events)
        return applied

    async def reviews(self, search: ReviewSearch, access: Access) -> list[ListedReview]:
        """Reviews in one status, the oldest first: a permit's (if it may be seen), or the caller's own company's or
        region's."""
        async with self.database.reading() as work:
            if search.permit_id is not None:
                await PermitHandlers._visible(work, search.permit_id, access)
            return await work.class_reviews.listed(search)

    async def decide(self, review_id: uuid.UUID, decision: ReviewDecision, reason: str, access: Access,
                     request_id: str | None = None) -> tuple[ClassReview, Permit]:
        """An operator accepts the company's claim (the plant's class becomes it, announced if the permit operates) or
        rejects it (the table's class stays), once, with reasons."""
        now = self.clock.now()
        async with self.database.transaction() as work:
            found = await work.class_reviews.get(review_id)
            if found is None:
                raise ClassReviewNotFound("Class review")
            # Locked in the order an application takes them: the permit, then its review.
            permit = await PermitHandlers._visible(work, found.permit_id, access, for_update=True)
            review = await work.class_reviews.get(review_id, for_update=True) or found
            decided, changed = review.decide(decision, permit, reason=reason, actor=access.actor,
                                             role=access.principal.role.value, now=now,
                                             table_version=self.table.version)
            await work.class_reviews.decided(decided)
            if changed is not None:
                permit = changed
                await work.permits.save_class(permit)
                if permit.announced:
                    await work.outbox.add(Envelope.wrap(SectorClassChanged(
                        **_about(permit), permit_number=permit.permit_number,
                        sector_class=SectorClass(permit.sector_class), export_oriented=permit.export_oriented,
                        basis=ClassBasis.OPERATOR, table_version=self.table.version,
                        reason=accepted_claim_reason(decided, reason),
                    ), service=SERVICE, time=now, correlation_id=request_id))
        record("class_review_decided", review_id=str(review_id), permit_id=str(permit.permit_id),
               decision=decision.value, actor=access.actor, sector_class=permit.sector_class,
               export_oriented=permit.export_oriented)
        return decided, permit


@dataclass
class EstateHandlers:
    """Industrial estates and their tenant plants: the estate confirms or declines a plant's claim to lie inside it,
    and releases it; a confirmed tenant's permit is read by the estate's company."""

    database: Database[PermitsWork]
    clock: Clock

    @staticmethod
    async def _estate(work: PermitsWork, estate_permit_id: uuid.UUID, access: Access, *,
                      for_update: bool = False) -> Permit:
        estate = await PermitHandlers._visible(work, estate_permit_id, access, for_update=for_update)
        if estate.kind is not PermitKind.ESTATE:
            raise PermitNotFound("Estate")
        return estate

    async def tenants(self, estate_permit_id: uuid.UUID, status: TenancyStatus, access: Access, *, after: int,
                      limit: int) -> list[ListedTenancy]:
        async with self.database.reading() as work:
            await self._estate(work, estate_permit_id, access)
            return await work.tenancies.listed(estate_permit_id, status, after=after, limit=limit)

    async def _tenancy(self, work: PermitsWork, estate_permit_id: uuid.UUID, tenant_permit_id: uuid.UUID,
                       access: Access) -> tuple[Permit, Tenancy, Permit]:
        """Locked in one order: the estate's permit, the tenancy, the tenant's permit."""
        estate = await self._estate(work, estate_permit_id, access, for_update=True)
        tenancy = await work.tenancies.get(estate_permit_id, tenant_permit_id, for_update=True)
        tenant = await work.permits.get(tenant_permit_id, for_update=True)
        if tenancy is None or tenant is None:
            raise TenancyNotFound("Tenancy")
        return estate, tenancy, tenant

    async def decide(self, estate_permit_id: uuid.UUID, tenant_permit_id: uuid.UUID, decision: TenancyDecision,
                     reason: str, access: Access, request_id: str | None = None) -> Tenancy:
        """The estate's answer, once: confirmed, the estate reads the plant's permit from now on (announced)."""
        now = self.clock.now()
        async with self.database.transaction() as work:
            estate, tenancy, tenant = await self._tenancy(work, estate_permit_id, tenant_permit_id, access)
            other = await work.tenancies.confirmed_of_plant(tenant.facility_id)
            decided = tenancy.decide(decision, estate, other=other, reason=reason, actor=access.actor,
                                     role=access.principal.role.value, now=now)
            await work.tenancies.save(decided)
            if decided.status is TenancyStatus.CONFIRMED:
                if estate.permit_number is None:  # confirmed only while the estate's permit stands: issued, numbered
                    raise ValueError(f"estate permit {estate.permit_id} confirmed a tenant without a number")
                await work.permits.set_estate(tenant.permit_id, estate.nib)
                await work.outbox.add(Envelope.wrap(EstateTenancyConfirmed(
                    **_about(tenant), estate_facility_id=estate.facility_id, estate_permit_id=estate.permit_id,
                    estate_permit_number=estate.permit_number, estate_nib=estate.nib,
                    estate_name=(await work.permits.application(estate.permit_id))["facility_name"],
                    confirmed_at=now), service=SERVICE, time=now, correlation_id=request_id))
        record("tenancy_decided", estate_permit_id=str(estate_permit_id), tenant_permit_id=str(tenant_permit_id),
               decision=decision.value, actor=access.actor)
        return decided

    async def release(self, estate_permit_id: uuid.UUID, tenant_permit_id: uuid.UUID, reason: str, access: Access,
                      request_id: str | None = None) -> Tenancy:
        """The estate says the plant no longer lies inside it: the estate stops reading it (announced)."""
        now = self.clock.now()
        async with self.database.transaction() as work:
            estate, tenancy, tenant = await self._tenancy(work, estate_permit_id, tenant_permit_id, access)
            ended = tenancy.end(TenancyEndCause.RELEASED, reason=reason, actor=access.actor,
                                role=access.principal.role.value, now=now)
            await work.tenancies.save(ended)
            await work.permits.set_estate(tenant.permit_id, None)
            await work.outbox.add(Envelope.wrap(EstateTenancyEnded(
                **_about(tenant), estate_facility_id=estate.facility_id, estate_nib=estate.nib,
                cause=TenancyEndCause.RELEASED, reason=reason), service=SERVICE, time=now, correlation_id=request_id))
        record("tenancy_released", estate_permit_id=str(estate_permit_id), tenant_permit_id=str(tenant_permit_id),
               actor=access.actor)
        return ended
