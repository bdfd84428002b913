"""One function per command and consumed event: load, ask the domain, save, add outgoing events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import structlog

from services.incidents.domain import (
    Actor, Case, CaseCorrection, CaseLink, Closure, Contact, ContactTest, DuplicateCaseRef, IncidentPolicy,
    InvalidCase, InvalidLink, NewCase, NewContact, NotFound, Outcome, Plant, Recommendation, ReportedPositives,
    ContactTestKind, Timer, TimerKind, TimerRetry,
)
from services.incidents.repository import IncidentsWork
from shared.clock import Clock
from shared.contract import (
    CaseLinkKind, CaseVerdict, ClosureScope, Decoded, Envelope, EstateTenancyConfirmed, EstateTenancyEnded,
    PermitIssued, PermitRevoked, ReportSubmitted, SanctionAction, SanctionReversed,
)
from shared.observability import record
from shared.storage.unit_of_work import Database
from shared.web.access import Access, Scope

SERVICE = "incidents"
# A plant's placeholders listed in its status; more are counted, and listed again as these are completed.
PLACEHOLDERS_SHOWN = 100
log = structlog.get_logger(__name__)


def _actor(access: Access) -> Actor:
    return Actor(access.actor, access.principal.role.value)


@dataclass
class IncidentHandlers:
    database: Database[IncidentsWork]
    clock: Clock
    policy: IncidentPolicy
    timer_retry: TimerRetry = field(default_factory=TimerRetry)

    # -- commands ----------------------------------------------------------------------------------

    async def report_case(self, facility_id: uuid.UUID, new: NewCase, access: Access) -> Case:
        now = self.clock.now()
        async with self.database.transaction() as work:
            plant = await self._plant_in_scope(work, facility_id, access)
            plant.validate(new, now, self.policy)
            if await work.incidents.case_ref_taken(facility_id, new.case_ref):
                raise DuplicateCaseRef(new.case_ref)
            contact = await self._contact_of(work, plant, new.from_contact_id)
            placeholders = await work.incidents.unclaimed_placeholders(facility_id)
            outcome = plant.enter_case(new, placeholders=placeholders,
                                       unclustered=await self._unclustered(work, plant, new.confirmed_on),
                                       raised=await self._raised(work, plant, new.confirmed_on),
                                       now=now, policy=self.policy, by=_actor(access))
            await self._commit(work, outcome, now)
            case = outcome.cases[0]
            if contact is not None:
                await self._contact_became_case(work, outcome.plant, contact, case, now, _actor(access))
                case = await work.incidents.case(case.case_id) or case
        if case.claimed_by is not None:
            log.info("placeholder_claimed", facility_id=str(facility_id), case_id=str(case.case_id),
                     report_id=str(case.report_id), actor=access.actor, role=access.principal.role.value)
        return case

    async def _contact_of(self, work: IncidentsWork, plant: Plant, contact_id: uuid.UUID | None) -> Contact | None:
        """The close contact a new case was, at the same plant (else refused with the same words as none)."""
        if contact_id is None:
            return None
        contact = await work.incidents.contact(contact_id)
        if contact is None or contact.facility_id != plant.facility_id:
            raise InvalidCase("from_contact_id", "Tidak ada kontak itu di pabrik ini / No such contact at this plant")
        return contact

    async def _contact_became_case(self, work: IncidentsWork, plant: Plant, contact: Contact, case: Case,
                                   now: datetime, by: Actor) -> None:
        """The contact leaves quarantine as a case, and its case and the new one are linked as a named contact (which
        may complete a cluster)."""
        outcome = plant.contact_became_case(contact, case, now=now)
        await self._commit(work, outcome, now)
        source = await work.incidents.case(contact.case_id)
        if source is None:
            raise LookupError(f"contact {contact.contact_id}: no case {contact.case_id}")
        span = self.policy.cluster.span
        first, last = sorted((case.confirmed_on, source.confirmed_on))
        linked = outcome.plant.link_cases(
            case, source, CaseLinkKind.NAMED_CONTACT, links=await work.incidents.plant_links(plant.facility_id),
            unclustered=await work.incidents.unclustered(plant.facility_id, first - span, last + span),
            now=now, policy=self.policy, by=by)
        await self._commit(work, linked, now)

    async def case(self, case_id: uuid.UUID, access: Access) -> tuple[Case, list[CaseLink]]:
        """A case with its links."""
        async with self.database.reading() as work:
            case, _ = await self._readable_case(work, case_id, access)
            return case, await work.incidents.links_of(case_id)

    async def link_cases(self, case_id: uuid.UUID, linked_case_id: uuid.UUID, kind: CaseLinkKind,
                         access: Access) -> tuple[Case, list[CaseLink]]:
        """Link two cases of one plant; the link may complete a cluster. The case answered carries its links."""
        now = self.clock.now()
        async with self.database.transaction() as work:
            case, plant = await self._case_in_scope(work, case_id, access)
            other = await work.incidents.case(linked_case_id)
            if other is None:  # one at another plant is refused by the domain with the same words
                raise InvalidLink("linked_case_id", "Tidak ada kasus itu di pabrik ini / No such case at this plant")
            span = self.policy.cluster.span
            first, last = sorted((case.confirmed_on, other.confirmed_on))
            outcome = plant.link_cases(
                case, other, kind, links=await work.incidents.plant_links(plant.facility_id),
                unclustered=await work.incidents.unclustered(plant.facility_id, first - span, last + span),
                now=now, policy=self.policy, by=_actor(access))
            await self._commit(work, outcome, now)
            linked = await work.incidents.case(case_id)
            links = await work.incidents.links_of(case_id)
        if outcome.clusters:
            record("cluster_declared", facility_id=str(plant.facility_id),
                   cluster_id=str(outcome.clusters[0].cluster_id), actor=access.actor, role=access.principal.role.value)
        return linked or case, links

    async def recommendation(self, recommendation_id: uuid.UUID, access: Access) -> Recommendation:
        async with self.database.reading() as work:
            recommendation = await work.incidents.recommendation(recommendation_id)
            plant = await work.incidents.plant(recommendation.facility_id) if recommendation else None
            if recommendation is None or plant is None or not access.may_see(region_code=plant.regency_code):
                raise NotFound("Recommendation")
        return recommendation

    async def recommendations(self, *, status: str | None, after: uuid.UUID | None, limit: int,
                              access: Access) -> list[tuple[Recommendation, str, str]]:
        async with self.database.reading() as work:
            return await work.incidents.recommendations(region=access.region_filter, status=status, after=after,
                                                        limit=limit)

    async def order_closure(self, recommendation_id: uuid.UUID, *, scope: ClosureScope | None, days: int | None,
                            reason: str | None, access: Access) -> Recommendation:
        now = self.clock.now()
        async with self.database.transaction() as work:
            plant, recommendation = await self._recommendation_in_scope(work, recommendation_id, access)
            outcome = plant.order_closure(recommendation, scope=scope, days=days, reason=reason, now=now,
                                          by=_actor(access))
            await self._commit(work, outcome, now)
        record("closure_ordered", recommendation_id=str(recommendation_id), actor=access.actor,
               role=access.principal.role.value)
        return outcome.recommendations[0]

    async def decline_closure(self, recommendation_id: uuid.UUID, reason: str, access: Access) -> Recommendation:
        now = self.clock.now()
        async with self.database.transaction() as work:
            plant, recommendation = await self._recommendation_in_scope(work, recommendation_id, access)
            outcome = plant.decline_closure(recommendation, reason=reason, now=now, by=_actor(access))
            await self._commit(work, outcome, now)
        record("closure_declined", recommendation_id=str(recommendation_id), actor=access.actor,
               role=access.principal.role.value)
        return outcome.recommendations[0]

    async def close_case(self, case_id: uuid.UUID, symptoms_resolved_on: date | None, access: Access) -> Case:
        now = self.clock.now()
        async with self.database.transaction() as work:
            case, plant = await self._case_in_scope(work, case_id, access)
            outcome = plant.close_case(case, now=now, symptoms_resolved_on=symptoms_resolved_on,
                                       by=_actor(access), policy=self.policy)
            await self._commit(work, outcome, now)
        return outcome.cases[0]

    async def clear_closure(self, closure_id: uuid.UUID, access: Access) -> Closure:
        now = self.clock.now()
        async with self.database.transaction() as work:
            closure = await work.incidents.closure(closure_id)
            if closure is None:
                raise NotFound("Closure")
            plant = await self._plant_in_scope(work, closure.facility_id, access, what="Closure")
            outcome = plant.clear_closure(closure, now=now, by=_actor(access))
            await self._commit(work, outcome, now)
        record("closure_cleared", closure_id=str(closure_id), actor=access.actor, role=access.principal.role.value)
        return outcome.closures[0]

    # -- close contacts and the health office ------------------------------------------------------

    async def contacts(self, case_id: uuid.UUID, *, after: int, limit: int,
                       access: Access) -> tuple[Case, dict[str, Any], list[Contact]]:
        """A case, its contacts' tally, and one page of its line list."""
        async with self.database.reading() as work:
            case, _ = await self._readable_case(work, case_id, access)
            return (case, await work.incidents.contact_tally(case_id),
                    await work.incidents.contacts_of(case_id, after=after, limit=limit))

    async def contact(self, contact_id: uuid.UUID, access: Access) -> Contact:
        async with self.database.reading() as work:
            contact = await work.incidents.contact(contact_id)
            if contact is None:
                raise NotFound("Contact")
            await self._readable_case(work, contact.case_id, access, what="Contact")
        return contact

    async def add_contacts(self, case_id: uuid.UUID, contacts: list[NewContact], access: Access) -> list[Contact]:
        now = self.clock.now()
        async with self.database.transaction() as work:
            case, plant = await self._case_in_scope(work, case_id, access)
            outcome = plant.add_contacts(case, contacts, now=now, policy=self.policy, by=_actor(access))
            await self._commit(work, outcome, now)
        return outcome.contacts

    async def record_test(self, contact_id: uuid.UUID, kind: ContactTestKind, test: ContactTest,
                          access: Access) -> Contact:
        now = self.clock.now()
        async with self.database.transaction() as work:
            case, plant, contact = await self._contact_in_scope(work, contact_id, access)
            outcome = plant.record_test(case, contact, kind, test, now=now, policy=self.policy)
            await self._commit(work, outcome, now)
        return outcome.contacts[0]

    async def correct_exposure(self, contact_id: uuid.UUID, last_exposure_on: date, access: Access) -> Contact:
        now = self.clock.now()
        async with self.database.transaction() as work:
            case, plant, contact = await self._contact_in_scope(work, contact_id, access)
            outcome = plant.correct_exposure(case, contact, last_exposure_on, now=now, policy=self.policy)
            await self._commit(work, outcome, now)
        return outcome.contacts[0]

    async def close_follow_up(self, case_id: uuid.UUID, access: Access) -> Case:
        now = self.clock.now()
        async with self.database.transaction() as work:
            case, plant = await self._case_in_scope(work, case_id, access)
            outcome = plant.close_follow_up(case, await work.incidents.contacts_of(case_id), now=now,
                                            by=_actor(access))
            await self._commit(work, outcome, now)
        record("contact_follow_up_closed", case_id=str(case_id), actor=access.actor, role=access.principal.role.value)
        return outcome.cases[0]

    async def verify_case(self, case_id: uuid.UUID, verdict: CaseVerdict, correction: CaseCorrection,
                          reason: str | None, access: Access) -> Case:
        now = self.clock.now()
        async with self.database.transaction() as work:
            case, plant = await self._case_in_scope(work, case_id, access)
            outcome = plant.verify_case(case, verdict, correction, reason, now=now, policy=self.policy,
                                        by=_actor(access))
            await self._commit(work, outcome, now)
        record("case_verified", case_id=str(case_id), verdict=verdict.value, actor=access.actor,
               role=access.principal.role.value)
        return outcome.cases[0]

    async def tracing(self, *, province: str | None, regency: str | None, access: Access) -> dict[str, Any]:
        """The region's totals, and the region they are of (the caller's own when none is asked)."""
        province, regency = access.asked_region(province, regency)
        async with self.database.reading() as work:
            totals = await work.incidents.tracing(province=province, regency=regency,
                                                  target=self.policy.contacts_per_case_target)
        return totals | {"province_code": province, "regency_code": regency}

    async def close_voluntarily(self, facility_id: uuid.UUID, scope: ClosureScope, days: int, reason: str,
                                access: Access) -> Closure:
        now = self.clock.now()
        async with self.database.transaction() as work:
            plant = await self._plant_in_scope(work, facility_id, access)
            outcome = plant.close_voluntarily(scope, days, reason, now=now, by=_actor(access))
            await self._commit(work, outcome, now)
        record("closure_ordered_by_company", facility_id=str(facility_id), scope=scope.value, actor=access.actor,
               role=access.principal.role.value)
        return outcome.closures[0]

    async def facility_status(self, facility_id: uuid.UUID, access: Access) -> dict[str, Any]:
        async with self.database.reading() as work:
            summary = await work.incidents.plant_summary(facility_id)
            if summary is None or not access.may_see(region_code=summary["regency_code"], nib=summary["nib"],
                                                     estate_nib=await _estate_of(work, facility_id, access)):
                raise NotFound("Facility")
            closure = (await work.incidents.closure(summary["plant_closure_id"])
                       if summary["plant_closure_id"] else None)
            to_complete = await work.incidents.placeholders_to_complete(facility_id, PLACEHOLDERS_SHOWN)
        return summary | {"plant_closure": closure, "placeholders_to_complete": to_complete}

    async def incidents(self, *, province: str | None, status: str | None, estate: str | None,
                        after: uuid.UUID | None, limit: int, access: Access) -> list[dict[str, Any]]:
        async with self.database.reading() as work:
            return await work.incidents.incidents(province=province, status=status, region=access.region_filter,
                                                  nib=access.nib_filter, tenants_of=access.tenants_filter,
                                                  estate=estate, after=after, limit=limit)

    # -- consumed events ---------------------------------------------------------------------------

    async def on_permits_issued(self, work: IncidentsWork, run: list[Decoded]) -> None:
        """A run of PermitIssued at once (`InBatches`): tens of thousands arrive together when a province's
        permits are issued or the broker's log is replayed."""
        issued: list[PermitIssued] = [decoded.event for decoded in run]  # type: ignore[misc]
        await work.incidents.learn_plants([
            Plant(event.facility_id, event.permit_id, event.nib, event.province_code, event.regency_code,
                  event.workforce_total) for event in issued
        ], self.clock.now())

    async def on_permit_revoked(self, work: IncidentsWork, envelope: Envelope, event: PermitRevoked) -> None:
        """Monitoring ends: no new cases. Running isolations, quarantines and closures still run their course."""
        await work.incidents.stop_monitoring(event.facility_id, self.clock.now())

    async def on_sanction_reversed(self, work: IncidentsWork, envelope: Envelope, event: SanctionReversed) -> None:
        """A revocation reversed on objection: the plant is monitored again, for cases from now on."""
        if event.reversed is SanctionAction.REVOKE:
            await work.incidents.resume_monitoring(event.facility_id, event.permit_id, self.clock.now())

    async def on_tenancy_confirmed(self, work: IncidentsWork, envelope: Envelope,
                                   event: EstateTenancyConfirmed) -> None:
        """The estate's company reads the plant's cases from now on; the plant may not be known here yet."""
        await work.incidents.confirm_tenancy(event.facility_id, estate_facility_id=event.estate_facility_id,
                                             estate_nib=event.estate_nib, confirmed_at=event.confirmed_at,
                                             now=self.clock.now())

    async def on_tenancy_ended(self, work: IncidentsWork, envelope: Envelope, event: EstateTenancyEnded) -> None:
        ended = await work.incidents.end_tenancy(event.facility_id, estate_facility_id=event.estate_facility_id)
        log.info("estate_tenancy_ended", facility_id=str(event.facility_id),
                 estate_facility_id=str(event.estate_facility_id), cause=event.cause.value, known=ended)

    async def on_report_submitted(self, work: IncidentsWork, envelope: Envelope, event: ReportSubmitted) -> None:
        reported = ReportedPositives.stated_by(confirmed_positive=event.confirmed_positive,
                                               new_positives=event.new_positives,
                                               isolating_workers=event.isolating_workers)
        if not reported.stated:
            return
        now = self.clock.now()
        # A report can overtake the PermitIssued of its plant (another topic): learn the plant from it.
        await work.incidents.learn_plant(facility_id=event.facility_id, permit_id=event.permit_id, nib=None,
                                         province_code=event.province_code, regency_code=event.regency_code,
                                         workforce_total=None, now=now)
        plant = await work.incidents.plant(event.facility_id, for_update=True)
        if plant is None:  # learnt just above, in this transaction
            raise LookupError(f"plant {event.facility_id} was not stored")
        if not plant.monitored:
            log.info("report_positives_ignored", facility_id=str(plant.facility_id), reason="not monitored")
            return
        period = ReportedPositives.period_days(plant, event.period_starts_at, event.deadline)
        on = ReportedPositives.confirmed_on(plant, envelope.time, event.deadline)
        reported = reported.against(known_in_period=await work.incidents.cases_between(plant.facility_id, *period),
                                    known_isolating=await work.incidents.isolating_on(plant.facility_id, on))
        for new in reported.placeholders(event.report_id, on, period, self.policy):
            outcome = await self._detect(work, plant, new, Actor(f"report:{event.report_id}", "company"))
            await self._commit(work, outcome, now, cause=envelope)
            plant = outcome.plant
        log.info("report_positives_reconciled", facility_id=str(plant.facility_id),
                 new_positives=reported.new_positives, isolating_workers=reported.isolating_workers,
                 known_in_period=reported.known_in_period, known_isolating=reported.known_isolating,
                 new_cases=reported.new_cases, earlier_cases=reported.earlier_cases)

    # -- durable timers ----------------------------------------------------------------------------

    async def fire_due_timers(self, batch: int = 200) -> int:
        """Fire what is due, one timer per transaction, so that one failing timer does not hold back others.

        A timer whose firing fails is put back for a later attempt (`TimerRetry`) and the sweep goes on with the
        timers behind it; a failure to claim (the database is gone) ends the sweep until its next tick.
        """
        fired = failed = 0
        while fired + failed < batch:
            now = self.clock.now()
            timer: Timer | None = None
            try:
                async with self.database.transaction() as work:
                    timer = await work.incidents.claim_due_timer(now)
                    if timer is None:
                        break
                    await self._fire(work, timer, now)
            except Exception as exc:
                if timer is None:
                    raise
                failed += 1
                await self._postpone(timer, now, exc)
                continue
            fired += 1
            log.info("timer_fired", kind=timer.kind.value, facility_id=str(timer.facility_id),
                     subject_id=str(timer.subject_id), due_at=timer.due_at.isoformat())
        return fired

    async def _fire(self, work: IncidentsWork, timer: Timer, now: datetime) -> None:
        # A timer references its plant and its subject (a case or a closure), kept as long as it is.
        plant = await work.incidents.plant(timer.facility_id, for_update=True)
        if plant is None:
            raise LookupError(f"timer {timer.timer_id}: no plant {timer.facility_id}")
        if timer.kind is TimerKind.ISOLATION_END:
            case = await work.incidents.case(timer.subject_id)
            if case is None:
                raise LookupError(f"timer {timer.timer_id}: no case {timer.subject_id}")
            outcome = plant.end_isolation(case, timer.due_at)
        elif timer.kind is TimerKind.QUARANTINE_END:
            # None: a case's whole quarantine, from before contacts had their own (migration 0007 replaced those).
            outcome = plant.end_quarantine(await work.incidents.contact(timer.subject_id), timer.due_at)
        elif timer.kind is TimerKind.RECOMMENDATION_ANSWER:
            recommendation = await work.incidents.recommendation(timer.subject_id)
            if recommendation is None:
                raise LookupError(f"timer {timer.timer_id}: no recommendation {timer.subject_id}")
            outcome = plant.recommendation_overdue(recommendation, now)
        else:
            closure = await work.incidents.closure(timer.subject_id)
            if closure is None:
                raise LookupError(f"timer {timer.timer_id}: no closure {timer.subject_id}")
            outcome = plant.end_room_closure(closure, now)
        await self._commit(work, outcome, now)
        await work.incidents.mark_fired(timer.timer_id, now)

    async def _postpone(self, timer: Timer, now: datetime, exc: Exception) -> None:
        failed = replace(timer, attempts=timer.attempts + 1)
        next_attempt_at = self.timer_retry.next_attempt(failed.attempts, now)
        error = f"{type(exc).__name__}: {exc}"[:1000]
        async with self.database.transaction() as work:
            await work.incidents.record_failed_attempt(failed, next_attempt_at, error)
        log.warning("timer_failed", timer_id=str(timer.timer_id), kind=timer.kind.value,
                    facility_id=str(timer.facility_id), attempts=failed.attempts,
                    next_attempt_at=next_attempt_at.isoformat(), error=error)

    # -- shared steps ------------------------------------------------------------------------------

    async def _plant_in_scope(self, work: IncidentsWork, facility_id: uuid.UUID, access: Access,
                              what: str = "Facility") -> Plant:
        plant = await work.incidents.plant(facility_id, for_update=True)
        if plant is None or not access.may_see(region_code=plant.regency_code, nib=plant.nib,
                                               estate_nib=await _estate_of(work, facility_id, access)):
            raise NotFound(what)
        return plant

    async def _recommendation_in_scope(self, work: IncidentsWork, recommendation_id: uuid.UUID,
                                       access: Access) -> tuple[Plant, Recommendation]:
        """The plant locked first (as every write about it), then the recommendation read as it is under the lock."""
        found = await work.incidents.recommendation(recommendation_id)
        if found is None:
            raise NotFound("Recommendation")
        plant = await self._plant_in_scope(work, found.facility_id, access, what="Recommendation")
        recommendation = await work.incidents.recommendation(recommendation_id)
        if recommendation is None:
            raise NotFound("Recommendation")
        return plant, recommendation

    async def _readable_case(self, work: IncidentsWork, case_id: uuid.UUID, access: Access,
                             what: str = "Case") -> tuple[Case, Plant]:
        case = await work.incidents.case(case_id)
        plant = await work.incidents.plant(case.facility_id) if case else None
        if case is None or plant is None or not access.may_see(
                region_code=plant.regency_code, nib=plant.nib,
                estate_nib=await _estate_of(work, plant.facility_id, access)):
            raise NotFound(what)
        return case, plant

    async def _contact_in_scope(self, work: IncidentsWork, contact_id: uuid.UUID,
                                access: Access) -> tuple[Case, Plant, Contact]:
        """The contact's case and plant (locked), then the contact as it is under the lock."""
        found = await work.incidents.contact(contact_id)
        if found is None:
            raise NotFound("Contact")
        case, plant = await self._case_in_scope(work, found.case_id, access, what="Contact")
        contact = await work.incidents.contact(contact_id)
        if contact is None:
            raise NotFound("Contact")
        return case, plant, contact

    async def _case_in_scope(self, work: IncidentsWork, case_id: uuid.UUID, access: Access,
                             what: str = "Case") -> tuple[Case, Plant]:
        """The case and its plant (locked), for a caller who may act on it."""
        found = await work.incidents.case(case_id)
        if found is None:
            raise NotFound(what)
        plant = await self._plant_in_scope(work, found.facility_id, access, what=what)
        case = await work.incidents.case(case_id)  # as it is under the plant's lock
        if case is None:
            raise NotFound(what)
        return case, plant

    async def _unclustered(self, work: IncidentsWork, plant: Plant, on: date) -> list[tuple[uuid.UUID, date]]:
        """The plant's unclustered cases that a cluster window holding `on` can reach."""
        span = self.policy.cluster.span
        return await work.incidents.unclustered(plant.facility_id, on - span, on + span)

    async def _raised(self, work: IncidentsWork, plant: Plant, on: date) -> set[uuid.UUID]:
        """The cases already raised in a possible cluster that a window holding `on` can reach."""
        span = self.policy.cluster.span
        return await work.incidents.raised_cases(plant.facility_id, on - span, on + span)

    async def _detect(self, work: IncidentsWork, plant: Plant, new: NewCase, actor: Actor) -> Outcome:
        return plant.detect_case(new, unclustered=await self._unclustered(work, plant, new.confirmed_on),
                                 raised=await self._raised(work, plant, new.confirmed_on),
                                 now=self.clock.now(), policy=self.policy, recorded_by=actor)

    async def _commit(self, work: IncidentsWork, outcome: Outcome, now: datetime,
                      cause: Envelope | None = None) -> None:
        await work.incidents.save(outcome, now)
        if not outcome.events:
            return
        # Events of one decision share a correlation: a consumed event causes them all; without one (a
        # request, a timer) the first is the root and causes the rest.
        if cause is None:
            cause = Envelope.wrap(outcome.events[0], service=SERVICE, time=now)
            envelopes = [cause]
        else:
            envelopes = [cause.caused(outcome.events[0], service=SERVICE, time=now)]
        envelopes += [cause.caused(event, service=SERVICE, time=now) for event in outcome.events[1:]]
        await work.outbox.add(*envelopes)


async def _estate_of(work: IncidentsWork, facility_id: uuid.UUID, access: Access) -> str | None:
    """The plant's estate company, asked only for a caller whose scope reaches tenants."""
    return await work.incidents.estate_of(facility_id) if access.scope is Scope.TENANTS else None
