"""HTTP routes of the supervision service: parse, check access, call a handler, map domain errors to problems."""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.supervision.domain import (
    COMPLAINT_REF_PATTERN, COMPLAINT_TEXT_MAX, COMPLAINT_TEXT_MIN, RISK_INPUTS, TEAM_MAX, ComplaintStatus,
    IllegalTransition, Inspector, Invalid, NotFound, TooManyPhotos, days_between, has_control_characters,
)
from services.supervision.handlers import NewComplaint, SupervisionHandlers
from services.supervision.photos import PHOTO_MAX_BYTES, InvalidPhoto, clean_photo
from shared import regions
from shared.contract import (
    PERMIT_NUMBER_PATTERN, PHONE_MAX_LENGTH, ComplaintCategory, EmailAddress, FindingResult, InspectionBody,
    ProtocolItem, SanctionAction, SanctionGround,
)
from shared.web.access import Access, AuthenticatedFirst, Policy, Role, Rule, Scope
from shared.web.cursors import After, cursor, position
from shared.web.http import Problem, ProblemTable
from shared.web.rate_limit import ClientRates, client_address, client_key

OP, TF, RO = Role.OPERATOR, Role.TASK_FORCE, Role.REGIONAL_OFFICE
STAFF = {OP: Scope.ALL, RO: Scope.REGION, TF: Scope.REGION}

# Who may do what, in one screen. The ministry's operators see the country; a regional industry or manpower office and
# the task force work in their region. Only a regional office asks for a sanction (the ministry decides it, in the
# permits service). Companies, estates and agencies have no part here: a complaint is filed without a login.
POLICY = Policy({
    "read_worklist": Rule(STAFF, "read the risk-ranked inspection worklist"),
    "plan_inspection": Rule(STAFF, "plan an inspection of a plant"),
    "record_inspection": Rule(STAFF, "record an inspection's findings and photos"),
    "read_inspections": Rule(STAFF, "read inspections and their photos"),
    "read_complaints": Rule(STAFF, "read the public's complaints"),
    "handle_complaints": Rule({OP: Scope.ALL, RO: Scope.REGION}, "match a complaint to a plant or move its status"),
    "request_sanction": Rule({RO: Scope.REGION}, "ask the ministry to freeze or revoke a permit"),
    "read_sanction_requests": Rule(STAFF, "read sanction requests"),
})

# The roles that see a complaint's filer's contact: those who may answer the filer.
SEES_CONTACT = frozenset({OP, RO})

PROBLEMS: ProblemTable = {
    NotFound: lambda exc: Problem(404, "Not found", str(exc)),
    Invalid: lambda exc: Problem(422, "Invalid request", str(exc),
                                 errors=[{"field": exc.field, "message": exc.message}]),
    IllegalTransition: lambda exc: Problem(409, "Illegal transition", str(exc), current_status=exc.current),
    TooManyPhotos: lambda exc: Problem(409, "Conflict", str(exc)),
}


def _plain(text: str) -> str:
    if has_control_characters(text):
        raise ValueError("must not contain control characters")
    return text


def _prose(text: str) -> str:
    if has_control_characters(text, newline_allowed=True):
        raise ValueError("must not contain control characters other than line breaks")
    return text


