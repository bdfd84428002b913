"""HTTP routes of the incidents service: parse, check access, call a handler, map domain errors to problems."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field

from services.incidents.domain import (
    MAX_CLOSURE_DAYS, Case, CaseLink, ClosureNotOver, DuplicateCaseRef, DuplicateLink, FacilityStatus,
    IllegalClosureAction, InvalidCase, InvalidDecision, InvalidLink, IsolationNotOver, NewCase, NotFound,
    PlantNotMonitored, Recommendation, RecommendationDecided, RecommendationStatus,
)
from services.incidents.handlers import IncidentHandlers
from shared import regions
from shared.contract import CASE_REF_PATTERN, NIB_PATTERN, CaseLinkKind, CaseSource, ClosureScope
from shared.web.access import Access, AuthenticatedFirst, Policy, Role, Rule, Scope
from shared.web.http import Problem, ProblemTable, Text

# No case of this emergency (COVID-19) predates 2020; older dates are typing errors, and would overflow the
# date arithmetic of isolation and cluster windows.
EARLIEST_CASE_DATE = date(2020, 1, 1)

OP, TF, C, A = Role.OPERATOR, Role.TASK_FORCE, Role.COMPANY, Role.AGENCY
RO, E = Role.REGIONAL_OFFICE, Role.ESTATE

# Who may do what, in one screen (DESIGN §4). A company reports and reads its own plants' cases; the
# regency (or province) task force reads its region and clears closures there; agencies see aggregates. A regional
# office reads its region; an estate reports and closes cases of its own estate's common areas as a company does,
# and reads its confirmed tenants' cases, clusters and closures as well. Cases are linked by the plant's company or
# the task force; a cluster's recommended closure is decided by the regency (or province) task force.
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
    "link_cases": Rule({OP: Scope.ALL, TF: Scope.REGION, C: Scope.OWN}, "link two cases of one plant"),
    "read_recommendations": Rule({OP: Scope.ALL, TF: Scope.REGION, RO: Scope.REGION},
                                 "read closure recommendations"),
    "decide_closure": Rule({OP: Scope.ALL, TF: Scope.REGION}, "order or decline a recommended closure"),
})


def _invalid(exc: InvalidCase) -> Problem:
    return Problem(422, "Invalid request", str(exc), errors=[{"field": exc.field, "message": exc.message}])


# What each refusal of the domain answers, in one table (see `ProblemTable`).
PROBLEMS: ProblemTable = {
    NotFound: lambda exc: Problem(404, "Not found", str(exc)),
    InvalidCase: _invalid,
    InvalidLink: _invalid,
    InvalidDecision: _invalid,
    IsolationNotOver: lambda exc: Problem(409, "Isolation not over", str(exc),
                                          earliest_close_on=exc.earliest.isoformat()),
    ClosureNotOver: lambda exc: Problem(409, "Closure period not over", str(exc),
                                        earliest_reopening=exc.earliest.isoformat()),
    IllegalClosureAction: lambda exc: Problem(409, "Illegal transition", str(exc), current_status=exc.current),
    PlantNotMonitored: lambda exc: Problem(409, "Conflict", str(exc)),
    DuplicateCaseRef: lambda exc: Problem(409, "Conflict", str(exc)),
    DuplicateLink: lambda exc: Problem(409, "Conflict", str(exc)),
    RecommendationDecided: lambda exc: Problem(409, "Illegal transition", str(exc), current_status=exc.current),
}

# An officer's reason, as the other services take it.
REASON_MAX_LENGTH = 1000


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


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    linked_case_id: uuid.UUID = Field(description="Another case at the same plant")
    kind: CaseLinkKind


class OrderIn(BaseModel):
    """As recommended when empty; a changed scope or length says why."""

    model_config = ConfigDict(extra="forbid")

    scope: ClosureScope | None = None
    days: int | None = Field(None, ge=1, le=MAX_CLOSURE_DAYS)
    reason: Text | None = Field(None, min_length=1, max_length=REASON_MAX_LENGTH,
                                description="Required when the scope or the length differs from the recommendation")


class DeclineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(min_length=1, max_length=REASON_MAX_LENGTH)


def _link(link: CaseLink, case_id: uuid.UUID) -> dict[str, Any]:
    """A link as seen from `case_id`: the other case."""
    other = link.linked_case_id if link.case_id == case_id else link.case_id
    return {"case_id": str(other), "kind": link.kind.value, "linked_at": link.linked_at.isoformat()}


def _recommendation(r: Recommendation) -> dict[str, Any]:
    return {
        "recommendation_id": str(r.recommendation_id), "facility_id": str(r.facility_id),
        "cluster_id": str(r.cluster_id), "scope": r.scope.value, "days": r.days, "rule": r.rule,
        "evidence": {"case_count": r.case_count, "first_confirmed_on": r.first_confirmed_on.isoformat(),
                     "last_confirmed_on": r.last_confirmed_on.isoformat()},
        "recommended_at": r.recommended_at.isoformat(), "answer_by": r.answer_by.isoformat(),
        "status": r.status.value, "overdue_at": r.overdue_at.isoformat() if r.overdue_at else None,
        "decided_at": r.decided_at.isoformat() if r.decided_at else None,
        "decided_by_role": r.decided_by.role if r.decided_by else None,
        "closure_id": str(r.closure_id) if r.closure_id else None,
        "ordered_scope": r.ordered_scope.value if r.ordered_scope else None, "ordered_days": r.ordered_days,
        "reason": r.reason,
    }


def _case(case: Case, links: list[CaseLink] | None = None) -> dict[str, Any]:
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
        "links": [_link(link, case.case_id) for link in links or []],
    }


def _placeholders(count: int, first: list[Case]) -> dict[str, Any]:
    """Cases a report counted that the company has yet to enter (POST /cases with a confirmation date inside
    `confirmed_between` claims one), the first of them in the order they are claimed."""
    return {"count": count, "items": [
        {"case_id": str(case.case_id), "case_ref": case.case_ref, "report_id": str(case.report_id),
         "status": case.status.value,
         "confirmed_between": {"first": case.report_period[0].isoformat(), "last": case.report_period[1].isoformat()}
         if case.report_period else None}
        for case in first]}


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
        case, links = await handlers.case(case_id, access)
        return _case(case, links)

    @routes.post("/cases/{case_id}/links", status_code=201)
    async def link_cases(case_id: uuid.UUID, body: LinkIn,
                         access: Annotated[Access, POLICY.guard("link_cases")]) -> dict:
        """Link two cases of one plant as one chain of transmission; a pair is linked once (again: 409). The link
        may complete a cluster (the case's `cluster_id`), whose closure is then recommended to the task force."""
        case, links = await handlers.link_cases(case_id, body.linked_case_id, body.kind, access)
        return _case(case, links)

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
            "placeholders_to_complete": _placeholders(*summary["placeholders_to_complete"]),
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

    @routes.get("/closure-recommendations")
    async def list_recommendations(
        access: Annotated[Access, POLICY.guard("read_recommendations")],
        status: RecommendationStatus | None = None,
        after: Annotated[uuid.UUID | None, Query(description="Cursor: the `next` of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict:
        rows = await handlers.recommendations(status=status.value if status else None, after=after, limit=limit,
                                              access=access)
        items = [_recommendation(r) | {"province_code": province, "regency_code": regency}
                 for r, province, regency in rows]
        return {"items": items, "next": items[-1]["recommendation_id"] if len(items) == limit else None}

    @routes.get("/closure-recommendations/{recommendation_id}")
    async def read_recommendation(recommendation_id: uuid.UUID,
                                  access: Annotated[Access, POLICY.guard("read_recommendations")]) -> dict:
        return _recommendation(await handlers.recommendation(recommendation_id, access))

    @routes.post("/closure-recommendations/{recommendation_id}/order")
    async def order_closure(recommendation_id: uuid.UUID, access: Annotated[Access, POLICY.guard("decide_closure")],
                            body: Annotated[OrderIn, Body(default_factory=OrderIn)]) -> dict:
        """Order the recommended closure, as recommended or with its scope or length changed (saying why)."""
        return _recommendation(await handlers.order_closure(recommendation_id, scope=body.scope, days=body.days,
                                                            reason=body.reason, access=access))

    @routes.post("/closure-recommendations/{recommendation_id}/decline")
    async def decline_closure(recommendation_id: uuid.UUID, body: DeclineIn,
                              access: Annotated[Access, POLICY.guard("decide_closure")]) -> dict:
        return _recommendation(await handlers.decline_closure(recommendation_id, body.reason, access))

    return routes
