"""The company's pages: its plants' permits, one plant's permit with its deadlines, warnings and letters, the
weekly report, and the application for a new plant's permit.

Every form's inputs are named as the service's request body names its fields (`workforce.total`), so that a
refusal's field errors land beside the input they concern; what the person typed is shown again with them.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.console.backend import Refused
from services.console.sessions import Session
from services.console.vocabulary import (
    N_,
    OBJECTION_OUTCOME_NAMES,
    REQUEST_STATUS_NAMES,
    SANCTION_NAMES,
    SECTOR_CLASS_NAMES,
)
from services.console.web import (
    checked_form,
    console_of,
    redirect,
    render,
    signed_in,
    worded_errors,
    worded_problem,
)
from shared import regions
from shared.contract import KBLI_PATTERN, NIB_PATTERN, PERMIT_NUMBER_PATTERN
from shared.web.access import Role

COMPANY = (Role.COMPANY,)
PAGE_SIZE = 20
SHIFTS = 8  # POST /reports takes up to eight shifts' headcounts
PERIODS_SHOWN = 12

# The browser's check as they type; the services check the same and name the field otherwise.
NIB_INPUT = NIB_PATTERN.strip("^$")
NPWP_INPUT = r"[0-9](?:[ .\-]?[0-9]){14,15}"
KBLI_INPUT = r"[0-9]{5}(?:\s*,\s*[0-9]{5})*"
SHIFTS_INPUT = r"[0-9]+(?:\s*,\s*[0-9]+)*"
# The apply form's region pickers: the provinces, and each province's regencies and cities under it.
_PROVINCES = regions.KemendagriRegions().provinces()
_REGENCIES = [(name, code, regions.KemendagriRegions().regencies_of(code)) for code, name in _PROVINCES]
PERMIT_NUMBER_INPUT = PERMIT_NUMBER_PATTERN.strip("^$")
_KBLI = re.compile(KBLI_PATTERN)
_LETTER = re.compile(r"^[A-Za-z]{1,8}-[0-9]{1,9}$")
_PERMIT_NUMBER = re.compile(PERMIT_NUMBER_PATTERN)

LETTER_KIND_NAMES = {
    "warning": N_("Warning letter"),
    "freeze": N_("Freeze letter"),
    "revocation": N_("Revocation letter"),
}
ACTION_NAMES = {
    "apply": N_("applied"), "issue": N_("issued"), "reject": N_("rejected"), "freeze": N_("frozen"),
    "reactivate": N_("reactivated"), "revoke": N_("revoked"),
}
# What the plant page says after a redirect: chosen by a word in the address, never text from it.
NOTICES = {
    "applied": N_("Your application has been submitted. The ministry will decide on it."),
    "on_time": N_("Your report has been received on time."),
    "late": N_("Your report has been received, after the deadline: it is recorded as late."),
    "over_cap": N_("Your report has been received; its headcounts exceed what the PPKM level allows this plant."),
    "reactivation": N_("Your reactivation request has been submitted. The ministry will decide on it."),
    "objected": N_("Your objection has been filed. The ministry will decide on it."),
}
PROTOCOL_ITEMS = (
    ("temperature_screening", N_("Body temperature is checked at the gate")),
    ("masks", N_("Everyone wears a mask")),
    ("distancing", N_("Physical distancing is kept")),
    ("ventilation", N_("Work spaces are ventilated")),
    ("disinfection", N_("Work spaces are disinfected regularly")),
    ("handwash_stations", N_("Hand-washing stations are available")),
    ("pedulilindungi_scan", N_("Everyone entering scans PeduliLindungi")),
)
TRANSPORT_MODES = (
    ("company_bus", N_("Company bus")),
    ("private_car", N_("Private car")),
    ("motorcycle", N_("Motorcycle")),
    ("public_transport", N_("Public transport")),
    ("walking_cycling", N_("On foot or by bicycle")),
)
REPORTABLE = ("open", "overdue")
# What a reactivation request must meet (the permits service checks them and names each one unmet).
CONDITION_NAMES = {
    "PermitIsFrozen": N_("The permit is frozen"),
    "MissedReportsFiled": N_("The reports of the missed periods have been filed, late"),
    "CorrectiveActionStated": N_("The corrective action taken is stated"),
    "OneOpenRequestAtATime": N_("No earlier request is awaiting a decision"),
}
CORRECTIVE_ACTION_MIN = 30  # letters or digits, as the permits service asks


def router() -> APIRouter:
    routes = APIRouter()

    @routes.get("/plants")
    async def plants(request: Request, next: Annotated[str, Query(max_length=64)] = "",  # noqa: A002
                     notice: Annotated[str, Query(max_length=20)] = "") -> Response:
        session = signed_in(request, COMPANY)
        found = await _call(request, session, "permits", "GET", "/permits",
                            params={"nib": session.principal.nib, "cursor": next or None, "limit": PAGE_SIZE})
        items = found.get("items", [])
        details = await asyncio.gather(*(_plant_row(request, session, item) for item in items))
        return render(request, "co_plants.html", plants=details, next_cursor=found.get("next_cursor"),
                      notice=NOTICES.get(notice))

    @routes.get("/plants/{permit_id}")
    async def plant(request: Request, permit_id: uuid.UUID, notice: Annotated[str, Query(max_length=20)] = "",
                    filed: Annotated[str, Query(max_length=80)] = "") -> Response:
        session = signed_in(request, COMPANY)
        return await _plant_page(request, session, permit_id, notice=NOTICES.get(notice),
                                 draft_key=_draft_key(permit_id, filed) if _uuid(filed) else None)

    @routes.post("/plants/{permit_id}/reactivation-requests")
    async def request_reactivation(request: Request, permit_id: uuid.UUID) -> Response:
        session = signed_in(request, COMPANY)
        fields = await checked_form(request, session)
        values = {"corrective_action": fields.get("corrective_action", "")}
        try:
            await console_of(request).backend.call(
                session, "permits", "POST", f"/permits/{permit_id}/reactivation-requests",
                json={"corrective_action": values["corrective_action"].strip()})
        except Refused as refused:
            return await _plant_page(request, session, permit_id, reactivation_form=values,
                                     reactivation_refused=refused)
        return redirect(f"/plants/{permit_id}?notice=reactivation")

    @routes.post("/plants/{permit_id}/objections")
    async def object_to(request: Request, permit_id: uuid.UUID) -> Response:
        session = signed_in(request, COMPANY)
        fields = await checked_form(request, session)
        values = {"statement": fields.get("statement", "")}
        try:
            await console_of(request).backend.call(
                session, "permits", "POST", f"/permits/{permit_id}/objections",
                json={"statement": values["statement"].strip()})
        except Refused as refused:
            return await _plant_page(request, session, permit_id, objection_form=values, objection_refused=refused)
        return redirect(f"/plants/{permit_id}?notice=objected")

    @routes.get("/plants/{permit_id}/letters/{letter}")
    async def letter(request: Request, permit_id: uuid.UUID, letter: str) -> Response:
        session = signed_in(request, COMPANY)
        if not (_LETTER.fullmatch(letter) or _uuid(letter)):
            raise Refused(404, N_("No such letter for this permit."))
        return await _download(request, session, "permits", f"/permits/{permit_id}/letters/{letter}")

    @routes.get("/plants/{permit_id}/certificate")
    async def certificate(request: Request, permit_id: uuid.UUID) -> Response:
        """The issued permit's certificate (PDF), as the service prints it; a permit not in force is refused there."""
        session = signed_in(request, COMPANY)
        return await _download(request, session, "permits", f"/permits/{permit_id}/certificate")

    @routes.get("/plants/{permit_id}/qr.png")
    async def certificate_qr(request: Request, permit_id: uuid.UUID) -> Response:
        session = signed_in(request, COMPANY)
        permit = await _call(request, session, "permits", "GET", f"/permits/{permit_id}")
        number = str(permit.get("permit_number") or "")
        if not _PERMIT_NUMBER.fullmatch(number):
            raise Refused(404, N_("This permit has no number yet: it has not been issued."))
        response = await _download(request, session, "permits", f"/registry/{number}/qr.png")
        response.headers["Content-Disposition"] = f'attachment; filename="{number}_QR.png"'
        return response

    @routes.get("/plants/{permit_id}/report")
    async def report_form(request: Request, permit_id: uuid.UUID,
                          period: Annotated[str, Query(max_length=40)] = "") -> Response:
        session = signed_in(request, COMPANY)
        permit, schedule = await _report_context(request, session, permit_id)
        choices = _reportable(schedule.get("periods", []))
        chosen = period if any(p["period_id"] == period for p in choices) else (
            choices[0]["period_id"] if choices else "")
        values = {"period_id": chosen, "workforce.total": str(permit.get("workforce", {}).get("total") or "")}
        return _report_page(request, permit, schedule, choices, values, {}, None)

    @routes.post("/plants/{permit_id}/report")
    async def report_submit(request: Request, permit_id: uuid.UUID) -> Response:
        session = signed_in(request, COMPANY)
        fields = await checked_form(request, session)
        permit, schedule = await _report_context(request, session, permit_id)
        choices = _reportable(schedule.get("periods", []))
        body = _report_body(permit_id, fields)
        try:
            accepted = await console_of(request).backend.call(session, "reports", "POST", "/reports", json=body)
        except Refused as refused:
            return _report_page(request, permit, schedule, choices, fields,
                                worded_errors(request, refused, ("transport_modes",)),
                                worded_problem(request, refused, with_fields=True),
                                status=refused.status if refused.status < 500 else 422)
        capacity = (accepted or {}).get("capacity") or {}
        notice = "over_cap" if capacity.get("within") is False else ("late" if accepted.get("late") else "on_time")
        return redirect(f"/plants/{permit_id}?notice={notice}&filed={fields.get('period_id', '')}")

    @routes.get("/apply")
    async def apply_form(request: Request) -> Response:
        session = signed_in(request, COMPANY)
        return _apply_page(request, {"company.nib": session.principal.nib or ""}, {}, None)

    @routes.post("/apply")
    async def apply_submit(request: Request) -> Response:
        session = signed_in(request, COMPANY)
        fields = await checked_form(request, session)
        try:
            created = await console_of(request).backend.call(session, "permits", "POST", "/permits",
                                                             json=_application_body(fields))
        except Refused as refused:
            return _apply_page(request, fields,
                               worded_errors(request, refused, ("kbli", "workforce.on_site_per_shift")),
                               worded_problem(request, refused, with_fields=True),
                               status=refused.status if refused.status < 500 else 422)
        return redirect(f"/plants/{created['permit_id']}?notice=applied")

    return routes


