"""HTTP routes of the permits service: parse, check access, call a handler, map domain errors to problems."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from services.permits.domain import IllegalTransition
from services.permits.handlers import Application, PermitHandlers, PermitNotFound
from shared.access import Access, Policy, Role, Rule, Scope
from shared.contract import SectorClass
from shared.http import Problem

O, TF, C, A = Role.OPERATOR, Role.TASK_FORCE, Role.COMPANY, Role.AGENCY

# Who may do what, in one screen (DESIGN §4).
POLICY = Policy({
    "apply": Rule({O: Scope.ALL, C: Scope.OWN}, "apply for a permit"),
    "read": Rule({O: Scope.ALL, TF: Scope.REGION, C: Scope.OWN}, "read a permit and its history"),
    "decide": Rule({O: Scope.ALL}, "issue or reject an application"),
})


class Company(BaseModel):
    nib: str = Field(pattern=r"^\d{13}$", description="13-digit Nomor Induk Berusaha")
    npwp: str
    name: str = Field(min_length=1, max_length=200)


class Facility(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    address: str = Field(min_length=1, max_length=500)
    province_code: str = Field(pattern=r"^\d{2}$")
    regency_code: str = Field(pattern=r"^\d{2}\.\d{2}$")


class Workforce(BaseModel):
    total: int = Field(ge=1)
    on_site_per_shift: list[int] = Field(min_length=1)


class Contact(BaseModel):
    email: str | None = None
    phone: str | None = None


class ApplicationIn(BaseModel):
    company: Company
    facility: Facility
    kbli: list[str] = Field(min_length=1)
    sector_class: SectorClass
    workforce: Workforce
    health_protocol_commitment: bool
    contact: Contact = Contact()


class DecisionIn(BaseModel):
    decision: Literal["issue", "reject"]
    reason: str = Field(min_length=1, max_length=1000)


def router(handlers: PermitHandlers) -> APIRouter:
    routes = APIRouter(tags=["permits"])

    @routes.post("/permits", status_code=201)
    async def apply(body: ApplicationIn, access: Access = POLICY.guard("apply")) -> dict:
        access.require(nib=body.company.nib, what="Company")
        permit = await handlers.apply(Application(
            nib=body.company.nib, npwp=body.company.npwp, company_name=body.company.name,
            facility_name=body.facility.name, address=body.facility.address,
            province_code=body.facility.province_code, regency_code=body.facility.regency_code, kbli=body.kbli,
            sector_class=body.sector_class, workforce_total=body.workforce.total,
            on_site_per_shift=body.workforce.on_site_per_shift, contact_email=body.contact.email,
            contact_phone=body.contact.phone,
        ), access)
        return {"permit_id": str(permit.permit_id), "facility_id": str(permit.facility_id),
                "status": permit.status.value}

    @routes.post("/permits/{permit_id}/decision")
    async def decide(permit_id: uuid.UUID, body: DecisionIn, access: Access = POLICY.guard("decide")) -> dict:
        try:
            permit = await handlers.decide(permit_id, body.decision == "issue", body.reason, access)
        except PermitNotFound:
            raise Problem(404, "Not found", "Permit not found.") from None
        except IllegalTransition as exc:
            raise Problem(409, "Illegal transition", str(exc), current_status=exc.current.value) from None
        return {"permit_id": str(permit.permit_id), "status": permit.status.value,
                "permit_number": permit.permit_number}

    return routes
