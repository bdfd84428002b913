"""The ministry operator's pages: what waits for a decision, the search across plants, a permit's whole file, and
the decisions on it (issue or reject an application, freeze an issued permit on a stated ground).

Every figure comes from the services' public APIs with the operator's own token; a section of the file whose
service refuses or cannot be reached says so, and the rest of the file is still shown.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.console.backend import Refused, ServiceDown
from services.console.sessions import Session
from services.console.vocabulary import (
    GROUND_NAMES,
    GROUNDS,
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
from shared.contract import NIB_PATTERN, PERMIT_NUMBER_PATTERN
from shared.web.access import Role

OPERATOR = (Role.OPERATOR,)

# The worklists' queues as the page names them, and the API's kinds.
QUEUES = {"applications": "application", "reactivation": "reactivation_request", "objections": "objection"}
QUEUE_NAMES = {
    "application": N_("Applications"),
    "reactivation_request": N_("Reactivation requests"),
    "objection": N_("Objections"),
    "class_review": N_("Sector class reviews"),
    "sanction_request": N_("Sanction requests"),
}
PAGE = 50
REPORTS_PAGE = 20  # a permit's reports on its file, the latest first

STATUSES = ("SUBMITTED", "ISSUED", "REJECTED", "FROZEN", "REVOKED")
NOTICES = {
    "issued": N_("The permit has been issued."),
    "rejected": N_("The application has been rejected."),
    "frozen": N_("The permit has been frozen."),
    "reactivated": N_("The reactivation request has been approved: the permit is reactivated."),
    "not_reactivated": N_("The reactivation request has been rejected: the permit stays frozen."),
    "objection_decided": N_("The decision on the objection has been recorded."),
}
# A reactivation request's decisions, and an objection's outcomes (`partly` only against a revocation).
REACTIVATION_DECISIONS = {
    "approve": N_("Approve: reactivate the permit"),
    "reject": N_("Reject: the permit stays frozen"),
}
OBJECTION_OUTCOMES = {
    "upheld": N_("Uphold the sanction: it stands"),
    "overturned": N_("Overturn the sanction: the permit returns to its status before it"),
    "partly": N_("Grant in part: the revocation becomes a freeze"),
}
_ITEM_PAGE = 100  # a permit's reactivation requests, newest first: the one to decide is among them

_NIB = re.compile(NIB_PATTERN)
_NUMBER = re.compile(PERMIT_NUMBER_PATTERN)
_CURSOR = re.compile(r"^[A-Za-z0-9_=-]{1,64}$")
COMPANY_MIN = 3  # GET /permits matches the start of a name from this many characters


def router() -> APIRouter:
    routes = APIRouter()

    @routes.get("/worklists")
    async def worklists(request: Request,
                        queue: Annotated[str, Query(max_length=20)] = "",
                        region: Annotated[str, Query(max_length=5)] = "",
                        after: Annotated[str, Query(max_length=200)] = "") -> Response:
        """Each queue's first page, or one queue's next page (`after`: the cursor its previous page gave)."""
        session = signed_in(request, OPERATOR)
        queue = queue if queue in QUEUES else ""
        kinds = [QUEUES[queue]] if queue else list(QUEUES.values())
        after = after if queue else ""  # a cursor continues one queue
        region = region.strip()
        problem = None
        if region and not regions.is_region(region):
            problem, region = N_("A region is a province code (33) or a regency code (33.74)."), region
        answer = None if problem else await console_of(request).backend.call(
            session, "permits", "GET", "/worklists",
            params={"kind": kinds, "region": region or None, "limit": PAGE, "after": after or None})
        return render(request, "op_worklists.html", answer=answer, queue=queue, region=region, continued=bool(after),
                      problem=problem, queues=QUEUES, queue_of={kind: name for name, kind in QUEUES.items()},
                      queue_names=QUEUE_NAMES)

    @routes.get("/search")
    async def search(request: Request,
                     number: Annotated[str, Query(max_length=40)] = "",
                     nib: Annotated[str, Query(max_length=20)] = "",
                     company: Annotated[str, Query(max_length=200)] = "",
                     region: Annotated[str, Query(max_length=10)] = "",
                     status: Annotated[str, Query(max_length=12)] = "",
                     sector: Annotated[str, Query(max_length=16)] = "",
                     next: Annotated[str, Query(max_length=64)] = "") -> Response:  # noqa: A002 -- the cursor's name
        session = signed_in(request, OPERATOR)
        values = {"number": number.strip().upper(), "nib": nib.strip(), "company": company.strip(),
                  "region": region.strip(), "status": status, "sector": sector}
        errors: dict[str, str] = {}
        if values["number"] and not _NUMBER.fullmatch(values["number"]):
            errors["number"] = N_("A permit number looks like IOMKI-2021-000123.")
        if values["nib"] and not _NIB.fullmatch(values["nib"]):
            errors["nib"] = N_("A NIB is 13 digits.")
        if values["company"] and len(" ".join(values["company"].split())) < COMPANY_MIN:
            errors["company"] = N_("Give at least 3 characters of the company's name.")
        if values["region"] and not regions.is_region(values["region"]):
            errors["region"] = N_("A region is a province code (33) or a regency code (33.74).")
        if status and status not in STATUSES:
            errors["status"] = N_("Choose a status from the list.")
        if sector and sector not in SECTOR_CLASS_NAMES:
            errors["sector"] = N_("Choose a sector class from the list.")
        if next and not _CURSOR.fullmatch(next):
            next = ""
        asked = any(values.values())
        results: list[dict[str, Any]] | None = None
        cursor = None
        problem = None
        if asked and not errors:
            try:
                results, cursor = await _search(request, session, values, next or None)
            except Refused as refused:
                if not refused.errors:
                    raise
                errors = {_search_field(key): message for key, message in worded_errors(request, refused).items()}
                problem = worded_problem(request, refused, with_fields=True)
        return render(request, "op_search.html", status=422 if errors else 200, values=values, errors=errors,
                      problem=problem, results=results, cursor=cursor, statuses=STATUSES, sectors=SECTOR_CLASS_NAMES,
                      continued=bool(next))

    @routes.get("/permits/{permit_id}")
    async def permit_file(request: Request, permit_id: uuid.UUID,
                          done: Annotated[str, Query(max_length=20)] = "",
                          reports_after: Annotated[str, Query(max_length=200)] = "") -> Response:
        """The permit's file; `reports_after` pages its reports (the cursor the previous page gave)."""
        session = signed_in(request, OPERATOR)
        return await _file(request, session, permit_id, notice=NOTICES.get(done), reports_after=reports_after)

    @routes.post("/permits/{permit_id}/decision")
    async def decide(request: Request, permit_id: uuid.UUID) -> Response:
        session = signed_in(request, OPERATOR)
        fields = await checked_form(request, session)
        decision = fields.get("decision", "")
        reason = fields.get("reason", "").strip()
        form = {"decision": decision, "reason": fields.get("reason", "")}
        try:
            answer = await console_of(request).backend.call(
                session, "permits", "POST", f"/permits/{permit_id}/decision",
                json={"decision": decision, "reason": reason})
        except Refused as refused:
            return await _file(request, session, permit_id, status=refused.status if refused.status < 500 else 422,
                               decision_form=form, decision_refused=refused)
        return redirect(f"/permits/{permit_id}?done={'issued' if answer.get('status') == 'ISSUED' else 'rejected'}")

    @routes.post("/permits/{permit_id}/freeze")
    async def freeze(request: Request, permit_id: uuid.UUID) -> Response:
        session = signed_in(request, OPERATOR)
        fields = await checked_form(request, session)
        form = {key: fields.get(key, "") for key in (
            "ground.code", "ground.evidence.report_id", "ground.evidence.closure_id", "ground.evidence.finding",
            "reason")}
        evidence = {name: form[f"ground.evidence.{name}"].strip() or None
                    for name in ("report_id", "closure_id", "finding")}
        body = {"ground": {"code": form["ground.code"], "evidence": evidence}, "reason": form["reason"].strip()}
        try:
            await console_of(request).backend.call(session, "permits", "POST", f"/permits/{permit_id}/freeze",
                                                   json=body)
        except Refused as refused:
            return await _file(request, session, permit_id, status=refused.status if refused.status < 500 else 422,
                               freeze_form=form, freeze_refused=refused)
        return redirect(f"/permits/{permit_id}?done=frozen")

    @routes.get("/permits/{permit_id}/reactivation-requests/{request_id}")
    async def reactivation_request(request: Request, permit_id: uuid.UUID, request_id: uuid.UUID) -> Response:
        session = signed_in(request, OPERATOR)
        return await _reactivation_page(request, session, permit_id, request_id, {"decision": "", "reason": ""})

    @routes.post("/permits/{permit_id}/reactivation-requests/{request_id}/decision")
    async def decide_reactivation(request: Request, permit_id: uuid.UUID, request_id: uuid.UUID) -> Response:
        session = signed_in(request, OPERATOR)
        fields = await checked_form(request, session)
        form = {"decision": fields.get("decision", ""), "reason": fields.get("reason", "")}
        try:
            answer = await console_of(request).backend.call(
                session, "permits", "POST", f"/reactivation-requests/{request_id}/decision",
                json={"decision": form["decision"], "reason": form["reason"].strip()})
        except Refused as refused:
            return await _reactivation_page(request, session, permit_id, request_id, form, refused)
        done = "reactivated" if answer.get("status") == "approved" else "not_reactivated"
        return redirect(f"/permits/{permit_id}?done={done}")

    @routes.get("/permits/{permit_id}/objections/{objection_id}")
    async def objection(request: Request, permit_id: uuid.UUID, objection_id: uuid.UUID) -> Response:
        session = signed_in(request, OPERATOR)
        return await _objection_page(request, session, permit_id, objection_id, {"outcome": "", "reason": ""})

    @routes.post("/permits/{permit_id}/objections/{objection_id}/decision")
    async def decide_objection(request: Request, permit_id: uuid.UUID, objection_id: uuid.UUID) -> Response:
        session = signed_in(request, OPERATOR)
        fields = await checked_form(request, session)
        form = {"outcome": fields.get("outcome", ""), "reason": fields.get("reason", "")}
        try:
            await console_of(request).backend.call(
                session, "permits", "POST", f"/objections/{objection_id}/decision",
                json={"outcome": form["outcome"], "reason": form["reason"].strip()})
        except Refused as refused:
            return await _objection_page(request, session, permit_id, objection_id, form, refused)
        return redirect(f"/permits/{permit_id}?done=objection_decided")

    return routes