# -- the services' answers ----------------------------------------------------------------------------------------


async def _call(request: Request, session: Session, service: str, method: str, path: str,
                params: dict[str, Any] | None = None) -> Any:
    return await console_of(request).backend.call(session, service, method, path, params=params)


async def _optional(request: Request, session: Session, service: str, method: str, path: str,
                    params: dict[str, Any] | None = None) -> Any:
    """An answer the page does without: a permit not yet issued has no schedule (404), nor letters."""
    try:
        return await _call(request, session, service, method, path, params)
    except Refused as refused:
        if refused.status in (403, 404):
            return None
        raise


async def _download(request: Request, session: Session, service: str, path: str) -> Response:
    """The service's file, passed on with its type and name: the browser holds no token to fetch it itself."""
    answer = await console_of(request).backend.raw(session, service, "GET", path)
    headers = {"Content-Disposition": answer.headers.get("content-disposition", "attachment")}
    return Response(answer.content, media_type=answer.headers.get("content-type", "application/octet-stream"),
                    headers=headers)


async def _plant_row(request: Request, session: Session, item: dict[str, Any]) -> dict[str, Any]:
    permit_id = item["permit_id"]
    detail, schedule = await asyncio.gather(
        _optional(request, session, "permits", "GET", f"/permits/{permit_id}"),
        _optional(request, session, "reports", "GET", f"/schedules/{permit_id}", params={"limit": 8})
        if item.get("status") in ("ISSUED", "FROZEN") else _nothing())
    return item | {"facility": (detail or {}).get("facility") or {},
                   "next_period": _next_period((schedule or {}).get("periods", []))}


