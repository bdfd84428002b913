"""HTTP routes of the incidents service: parse, check access, call a handler, map domain errors to problems."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.incidents.domain import (
    MAX_CLOSURE_DAYS, MAX_CONTACTS_PER_CASE, Case, CaseCorrection, CaseLink, ClosureNotOver, Contact,
    ContactNotInQuarantine, ContactsStillQuarantined, ContactTest, DuplicateCaseRef, DuplicateLink, FacilityStatus,
    FollowUpClosed, IllegalClosureAction, InvalidCase, InvalidDecision, InvalidLink, IsolationNotOver, NewCase,
    NewContact, NotFound, PlantNotMonitored, Recommendation, RecommendationDecided, RecommendationStatus,
    ContactTestKind, ContactTestResult,
)
from services.incidents.handlers import IncidentHandlers
from shared import regions
from shared.contract import CASE_REF_PATTERN, NIB_PATTERN, CaseLinkKind, CaseSource, CaseVerdict, ClosureScope
from shared.web.access import Access, AuthenticatedFirst, Policy, Role, Rule, Scope
from shared.web.http import Problem, ProblemTable, Text

# No case of this emergency (COVID-19) predates 2020; older dates are typing errors, and would overflow the
# date arithmetic of isolation and cluster windows.
EARLIEST_CASE_DATE = date(2020, 1, 1)

OP, TF, C, A = Role.OPERATOR, Role.TASK_FORCE, Role.COMPANY, Role.AGENCY
RO, E, HO = Role.REGIONAL_OFFICE, Role.ESTATE, Role.HEALTH_OFFICE

# Who may do what, in one screen (DESIGN §4). A company reports and reads its own plants' cases; the
# regency (or province) task force reads its region and clears closures there; agencies see aggregates. A regional
# office reads its region; an estate reports and closes cases of its own estate's common areas as a company does,
# and reads its confirmed tenants' cases, clusters and closures as well. Cases are linked by the plant's company or
# the task force; a cluster's recommended closure is decided by the regency (or province) task force. The region's
# health office enters, reads and links cases there, confirms or corrects them, follows their contacts and closes
# that follow-up. A case's contacts are listed by whoever enters cases there, and read by those and the task force;
# never by an estate for its tenants, nor by an industry office.
POLICY = Policy({
    "report_case": Rule({OP: Scope.ALL, C: Scope.OWN, E: Scope.OWN, HO: Scope.REGION},
                        "report a confirmed case at a plant"),
    "read_case": Rule({OP: Scope.ALL, TF: Scope.REGION, C: Scope.OWN, RO: Scope.REGION, E: Scope.TENANTS,
                       HO: Scope.REGION}, "read one case"),
    "close_case": Rule({OP: Scope.ALL, C: Scope.OWN, E: Scope.OWN, HO: Scope.REGION},
                       "close a case whose isolation is over"),
    "read_status": Rule({OP: Scope.ALL, TF: Scope.REGION, C: Scope.OWN, RO: Scope.REGION, E: Scope.TENANTS,
                         HO: Scope.REGION}, "read a plant's incident status"),
    "clear_closure": Rule({OP: Scope.ALL, TF: Scope.REGION, C: Scope.OWN, E: Scope.OWN},
                          "clear a plant closure for reopening (a company: one it ordered itself)"),
    "close_own_plant": Rule({C: Scope.OWN, E: Scope.OWN}, "close one's own plant or a room of it"),
    "list_incidents": Rule({OP: Scope.ALL, TF: Scope.REGION, C: Scope.OWN, A: Scope.ALL, RO: Scope.REGION,
                            E: Scope.TENANTS, HO: Scope.REGION},
                           "list plants with incidents (counts, clusters, closures)"),
    "link_cases": Rule({OP: Scope.ALL, TF: Scope.REGION, C: Scope.OWN, HO: Scope.REGION},
                       "link two cases of one plant"),
    "read_recommendations": Rule({OP: Scope.ALL, TF: Scope.REGION, RO: Scope.REGION, HO: Scope.REGION},
                                 "read closure recommendations"),
    "decide_closure": Rule({OP: Scope.ALL, TF: Scope.REGION}, "order or decline a recommended closure"),
    "read_contacts": Rule({OP: Scope.ALL, TF: Scope.REGION, C: Scope.OWN, E: Scope.OWN, HO: Scope.REGION},
                          "read a case's close contacts (line list)"),
    "trace_contacts": Rule({OP: Scope.ALL, C: Scope.OWN, E: Scope.OWN, HO: Scope.REGION},
                           "list close contacts, record their tests, correct their exposure"),
    "verify_case": Rule({OP: Scope.ALL, HO: Scope.REGION}, "confirm or correct a case"),
    "close_follow_up": Rule({OP: Scope.ALL, HO: Scope.REGION}, "close the follow-up of a case's contacts"),
    "read_tracing": Rule({OP: Scope.ALL, TF: Scope.REGION, A: Scope.ALL, RO: Scope.REGION, HO: Scope.REGION},
                         "read the tracing ratio (contacts per case) of a region"),
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
    ContactNotInQuarantine: lambda exc: Problem(409, "Illegal transition", str(exc), current_status=exc.current),
    FollowUpClosed: lambda exc: Problem(409, "Illegal transition", str(exc), current_status=exc.current),
    ContactsStillQuarantined: lambda exc: Problem(409, "Contacts still in quarantine", str(exc),
                                                  quarantining=exc.quarantining,
                                                  last_quarantine_ends_on=exc.last_ends_on.isoformat()),
}

# An officer's reason, as the other services take it.
REASON_MAX_LENGTH = 1000


class TestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tested_on: date = Field(ge=EARLIEST_CASE_DATE)
    result: ContactTestResult

    def test(self) -> ContactTest:
        return ContactTest(self.tested_on, self.result)


class ContactIn(BaseModel):
    """One close contact: dates and results only, never a name; the platform issues its id."""

    model_config = ConfigDict(extra="forbid")

    last_exposure_on: date = Field(ge=EARLIEST_CASE_DATE, description="Quarantine counts from it")
    entry_test: TestIn | None = Field(None, description="Day 1 of quarantine; a positive one is a case of its own")

    def contact(self) -> NewContact:
        return NewContact(self.last_exposure_on, self.entry_test.test() if self.entry_test else None)


Contacts = Annotated[list[ContactIn], Field(max_length=MAX_CONTACTS_PER_CASE)]


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
    symptom_onset_on: date | None = Field(None, ge=EARLIEST_CASE_DATE, description=(
        "First day of symptoms: required for a symptomatic case, whose isolation counts from it"))
    tested_on: date | None = Field(None, ge=EARLIEST_CASE_DATE,
                                   description="Swab date; an asymptomatic case's isolation counts from it when given")
    contacts: Contacts | None = Field(None, description="The close contacts' line list, as traced so far")
    close_contacts: int | None = Field(None, ge=0, le=MAX_CONTACTS_PER_CASE, description=(
        "How many close contacts, when they are not listed: each is listed exposed on the case's first day of "
        "isolation until corrected (PATCH /contacts/{id}). With `contacts`, their number."))
    from_contact_id: uuid.UUID | None = Field(None, description=(
        "The close contact (of another case at this plant) who became this case: it leaves quarantine and the "
        "two cases are linked (named_contact)"))

    @model_validator(mode="after")
    def _one_count(self) -> CaseIn:
        if self.contacts is not None and self.close_contacts is not None and self.close_contacts != len(self.contacts):
            raise ValueError(f"close_contacts ({self.close_contacts}) differs from the contacts listed "
                             f"({len(self.contacts)})")
        return self

    def new_case(self) -> NewCase:
        return NewCase(case_ref=self.case_ref, confirmed_on=self.confirmed_on, symptomatic=self.symptomatic,
                       close_contacts=self.close_contacts or 0, source=CaseSource.DIRECT, tested_on=self.tested_on,
                       symptom_onset_on=self.symptom_onset_on, from_contact_id=self.from_contact_id,
                       contacts=None if self.contacts is None else tuple(c.contact() for c in self.contacts))


class ContactsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contacts: Contacts = Field(min_length=1)


class TestRecordIn(TestIn):
    kind: ContactTestKind


class ExposureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    last_exposure_on: date = Field(ge=EARLIEST_CASE_DATE)


class CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirmed_on: date | None = Field(None, ge=EARLIEST_CASE_DATE)
    tested_on: date | None = Field(None, ge=EARLIEST_CASE_DATE)
    symptomatic: bool | None = None
    symptom_onset_on: date | None = Field(None, ge=EARLIEST_CASE_DATE)


class VerificationIn(BaseModel):
    """Confirmed as entered, or corrected (the facts that differ, and why)."""

    model_config = ConfigDict(extra="forbid")

    verdict: CaseVerdict
    corrections: CorrectionIn = Field(default_factory=CorrectionIn)
    reason: Text | None = Field(None, min_length=1, max_length=REASON_MAX_LENGTH,
                                description="Required for a correction")


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


class OwnClosureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: ClosureScope
    days: int = Field(ge=1, le=MAX_CLOSURE_DAYS)
    reason: Text = Field(min_length=1, max_length=REASON_MAX_LENGTH)


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


def _day(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _contact(contact: Contact) -> dict[str, Any]:
    return {
        "contact_id": str(contact.contact_id), "case_id": str(contact.case_id), "number": contact.number,
        "last_exposure_on": contact.last_exposure_on.isoformat(), "exposure_assumed": contact.exposure_assumed,
        "entry_test": {"tested_on": contact.entry_test.tested_on.isoformat(),
                       "result": contact.entry_test.result.value} if contact.entry_test else None,
        "exit_test": {"tested_on": contact.exit_test.tested_on.isoformat(),
                      "result": contact.exit_test.result.value} if contact.exit_test else None,
        "quarantine": {"starts_on": contact.last_exposure_on.isoformat(),
                       "ends_on": contact.quarantine_ends_on.isoformat()},
        "status": contact.status.value, "left_on": _day(contact.left_on),
        "became_case_id": str(contact.became_case_id) if contact.became_case_id else None,
    }


def _ratio(cases: int, contacts: int, target: int) -> dict[str, Any]:
    """The tracing ratio: contacts traced per case (Kepmenkes 4641/2021 aims at 15 or more)."""
    per_case = round(contacts / cases, 2) if cases else None
    return {"cases": cases, "contacts": contacts, "contacts_per_case": per_case, "target": target,
            "meets_target": per_case is not None and per_case >= target}


def _case(case: Case, links: list[CaseLink] | None = None) -> dict[str, Any]:
    return {
        "case_id": str(case.case_id), "facility_id": str(case.facility_id), "case_ref": case.case_ref,
        "confirmed_on": case.confirmed_on.isoformat(), "symptomatic": case.symptomatic,
        "symptom_onset_on": _day(case.symptom_onset_on),
        "close_contacts": case.close_contacts, "source": case.source.value,
        "tested_on": _day(case.tested_on),
        "isolation": {"starts_on": case.isolation_starts_on.isoformat(),
                      "ends_on": case.isolation_ends_on.isoformat()},
        "verification": {"status": case.verification.value,
                         "verified_at": case.verified_at.isoformat() if case.verified_at else None,
                         "verified_by_role": case.verified_by.role if case.verified_by else None},
        "contact_follow_up_closed_at": case.follow_up_closed_at.isoformat() if case.follow_up_closed_at else None,
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
        case = await handlers.report_case(body.facility_id, body.new_case(), access)
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

    @routes.get("/cases/{case_id}/contacts")
    async def read_contacts(
        case_id: uuid.UUID, access: Annotated[Access, POLICY.guard("read_contacts")],
        after: Annotated[int, Query(ge=0, le=MAX_CONTACTS_PER_CASE, description="Cursor: the `next` of the previous "
                                                                              "page (a contact's number)")] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict:
        """The case's line list in number order, with its tally and its tracing against the target."""
        case, tally, contacts = await handlers.contacts(case_id, after=after, limit=limit, access=access)
        last = tally["last_quarantine_ends_on"]
        return {"case_id": str(case_id), "total": case.close_contacts, "quarantining": tally["quarantining"],
                "released": tally["released"], "tested_positive": tally["tested_positive"],
                "exposure_assumed": tally["exposure_assumed"], "last_quarantine_ends_on": _day(last),
                "follow_up_closed_at": case.follow_up_closed_at.isoformat() if case.follow_up_closed_at else None,
                "items": [_contact(c) for c in contacts],
                "next": contacts[-1].number if len(contacts) == limit else None}

    @routes.post("/cases/{case_id}/contacts", status_code=201)
    async def add_contacts(case_id: uuid.UUID, body: ContactsIn,
                           access: Annotated[Access, POLICY.guard("trace_contacts")]) -> dict:
        """More close contacts, as tracing finds them; each quarantines from its own last exposure."""
        added = await handlers.add_contacts(case_id, [c.contact() for c in body.contacts], access)
        return {"items": [_contact(c) for c in added]}

    @routes.get("/contacts/{contact_id}")
    async def read_contact(contact_id: uuid.UUID, access: Annotated[Access, POLICY.guard("read_contacts")]) -> dict:
        return _contact(await handlers.contact(contact_id, access))

    @routes.patch("/contacts/{contact_id}")
    async def correct_exposure(contact_id: uuid.UUID, body: ExposureIn,
                               access: Annotated[Access, POLICY.guard("trace_contacts")]) -> dict:
        """The contact's last exposure as traced: its quarantine counts from it (while it is in quarantine)."""
        return _contact(await handlers.correct_exposure(contact_id, body.last_exposure_on, access))

    @routes.post("/contacts/{contact_id}/tests")
    async def record_test(contact_id: uuid.UUID, body: TestRecordIn,
                          access: Annotated[Access, POLICY.guard("trace_contacts")]) -> dict:
        """An entry (day 1) or exit (day 5 or later) test. Positive: out of quarantine, a case to enter (POST /cases
        with `from_contact_id`). A negative exit test releases the contact on its day."""
        return _contact(await handlers.record_test(contact_id, body.kind, body.test(), access))

    @routes.post("/cases/{case_id}/contacts/close")
    async def close_follow_up(case_id: uuid.UUID, access: Annotated[Access, POLICY.guard("close_follow_up")]) -> dict:
        """The health office closes the follow-up of the case's contacts, once none is in quarantine (else 409)."""
        return _case(await handlers.close_follow_up(case_id, access))

    @routes.post("/cases/{case_id}/verification")
    async def verify_case(case_id: uuid.UUID, body: VerificationIn,
                          access: Annotated[Access, POLICY.guard("verify_case")]) -> dict:
        """The health office confirms the case as entered, or corrects its dates or symptoms (with a reason); an
        isolating case's isolation follows the corrected facts."""
        c = body.corrections
        correction = CaseCorrection(c.confirmed_on, c.tested_on, c.symptomatic, c.symptom_onset_on)
        return _case(await handlers.verify_case(case_id, body.verdict, correction, body.reason, access))

    @routes.get("/tracing")
    async def tracing(
        access: Annotated[Access, POLICY.guard("read_tracing")],
        province: Annotated[str | None, Query(pattern=regions.PROVINCE_PATTERN)] = None,
        regency: Annotated[str | None, Query(pattern=regions.REGENCY_PATTERN)] = None,
    ) -> dict:
        """Contacts traced per case in a region (the caller's own by default; the country for those who see it),
        and how many of its plants with cases trace fewer than the target."""
        totals = await handlers.tracing(province=province, regency=regency, access=access)
        return {"province_code": totals["province_code"], "regency_code": totals["regency_code"],
                "plants_with_cases": totals["plants"],
                "plants_below_target": totals["plants_below_target"]} | _ratio(
            totals["cases"], totals["contacts"], handlers.policy.contacts_per_case_target)

    @routes.post("/facilities/{facility_id}/closures", status_code=201)
    async def close_own_plant(facility_id: uuid.UUID, body: OwnClosureIn,
                              access: Annotated[Access, POLICY.guard("close_own_plant")]) -> dict:
        """The company closes its own plant or a room of it (`FacilityClosureOrdered`, ordered by the company). A
        room reopens by itself at the end; the plant, when the company (or the task force) clears it after its
        period. A plant already closed by the task force or by rule: 409."""
        closure = await handlers.close_voluntarily(facility_id, body.scope, body.days, body.reason, access)
        return {"closure_id": str(closure.closure_id), "facility_id": str(closure.facility_id),
                "scope": closure.scope.value, "starts_at": closure.starts_at.isoformat(),
                "ends_at": closure.ends_at.isoformat(), "ordered_by": closure.ordered_by.value,
                "status": closure.status.value}

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
                "cluster_id": str(closure.cluster_id) if closure.cluster_id else None,
                "ordered_by": closure.ordered_by.value},
            "placeholders_to_complete": _placeholders(*summary["placeholders_to_complete"]),
            "tracing": _ratio(summary["cases_total"], summary["contacts_total"],
                              handlers.policy.contacts_per_case_target),
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