async def _case(request: Request, session: Session, permit_id: uuid.UUID,
                path: str) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """The permit, the service's answer about its requests or objections, and its history."""
    backend = console_of(request).backend
    try:
        permit = await backend.call(session, "permits", "GET", f"/permits/{permit_id}")
    except Refused as refused:
        if refused.status == 404:
            raise Refused(404, N_("No permit has this id.")) from None
        raise
    limit = {"limit": _ITEM_PAGE} if path.endswith("/reactivation-requests") else None
    answer = await backend.call(session, "permits", "GET", path, params=limit)
    history, _ = await _section(request, session, "permits", f"/permits/{permit_id}/history")
    return permit, answer or {}, list((history or {}).get("transitions", []))


def _sanction_reason(history: list[dict[str, Any]], to_status: str) -> dict[str, Any] | None:
    """The latest change into the sanction's status: its reason and ground, as the letter quoted them."""
    found = [t for t in history if t.get("to_status") == to_status]
    return found[-1] if found else None


async def _reactivation_page(request: Request, session: Session, permit_id: uuid.UUID, request_id: uuid.UUID,
                             form: dict[str, str], refused: Refused | None = None) -> Response:
    permit, answer, history = await _case(request, session, permit_id,
                                          f"/permits/{permit_id}/reactivation-requests")
    found = next((r for r in answer.get("requests", []) if r.get("request_id") == str(request_id)), None)
    if found is None:
        return render(request, "message.html", status=404, heading=N_("Not found"),
                      message=N_("This permit has no reactivation request with this id."))
    return render(request, "op_reactivation.html", status=_status(refused), permit=permit, item=found,
                  region=permit.get("regency_code"), freeze=_sanction_reason(history, "FROZEN"),
                  ground_names=GROUND_NAMES, decisions=REACTIVATION_DECISIONS, status_names=REQUEST_STATUS_NAMES,
                  form=form, errors=worded_errors(request, refused), problem=worded_problem(request, refused))