async def _nothing() -> None:
    return None


async def _report_context(request: Request, session: Session,
                          permit_id: uuid.UUID) -> tuple[dict[str, Any], dict[str, Any]]:
    permit, schedule = await asyncio.gather(
        _call(request, session, "permits", "GET", f"/permits/{permit_id}"),
        _optional(request, session, "reports", "GET", f"/schedules/{permit_id}", params={"limit": 52}))
    return permit, schedule or {"periods": []}


def _next_period(periods: list[dict[str, Any]]) -> dict[str, Any] | None:
    waiting = [p for p in periods if p.get("status") in REPORTABLE]
    return min(waiting, key=lambda p: str(p.get("deadline"))) if waiting else None


def _reportable(periods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((p for p in periods if p.get("status") in REPORTABLE), key=lambda p: str(p.get("deadline")))


def _number(text: str | None) -> int | str | None:
    """A count as typed: a number when it reads as one, else the text itself for the service to name as invalid;
    nothing when left blank (the service says so when it is required)."""
    value = (text or "").strip()
    if not value:
        return None
    return int(value) if value.isdigit() and len(value) < 12 else value


def _present(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


def _report_body(permit_id: uuid.UUID, fields: dict[str, str]) -> dict[str, Any]:
    shifts = [_number(fields.get(f"workforce.on_site_per_shift.{n}")) for n in range(SHIFTS)]
    while shifts and shifts[-1] is None:
        shifts.pop()
    modes = [value for value, _label in TRANSPORT_MODES if fields.get(f"transport_modes.{value}")]
    modes += [mode.strip() for mode in fields.get("transport_modes.other", "").split(",") if mode.strip()]
    offices = _present({"staff": _number(fields.get("offices.staff")),
                        "on_site": _number(fields.get("offices.on_site"))})
    body: dict[str, Any] = {
        "permit_id": str(permit_id), "period_id": fields.get("period_id", ""),
        "workforce": _present({"total": _number(fields.get("workforce.total")),
                               "on_site_per_shift": [0 if s is None else s for s in shifts]}),
        "tests": _present({"pcr": _number(fields.get("tests.pcr")), "antigen": _number(fields.get("tests.antigen"))}),
        "vaccinated": _present({key: _number(fields.get(f"vaccinated.{key}")) for key in ("dose1", "dose2",
                                                                                         "booster")}),
        "transport_modes": modes,
        "protocol_checklist": {item: bool(fields.get(f"protocol_checklist.{item}")) for item, _ in PROTOCOL_ITEMS},
        "case_handling": fields.get("case_handling", ""),
        "declared_true": bool(fields.get("declared_true")),
    }
    body |= _present({key: _number(fields.get(key)) for key in ("odp", "pdp", "new_positives", "isolating_workers")})
    if offices:
        body["offices"] = offices
    return body


def _application_body(fields: dict[str, str]) -> dict[str, Any]:
    def text(name: str) -> str:
        return fields.get(name, "").strip()

    shifts = [_number(part) for part in text("workforce.on_site_per_shift").split(",") if part.strip()]
    exported = {"yes": True, "no": False}.get(text("export_oriented"))
    return _present({
        "company": {"nib": text("company.nib"), "npwp": text("company.npwp"), "name": text("company.name")},
        "facility": _present({"name": text("facility.name"), "address": text("facility.address"),
                              "province_code": text("facility.province_code"),
                              "regency_code": text("facility.regency_code"),
                              "estate_permit_number": text("facility.estate_permit_number").upper() or None}),
        "kbli": [code.strip() for code in text("kbli").split(",") if code.strip()],
        "sector_class": text("sector_class") or None,
        "export_oriented": exported,
        "workforce": _present({"total": _number(text("workforce.total")), "on_site_per_shift": shifts}),
        "health_protocol_commitment": bool(fields.get("health_protocol_commitment")),
        "contact": _present({"email": text("contact.email") or None, "phone": text("contact.phone") or None}),
    })


# -- the pages ----------------------------------------------------------------------------------------------------


async def _plant_page(request: Request, session: Session, permit_id: uuid.UUID, *, notice: str | None = None,
                      draft_key: str | None = None, reactivation_form: dict[str, str] | None = None,
                      reactivation_refused: Refused | None = None, objection_form: dict[str, str] | None = None,
                      objection_refused: Refused | None = None) -> Response:
    """The plant's page; after a refused request or objection, with the refusal beside what was typed."""
    permit, history, letters, schedule, reactivation, objections = await asyncio.gather(
        _call(request, session, "permits", "GET", f"/permits/{permit_id}"),
        _call(request, session, "permits", "GET", f"/permits/{permit_id}/history"),
        _optional(request, session, "permits", "GET", f"/permits/{permit_id}/letters"),
        _optional(request, session, "reports", "GET", f"/schedules/{permit_id}", params={"limit": 52}),
        _optional(request, session, "permits", "GET", f"/permits/{permit_id}/reactivation-requests"),
        _optional(request, session, "permits", "GET", f"/permits/{permit_id}/objections"))
    periods = (schedule or {}).get("periods", [])
    requests = (reactivation or {}).get("requests", [])
    filed = (objections or {}).get("objections", [])
    open_to_objection = (objections or {}).get("open_to_objection") or None
    if open_to_objection and (not open_to_objection.get("open") or any(
            o.get("sanction", {}).get("at") == open_to_objection.get("sanctioned_at") for o in filed)):
        open_to_objection = None  # its time has passed, or the company has objected to this sanction already
    refused = reactivation_refused or objection_refused
    return render(request, "co_plant.html",
                  status=(refused.status if refused.status < 500 else 422) if refused else 200,
                  permit=permit, history=history.get("transitions", []),
                  letters=[_with_short(letter) for letter in (letters or {}).get("letters", [])],
                  schedule=schedule, periods=list(reversed(periods))[:PERIODS_SHOWN],
                  next_period=_next_period(periods), reportable=_reportable(periods),
                  warnings=[p for p in periods if p.get("warned")],
                  notice=notice, draft_key=draft_key,
                  letter_kind=_letter_kind, action_name=_action_name,
                  requests=requests, conditions=(reactivation or {}).get("conditions", []),
                  pending_request=any(r.get("status") == "pending" for r in requests),
                  objections=filed, open_to_objection=open_to_objection,
                  reactivation_form=reactivation_form or {"corrective_action": ""},
                  reactivation_errors=worded_errors(request, reactivation_refused),
                  reactivation_problem=worded_problem(request, reactivation_refused),
                  objection_form=objection_form or {"statement": ""},
                  objection_errors=worded_errors(request, objection_refused),
                  objection_problem=worded_problem(request, objection_refused),
                  condition_names=CONDITION_NAMES, request_status_names=REQUEST_STATUS_NAMES,
                  outcome_names=OBJECTION_OUTCOME_NAMES, sanction_names=SANCTION_NAMES,
                  corrective_min=CORRECTIVE_ACTION_MIN)





def _report_page(request: Request, permit: dict[str, Any], schedule: dict[str, Any], choices: list[dict[str, Any]],
                 values: dict[str, str], errors: dict[str, str], problem: str | None, status: int = 200) -> Response:
    period_id = values.get("period_id", "")
    return render(request, "co_report.html", status=status, permit=permit, schedule=schedule, choices=choices,
                  values=values, errors=errors, problem=problem if problem and not errors else (
                      N_("Some answers need correcting: see the messages beside them.") if errors else None),
                  shifts=SHIFTS, protocol_items=PROTOCOL_ITEMS, transport_modes=TRANSPORT_MODES,
                  draft_key=_draft_key(permit["permit_id"], period_id) if _uuid(period_id) else None)


def _apply_page(request: Request, values: dict[str, str], errors: dict[str, str], problem: str | None,
                status: int = 200) -> Response:
    return render(request, "co_apply.html", status=status, values=values, errors=errors,
                  problem=problem if problem and not errors else (
                      N_("Some answers need correcting: see the messages beside them.") if errors else None),
                  patterns={"nib": NIB_INPUT, "npwp": NPWP_INPUT, "kbli": KBLI_INPUT, "shifts": SHIFTS_INPUT,
                            "estate": PERMIT_NUMBER_INPUT},
                  sectors=SECTOR_CLASS_NAMES, provinces=_PROVINCES, regencies=_REGENCIES)


def _draft_key(permit_id: uuid.UUID | str, period_id: str) -> str:
    return f"iomki-report-draft:{permit_id}:{period_id}"


def _uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _with_short(letter: dict[str, Any]) -> dict[str, Any]:
    return letter | {"short": str(letter.get("download", "")).rsplit("/", 1)[-1]}


def _letter_kind(kind: str) -> str:
    return LETTER_KIND_NAMES.get(kind, kind)


def _action_name(action: str) -> str:
    return ACTION_NAMES.get(action, action)
