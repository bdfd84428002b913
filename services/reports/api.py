"""HTTP routes of the reports service: parse, check access, call a handler, map domain errors to problems."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from services.reports.domain import (
    REGIME_NAME_PATTERN, REGIME_SOURCE_MAX, ZONES, InconsistentReport, LadderName, ObligationEnded, PeriodClosed,
    PeriodNotFound, RegimeEntry, RegimeExists, RegimeInEffect, RegimeNotFound, RegimeRefused, ReportFigures,
    ScheduleNotFound, UndeclaredReport,
)
from services.reports.handlers import ReportHandlers, ReportIn
from shared import regions
from shared.web.access import Access, AuthenticatedFirst, Policy, Role, Rule, Scope
from shared.web.http import Problem, ProblemTable, Text

OP, TF, C, A = Role.OPERATOR, Role.TASK_FORCE, Role.COMPANY, Role.AGENCY

# Who may do what, in one screen (DESIGN §4).
POLICY = Policy({
    "submit": Rule({OP: Scope.ALL, C: Scope.OWN}, "submit a periodic report"),
    "read": Rule({OP: Scope.ALL, TF: Scope.REGION, C: Scope.OWN}, "read a schedule and its reports"),
    "compliance": Rule({OP: Scope.ALL, TF: Scope.REGION, A: Scope.ALL}, "read compliance aggregates"),
    # The timeline is national: whoever may read compliance reads all of it.
    "regimes": Rule({OP: Scope.ALL, TF: Scope.ALL, A: Scope.ALL}, "read the reporting regimes and their changes"),
    "change_regimes": Rule({OP: Scope.ALL}, "schedule or withdraw a reporting regime ahead of time"),
})

# What each refusal of the domain answers, in one table (see `ProblemTable`).
PROBLEMS: ProblemTable = {
    ScheduleNotFound: lambda exc: Problem(404, "Not found", str(exc)),
    PeriodNotFound: lambda exc: Problem(404, "Not found", "No such reporting period for this permit.",
                                        errors=[{"field": "period_id", "message": "unknown period"}]),
    ObligationEnded: lambda exc: Problem(409, "Permit revoked",
                                         "The permit was revoked: it owes no reports and accepts none.",
                                         current_status="REVOKED"),
    PeriodClosed: lambda exc: Problem(409, "Period closed", str(exc), period_status=exc.status.value),
    InconsistentReport: lambda exc: Problem(422, "Invalid request", "The report's counts contradict each other.",
                                            errors=[{"field": i.field, "message": i.message} for i in exc.issues]),
    UndeclaredReport: lambda exc: Problem(422, "Invalid request", exc.MESSAGE,
                                          errors=[{"field": exc.FIELD, "message": exc.MESSAGE}]),
    RegimeRefused: lambda exc: Problem(422, "Invalid request", str(exc),
                                       errors=[{"field": exc.field, "message": exc.message}]),
    RegimeExists: lambda exc: Problem(409, "Regime exists", f"A regime named {exc} is already in the timeline."),
    RegimeNotFound: lambda exc: Problem(404, "Not found", str(exc)),
    RegimeInEffect: lambda exc: Problem(409, "Regime in effect",
                                        f"The regime {exc} has taken effect: the timeline is never changed after the "
                                        "fact."),
}

Count = Field(ge=0, le=10_000_000)
# A shift's headcount: never negative, so that the sum the event carries is a count as well.
Headcount = Annotated[int, Field(ge=0, le=10_000_000)]


class Workforce(BaseModel):
    total: int = Field(ge=1, le=10_000_000)
    on_site_per_shift: list[Headcount] = Field(min_length=1, max_length=8)


class Tests(BaseModel):
    pcr: int = Count
    antigen: int = Count


class Vaccinated(BaseModel):
    dose1: int = Count
    dose2: int = Count
    booster: int = Count


class ProtocolChecklist(BaseModel):
    """SE 4/2020 and SE 5/2021: each item a yes/no the company declares true."""

    temperature_screening: bool
    masks: bool
    distancing: bool
    ventilation: bool
    disinfection: bool
    handwash_stations: bool
    pedulilindungi_scan: bool


class ReportBody(BaseModel):
    permit_id: uuid.UUID
    period_id: uuid.UUID
    workforce: Workforce
    odp: int = Count
    pdp: int = Count
    confirmed_positive: int = Count
    tests: Tests
    vaccinated: Vaccinated
    # Modes are named by the company ("company_bus", "motorcycle"); a name longer than this is not a mode.
    transport_modes: list[Annotated[Text, Field(max_length=100)]] = Field(max_length=10)
    protocol_checklist: ProtocolChecklist
    case_handling: Text = Field("", max_length=4000)
    # A JSON true only: a declaration is not "yes" or 1. Who declared and when are the token's subject and the
    # service's clock, never fields of the body.
    declared_true: bool = Field(False, strict=True, description=(
        "The company declares this report's data true (SE 5/2021). Required (true) for a period opened under a "
        "regime that requires the declaration; recorded with the caller and the time whenever given."))


class RegimeBody(BaseModel):
    name: str = Field(pattern=REGIME_NAME_PATTERN, max_length=40, description="The circular's number, e.g. SE-2/2022")
    source: Text = Field(min_length=1, max_length=REGIME_SOURCE_MAX, description="The circular that sets it")
    effective_on: date = Field(description="A date not yet begun in any zone (after today in WIT)")
    rule: str = Field(max_length=64, description="weekly:DAY@HH:MM or twice-weekly:DAY,DAY@HH:MM, local time")
    ladder: LadderName
    declaration: bool = Field(True, strict=True, description="Reports under it must carry the declaration of truth "
                                                             "(declared_true); unless stated, as under SE 5/2021")


def _entry(entry: RegimeEntry) -> dict[str, Any]:
    return {"name": entry.name, "source": entry.source,
            "effective_on": None if entry.effective_on == date.min else entry.effective_on.isoformat(),
            "rule": entry.rule.text, "ladder": entry.ladder.value, "declaration": entry.declaration}


class ReportAccepted(BaseModel):
    report_id: uuid.UUID
    late: bool
    supersedes: uuid.UUID | None = Field(description="The report of the same period this one corrects")


def router(handlers: ReportHandlers) -> APIRouter:
    routes = APIRouter(route_class=AuthenticatedFirst, tags=["reports"])

    @routes.get("/schedules/{permit_id}")
    async def schedule(permit_id: uuid.UUID, access: Annotated[Access, POLICY.guard("read")],
                       limit: Annotated[int, Query(ge=1, le=500)] = 52) -> dict:
        found, periods, excused = await handlers.schedule(permit_id, access, limit)
        return {
            "permit_id": str(found.permit_id), "facility_id": str(found.facility_id),
            # The latest period's deadline rule (`regime`, as before) and the name of the regime it opened under.
            "regime": periods[-1].regime if periods else None,
            "regime_name": periods[-1].regime_name if periods else None,
            "zone": found.zone,
            "frozen": found.frozen, "closed": found.closed, "ended": found.ended,
            "periods": [{"period_id": str(p.period_id), "seq": p.seq, "starts_at": p.starts_at.isoformat(),
                         "deadline": p.deadline.isoformat(), "status": p.status.value,
                         "regime_name": p.regime_name, "rule": p.regime,
                         "warned": p.warning_id is not None,
                         # Filed late and excused from the ladder when a reactivation request was approved.
                         "excused_on_reactivation": p.period_id in excused,
                         "excused_by_request": str(excused[p.period_id]) if excused.get(p.period_id) else None}
                        for p in periods],
        }

    # The response is serialised here, once, from its model: FastAPI would validate a returned value against
    # the response model and serialise it again, on the platform's busiest route. The model still documents it.
    @routes.post("/reports", status_code=201, response_model=ReportAccepted)
    async def submit(body: ReportBody, access: Annotated[Access, POLICY.guard("submit")]) -> Response:
        figures = ReportFigures(
            workforce_total=body.workforce.total, on_site_per_shift=tuple(body.workforce.on_site_per_shift),
            odp=body.odp, pdp=body.pdp, confirmed_positive=body.confirmed_positive, tests_pcr=body.tests.pcr,
            tests_antigen=body.tests.antigen, dose1=body.vaccinated.dose1, dose2=body.vaccinated.dose2,
            booster=body.vaccinated.booster, case_handling=body.case_handling,
        )
        accepted = await handlers.submit(ReportIn(body.permit_id, body.period_id, figures,
                                                  body.model_dump_json(), body.declared_true), access)
        accepted_json = ReportAccepted(report_id=accepted.report_id, late=accepted.late,
                                       supersedes=accepted.supersedes).model_dump_json()
        return Response(accepted_json, status_code=201, media_type="application/json")

    @routes.get("/reports")
    async def reports(permit_id: uuid.UUID, access: Annotated[Access, POLICY.guard("read")],
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict:
        found = await handlers.reports(permit_id, access, limit)
        return {"permit_id": str(permit_id), "reports": [
            {"report_id": str(r["report_id"]), "period_id": str(r["period_id"]),
             "submitted_at": r["submitted_at"].isoformat(), "deadline": r["deadline"].isoformat(), "late": r["late"],
             "current": r["superseded_by"] is None,
             "superseded_by": str(r["superseded_by"]) if r["superseded_by"] else None,
             "submitted_by": {"sub": r["actor"], "role": r["role"]},
             # Who declared the report's data true and when, as the service recorded it; null: not declared.
             "declared": r["declared_at"] is not None,
             "declaration": {"sub": r["declared_by"], "at": r["declared_at"].isoformat()} if r["declared_at"] else None,
             "report": r["payload"]}
            for r in found]}

    @routes.get("/compliance")
    async def compliance(access: Annotated[Access, POLICY.guard("compliance")],
                         province: Annotated[str | None, Query(pattern=regions.PROVINCE_PATTERN)] = None,
                         regency: Annotated[str | None, Query(pattern=regions.REGENCY_PATTERN)] = None,
                         days: Annotated[int, Query(ge=1, le=366,
                                                    description="Deadlines within the last N days.")] = 28) -> dict:
        if province and regency and not regency.startswith(province + "."):
            raise Problem(422, "Invalid request", "The regency is not in the province.",
                          errors=[{"field": "regency", "message": f"not in province {province}"}])
        if access.region_filter and not (province or regency):
            own = access.region_filter
            province, regency = (None, own) if "." in own else (own, None)
        if province or regency:  # none left only for callers who see the whole country
            access.require(region_code=regency or province, what="Region")
        counts = await handlers.compliance(province=province, regency=regency, window=timedelta(days=days))
        due = counts["due"]
        return {
            "province": province, "regency": regency,
            "since": counts["since"].isoformat(), "until": counts["until"].isoformat(),
            "periods_due": due, "reported": counts["reported"], "on_time": counts["on_time"],
            "reporting_rate": round(counts["reported"] / due, 4) if due else None,
            "on_time_rate": round(counts["on_time"] / due, 4) if due else None,
            "overdue": counts["overdue"], "warnings": counts["warnings"],
            "excused_closed": counts["excused"], "frozen_plants": counts["frozen"],
            "closed_plants": counts["closed"],
        }

    @routes.get("/regimes")
    async def regimes(access: Annotated[Access, POLICY.guard("regimes")]) -> dict:
        timeline, stored, changes = await handlers.regimes()
        now = handlers.clock.now()
        return {
            # IOMKI_REPORT_REGIME (demonstrations and tests) replaces the stored timeline with its one rule.
            "configured": handlers.config.regime is not None,
            "in_force": {zone: timeline.in_force(now, zone).name for zone in ZONES} if timeline.entries else {},
            "regimes": [{"name": row["name"], "source": row["source"], "effective_on": row["effective_on"].isoformat(),
                         "rule": row["rule"], "ladder": row["ladder"], "declaration": row["declaration"],
                         "shipped": row["shipped"],
                         "scheduled_by": row["scheduled_by"], "scheduled_at": row["scheduled_at"].isoformat()}
                        for row in stored],
            "changes": [{"at": c["at"].isoformat(), "by": c["actor"], "action": c["action"], "name": c["name"],
                         "entry": c["entry"]} for c in changes],
        }

    @routes.post("/regimes", status_code=201)
    async def schedule_regime(body: RegimeBody, access: Annotated[Access, POLICY.guard("change_regimes")]) -> dict:
        entry = await handlers.schedule_regime(access, name=body.name, source=body.source,
                                               effective_on=body.effective_on, rule=body.rule,
                                               ladder=body.ladder.value, declaration=body.declaration)
        return _entry(entry)

    @routes.delete("/regimes/{name:path}")
    async def withdraw_regime(name: Annotated[str, Path(pattern=REGIME_NAME_PATTERN, max_length=40)],
                              access: Annotated[Access, POLICY.guard("change_regimes")]) -> dict:
        return _entry(await handlers.withdraw_regime(access, name)) | {"withdrawn": True}

    return routes