async def _objection_page(request: Request, session: Session, permit_id: uuid.UUID, objection_id: uuid.UUID,
                          form: dict[str, str], refused: Refused | None = None) -> Response:
    permit, answer, history = await _case(request, session, permit_id, f"/permits/{permit_id}/objections")
    found = next((o for o in answer.get("objections", []) if o.get("objection_id") == str(objection_id)), None)
    if found is None:
        return render(request, "message.html", status=404, heading=N_("Not found"),
                      message=N_("This permit has no objection with this id."))
    action = found.get("sanction", {}).get("action")
    outcomes = {key: name for key, name in OBJECTION_OUTCOMES.items() if key != "partly" or action == "revoke"}
    return render(request, "op_objection.html", status=_status(refused), permit=permit, item=found,
                  region=permit.get("regency_code"),
                  sanction=_sanction_reason(history, "REVOKED" if action == "revoke" else "FROZEN"),
                  ground_names=GROUND_NAMES, outcomes=outcomes, outcome_names=OBJECTION_OUTCOME_NAMES,
                  sanction_names=SANCTION_NAMES, form=form, errors=worded_errors(request, refused),
                  problem=worded_problem(request, refused))


def _status(refused: Refused | None) -> int:
    return 200 if refused is None else refused.status if refused.status < 500 else 422


