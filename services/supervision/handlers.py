"""One function per command and consumed event: load, ask the domain, save, add outgoing events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import structlog

from services.supervision.domain import (
    PHOTOS_MAX, ComplaintLifecycle, ComplaintStatus, DeclaredReport, FindingContradictsDeclaration,
    IllegalTransition, Inspector, InspectionStatus, Invalid, NotFound, PlantRisk, RecordedInspection, RequestStatus,
    RiskCounts, RiskScore, TooManyPhotos, check_inspected_on, check_planned_on, complete_findings,
    inspection_reference, new_complaint_reference, request_ground,
)
from services.supervision.photos import CleanPhoto
from services.supervision.repository import PlantFacts, SupervisionWork
from shared import regions
from shared.clock import Clock
from shared.contract import (
    CapacityBreachDetected, CaseDetected, ClusterDeclared, ComplaintCategory, ComplaintFiled, Decoded, Envelope, Event,
    FindingResult, InspectionFinding, InspectionRecorded, PermitFrozen, PermitIssued, PermitReactivated,
    PermitRevoked, ProtocolItem, ReportOverdue, ReportSubmitted, SanctionAction, SanctionGround, SanctionRequestDecided,
    SanctionRequested, SanctionReversed,
)
from shared.messaging.group_commit import GroupCommit
from shared.observability import record
from shared.storage.unit_of_work import Database
from shared.web.access import Access

SERVICE = "supervision"
log = structlog.get_logger(__name__)


def local_day(moment: datetime, region_code: str) -> date:
    return moment.astimezone(regions.local_zone(region_code)).date()


@dataclass(frozen=True)
class NewComplaint:
    category: ComplaintCategory
    text: str
    permit_number: str | None
    address: str | None
    regency_code: str | None
    email: str | None
    phone: str | None


@dataclass
class SupervisionHandlers:
    database: Database[SupervisionWork]
    clock: Clock
    score: RiskScore
    _complaints: GroupCommit[NewComplaint, tuple[str, ComplaintStatus]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # The public's complaints come in bursts: those arriving together share a transaction and its commit, as
        # reports do; two about one plant never share one (its risk row is taken in turn). Under a burst a batch
        # waits a moment (`linger`) for those still on their way: a filer does not notice, and each commit carries
        # more.
        self._complaints = GroupCommit(self._file_together, key=lambda new: new.permit_number or object(),
                                       linger=0.01, busy_batch=4)

    def worklist_day(self) -> date:
        """The day a worklist's scores are for: one day for every plant listed (western Indonesian time), so that
        the order of the scores is the order of the ranks."""
        return self.clock.now().astimezone(regions.WIB).date()

    # -- worklist -------------------------------------------------------------------------------------

    async def worklist(self, *, province: str | None, regency: str | None, after: tuple[float, uuid.UUID] | None,
                       limit: int) -> list[dict[str, Any]]:
        async with self.database.reading() as work:
            rows = await work.supervision.worklist(province=province, regency=regency, after=after, limit=limit)
        today = self.worklist_day()
        for row in rows:
            row["score"] = self.score.score_of_rank(row["rank_key"], today)
        return rows

    # -- inspections ----------------------------------------------------------------------------------

    async def plan_inspection(self, *, permit_id: uuid.UUID, planned_on: date, team: list[Inspector], purpose: str,
                              complaint_ids: list[uuid.UUID], access: Access) -> dict[str, Any]:
        now = self.clock.now()
        async with self.database.transaction() as work:
            plant = await self._plant_in_scope(work, permit_id, access)
            today = local_day(now, plant["regency_code"])
            check_planned_on(planned_on, today)
            complaints = await work.supervision.complaints_of(complaint_ids) if complaint_ids else []
            if len(complaints) != len(set(complaint_ids)) or any(
                    c["facility_id"] != plant["facility_id"]
                    or not ComplaintLifecycle.may_link(ComplaintStatus(c["status"])) for c in complaints):
                raise Invalid("complaint_ids", "each must be an open complaint about this plant")
            sequence = await work.supervision.next_inspection_number(today.year)
            row = {"inspection_id": uuid.uuid4(), "reference": inspection_reference(today.year, sequence),
                   "facility_id": plant["facility_id"], "permit_id": plant["permit_id"],
                   "province_code": plant["province_code"], "regency_code": plant["regency_code"],
                   "planned_on": planned_on, "team": [{"name": m.name, "body": m.body.value} for m in team],
                   "purpose": purpose, "planned_by": access.actor, "planned_role": access.principal.role.value,
                   "planned_at": now}
            await work.supervision.add_inspection(row, sorted(set(complaint_ids)))
        record("inspection_planned", inspection_id=str(row["inspection_id"]), reference=row["reference"])
        return row

    async def record_inspection(self, inspection_id: uuid.UUID, *, inspected_on: date,
                                findings: dict[ProtocolItem, FindingResult], notes: str,
                                access: Access) -> dict[str, Any]:
        now = self.clock.now()
        async with self.database.transaction() as work:
            inspection = await self._inspection_in_scope(work, inspection_id, access, for_update=True)
            if inspection["status"] != InspectionStatus.PLANNED:
                raise IllegalTransition("inspection", inspection["status"], "be recorded again")
            check_inspected_on(inspected_on, inspection["planned_on"],
                               local_day(now, inspection["regency_code"]))
            complete = complete_findings(findings)
            declared = await work.supervision.latest_declared(inspection["facility_id"], inspected_on)
            contradicted = FindingContradictsDeclaration.contradicted(complete, declared, inspected_on)
            violations = sum(result is FindingResult.VIOLATED for result in complete.values())
            await work.supervision.record_inspection(
                inspection_id, inspected_on=inspected_on, findings={k.value: v.value for k, v in complete.items()},
                violations=violations, notes=notes, contradicted_report_id=contradicted, by=access.actor,
                role=access.principal.role.value, now=now)
            linked = [c for c in await work.supervision.complaints_of(inspection["complaint_ids"])
                      if ComplaintLifecycle.may_link(ComplaintStatus(c["status"]))]
            if linked:
                await work.supervision.mark_inspected([c["complaint_id"] for c in linked], now)
            risk = await work.supervision.risk(inspection["facility_id"])
            if risk is not None:
                await work.supervision.save_risk(risk.inspected(inspected_on), inspection["province_code"],
                                                 inspection["regency_code"], open_complaints=-len(linked))
            event = InspectionRecorded(
                facility_id=inspection["facility_id"], province_code=inspection["province_code"],
                regency_code=inspection["regency_code"], permit_id=inspection["permit_id"],
                inspection_id=inspection_id, reference=inspection["reference"], inspected_on=inspected_on,
                bodies=sorted({member["body"] for member in inspection["team"]}),
                findings=[InspectionFinding(item=item, result=result) for item, result in complete.items()],
                violations=violations, contradicted_report_id=contradicted)
            await work.outbox.add(Envelope.wrap(event, service=SERVICE, time=now))
            found = await work.supervision.inspection(inspection_id)
        record("inspection_recorded", inspection_id=str(inspection_id), violations=violations,
               contradicted_report_id=str(contradicted) if contradicted else None)
        return found  # type: ignore[return-value]  # recorded just above, in this transaction

    async def inspection(self, inspection_id: uuid.UUID, access: Access) -> dict[str, Any]:
        async with self.database.reading() as work:
            return await self._inspection_in_scope(work, inspection_id, access)

    async def inspections(self, *, province: str | None, regency: str | None, status: str | None,
                          after: uuid.UUID | None, limit: int) -> list[dict[str, Any]]:
        async with self.database.reading() as work:
            return await work.supervision.inspections(province=province, regency=regency, status=status, after=after,
                                                      limit=limit)

    async def add_photo(self, inspection_id: uuid.UUID, photo: CleanPhoto, access: Access) -> uuid.UUID:
        now = self.clock.now()
        photo_id = uuid.uuid4()
        async with self.database.transaction() as work:
            await self._inspection_in_scope(work, inspection_id, access, for_update=True)  # serialises the count
            if await work.supervision.photo_count(inspection_id) >= PHOTOS_MAX:
                raise TooManyPhotos(PHOTOS_MAX)
            await work.supervision.add_photo(photo_id=photo_id, inspection_id=inspection_id,
                                             content_type=photo.content_type, data=photo.data, width=photo.width,
                                             height=photo.height, by=access.actor, now=now)
        return photo_id

    async def photo(self, inspection_id: uuid.UUID, photo_id: uuid.UUID, access: Access) -> tuple[str, bytes]:
        async with self.database.reading() as work:
            await self._inspection_in_scope(work, inspection_id, access)
            found = await work.supervision.photo(inspection_id, photo_id)
        if found is None:
            raise NotFound("Photo")
        return found

    async def inspection_before_upload(self, inspection_id: uuid.UUID, access: Access) -> None:
        """404 before a photo's body is read, for an inspection the caller cannot see."""
        await self.inspection(inspection_id, access)

    # -- complaints ------------------------------------------------------------------------------------

    async def file_complaint(self, new: NewComplaint) -> tuple[str, ComplaintStatus]:
        """The complaint, and when its permit number names a plant, the plant's risk and ComplaintFiled, in one
        transaction (shared with the complaints filed at the same moment). An unknown number is kept unmatched like
        an address, so that filing says nothing of whether a number exists."""
        return await self._complaints.submit(new)

    async def _file_together(self, batch: list[NewComplaint]) -> list[tuple[str, ComplaintStatus] | Exception]:
        """A batch of complaints in a few statements, whatever its size: the plants their numbers name, the
        complaints, and the named plants' risk and ComplaintFiled (one complaint a plant a batch, by its key)."""
        now = self.clock.now()
        answers: list[tuple[str, ComplaintStatus] | Exception] = []
        rows, about = [], []
        async with self.database.transaction() as work:
            plants = await work.supervision.plants_by_number([new.permit_number for new in batch if new.permit_number])
            for new in batch:
                reference, complaint_id = new_complaint_reference(), uuid.uuid4()
                plant = plants.get(new.permit_number) if new.permit_number else None
                status = ComplaintStatus.RECEIVED if plant else ComplaintStatus.UNMATCHED
                regency = plant["regency_code"] if plant else new.regency_code
                rows.append({
                    "complaint_id": complaint_id, "reference": reference, "status": status.value,
                    "category": new.category.value, "text": new.text, "permit_number_given": new.permit_number,
                    "address": new.address, "province_code": regency.split(".")[0] if regency else None,
                    "regency_code": regency, "facility_id": plant and plant["facility_id"],
                    "permit_id": plant and plant["permit_id"], "contact_email": new.email,
                    "contact_phone": new.phone, "filed_at": now})
                if plant:
                    about.append(self._filed(plant, complaint_id, new.category, now))
                answers.append((reference, status))
            await work.supervision.add_complaints(rows)
            await self._complaints_about(work, about, now)
        for row in rows:
            record("complaint_filed", complaint_id=str(row["complaint_id"]), status=row["status"])
        return answers

    async def complaint_status(self, reference: str) -> dict[str, Any]:
        async with self.database.reading() as work:
            found = await work.supervision.complaint_by_reference(reference)
        if found is None:
            raise NotFound("Complaint")
        return found

    async def complaint(self, complaint_id: uuid.UUID, access: Access) -> dict[str, Any]:
        async with self.database.reading() as work:
            return await self._complaint_in_scope(work, complaint_id, access)

    async def complaints(self, *, province: str | None, regency: str | None, status: str | None,
                         after: uuid.UUID | None, limit: int) -> list[dict[str, Any]]:
        async with self.database.reading() as work:
            return await work.supervision.complaints(province=province, regency=regency, status=status, after=after,
                                                     limit=limit)

    async def match_complaint(self, complaint_id: uuid.UUID, permit_number: str, access: Access) -> dict[str, Any]:
        now = self.clock.now()
        async with self.database.transaction() as work:
            complaint = await self._complaint_in_scope(work, complaint_id, access, for_update=True)
            ComplaintLifecycle.move(ComplaintStatus(complaint["status"]), ComplaintStatus.RECEIVED)
            plant = await work.supervision.plant_by_number(permit_number)
            if plant is None or not access.may_see(region_code=plant["regency_code"]):
                raise Invalid("permit_number", "no plant in your region holds this permit number")
            await work.supervision.update_complaint(complaint_id, status=ComplaintStatus.RECEIVED.value, now=now,
                                                    by=access.actor, plant=plant)
            await self._complaints_about(work, [self._filed(plant, complaint_id,
                                                            ComplaintCategory(complaint["category"]),
                                                            complaint["filed_at"])], now)
            found = await work.supervision.complaint(complaint_id)
        record("complaint_matched", complaint_id=str(complaint_id))
        return found  # type: ignore[return-value]  # updated just above, in this transaction

    async def move_complaint(self, complaint_id: uuid.UUID, to: ComplaintStatus, note: str,
                             access: Access) -> dict[str, Any]:
        now = self.clock.now()
        async with self.database.transaction() as work:
            complaint = await self._complaint_in_scope(work, complaint_id, access, for_update=True)
            current = ComplaintStatus(complaint["status"])
            ComplaintLifecycle.move(current, to)
            await work.supervision.update_complaint(complaint_id, status=to.value, now=now, by=access.actor,
                                                    note=note)
            if complaint["facility_id"] is not None and current.open != to.open:
                await work.supervision.change_open_complaints(complaint["facility_id"], 1 if to.open else -1)
            found = await work.supervision.complaint(complaint_id)
        record("complaint_moved", complaint_id=str(complaint_id), status=to.value)
        return found  # type: ignore[return-value]  # updated just above, in this transaction

    @staticmethod
    def _filed(plant: dict[str, Any], complaint_id: uuid.UUID, category: ComplaintCategory,
               filed_at: datetime) -> ComplaintFiled:
        return ComplaintFiled(facility_id=plant["facility_id"], province_code=plant["province_code"],
                              regency_code=plant["regency_code"], permit_id=plant["permit_id"],
                              complaint_id=complaint_id, category=category, filed_at=filed_at)

    async def _complaints_about(self, work: SupervisionWork, filed: list[ComplaintFiled], now: datetime) -> None:
        """Complaints matched to plants, one a plant: each plant's risk raised and its open complaints counted, and
        each ComplaintFiled in the outbox, in three statements."""
        if not filed:
            return
        known = {risk.facility_id: risk for risk in await work.supervision.risks([e.facility_id for e in filed])}
        await work.supervision.save_risks(
            [(known.get(e.facility_id) or PlantRisk(e.facility_id, RiskCounts(), local_day(now, e.regency_code)))
             .raised(complaints=1) for e in filed],
            [(e.province_code, e.regency_code) for e in filed], open_complaints=1)
        await work.outbox.add(*(Envelope.wrap(e, service=SERVICE, time=now) for e in filed))

    # -- sanction requests -----------------------------------------------------------------------------

    async def request_sanction(self, *, permit_id: uuid.UUID, action: SanctionAction, ground: SanctionGround,
                               reason: str, inspection_id: uuid.UUID | None, access: Access) -> dict[str, Any]:
        now = self.clock.now()
        office_region = access.principal.region
        if office_region is None or office_region == regions.NATIONAL:
            raise Invalid("office_region", "a regional office's token names its province or regency")
        async with self.database.transaction() as work:
            plant = await self._plant_in_scope(work, permit_id, access)
            recorded = None
            if inspection_id is not None:
                inspection = await work.supervision.inspection(inspection_id)
                if (inspection is None or inspection["facility_id"] != plant["facility_id"]
                        or inspection["status"] != InspectionStatus.RECORDED):
                    raise Invalid("inspection_id", "must be a recorded inspection of this plant")
                recorded = RecordedInspection(inspection["reference"], inspection["contradicted_report_id"])
            complete = request_ground(ground, recorded)
            row = {"request_id": uuid.uuid4(), "facility_id": plant["facility_id"], "permit_id": plant["permit_id"],
                   "province_code": plant["province_code"], "regency_code": plant["regency_code"],
                   "action": action.value, "ground": complete.model_dump(mode="json"), "reason": reason,
                   "office_region": office_region, "inspection_id": inspection_id, "requested_by": access.actor,
                   "requested_at": now}
            await work.supervision.add_request(row)
            event = SanctionRequested(
                facility_id=plant["facility_id"], province_code=plant["province_code"],
                regency_code=plant["regency_code"], permit_id=plant["permit_id"], request_id=row["request_id"],
                action=action, ground=complete, reason=reason, office_region=office_region,
                inspection_id=inspection_id, requested_at=now)
            await work.outbox.add(Envelope.wrap(event, service=SERVICE, time=now))
            found = await work.supervision.request(row["request_id"])
        record("sanction_requested", request_id=str(row["request_id"]), action=action.value)
        return found  # type: ignore[return-value]  # added just above, in this transaction

    async def sanction_request(self, request_id: uuid.UUID, access: Access) -> dict[str, Any]:
        async with self.database.reading() as work:
            found = await work.supervision.request(request_id)
        if found is None or not access.may_see(region_code=found["regency_code"]):
            raise NotFound("Sanction request")
        return found

    async def sanction_requests(self, *, province: str | None, regency: str | None, status: str | None,
                                after: uuid.UUID | None, limit: int) -> list[dict[str, Any]]:
        async with self.database.reading() as work:
            return await work.supervision.requests(province=province, regency=regency, status=status, after=after,
                                                   limit=limit)

    # -- consumed events -------------------------------------------------------------------------------

    async def on_permits_issued(self, work: SupervisionWork, run: list[Decoded]) -> None:
        """A run of PermitIssued at once (`InBatches`): a province's permits, or the log replayed."""
        issued: list[PermitIssued] = [decoded.event for decoded in run]  # type: ignore[misc]
        await work.supervision.learn_plants([
            PlantFacts(e.facility_id, e.permit_id, e.permit_number, e.nib, e.company_name, e.province_code,
                       e.regency_code, local_day(e.issued_at, e.regency_code)) for e in issued], self.clock.now())

    async def on_permit_frozen(self, work: SupervisionWork, envelope: Envelope, event: PermitFrozen) -> None:
        await work.supervision.set_status(event.facility_id, "frozen", self.clock.now())

    async def on_permit_reactivated(self, work: SupervisionWork, envelope: Envelope, event: PermitReactivated) -> None:
        await work.supervision.set_status(event.facility_id, "issued", self.clock.now())

    async def on_permit_revoked(self, work: SupervisionWork, envelope: Envelope, event: PermitRevoked) -> None:
        """A revoked plant leaves the worklist; its inspections, complaints and requests stay readable."""
        await work.supervision.set_status(event.facility_id, "revoked", self.clock.now())

    async def on_sanction_reversed(self, work: SupervisionWork, envelope: Envelope, event: SanctionReversed) -> None:
        await work.supervision.set_status(event.facility_id, event.to_status.lower(), self.clock.now())

    async def on_request_decided(self, work: SupervisionWork, envelope: Envelope,
                                 event: SanctionRequestDecided) -> None:
        await work.supervision.decide_request(event.request_id, RequestStatus(event.decision.value).value,
                                              event.reason, self.clock.now())

    async def on_report_overdue(self, work: SupervisionWork, envelope: Envelope, event: ReportOverdue) -> None:
        await self._raise_risk(work, event, envelope.time, missed_reports=1)

    async def on_reports_submitted(self, work: SupervisionWork, run: list[Decoded]) -> None:
        """A run of ReportSubmitted at once (`InBatches`, as reports arrive by the thousand before a deadline): the
        declared ones remembered in one statement; each late one, or one with a "no", raises its plant's risk."""
        submitted: list[tuple[Envelope, ReportSubmitted]] = [(d.envelope, d.event) for d in run]  # type: ignore[misc]
        await work.supervision.remember_declared([
            (event.facility_id, DeclaredReport(event.report_id, local_day(event.period_starts_at, event.regency_code),
                                               frozenset(event.protocol_lapses)))
            for _, event in submitted if event.declared])
        for envelope, event in submitted:
            if event.late or event.protocol_lapses:
                await self._raise_risk(work, event, envelope.time, late_reports=int(event.late),
                                       protocol_lapses=len(set(event.protocol_lapses)))

    async def on_capacity_breach(self, work: SupervisionWork, envelope: Envelope,
                                 event: CapacityBreachDetected) -> None:
        await self._raise_risk(work, event, envelope.time, capacity_breaches=1)

    async def on_case_detected(self, work: SupervisionWork, envelope: Envelope, event: CaseDetected) -> None:
        await self._raise_risk(work, event, envelope.time, cases=1)

    async def on_cluster_declared(self, work: SupervisionWork, envelope: Envelope, event: ClusterDeclared) -> None:
        await self._raise_risk(work, event, envelope.time, clusters=1)

    # -- shared steps ----------------------------------------------------------------------------------

    async def _raise_risk(self, work: SupervisionWork, event: Event, at: datetime, **deltas: int) -> None:
        """One plant's counts raised and its rank recomputed, in the caller's transaction. A plant first heard of
        here (its PermitIssued still on its way) counts its days from the event's, until the permit's is known."""
        risk = await work.supervision.risk(event.facility_id) or PlantRisk(
            event.facility_id, RiskCounts(), local_day(at, event.regency_code))
        await work.supervision.save_risk(risk.raised(**deltas), event.province_code, event.regency_code)

    async def _plant_in_scope(self, work: SupervisionWork, permit_id: uuid.UUID, access: Access) -> dict[str, Any]:
        return _in_scope(await work.supervision.plant_by_permit(permit_id), access, "Permit")

    async def _inspection_in_scope(self, work: SupervisionWork, inspection_id: uuid.UUID, access: Access, *,
                                   for_update: bool = False) -> dict[str, Any]:
        return _in_scope(await work.supervision.inspection(inspection_id, for_update=for_update), access, "Inspection")

    async def _complaint_in_scope(self, work: SupervisionWork, complaint_id: uuid.UUID, access: Access, *,
                                  for_update: bool = False) -> dict[str, Any]:
        # A complaint no region locates is the ministry's (operators') alone.
        return _in_scope(await work.supervision.complaint(complaint_id, for_update=for_update), access, "Complaint")


def _in_scope(found: dict[str, Any] | None, access: Access, what: str) -> dict[str, Any]:
    """A row the caller may see (by its regency), or not found: existence outside one's region is not told."""
    if found is None or not access.may_see(region_code=found["regency_code"]):
        raise NotFound(what)
    return found
