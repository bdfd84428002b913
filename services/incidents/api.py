"""HTTP routes of the incidents service: parse, check access, call a handler, map domain errors to problems."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field

from services.incidents.domain import (
    Case, ClosureNotOver, DuplicateCaseRef, FacilityStatus, IllegalClosureAction, InvalidCase, IsolationNotOver,
    NewCase, NotFound, PlantNotMonitored,
)
from services.incidents.handlers import IncidentHandlers
from shared import regions
from shared.contract import CASE_REF_PATTERN, NIB_PATTERN, CaseSource
from shared.web.access import Access, AuthenticatedFirst, Policy, Role, Rule, Scope
from shared.web.http import Problem, ProblemTable

# No case of this emergency (COVID-19) predates 2020; older dates are typing errors, and would overflow the
# date arithmetic of isolation and cluster windows.
EARLIEST_CASE_DATE = date(2020, 1, 1)

OP, TF, C, A = Role.OPERATOR, Role.TASK_FORCE, Role.COMPANY, Role.AGENCY
RO, E = Role.REGIONAL_OFFICE, Role.ESTATE

# Who may do what, in one screen (DESIGN §4). A company reports and reads its own plants' cases; the
# regency (or province) task force reads its region and clears closures there; agencies see aggregates. A regional
# office reads its region; an estate reports and closes cases of its own estate's common areas as a company does,
# and reads its confirmed tenants' cases, clusters and closures as well.
POLICY = Policy({
    "report_case": Rule({OP: Scope.ALL, C: Scope.OWN, E: Scope.OWN}, "report a confirmed case at a plant"),
    "read_case": Rule({OP: Scope.ALL, TF: Scope.REGION, C: Scope.OWN, RO: Scope.REGION, E: Scope.TENANTS},
                      "read one case"),
    "close_case": Rule({OP: Scope.ALL, C: Scope.OWN, E: Scope.OWN}, "close a case whose isolation is over"),
    "read_status": Rule({OP: Scope.ALL, TF: Scope.REGION, C: Scope.OWN, RO: Scope.REGION, E: Scope.TENANTS},
                        "read a plant's incident status"),
    "clear_closure": Rule({OP: Scope.ALL, TF: Scope.REGION}, "clear a plant closure for reopening"),
    "list_incidents": Rule({OP: Scope.ALL, TF: Scope.REGION, C: Scope.OWN, A: Scope.ALL, RO: Scope.REGION,
                            E: Scope.TENANTS}, "list plants with incidents (counts, clusters, closures)"),
})

# What each refusal of the domain answers, in one table (see `ProblemTable`).
PROBLEMS: ProblemTable = {
    NotFound: lambda exc: Problem(404, "Not found", str(exc)),
    InvalidCase: lambda exc: Problem(422, "Invalid request", str(exc),
                                     errors=[{"field": exc.field, "message": exc.message}]),
    IsolationNotOver: lambda exc: Problem(409, "Isolation not over", str(exc),
                                          earliest_close_on=exc.earliest.isoformat()),
    ClosureNotOver: lambda exc: Problem(409, "Closure period not over", str(exc),
                                        earliest_reopening=exc.earliest.isoformat()),
    IllegalClosureAction: lambda exc: Problem(409, "Illegal transition", str(exc), current_status=exc.current),
    PlantNotMonitored: lambda exc: Problem(409, "Conflict", str(exc)),
    DuplicateCaseRef: lambda exc: Problem(409, "Conflict", str(exc)),
}


class CaseIn(BaseModel):
    """Counts and dates only. Unknown fields are refused, so a name, NIK or phone cannot slip in."""

    model_config = ConfigDict(extra="forbid")

    facility_id: uuid.UUID
    # The pattern is the domain's rule (CaseReference), which also refuses what looks like a NIK or a phone
    # number; the schema states it for clients.
    case_ref: str = Field(min_length=1, max_length=40, description="The company's pseudonymous reference",
                          json_schema_extra={"pattern": CASE_REF_PATTERN})
    confirmed_on: date = Field(ge=EARLIEST_CASE_DATE)
    symptomatic: bool
    # No more than any plant's workforce (the permits service takes at most ten million).
    close_contacts: int = Field(ge=0, le=10_000_000)
    tested_on: date | None = Field(None, ge=EARLIEST_CASE_DATE,
                                   description="Swab date; isolation counts from it when given")
    contacts_exit_test_negative: bool = Field(
        False, description="Contacts tested out negative on day 5 (quarantine 5 days instead of 14)")


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symptoms_resolved_on: date | None = Field(None, description="Last day with symptoms (symptomatic cases)")


def _case(case: Case) -> dict[str, Any]:
    return {
        "case_id": str(case.case_id), "facility_id": str(case.facility_id), "case_ref": case.case_ref,
        "confirmed_on": case.confirmed_on.isoformat(), "symptomatic": case.symptomatic,
        "close_contacts": case.close_contacts, "source": case.source.value,
        "tested_on": case.tested_on.isoformat() if case.tested_on else None,
        "isolation": {"starts_on": case.isolation_starts_on.isoformat(),
                      "ends_on": case.isolation_ends_on.isoformat()},
        "quarantine_ends_on": case.quarantine_ends_on.isoformat() if case.quarantine_ends_on else None,
        "status": case.status.value, "cluster_id": str(case.cluster_id) if case.cluster_id else None,
        "closed_on": case.closed_on.isoformat() if case.closed_on else None,
        # Set when this entry claimed a case a report had already counted (source stays "report").
        "claimed_at": case.claimed_at.isoformat() if case.claimed_at else None,
    }


def router(handlers: IncidentHandlers) -> APIRouter:
    routes = APIRouter(route_class=AuthenticatedFirst, tags=["incidents"])

    @routes.post("/cases", status_code=201)
    async def report_case(body: CaseIn, access: Annotated[Access, POLICY.guard("report_case")]) -> dict:
        new = NewCase(case_ref=body.case_ref, confirmed_on=body.confirmed_on, symptomatic=body.symptomatic,
                      close_contacts=body.close_contacts, source=CaseSource.DIRECT, tested_on=body.tested_on,
                      contacts_exit_test_negative=body.contacts_exit_test_negative)
        case = await handlers.report_case(body.facility_id, new, access)
        return _case(case)

    @routes.get("/cases/{case_id}")
    async def read_case(case_id: uuid.UUID, access: Annotated[Access, POLICY.guard("read_case")]) -> dict:
        case, _ = await handlers.case(case_id, access)
        return _case(case)

    @routes.post("/cases/{case_id}/close")
    async def close_case(case_id: uuid.UUID, access: Annotated[Access, POLICY.guard("close_case")],
                         body: Annotated[CloseIn, Body(default_factory=CloseIn)]) -> dict:
        case = await handlers.close_case(case_id, body.symptoms_resolved_on, access)
        return _case(case)

    @routes.post("/closures/{closure_id}/clear")
    async def clear_closure(closure_id: uuid.UUID, access: Annotated[Access, POLICY.guard("clear_closure")]) -> dict:
        closure = await handlers.clear_closure(closure_id, access)
        return {"closure_id": str(closure.closure_id), "facility_id": str(closure.facility_id),
                "status": closure.status.value,
                "reopened_at": closure.reopened_at.isoformat() if closure.reopened_at else None}

    @routes.get("/facilities/{facility_id}/status")
    async def facility_status(facility_id: uuid.UUID, access: Annotated[Access, POLICY.guard("read_status")]) -> dict:
        summary = await handlers.facility_status(facility_id, access)
        closure = summary["plant_closure"]
        return {
            "facility_id": str(facility_id), "status": summary["status"], "monitored": summary["monitored"],
            "active_isolations": summary["active_isolations"], "active_quarantines": summary["active_quarantines"],
            "active_room_closures": summary["active_room_closures"], "cases_total": summary["cases_total"],
            "plant_closure": None if closure is None else {
                "closure_id": str(closure.closure_id), "starts_at": closure.starts_at.isoformat(),
                "ends_at": closure.ends_at.isoformat(),
                "cluster_id": str(closure.cluster_id) if closure.cluster_id else None},
        }

    @routes.get("/incidents")
    async def list_incidents(
        access: Annotated[Access, POLICY.guard("list_incidents")],
        province: Annotated[str | None, Query(pattern=regions.PROVINCE_PATTERN)] = None,
        status: FacilityStatus | None = None,
        estate: Annotated[str | None, Query(pattern=NIB_PATTERN, description=(
            "An estate company's NIB: only the plants it confirmed as its tenants, to see clusters and closures "
            "across the estate"))] = None,
        after: Annotated[uuid.UUID | None, Query(description="Cursor: the `next` of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict:
        rows = await handlers.incidents(province=province, status=status.value if status else None, estate=estate,
                                        after=after, limit=limit, access=access)
        items = [{"facility_id": str(r["facility_id"]), "province_code": r["province_code"],
                  "regency_code": r["regency_code"], "status": r["status"], "monitored": r["monitored"],
                  "active_isolations": r["active_isolations"], "active_quarantines": r["active_quarantines"],
                  "cases_total": r["cases_total"], "clusters_total": r["clusters_total"],
                  "last_cluster_at": r["last_cluster_at"].isoformat() if r["last_cluster_at"] else None,
                  "plant_closure": None if r["closure_id"] is None else {
                      "closure_id": str(r["closure_id"]), "starts_at": r["closure_starts_at"].isoformat(),
                      "ends_at": r["closure_ends_at"].isoformat(),
                      "cluster_id": str(r["closure_cluster_id"]) if r["closure_cluster_id"] else None}}
                 for r in rows]
        return {"items": items, "next": items[-1]["facility_id"] if len(items) == limit else None}

    return routes
