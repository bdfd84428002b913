"""HTTP routes of the reports service: parse, check access, call a handler, map domain errors to problems."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response
from pydantic import BaseModel, Field, StringConstraints

from services.reports.domain import (
    REGIME_NAME_PATTERN, REGIME_SOURCE_MAX, ZONES, InconsistentReport, LadderName, ObligationEnded, PeriodClosed,
    PeriodNotFound, RegimeEntry, RegimeExists, RegimeInEffect, RegimeNotFound, RegimeRefused, ReportFigures,
    ScheduleNotFound, UndeclaredReport, new_positives,
)
from services.reports.capacity import RegionPpkm
from services.reports.handlers import Accepted, PlantAllowance, ReportHandlers, ReportIn
from services.reports.staffing import (
    LEVEL_REASON_MAX, MAX_RULES, RULE_NAME_PATTERN, RULE_SET_NAME_PATTERN, RULE_SET_SOURCE_MAX, InvalidRuleSet,
    LevelEntry, LevelRefused, RuleSetTaken, rule_set_mapping,
)
from shared import regions
from shared.contract import (
    INSTRUCTION_MAX_LENGTH, MAX_SHIFTS, REPORTED_PROTOCOL_ITEMS, CapacityMeasure, PpkmLevel, ProtocolItem, SectorClass,
)
from shared.web.cursors import After, cursor, moment_and_id, position
from shared.web.access import Access, AuthenticatedFirst, Policy, Role, Rule, Scope
from shared.web.http import Problem, ProblemTable, Text

OP, TF, C, A = Role.OPERATOR, Role.TASK_FORCE, Role.COMPANY, Role.AGENCY
RO, E = Role.REGIONAL_OFFICE, Role.ESTATE

# Who may do what, in one screen (DESIGN §4). A regional office reads its region as a task force does and writes
# nothing; an estate reports for its own estate as a company does, and reads its confirmed tenants as well.
POLICY = Policy({
    "submit": Rule({OP: Scope.ALL, C: Scope.OWN, E: Scope.OWN}, "submit a periodic report"),
    "read": Rule({OP: Scope.ALL, TF: Scope.REGION, C: Scope.OWN, RO: Scope.REGION, E: Scope.TENANTS},
                 "read a schedule and its reports"),
    # An estate's compliance is its tenants', plant by plant.
    "compliance": Rule({OP: Scope.ALL, TF: Scope.REGION, A: Scope.ALL, RO: Scope.REGION, E: Scope.TENANTS},
                       "read compliance aggregates"),
    # The timeline is national: whoever may read compliance by region reads all of it.
    "regimes": Rule({OP: Scope.ALL, TF: Scope.ALL, A: Scope.ALL, RO: Scope.ALL},
                    "read the reporting regimes and their changes"),
    "change_regimes": Rule({OP: Scope.ALL}, "schedule or withdraw a reporting regime ahead of time"),
    "ppkm_levels": Rule({OP: Scope.ALL, TF: Scope.REGION, A: Scope.ALL, RO: Scope.REGION},
                        "read PPKM levels, in force and recorded"),
    "set_ppkm_level": Rule({OP: Scope.ALL}, "record a PPKM level for a province or a regency"),
    # The staffing rules are national, like the reporting regimes.
    "ppkm_rule_sets": Rule({OP: Scope.ALL, TF: Scope.ALL, A: Scope.ALL, RO: Scope.ALL},
                           "read the PPKM staffing rule sets"),
    "publish_ppkm_rules": Rule({OP: Scope.ALL}, "publish a PPKM staffing rule set ahead of time"),
    "allowance": Rule({OP: Scope.ALL, TF: Scope.REGION, C: Scope.OWN, RO: Scope.REGION, E: Scope.TENANTS},
                      "read what a plant may run under PPKM"),
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
    LevelRefused: lambda exc: Problem(422, "Invalid request", str(exc),
                                      errors=[{"field": exc.field, "message": exc.message}]),
    InvalidRuleSet: lambda exc: Problem(422, "Invalid request", "The rule set cannot be read.",
                                        errors=[{"field": i.field, "message": i.message} for i in exc.issues]),
    RuleSetTaken: lambda exc: Problem(409, "Rule set exists", str(exc),
                                      errors=[{"field": exc.field, "message": exc.message}]),
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

    def lapses(self) -> tuple[ProtocolItem, ...]:
        """The items answered no, named as the event contract names them (its field names are the items')."""
        return tuple(item for item in REPORTED_PROTOCOL_ITEMS if not getattr(self, item.value))


class Offices(BaseModel):
    """The offices, as PPKM caps them apart from production: their staff and how many of them are on site."""

    staff: int = Count
    on_site: int = Field(ge=0, le=10_000_000, description="At most `staff`.")


class ReportBody(BaseModel):
    permit_id: uuid.UUID
    period_id: uuid.UUID
    workforce: Workforce
    odp: int = Count
    pdp: int = Count
    new_positives: int | None = Field(None, ge=0, le=10_000_000, description=(
        "Pekerja baru terkonfirmasi positif sejak laporan sebelumnya / Workers newly confirmed positive since the "
        "plant's previous report. Required, or as `confirmed_positive`."))
    confirmed_positive: int | None = Field(None, ge=0, le=10_000_000, description=(
        "The older name of `new_positives`, still accepted; sent with it, it must be the same number."))
    isolating_workers: int | None = Field(None, ge=0, le=10_000_000, description=(
        "Pekerja yang sedang isolasi pada tanggal laporan / Workers isolating on the report's date, whenever they "
        "were confirmed (at most the workforce less those on site)."))
    tests: Tests
    vaccinated: Vaccinated
    # Modes are named by the company ("company_bus", "motorcycle"); a name longer than this is not a mode.
    transport_modes: list[Annotated[Text, Field(max_length=100)]] = Field(max_length=10)
    protocol_checklist: ProtocolChecklist
    offices: Offices | None = Field(None, description="The offices' staff and those on site: checked against the PPKM "
                                                      "offices' cap when stated.")
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


class ExcessOut(BaseModel):
    measure: CapacityMeasure
    shift: int | None = Field(description="The shift, from 1, for shift_on_site")
    cap: int = Field(description="People (or shifts) the rule allows")
    count: int = Field(description="People (or shifts) the report counted")


class CapacityOut(BaseModel):
    """The report against the PPKM staffing cap of its plant on its day (each report is checked, a correction
    too; a breach found stays recorded)."""

    checked: bool = Field(description="False when the plant's sector class is not known: no rule applies to it")
    day: date = Field(description="The day checked, in the plant's time zone: today, or the deadline of a late "
                                  "report's period")
    level: PpkmLevel | None = Field(description="The regency's PPKM level that day; null: none in force")
    rule_set: str | None = Field(max_length=200, description="The rule set in force that day")
    rule: str | None = Field(max_length=200, description="The named rule applied, e.g. L4-Export; NoRestriction "
                                                         "without a level")
    lifted: bool = Field(description="The rule's cap lifted: the report meets the conditions that lift it")
    within: bool | None = Field(description="Within the cap; null when not checked")
    excesses: list[ExcessOut] = Field(max_length=MAX_SHIFTS + 3)
    breach_id: uuid.UUID | None = Field(description="The breach recorded, when over the cap")


class LevelBody(BaseModel):
    province_code: str = Field(pattern=regions.PROVINCE_PATTERN, description="Kemendagri province code, e.g. 32")
    regency_code: Annotated[str, StringConstraints(pattern=regions.REGENCY_PATTERN)] | None = Field(
        None, description="A regency of the province, e.g. 32.16; none sets every regency of the province")
    level: PpkmLevel
    effective_from: date = Field(description="The first day the level is in force, in the region's time zone")
    effective_until: date | None = Field(None, description="The last day it is in force; none until another level")
    instruction: Text = Field(min_length=1, max_length=INSTRUCTION_MAX_LENGTH,
                              description="The instruction that sets it, e.g. Inmendagri 22/2021")
    reason: Text = Field(min_length=1, max_length=LEVEL_REASON_MAX, description="Why it is recorded (audited)")


def _level(entry: LevelEntry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {"level": entry.level.value, "effective_from": entry.effective_from.isoformat(),
            "effective_until": entry.effective_until.isoformat() if entry.effective_until else None,
            "instruction": entry.instruction, "source": entry.source.value, "set_for": entry.region_code}


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SHARE = {"type": "integer", "minimum": 0, "maximum": 100}
# What `rule_set_from_mapping` reads, for the document: it checks every field itself, naming each that is wrong, and
# keeps nothing else (the request's size is bounded before it is read).
RULE_SET_SCHEMA: dict[str, Any] = {
    "required": ["name", "starts_on", "source", "rules"],
    "properties": {
        "name": {"type": "string", "pattern": RULE_SET_NAME_PATTERN, "maxLength": 64},
        "starts_on": {"type": "string", "format": "date"},
        "source": {"type": "string", "minLength": 1, "maxLength": RULE_SET_SOURCE_MAX},
        "rules": {"type": "array", "minItems": 1, "maxItems": MAX_RULES, "items": {
            "type": "object", "required": ["name", "levels", "classes", "production_share", "office_share"],
            "properties": {
                "name": {"type": "string", "pattern": RULE_NAME_PATTERN, "maxLength": 64},
                "levels": {"type": "array", "minItems": 1, "maxItems": len(PpkmLevel),
                           "items": {"enum": [m.value for m in PpkmLevel]}},
                "classes": {"type": "array", "minItems": 1, "maxItems": len(SectorClass),
                            "items": {"enum": [m.value for m in SectorClass]}},
                "export_oriented": {"type": "boolean"}, "production_share": _SHARE, "shift_share": _SHARE,
                "max_shifts": {"type": "integer", "minimum": 1, "maximum": MAX_SHIFTS}, "office_share": _SHARE,
                "lift": {"type": "object", "properties": {
                    "production_share": _SHARE, "shift_share": _SHARE, "office_share": _SHARE,
                    "active_permit": {"type": "boolean"}, "pedulilindungi": {"type": "boolean"},
                    "min_dose1_share": _SHARE}},
            }}},
    },
}


def _rule_set_document(document: dict[str, Any]) -> dict[str, Any]:
    """The request as `rule_set_from_mapping` reads it: JSON has no dates, so `starts_on` comes as text."""
    start = document.get("starts_on")
    if isinstance(start, str) and _DAY.fullmatch(start):
        try:
            return document | {"starts_on": date.fromisoformat(start)}
        except ValueError:
            pass  # not a day of the calendar: named as the field's issue
    return document


def _allowance(found: PlantAllowance) -> dict[str, Any]:
    a, plant, entry = found.allowance, found.plant, found.level_entry
    return {
        "facility_id": str(plant.facility_id), "permit_id": str(plant.permit_id), "day": a.day.isoformat(),
        "level": a.level.value if a.level else None,
        "level_entry": None if entry is None else {
            "instruction": entry.instruction, "effective_from": entry.effective_from.isoformat(),
            "effective_until": entry.effective_until.isoformat() if entry.effective_until else None,
            "source": entry.source.value},
        "rule_set": a.rule_set, "rule": a.rule,
        "sector_class": a.sector_class.value if a.sector_class else None, "export_oriented": a.export_oriented,
        "workforce_total": a.workforce_total, "lifted": a.lifted,
        "capacity": {"production_share": a.capacity.production_share, "shift_share": a.capacity.shift_share,
                     "max_shifts": a.capacity.max_shifts, "office_share": a.capacity.office_share,
                     "total_cap": a.total_cap, "shift_cap": a.shift_cap},
        "conditions": [{"name": c.name.value, "met": c.met, "said_id": c.said_id, "said_en": c.said_en}
                       for c in a.conditions],
        "summary_id": found.summary_id, "summary_en": found.summary_en,
    }


class ReportAccepted(BaseModel):
    report_id: uuid.UUID
    late: bool
    supersedes: uuid.UUID | None = Field(description="The report of the same period this one corrects")
    capacity: CapacityOut | None


def _capacity(accepted: Accepted) -> CapacityOut | None:
    check = accepted.capacity
    if check is None:
        return None
    return CapacityOut(checked=check.checked, day=check.day, level=check.level, rule_set=check.rule_set,
                       rule=check.rule, lifted=bool(check.allowance and check.allowance.lifted), within=check.within,
                       excesses=[ExcessOut(measure=e.measure, shift=e.shift, cap=e.cap, count=e.count)
                                 for e in check.excesses],
                       breach_id=accepted.breach_id)


def _ppkm(region: RegionPpkm, key: str | None) -> dict[str, Any]:
    plants = region.plants
    return ({key: region.code} if key else {}) | {
        "level": region.level.value if region.level else None,
        "plants": {"critical": plants.critical, "essential": plants.essential, "non_essential": plants.non_essential,
                   "unknown": plants.unknown, "export_oriented": plants.export_oriented},
        "breaches_this_week": region.breaches_this_week,
        "dose1_share": region.dose1_share, "dose1_plants": region.reported_plants,
    }




def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def _estate_compliance(handlers: ReportHandlers, estate_nib: str, province: str | None, regency: str | None,
                             days: int) -> dict[str, Any]:
    """An estate's compliance: its confirmed tenants' (in the region asked, if one is), summed and one by one."""
    since, until, tenants = await handlers.estate_compliance(estate_nib, province=province, regency=regency,
                                                             window=timedelta(days=days))
    due, reported, on_time = (sum(t.due for t in tenants), sum(t.reported for t in tenants),
                              sum(t.on_time for t in tenants))
    return {
        "estate_nib": estate_nib, "province": province, "regency": regency,
        "since": since.isoformat(), "until": until.isoformat(), "tenants_count": len(tenants),
        "periods_due": due, "reported": reported, "on_time": on_time,
        "reporting_rate": _rate(reported, due), "on_time_rate": _rate(on_time, due),
        "late": sum(t.late for t in tenants), "overdue": sum(t.overdue for t in tenants),
        "warnings": sum(t.warnings for t in tenants), "excused_closed": sum(t.excused for t in tenants),
        "frozen_plants": sum(t.frozen and not t.ended for t in tenants),
        "closed_plants": sum(t.closed and not t.ended for t in tenants),
        "capacity_breaches": sum(t.capacity_breaches for t in tenants),
        "tenants": [{"permit_id": str(t.permit_id), "facility_id": str(t.facility_id),
                     "permit_number": t.permit_number, "company": {"nib": t.nib, "name": t.company_name},
                     "province_code": t.province_code, "regency_code": t.regency_code,
                     "frozen": t.frozen, "closed": t.closed, "ended": t.ended,
                     "periods_due": t.due, "submitted": t.on_time, "late": t.late, "overdue": t.overdue,
                     "excused_closed": t.excused, "reporting_rate": _rate(t.reported, t.due),
                     "warnings": t.warnings, "capacity_breaches": t.capacity_breaches} for t in tenants],
    }


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
        positives = new_positives(body.new_positives, body.confirmed_positive)
        # Stored under both names, so that every reader of the report finds the count by either.
        body = body.model_copy(update={"new_positives": positives, "confirmed_positive": positives})
        figures = ReportFigures(
            workforce_total=body.workforce.total, on_site_per_shift=tuple(body.workforce.on_site_per_shift),
            odp=body.odp, pdp=body.pdp, new_positives=positives, tests_pcr=body.tests.pcr,
            tests_antigen=body.tests.antigen, dose1=body.vaccinated.dose1, dose2=body.vaccinated.dose2,
            booster=body.vaccinated.booster, case_handling=body.case_handling,
            office_staff=body.offices.staff if body.offices else None,
            office_on_site=body.offices.on_site if body.offices else None,
            isolating_workers=body.isolating_workers,
        )
        accepted = await handlers.submit(ReportIn(body.permit_id, body.period_id, figures, body.model_dump_json(),
                                                  body.declared_true, body.protocol_checklist.pedulilindungi_scan,
                                                  body.protocol_checklist.lapses()),
                                         access)
        accepted_json = ReportAccepted(report_id=accepted.report_id, late=accepted.late,
                                       supersedes=accepted.supersedes, capacity=_capacity(accepted)).model_dump_json()
        return Response(accepted_json, status_code=201, media_type="application/json")

    @routes.get("/reports")
    async def reports(permit_id: uuid.UUID, access: Annotated[Access, POLICY.guard("read")],
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100, after: After = None) -> dict:
        """The latest first; `next` continues where this page ended."""
        more = await handlers.reports(permit_id, access, limit + 1, position(after, moment_and_id))
        found = more[:limit]
        last = found[-1] if len(more) > limit else None
        return {"permit_id": str(permit_id),
                "next": cursor(last["submitted_at"].isoformat(), last["report_id"]) if last else None, "reports": [
            {"report_id": str(r["report_id"]), "period_id": str(r["period_id"]),
             "submitted_at": r["submitted_at"].isoformat(), "deadline": r["deadline"].isoformat(), "late": r["late"],
             "current": r["superseded_by"] is None,
             "superseded_by": str(r["superseded_by"]) if r["superseded_by"] else None,
             "submitted_by": {"sub": r["actor"], "role": r["role"]},
             # Who declared the report's data true and when, as the service recorded it; null: not declared.
             "declared": r["declared_at"] is not None,
             "declaration": {"sub": r["declared_by"], "at": r["declared_at"].isoformat()} if r["declared_at"] else None,
             # Named for every report, those sent before the names too (isolating_workers null: not stated).
             "new_positives": r["new_positives"], "isolating_workers": r["isolating_workers"],
             "report": r["payload"]}
            for r in found]}

    @routes.get("/compliance")
    async def compliance(access: Annotated[Access, POLICY.guard("compliance")],
                         province: Annotated[str | None, Query(pattern=regions.PROVINCE_PATTERN)] = None,
                         regency: Annotated[str | None, Query(pattern=regions.REGENCY_PATTERN)] = None,
                         days: Annotated[int, Query(ge=1, le=366,
                                                    description="Deadlines within the last N days.")] = 28) -> dict:
        if access.tenants_filter is not None:
            return await _estate_compliance(handlers, access.tenants_filter, province, regency, days)
        province, regency = access.asked_region(province, regency)
        counts = await handlers.compliance(province=province, regency=regency, window=timedelta(days=days))
        due = counts["due"]
        totals: RegionPpkm = counts["ppkm_totals"]
        return {
            "province": province, "regency": regency,
            "since": counts["since"].isoformat(), "until": counts["until"].isoformat(),
            "periods_due": due, "reported": counts["reported"], "on_time": counts["on_time"],
            "reporting_rate": round(counts["reported"] / due, 4) if due else None,
            "on_time_rate": round(counts["on_time"] / due, 4) if due else None,
            "overdue": counts["overdue"], "warnings": counts["warnings"],
            "excused_closed": counts["excused"], "frozen_plants": counts["frozen"],
            "closed_plants": counts["closed"],
            # Reports found over the PPKM staffing cap, by the day they were checked, over the same days.
            "capacity_breaches": totals.breaches_in_window,
            # PPKM by region: a regency's or a province's regencies, or the country's provinces (a province's level
            # is the most restrictive of its regencies'); "this week" is Monday to Sunday in each region's zone.
            "ppkm": {"regions": [_ppkm(r, "regency_code" if (province or regency) else "province_code")
                                 for r in counts["ppkm"]],
                     "totals": _ppkm(totals, None)},
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

    @routes.get("/ppkm/levels")
    async def ppkm_levels(access: Annotated[Access, POLICY.guard("ppkm_levels")],
                          province: Annotated[str | None, Query(pattern=regions.PROVINCE_PATTERN)] = None,
                          regency: Annotated[str | None, Query(pattern=regions.REGENCY_PATTERN)] = None,
                          limit: Annotated[int, Query(ge=1, le=1000, description="Levels recorded, newest "
                                                                                 "first")] = 100) -> dict:
        province, regency = access.asked_region(province, regency)
        current, history = await handlers.levels(province=province, regency=regency, limit=limit)
        return {
            "province": province, "regency": regency,
            # Today in each regency's zone: the entry in force there (its own or its province's), or none.
            "current": [{"region_code": code, "level": None, "effective_from": None, "effective_until": None,
                         "instruction": None, "source": None, "set_for": None} | (_level(entry) or {})
                        for code, entry in current],
            "history": [{"level_id": str(h["level_id"]), "region_code": h["region_code"], "level": h["level"],
                         "effective_from": h["effective_from"].isoformat(),
                         "effective_until": h["effective_until"].isoformat() if h["effective_until"] else None,
                         "instruction": h["instruction"], "source": h["source"], "actor": h["actor"],
                         "reason": h["reason"], "recorded_at": h["recorded_at"].isoformat()} for h in history],
        }

    @routes.post("/ppkm/levels", status_code=201)
    async def set_ppkm_level(body: LevelBody, access: Annotated[Access, POLICY.guard("set_ppkm_level")]) -> dict:
        level_id, entry = await handlers.set_level(
            access, province_code=body.province_code, regency_code=body.regency_code, level=body.level,
            effective_from=body.effective_from, effective_until=body.effective_until, instruction=body.instruction,
            reason=body.reason)
        return {"level_id": str(level_id), "region_code": entry.region_code, "province_code": body.province_code,
                "regency_code": body.regency_code, "level": entry.level.value,
                "effective_from": entry.effective_from.isoformat(),
                "effective_until": entry.effective_until.isoformat() if entry.effective_until else None,
                "instruction": entry.instruction, "source": entry.source.value, "actor": access.actor,
                "reason": body.reason.strip(), "recorded_at": entry.recorded_at.isoformat()}

    @routes.get("/ppkm/rule-sets")
    async def ppkm_rule_sets(access: Annotated[Access, POLICY.guard("ppkm_rule_sets")]) -> dict:
        listing, in_force = await handlers.rule_sets()
        return {
            "in_force": in_force,
            "rule_sets": [{"name": r["name"], "starts_on": r["starts_on"].isoformat(), "source": r["source"],
                           "in_force_in": [zone for zone, name in in_force.items() if name == r["name"]],
                           "shipped": r["shipped"], "published_by": r["published_by"],
                           "published_at": r["published_at"].isoformat(),
                           "applied_at": r["applied_at"].isoformat() if r["applied_at"] else None,
                           "rules": r["rules"]} for r in listing],
        }

    @routes.post("/ppkm/rule-sets", status_code=201)
    async def publish_ppkm_rules(
            access: Annotated[Access, POLICY.guard("publish_ppkm_rules")],
            document: Annotated[dict[str, Any], Body(json_schema_extra=RULE_SET_SCHEMA, description=(
                "A rule set: name, starts_on (a day not yet begun in any zone), source, and rules, each with name, "
                "levels, classes, export_oriented (or absent for either), production_share, shift_share and "
                "max_shifts (absent: no limit), office_share, and an optional lift (the same shares, "
                "active_permit, pedulilindungi, min_dose1_share). README \"PPKM\" and "
                "services/reports/ppkm_rules.toml show them."))]) -> dict:
        published = await handlers.publish_rule_set(access, _rule_set_document(document))
        mapping = rule_set_mapping(published)
        return mapping | {"starts_on": published.starts_on.isoformat(), "published_by": access.actor}

    @routes.get("/plants/{facility_id}/allowance")
    async def allowance(facility_id: uuid.UUID, access: Annotated[Access, POLICY.guard("allowance")],
                        on: Annotated[date | None, Query(description="The day (YYYY-MM-DD); today in the plant's "
                                                                     "zone unless given")] = None) -> dict:
        return _allowance(await handlers.plant_allowance(facility_id, access, on))

    return routes
