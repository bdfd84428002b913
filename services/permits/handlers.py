"""One function per command and consumed event: load, ask the domain, save, add outgoing events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from services.permits.domain import Action, Permit, permit_number
from services.permits.repository import PermitsWork
from shared.access import Access
from shared.clock import Clock
from shared.contract import (
    CompanyContactsUpdated, Envelope, PermitApplied, PermitIssued, PermitRejected, SectorClass,
)
from shared.unit_of_work import Database

SERVICE = "permits"


class PermitNotFound(Exception):
    pass


@dataclass(frozen=True)
class Application:
    nib: str
    npwp: str
    company_name: str
    facility_name: str
    address: str
    province_code: str
    regency_code: str
    kbli: list[str]
    sector_class: SectorClass
    workforce_total: int
    on_site_per_shift: list[int]
    contact_email: str | None
    contact_phone: str | None


@dataclass
class PermitHandlers:
    database: Database[PermitsWork]
    clock: Clock

    async def apply(self, application: Application, access: Access) -> Permit:
        now = self.clock.now()
        async with self.database.transaction() as work:
            permit, transition = Permit.apply(
                facility_id=uuid.uuid4(), nib=application.nib, company_name=application.company_name,
                province_code=application.province_code, regency_code=application.regency_code,
                sector_class=application.sector_class.value, workforce_total=application.workforce_total,
                actor=access.actor, role=access.principal.role.value, now=now,
            )
            await work.permits.add(permit, application.__dict__ | {"sector_class": application.sector_class.value},
                                   transition)
            applied = Envelope.wrap(PermitApplied(
                facility_id=permit.facility_id, province_code=permit.province_code, regency_code=permit.regency_code,
                permit_id=permit.permit_id, nib=permit.nib, company_name=permit.company_name,
                facility_name=application.facility_name, kbli=application.kbli,
                sector_class=application.sector_class, workforce_total=application.workforce_total,
            ), service=SERVICE, time=now)
            contacts = applied.caused(CompanyContactsUpdated(
                facility_id=permit.facility_id, province_code=permit.province_code, regency_code=permit.regency_code,
                permit_id=permit.permit_id, nib=permit.nib, company_name=permit.company_name,
                email=application.contact_email, phone=application.contact_phone,
            ), service=SERVICE, time=now)
            await work.outbox.add(applied, contacts)
        return permit

    async def decide(self, permit_id: uuid.UUID, issue: bool, reason: str, access: Access) -> Permit:
        now = self.clock.now()
        async with self.database.transaction() as work:
            permit = await work.permits.get(permit_id, for_update=True)
            if permit is None or not access.may_see(region_code=permit.regency_code, nib=permit.nib):
                raise PermitNotFound(permit_id)
            action = Action.ISSUE if issue else Action.REJECT
            number = None
            if issue and permit.status.value == "SUBMITTED":
                number = permit_number(now.year, await work.permits.next_number(now.year))
            changed, transition = permit.act(action, actor=access.actor, role=access.principal.role.value,
                                             reason=reason, now=now, permit_number=number)
            await work.permits.save(changed, transition)
            base = dict(facility_id=changed.facility_id, province_code=changed.province_code,
                        regency_code=changed.regency_code, permit_id=changed.permit_id, nib=changed.nib)
            if issue:
                event = PermitIssued(**base, permit_number=changed.permit_number, company_name=changed.company_name,
                                     sector_class=SectorClass(changed.sector_class),
                                     workforce_total=changed.workforce_total, issued_at=now)
            else:
                event = PermitRejected(**base, reason=reason)
            await work.outbox.add(Envelope.wrap(event, service=SERVICE, time=now))
        return changed