def _search_field(key: str) -> str:
    """The form's field a refusal of GET /permits names: the form asks for a province or regency as one region."""
    return {"province": "region", "regency": "region"}.get(key, key)


async def _search(request: Request, session: Session, values: dict[str, str],
                  after: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of matching permits and the cursor of the next: every filter is the service's own."""
    region = values["region"]
    answer = await console_of(request).backend.call(session, "permits", "GET", "/permits", params={
        "number": values["number"] or None, "company": values["company"] or None,
        "status": values["status"] or None, "nib": values["nib"] or None, "sector": values["sector"] or None,
        "province": region if regions.is_province(region) else None,
        "regency": region if regions.is_regency(region) else None,
        "cursor": after, "limit": PAGE})
    return list(answer.get("items", [])), answer.get("next_cursor")


async def _section(request: Request, session: Session, service: str, path: str,
                   params: dict[str, Any] | None = None) -> tuple[Any, str | None]:
    """A section of the file: its answer, or why it is missing (refused, or its service down)."""
    try:
        return await console_of(request).backend.call(session, service, "GET", path, params=params), None
    except ServiceDown:
        return None, N_("This part of the file cannot be reached at the moment.")
    except Refused as refused:
        if refused.status == 404:
            return None, N_("Nothing is recorded here for this permit.")
        return None, N_("The service refused to show this part of the file.")


async def _file(request: Request, session: Session, permit_id: uuid.UUID, *, status: int = 200,
                notice: str | None = None, reports_after: str = "", decision_form: dict[str, str] | None = None,
                decision_refused: Refused | None = None, freeze_form: dict[str, str] | None = None,
                freeze_refused: Refused | None = None) -> Response:
    try:
        permit = await console_of(request).backend.call(session, "permits", "GET", f"/permits/{permit_id}")
    except Refused as refused:
        if refused.status == 404:
            return render(request, "message.html", status=404, heading=N_("Not found"),
                          message=N_("No permit has this id."))
        raise
    pid = str(permit_id)
    sections = {
        "history": await _section(request, session, "permits", f"/permits/{pid}/history"),
        "letters": await _section(request, session, "permits", f"/permits/{pid}/letters"),
        "objections": await _section(request, session, "permits", f"/permits/{pid}/objections"),
        "reactivation": await _section(request, session, "permits", f"/permits/{pid}/reactivation-requests"),
        "reports": await _section(request, session, "reports", "/reports",
                                  {"permit_id": pid, "limit": REPORTS_PAGE, "after": reports_after or None}),
        "schedule": await _section(request, session, "reports", f"/schedules/{pid}", {"limit": 12}),
        "incidents": await _section(request, session, "incidents", f"/facilities/{permit['facility_id']}/status"),
    }
    return render(request, "op_permit.html", status=status, permit=permit, sections=sections, notice=notice,
                  reports_continued=bool(reports_after),
                  region=permit.get("regency_code"), sectors=SECTOR_CLASS_NAMES,
                  status_names=REQUEST_STATUS_NAMES, outcome_names=OBJECTION_OUTCOME_NAMES,
                  sanction_names=SANCTION_NAMES,
                  grounds=GROUNDS, ground_names=GROUND_NAMES,
                  decision_form=decision_form or {"decision": "", "reason": ""},
                  decision_errors=worded_errors(request, decision_refused),
                  decision_problem=worded_problem(request, decision_refused),
                  freeze_form=freeze_form or {"ground.code": "", "ground.evidence.report_id": "",
                                              "ground.evidence.closure_id": "", "ground.evidence.finding": "",
                                              "reason": ""},
                  freeze_errors=worded_errors(request, freeze_refused),
                  freeze_problem=worded_problem(request, freeze_refused))