PlainText = Annotated[str, AfterValidator(_plain)]
Prose = Annotated[str, AfterValidator(_prose)]
ProvinceQuery = Annotated[str | None, Query(pattern=regions.PROVINCE_PATTERN)]
RegencyQuery = Annotated[str | None, Query(pattern=regions.REGENCY_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[uuid.UUID | None, Query(description="Cursor: the `next` of the previous page")]


# -- request bodies ---------------------------------------------------------------------------------------


class Member(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[PlainText, StringConstraints(min_length=1, max_length=100)]
    body: InspectionBody


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    permit_id: uuid.UUID
    planned_on: date
    team: list[Member] = Field(min_length=1, max_length=TEAM_MAX)
    purpose: Annotated[Prose, StringConstraints(max_length=1000)] = ""
    complaint_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)


class RecordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inspected_on: date
    # Keys are protocol items (others: 422); an item left out was not checked.
    findings: dict[ProtocolItem, FindingResult] = Field(default_factory=dict, max_length=len(ProtocolItem))
    notes: Annotated[Prose, StringConstraints(max_length=4000)] = ""


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailAddress | None = None
    phone: Annotated[str, StringConstraints(min_length=6, max_length=PHONE_MAX_LENGTH,
                                            pattern=r"^\+?[0-9][0-9 -]{4,38}[0-9]$")] | None = None


class ComplaintIn(BaseModel):
    """A permit number, or an address and its regency; the filer's contact is optional and never shown to the
    public or put on a topic."""

    model_config = ConfigDict(extra="forbid")
    permit_number: Annotated[str, StringConstraints(pattern=PERMIT_NUMBER_PATTERN)] | None = None
    address: Annotated[PlainText, StringConstraints(min_length=1, max_length=300)] | None = None
    regency_code: Annotated[str, StringConstraints(pattern=regions.REGENCY_PATTERN)] | None = None
    category: ComplaintCategory
    text: Annotated[Prose, StringConstraints(min_length=COMPLAINT_TEXT_MIN, max_length=COMPLAINT_TEXT_MAX)]
    contact: ContactIn | None = None

    @model_validator(mode="after")
    def _located(self) -> ComplaintIn:
        if self.permit_number is None and (self.address is None or self.regency_code is None):
            raise ValueError("give the plant's permit number, or its address and regency_code")
        return self


class MatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    permit_number: Annotated[str, StringConstraints(pattern=PERMIT_NUMBER_PATTERN)]


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["under_review", "closed_unfounded", "closed_resolved"]
    note: Annotated[Prose, StringConstraints(max_length=1000)] = ""


class SanctionRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    permit_id: uuid.UUID
    action: SanctionAction
    ground: SanctionGround
    reason: Annotated[Prose, StringConstraints(min_length=1, max_length=1000)]
    inspection_id: uuid.UUID | None = None


# -- answers --------------------------------------------------------------------------------------------------


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _inspection(row: dict[str, Any], *, whole: bool = True) -> dict[str, Any]:
    """`whole`: one inspection, with its team, findings, notes, complaints and photos; a list shows less."""
    answer = {
        "inspection_id": str(row["inspection_id"]), "reference": row["reference"],
        "facility_id": str(row["facility_id"]), "permit_id": str(row["permit_id"]),
        "province_code": row["province_code"], "regency_code": row["regency_code"], "status": row["status"],
        "planned_on": _iso(row["planned_on"]), "inspected_on": _iso(row["inspected_on"]),
        "violations": row["violations"],
        "contradicted_report_id": str(row["contradicted_report_id"]) if row["contradicted_report_id"] else None,
    }
    if whole:
        answer |= {"team": row["team"], "purpose": row["purpose"], "findings": row["findings"], "notes": row["notes"],
                   "complaint_ids": [str(c) for c in row["complaint_ids"]],
                   "photo_ids": [str(p) for p in row["photo_ids"]]}
    return answer


def _complaint(row: dict[str, Any], access: Access) -> dict[str, Any]:
    answer = {
        "complaint_id": str(row["complaint_id"]), "status": row["status"], "category": row["category"],
        "text": row["text"], "permit_number_given": row["permit_number_given"], "address": row["address"],
        "province_code": row["province_code"], "regency_code": row["regency_code"],
        "facility_id": str(row["facility_id"]) if row["facility_id"] else None,
        "permit_id": str(row["permit_id"]) if row["permit_id"] else None,
        "filed_at": _iso(row["filed_at"]), "updated_at": _iso(row["updated_at"]), "note": row["note"],
    }
    if access.principal.role in SEES_CONTACT:
        answer["contact"] = {"email": row["contact_email"], "phone": row["contact_phone"]}
    return answer


def _request(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "request_id": str(row["request_id"]), "facility_id": str(row["facility_id"]),
        "permit_id": str(row["permit_id"]), "province_code": row["province_code"], "regency_code": row["regency_code"],
        "action": row["action"], "ground": row["ground"], "reason": row["reason"],
        "office_region": row["office_region"],
        "inspection_id": str(row["inspection_id"]) if row["inspection_id"] else None,
        "requested_at": _iso(row["requested_at"]), "status": row["status"],
        "decision_reason": row["decision_reason"], "decided_at": _iso(row["decided_at"]),
    }


def _worklist_row(row: dict[str, Any], today: date) -> dict[str, Any]:
    return {
        "facility_id": str(row["facility_id"]), "permit_id": str(row["permit_id"]),
        "permit_number": row["permit_number"], "company_name": row["company_name"],
        "regency_code": row["regency_code"], "status": row["status"], "score": round(row["score"], 2),
        "parts": {name: row[name] for name in RISK_INPUTS}
        | {"days_since_inspection": days_between(row["since_on"], today)},
        "last_inspected_on": _iso(row["last_inspected_on"]), "open_complaints": row["open_complaints"],
    }


# -- worklist cursor: the last row's (rank_key, facility_id), opaque to clients ---------------------------------


def _rank_and_facility(parts: list[str]) -> tuple[float, uuid.UUID]:
    rank, facility = parts
    key = float(rank)
    if not math.isfinite(key):
        raise ValueError(rank)
    return key, uuid.UUID(facility)


# -- the complaint limit ---------------------------------------------------------------------------------------


class ComplaintRate:
    """Filing complaints per client address, on top of the public paths' own limit: a burst from one address cannot
    bury an office's queue, nor take the service's time from the others."""

    def __init__(self, per_hour: int, address_header: str | None) -> None:
        self.rates = ClientRates(per_hour, period=3600.0)
        self.address_header = address_header.lower().encode("latin-1") if address_header else None

    async def __call__(self, request: Request) -> None:
        wait = self.rates.wait(client_key(client_address(request.scope, self.address_header)))
        if wait:
            raise Problem(429, "Too many requests",
                          "Terlalu banyak pengaduan dari alamat ini; coba lagi setelah waktu pada Retry-After. "
                          "Too many complaints from this address; try again after the time in Retry-After.",
                          headers={"Retry-After": str(max(1, math.ceil(wait)))})


# -- routes ------------------------------------------------------------------------------------------------------


def router(handlers: SupervisionHandlers, complaint_rate: ComplaintRate) -> APIRouter:
    routes = APIRouter(route_class=AuthenticatedFirst, tags=["supervision"])

    @routes.get("/worklist")
    async def worklist(access: Annotated[Access, POLICY.guard("read_worklist")], province: ProvinceQuery = None,
                       regency: RegencyQuery = None, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                       after: After = None) -> dict:
        province, regency = access.asked_region(province, regency)
        rows = await handlers.worklist(province=province, regency=regency, after=position(after, _rank_and_facility),
                                       limit=limit)
        today = handlers.worklist_day()
        return {"items": [_worklist_row(row, today) for row in rows],
                "next": cursor(rows[-1]["rank_key"], rows[-1]["facility_id"]) if len(rows) == limit else None}

    # -- inspections

    @routes.post("/inspections", status_code=201)
    async def plan(body: PlanIn, access: Annotated[Access, POLICY.guard("plan_inspection")]) -> dict:
        row = await handlers.plan_inspection(
            permit_id=body.permit_id, planned_on=body.planned_on,
            team=[Inspector(member.name, member.body) for member in body.team], purpose=body.purpose,
            complaint_ids=body.complaint_ids, access=access)
        return {"inspection_id": str(row["inspection_id"]), "reference": row["reference"], "status": "planned"}

    @routes.post("/inspections/{inspection_id}/record")
    async def record(inspection_id: uuid.UUID, body: RecordIn,
                     access: Annotated[Access, POLICY.guard("record_inspection")]) -> dict:
        row = await handlers.record_inspection(inspection_id, inspected_on=body.inspected_on, findings=body.findings,
                                               notes=body.notes, access=access)
        answer = _inspection(row)
        if row["contradicted_report_id"]:
            answer["contradiction"] = ("Temuan ini bertentangan dengan laporan yang dinyatakan benar oleh perusahaan. "
                                       "A finding contradicts the report the company declared true.")
        return answer

    @routes.get("/inspections/{inspection_id}")
    async def read_inspection(inspection_id: uuid.UUID,
                              access: Annotated[Access, POLICY.guard("read_inspections")]) -> dict:
        return _inspection(await handlers.inspection(inspection_id, access))

    @routes.get("/inspections")
    async def list_inspections(access: Annotated[Access, POLICY.guard("read_inspections")],
                               province: ProvinceQuery = None, regency: RegencyQuery = None,
                               status: Literal["planned", "recorded"] | None = None, limit: Limit = 50,
                               after: Cursor = None) -> dict:
        province, regency = access.asked_region(province, regency)
        rows = await handlers.inspections(province=province, regency=regency, status=status, after=after,
                                          limit=limit)
        items = [_inspection(row, whole=False) for row in rows]
        return {"items": items, "next": items[-1]["inspection_id"] if len(items) == limit else None}

    @routes.post("/inspections/{inspection_id}/photos", status_code=201,
                 openapi_extra={"requestBody": {"required": True, "content": {
                     "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                     "image/png": {"schema": {"type": "string", "format": "binary"}}}}})
    async def add_photo(inspection_id: uuid.UUID, request: Request,
                        access: Annotated[Access, POLICY.guard("record_inspection")]) -> dict:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > PHOTO_MAX_BYTES):
            raise Problem(413, "Payload too large", f"A photo may take at most {PHOTO_MAX_BYTES:,} bytes.")
        await handlers.inspection_before_upload(inspection_id, access)
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > PHOTO_MAX_BYTES:
                raise Problem(413, "Payload too large", f"A photo may take at most {PHOTO_MAX_BYTES:,} bytes.")
        try:
            photo = await asyncio.to_thread(clean_photo, bytes(data), content_type)  # decoding takes the CPU a while
        except InvalidPhoto as exc:
            raise Problem(422, "Invalid request", str(exc), errors=[{"field": "body", "message": str(exc)}]) from None
        photo_id = await handlers.add_photo(inspection_id, photo, access)
        return {"photo_id": str(photo_id), "content_type": photo.content_type, "width": photo.width,
                "height": photo.height}

    @routes.get("/inspections/{inspection_id}/photos/{photo_id}")
    async def read_photo(inspection_id: uuid.UUID, photo_id: uuid.UUID,
                         access: Annotated[Access, POLICY.guard("read_inspections")]) -> Response:
        content_type, data = await handlers.photo(inspection_id, photo_id, access)
        return Response(data, media_type=content_type, headers={"X-Content-Type-Options": "nosniff",
                                                                "Cache-Control": "private, no-store"})

    # -- complaints: the public's side, without a login

    @routes.post("/public/complaints", status_code=201, dependencies=[Depends(complaint_rate)])
    async def file_complaint(body: ComplaintIn) -> dict:
        reference, status = await handlers.file_complaint(NewComplaint(
            category=body.category, text=body.text, permit_number=body.permit_number, address=body.address,
            regency_code=body.regency_code, email=body.contact.email if body.contact else None,
            phone=body.contact.phone if body.contact else None))
        return {"reference": reference, "status": _public_status(status.value)}

    @routes.get("/public/complaints/{reference}")
    async def complaint_status(reference: Annotated[str, Path(pattern=COMPLAINT_REF_PATTERN)]) -> dict:
        found = await handlers.complaint_status(reference)
        return {"reference": reference, "status": _public_status(found["status"]),
                "filed_at": _iso(found["filed_at"]), "updated_at": _iso(found["updated_at"])}

    # -- complaints: the offices' side

    @routes.get("/complaints")
    async def list_complaints(access: Annotated[Access, POLICY.guard("read_complaints")],
                              province: ProvinceQuery = None, regency: RegencyQuery = None,
                              status: ComplaintStatus | None = None, limit: Limit = 50, after: Cursor = None) -> dict:
        province, regency = access.asked_region(province, regency)
        rows = await handlers.complaints(province=province, regency=regency,
                                         status=status.value if status else None, after=after, limit=limit)
        items = [_complaint(row, access) for row in rows]
        return {"items": items, "next": items[-1]["complaint_id"] if len(items) == limit else None}

    @routes.get("/complaints/{complaint_id}")
    async def read_complaint(complaint_id: uuid.UUID,
                             access: Annotated[Access, POLICY.guard("read_complaints")]) -> dict:
        return _complaint(await handlers.complaint(complaint_id, access), access)

    @routes.post("/complaints/{complaint_id}/match")
    async def match(complaint_id: uuid.UUID, body: MatchIn,
                    access: Annotated[Access, POLICY.guard("handle_complaints")]) -> dict:
        return _complaint(await handlers.match_complaint(complaint_id, body.permit_number, access), access)

    @routes.post("/complaints/{complaint_id}/status")
    async def move(complaint_id: uuid.UUID, body: StatusIn,
                   access: Annotated[Access, POLICY.guard("handle_complaints")]) -> dict:
        return _complaint(await handlers.move_complaint(complaint_id, ComplaintStatus(body.status), body.note,
                                                        access), access)

    # -- sanction requests

    @routes.post("/sanction-requests", status_code=201)
    async def request_sanction(body: SanctionRequestIn,
                               access: Annotated[Access, POLICY.guard("request_sanction")]) -> dict:
        row = await handlers.request_sanction(permit_id=body.permit_id, action=body.action, ground=body.ground,
                                              reason=body.reason, inspection_id=body.inspection_id, access=access)
        return _request(row)

    @routes.get("/sanction-requests/{request_id}")
    async def read_request(request_id: uuid.UUID,
                           access: Annotated[Access, POLICY.guard("read_sanction_requests")]) -> dict:
        return _request(await handlers.sanction_request(request_id, access))

    @routes.get("/sanction-requests")
    async def list_requests(access: Annotated[Access, POLICY.guard("read_sanction_requests")],
                            province: ProvinceQuery = None, regency: RegencyQuery = None,
                            status: Literal["pending", "approved", "declined"] | None = None, limit: Limit = 50,
                            after: Cursor = None) -> dict:
        province, regency = access.asked_region(province, regency)
        rows = await handlers.sanction_requests(province=province, regency=regency, status=status, after=after,
                                                limit=limit)
        items = [_request(row) for row in rows]
        return {"items": items, "next": items[-1]["request_id"] if len(items) == limit else None}

    return routes


def _public_status(status: str) -> str:
    """What the filer is told: an unmatched complaint is received too (whether its number exists is not said)."""
    return ComplaintStatus.RECEIVED.value if status == ComplaintStatus.UNMATCHED else status
