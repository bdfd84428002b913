"""HTTP routes of the permits service: parse, check access, call a handler, map domain errors to problems."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from services.permits.domain import (
    CORRECTIVE_ACTION_MAX_LENGTH, CORRECTIVE_ACTION_MIN_CHARACTERS, NPWP_PATTERN, PERMIT_NUMBER, SECTOR_CLASSES,
    Action, AlreadyObjected, Application, ConditionCheck, CorrectiveActionStated, Decision, IllegalTransition,
    InvalidApplication, InvalidGround, Letter, LetterKind, LetterNotFound, NoCertificate, NothingToObject, Objection,
    ObjectionAlreadyDecided, ObjectionOutcome, ObjectionTooLate, OutcomeNotApplicable, Permit, PermitNotFound,
    PermitStatus, PlantAlreadyPermitted, PlantPermittedMeanwhile, ReactivationRefused, ReactivationRequest,
    ReactivationRequestNotFound, ReapplyTooSoon, RequestAlreadyDecided, RequestForAnotherFreeze, RequestStatus,
    SanctionNoLongerStands, TextMissing, letter_reference,
)
from services.permits.domain import (
    MINISTRY_ZONE, ClassReview, ClassReviewNotFound, ReviewAlreadyDecided, ReviewDecision, ReviewStatus, WorkKind,
)
from services.permits.domain import (
    EstateNotOperating, IllegalTenancyMove, PlantInAnotherEstate, SanctionRequest, SanctionRequestAlreadyDecided,
    SanctionRequestNotFound, SanctionRequestStatus, Tenancy, TenancyDecision, TenancyNotFound, TenancyStatus,
)
from services.permits.handlers import (
    EstateHandlers, ObjectionHandlers, PermitHandlers, PermitObjections, PermitView, SectorHandlers, WorklistHandlers,
)
from services.permits.letters import qr_png
from services.permits.repository import (
    ListedReview, ListedSanctionRequest, ListedTenancy, PermitSearch, ReviewSearch, SanctionRequestSearch,
)
from shared import registry_tokens, regions
from shared.contract import (
    FINDING_REF_MAX_LENGTH, KBLI_PATTERN, NAME_MAX_LENGTH, NIB_PATTERN, PERMIT_NUMBER_PATTERN, PHONE_MAX_LENGTH,
    EmailAddress, GroundCode, GroundEvidence, PermitKind, RequestDecision, SanctionAction, SanctionGround, SectorClass,
)
from shared.web.access import Access, AuthenticatedFirst, Policy, Role, Rule, Scope
from shared.web.cursors import CURSOR_MAX_LENGTH, cursor, moment_and_id, position
from shared.web.http import STORABLE, Problem, ProblemTable, Text

OP, TF, C, A = Role.OPERATOR, Role.TASK_FORCE, Role.COMPANY, Role.AGENCY
# A regional office reads its region and asks for sanctions (on the supervision topic); an estate is a company for its
# own estate permit and reads its confirmed tenants' permits.
RO, E = Role.REGIONAL_OFFICE, Role.ESTATE

# Who may do what, in one screen (DESIGN §4). Agencies read only the public registry, which needs no token.
POLICY = Policy({
    "apply": Rule({OP: Scope.ALL, C: Scope.OWN, E: Scope.OWN}, "apply for a permit"),
    "read": Rule({OP: Scope.ALL, TF: Scope.REGION, RO: Scope.REGION, C: Scope.OWN, E: Scope.TENANTS},
                 "read or search permits and their history (an estate: its own and its confirmed tenants')"),
    "summary": Rule({OP: Scope.ALL, TF: Scope.REGION, RO: Scope.REGION, A: Scope.ALL},
                    "count permits by province and status"),
    "decide": Rule({OP: Scope.ALL}, "issue or reject an application"),
    "freeze": Rule({OP: Scope.ALL}, "freeze (deactivate) an issued permit"),
    "reactivate": Rule({OP: Scope.ALL}, "reactivate a frozen permit"),
    "revoke": Rule({OP: Scope.ALL}, "revoke an issued or frozen permit"),
    "request_reactivation": Rule({C: Scope.OWN, E: Scope.OWN},
                                 "ask for a frozen permit to be reactivated, on conditions"),
    "reactivation_queue": Rule({OP: Scope.ALL, TF: Scope.REGION, RO: Scope.REGION},
                               "read the reactivation requests in review"),
    "decide_reactivation": Rule({OP: Scope.ALL}, "approve or reject a reactivation request"),
    "object": Rule({C: Scope.OWN, E: Scope.OWN}, "object to the freeze or revocation of the company's own permit"),
    "read_objections": Rule({OP: Scope.ALL, TF: Scope.REGION, C: Scope.OWN, E: Scope.OWN},
                            "read a permit's objections"),
    "decide_objection": Rule({OP: Scope.ALL}, "decide an objection: uphold, overturn or partly (a revocation "
                                              "becomes a freeze)"),
    "worklists": Rule({OP: Scope.ALL, TF: Scope.REGION, RO: Scope.REGION},
                      "read what waits for a decision, with its service level (task forces and regional offices: "
                      "their region's, read-only)"),
    # A tenant's letters are the tenant's: its estate does not read them.
    "letters": Rule({OP: Scope.ALL, TF: Scope.REGION, C: Scope.OWN, E: Scope.OWN},
                    "list and download warning and sanction letters, and the certificate of an issued permit"),
    # The table is the ministry's lists, published: anyone with a token reads it.
    "sector_table": Rule({OP: Scope.ALL, TF: Scope.ALL, RO: Scope.ALL, C: Scope.ALL, E: Scope.ALL, A: Scope.ALL},
                         "read the KBLI sector table plants' classes are read from"),
    "class_reviews": Rule({OP: Scope.ALL, TF: Scope.REGION, RO: Scope.REGION, C: Scope.OWN, E: Scope.OWN},
                          "read companies' sector class claims in review (a company: its own)"),
    "decide_class_review": Rule({OP: Scope.ALL}, "accept or reject a company's sector class claim"),
    "tenants": Rule({OP: Scope.ALL, TF: Scope.REGION, RO: Scope.REGION, E: Scope.OWN},
                    "read an industrial estate's tenant plants, by the state of their claims"),
    "decide_tenancy": Rule({OP: Scope.ALL, E: Scope.OWN}, "confirm, decline or release a plant as a tenant of the "
                                                          "estate"),
    "sanction_requests": Rule({OP: Scope.ALL, TF: Scope.REGION, RO: Scope.REGION},
                              "read the regional offices' sanction requests"),
    "decide_sanction_request": Rule({OP: Scope.ALL}, "approve or decline a regional office's sanction request"),
})

# What each refusal of the domain answers, in one table (see `ProblemTable`).
PROBLEMS: ProblemTable = {
    PermitNotFound: lambda exc: Problem(404, "Not found", str(exc)),
    LetterNotFound: lambda exc: Problem(404, "Not found", str(exc)),
    InvalidApplication: lambda exc: Problem(
        422, "Invalid application", "One or more fields are invalid.",
        errors=[{"field": e.field, "message": e.message} for e in exc.errors]),
    PlantAlreadyPermitted: lambda exc: Problem(
        409, "Plant already has a permit",
        f"This plant already has permit {exc.existing.permit_id} ({exc.existing.status.value}).",
        existing_permit_id=str(exc.existing.permit_id), existing_status=exc.existing.status.value),
    ReapplyTooSoon: lambda exc: Problem(
        409, "Too soon to reapply", str(exc), revoked_permit_id=str(exc.revoked.permit_id),
        reapply_from=exc.reapply_from.isoformat()),
    IllegalTransition: lambda exc: Problem(409, "Illegal transition", str(exc), current_status=exc.current.value),
    NoCertificate: lambda exc: Problem(409, "Permit not in force", str(exc), current_status=exc.status.value),
    InvalidGround: lambda exc: Problem(
        422, "Invalid ground", "Dasar sanksi tidak lengkap atau tidak sesuai. The ground is incomplete or does not "
                               "hold.", errors=[{"field": e.field, "message": e.message} for e in exc.errors]),

    ReactivationRefused: lambda exc: Problem(
        422 if exc.about_the_request_only else 409, "Reactivation conditions not met", str(exc),
        unmet=[_condition(check) for check in exc.unmet],
        errors=[{"field": "corrective_action", "message": check.message} for check in exc.unmet
                if check.condition == CorrectiveActionStated.name]),
    ReactivationRequestNotFound: lambda exc: Problem(404, "Not found", str(exc)),
    RequestAlreadyDecided: lambda exc: Problem(409, "Request already decided", str(exc),
                                               request_status=exc.request.status.value),
    RequestForAnotherFreeze: lambda exc: Problem(409, "Request for another freeze", str(exc),
                                                 current_status=exc.permit.status.value),
    NothingToObject: lambda exc: Problem(409, "Nothing to object to", str(exc), current_status=exc.status.value),
    ObjectionTooLate: lambda exc: Problem(409, "Objection too late", str(exc), last_day=exc.last_day.isoformat(),
                                          sanction=exc.sanction.action.value,
                                          sanctioned_at=exc.sanction.at.isoformat()),
    AlreadyObjected: lambda exc: Problem(409, "Already objected", str(exc),
                                         objection_id=str(exc.existing.objection_id)),
    TextMissing: lambda exc: Problem(422, "Invalid request", exc.message,
                                     errors=[{"field": exc.field, "message": exc.message}]),
    ObjectionAlreadyDecided: lambda exc: Problem(
        409, "Objection already decided", str(exc),
        outcome=exc.objection.outcome.value if exc.objection.outcome else None),
    OutcomeNotApplicable: lambda exc: Problem(422, "Invalid request", str(exc),
                                              errors=[{"field": "outcome", "message": str(exc)}]),
    SanctionNoLongerStands: lambda exc: Problem(409, "Sanction no longer stands", str(exc),
                                                current_status=exc.current.value),
    PlantPermittedMeanwhile: lambda exc: Problem(
        409, "Plant has another permit", str(exc), other_permit_id=str(exc.other.permit_id),
        other_status=exc.other.status.value),
    ClassReviewNotFound: lambda exc: Problem(404, "Not found", str(exc)),
    ReviewAlreadyDecided: lambda exc: Problem(409, "Review already decided", str(exc),
                                              review_status=exc.review.status.value),
    TenancyNotFound: lambda exc: Problem(404, "Not found", str(exc)),
    IllegalTenancyMove: lambda exc: Problem(409, "Illegal tenancy move", str(exc),
                                            current_status=exc.tenancy.status.value),
    EstateNotOperating: lambda exc: Problem(409, "Estate permit not in force", str(exc),
                                            current_status=exc.estate.status.value),
    PlantInAnotherEstate: lambda exc: Problem(409, "Plant in another estate", str(exc),
                                              other_estate_permit_id=str(exc.other.estate_permit_id)),
    SanctionRequestNotFound: lambda exc: Problem(404, "Not found", str(exc)),
    SanctionRequestAlreadyDecided: lambda exc: Problem(409, "Request already decided", str(exc),
                                                       request_status=exc.request.status.value),
}


# Shapes and sizes only; what the values mean (NIB, NPWP, region codes, KBLI, shifts) is checked by the domain's
# rules, so that one problem names every invalid field. The schema states those rules too (`_checked`), so that
# generated clients and fuzzers know them; the domain uses the same patterns.
def _checked(**schema: Any) -> dict[str, Any]:
    return {"json_schema_extra": schema}


# Room for a mistyped code, which the domain's rule then names, and no more.
CODE_MAX_LENGTH = 32
# A plant has a handful of KBLI activities; twenty covers an integrated plant with room to spare.
KBLI_MAX_ITEMS = 20
# Three shifts a day is the norm; eight leaves room for short rotating shifts (as POST /reports takes).
SHIFTS_MAX_ITEMS = 8
HEADCOUNT_MAX = 10_000_000  # keeps every count storable, and far above any plant


class Company(BaseModel):
    nib: str = Field(max_length=CODE_MAX_LENGTH, description="13-digit Nomor Induk Berusaha",
                     **_checked(pattern=NIB_PATTERN))
    npwp: str = Field(max_length=CODE_MAX_LENGTH, description="NPWP, 15-digit (01.234.567.8-901.000) or 16-digit form",
                      **_checked(pattern=NPWP_PATTERN))
    name: Text = Field(min_length=1, max_length=NAME_MAX_LENGTH)


class Facility(BaseModel):
    name: Text = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    address: Text = Field(min_length=1, max_length=500)
    province_code: str = Field(max_length=CODE_MAX_LENGTH, description="Kemendagri province code, e.g. 32",
                               **_checked(pattern=regions.PROVINCE_PATTERN))
    regency_code: str = Field(max_length=CODE_MAX_LENGTH, description="Kemendagri regency/city code, e.g. 32.16",
                              **_checked(pattern=regions.REGENCY_PATTERN))
    estate_permit_number: str | None = Field(
        None, max_length=CODE_MAX_LENGTH, **_checked(pattern=PERMIT_NUMBER_PATTERN),
        description="A plant inside an industrial estate: the estate's permit number (the estate confirms it)")


class Workforce(BaseModel):
    # The lower bounds are the domain's rules (named in its problem); the upper ones keep the counts storable.
    total: int = Field(le=HEADCOUNT_MAX, **_checked(minimum=1))
    on_site_per_shift: list[Annotated[int, Field(le=HEADCOUNT_MAX, **_checked(minimum=0))]] = Field(
        max_length=SHIFTS_MAX_ITEMS, **_checked(minItems=1))


class Contact(BaseModel):
    # One address: it travels to the notifier (CompanyContactsUpdated) and into a mail header there.
    email: Annotated[EmailAddress, STORABLE] | None = None
    # Digits and the usual separators: no line break or other character a notice could carry further.
    phone: Text | None = Field(None, max_length=PHONE_MAX_LENGTH, pattern=r"^\+?[0-9][0-9 ().-]*$")


class ApplicationIn(BaseModel):
    kind: PermitKind = Field(PermitKind.PLANT, description="plant | estate: an industrial company's plant, or an "
                                                           "industrial-estate company's estate (KBLI 68130)")
    company: Company
    facility: Facility
    kbli: list[Annotated[str, Field(max_length=CODE_MAX_LENGTH, **_checked(pattern=KBLI_PATTERN))]] = Field(
        max_length=KBLI_MAX_ITEMS, **_checked(minItems=1, uniqueItems=True))
    # The company's claim, if it reads its plant otherwise than the KBLI table does: an operator reviews it.
    sector_class: str | None = Field(
        None, max_length=CODE_MAX_LENGTH, **_checked(enum=list(SECTOR_CLASSES)),
        description="critical | essential | non_essential: the class the company claims. Optional: the class is "
                    "the KBLI table's reading of the first KBLI code; a claim that differs is reviewed by an operator.")
    export_oriented: bool | None = Field(None, description="The company's claim that the plant is export-oriented "
                                                           "(or not), reviewed like `sector_class`. Optional.")
    workforce: Workforce
    health_protocol_commitment: bool
    contact: Contact = Contact()


class DecisionIn(BaseModel):
    decision: Literal["issue", "reject"]
    reason: Text = Field(min_length=1, max_length=1000)


class ReasonIn(BaseModel):
    reason: Text = Field(min_length=1, max_length=1000)


class EvidenceIn(BaseModel):
    report_id: uuid.UUID | None = Field(None, description="false_declaration: the declared report contradicted")
    closure_id: uuid.UUID | None = Field(None, description="closure_not_observed: the closure the plant ignored")
    finding: Text | None = Field(None, min_length=1, max_length=FINDING_REF_MAX_LENGTH,
                                 description="false_declaration, inspection_finding: the finding's reference")


class GroundIn(BaseModel):
    code: GroundCode = Field(description="Why: one of the closed list (missed reports are the ladder's alone)")
    evidence: EvidenceIn = EvidenceIn()


class SanctionIn(BaseModel):
    """A freeze or a revocation: its ground and the officer's words, which the letter quotes."""

    ground: GroundIn
    reason: Text = Field(min_length=1, max_length=1000)

    def sanction_ground(self) -> SanctionGround:
        e = self.ground.evidence
        return SanctionGround(code=self.ground.code, text=self.reason, evidence=GroundEvidence(
            report_id=e.report_id, closure_id=e.closure_id, finding=e.finding))

class ReactivationRequestIn(BaseModel):
    corrective_action: Text = Field(
        max_length=CORRECTIVE_ACTION_MAX_LENGTH,
        description="The company's statement of the corrective action it has taken (at least "
                    f"{CORRECTIVE_ACTION_MIN_CHARACTERS} letters or digits), in Bahasa Indonesia.")


class ReactivationDecisionIn(BaseModel):
    decision: Decision
    reason: Text = Field(min_length=1, max_length=1000, description="Shown to the company with the decision.")


# A company's statement of why a sanction is wrong: a letter's worth of text, and room to spare.
STATEMENT_MAX_LENGTH = 8000


class ObjectionIn(BaseModel):
    statement: Text = Field(min_length=1, max_length=STATEMENT_MAX_LENGTH,
                            description="Why the freeze or revocation is wrong (UU 30/2014 Pasal 77(2)), in the "
                                        "company's words")


class ObjectionDecisionIn(BaseModel):
    outcome: ObjectionOutcome = Field(description="upheld: the sanction stands; overturned: it is reversed; "
                                                  "partly: a revocation becomes a freeze")
    reason: Text = Field(min_length=1, max_length=1000)


# A scanned code that is not a permit number is answered like an unknown one (404), never looked up.
RegistryNumber = Annotated[str, Path(description="A permit number, e.g. IOMKI-2026-000123",
                                     **_checked(pattern=PERMIT_NUMBER_PATTERN))]


# A letter by its id, or by its number: within its permit (`SP-2`) or whole (`IOMKI-2026-000123/SP-2`).
LETTER_REFERENCE_PATTERN = (r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
                            r"|(?:IOMKI-[0-9]{4}-[0-9]{6,10}/)?(?:SP|SPB|SPC)-[0-9]{1,10})$")
LetterReference = Annotated[str, Path(max_length=64, pattern=LETTER_REFERENCE_PATTERN,
                                      description="The letter's id, or its number (`SP-2`, or whole: "
                                                  "`IOMKI-2026-000123/SP-2`)")]


# A company name searched by fewer letters than this would match a good part of the country's plants.
COMPANY_PREFIX_MIN_CHARACTERS = 3


def _searched_number(number: str | None) -> str | None:
    """A whole permit number, checked as the registry checks one (the schema's pattern is a statement only)."""
    if number is not None and not PERMIT_NUMBER.fullmatch(number):
        raise _invalid("number", "not a permit number: IOMKI-<year>-<6 to 10 digits>, e.g. IOMKI-2026-000123")
    return number


def _searched_company(company: str | None) -> str | None:
    """The start of a company's name, its words one space apart."""
    if company is None:
        return None
    words = " ".join(company.split())
    if "\x00" in words:
        raise _invalid("company", "must not contain the NUL character (U+0000)")
    if len(words) < COMPANY_PREFIX_MIN_CHARACTERS:
        raise _invalid("company", f"give at least {COMPANY_PREFIX_MIN_CHARACTERS} characters of the company's name")
    return words


def _invalid(field: str, message: str) -> Problem:
    return Problem(422, "Invalid request", "One or more fields are invalid.",
                   errors=[{"field": field, "message": message}])


def router(handlers: PermitHandlers) -> APIRouter:
    routes = APIRouter(route_class=AuthenticatedFirst, tags=["permits"])
    public = APIRouter(tags=["registry"])

    @routes.post("/permits", status_code=201)
    async def apply(body: ApplicationIn, access: Annotated[Access, POLICY.guard("apply")]) -> dict:
        access.require(nib=body.company.nib, what="Company")
        permit = await handlers.apply(_application(body), access)
        return {"permit_id": str(permit.permit_id), "facility_id": str(permit.facility_id),
                "status": permit.status.value}

    @routes.get("/permits")
    async def search(
        access: Annotated[Access, POLICY.guard("read")],
        status: PermitStatus | None = None,
        province: Annotated[str | None, Query(pattern=regions.PROVINCE_PATTERN)] = None,
        regency: Annotated[str | None, Query(pattern=regions.REGENCY_PATTERN)] = None,
        nib: Annotated[str | None, Query(pattern=NIB_PATTERN)] = None,
        sector: SectorClass | None = None,
        number: Annotated[str | None, Query(max_length=CODE_MAX_LENGTH, description="A whole permit number, e.g. "
                                            "IOMKI-2026-000123", **_checked(pattern=PERMIT_NUMBER_PATTERN))] = None,
        company: Annotated[str | None, Query(
            min_length=COMPANY_PREFIX_MIN_CHARACTERS, max_length=NAME_MAX_LENGTH,
            description="The start of the company's name, in any case, its words however spaced (at least "
                        f"{COMPANY_PREFIX_MIN_CHARACTERS} characters, runs of spaces counted as one): `pt maju` "
                        "finds PT Maju Jaya")] = None,
        cursor: Annotated[str | None, Query(max_length=64, description="`next_cursor` of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> dict:
        """Permits in application order (by `company`: in name order, then application order), one page after the
        cursor; each filter given narrows the search."""
        found = await handlers.search(PermitSearch(
            status=status.value if status else None, province=province, regency=regency, nib=nib,
            sector=sector.value if sector else None, number=_searched_number(number),
            company=_searched_company(company), region_scope=access.region_filter,
            nib_scope=access.nib_filter, tenants_scope=access.tenants_filter, after=_position(cursor),
            limit=limit + 1,
        ))
        page = found[:limit]
        more = len(found) > limit
        return {"items": [_summary(permit) for _, permit in page],
                "next_cursor": _cursor(page[-1][0]) if more else None}

    @routes.get("/permits/summary")
    async def summary(
        access: Annotated[Access, POLICY.guard("summary")],
        province: Annotated[str | None, Query(pattern=regions.PROVINCE_PATTERN)] = None,
    ) -> dict:
        """Counts only (an aggregate, so agencies may read it); a task force sees its own region by default."""
        regency = None
        if province is None and access.region_filter:
            own = access.region_filter
            province, regency = (None, own) if "." in own else (own, None)
        if province or regency:
            access.require(region_code=regency or province, what="Region")
        provinces = await handlers.summary(province=province, regency=regency)
        by_status = dict.fromkeys((s.value for s in PermitStatus), 0)
        for entry in provinces:
            for status, count in entry["by_status"].items():
                by_status[status] += count
        return {"province": province, "regency": regency, "total": sum(by_status.values()),
                "by_status": by_status, "by_province": provinces,
                "sanctions": _sanctions(await handlers.sanctions(province=province, regency=regency))}

    @routes.get("/permits/{permit_id}")
    async def read(permit_id: uuid.UUID, access: Annotated[Access, POLICY.guard("read")]) -> dict:
        view = await handlers.get(permit_id, access)
        # A task force sees the plant, not the company's contact people; an estate its tenant's plant alone.
        return _detail(view, with_contact=access.scope is Scope.ALL or view.permit.nib == access.principal.nib)

    @routes.get("/permits/{permit_id}/history")
    async def history(permit_id: uuid.UUID, access: Annotated[Access, POLICY.guard("read")]) -> dict:
        rows = await handlers.history(permit_id, access)
        return {"permit_id": str(permit_id), "transitions": [
            {"from_status": r["from_status"], "to_status": r["to_status"], "action": r["action"],
             "actor": r["actor"], "role": r["role"], "reason": r["reason"], "at": r["at"].isoformat(),
             "causation_id": r["causation_id"], "ground": r["ground"]} for r in rows]}

    @routes.post("/permits/{permit_id}/decision")
    async def decide(permit_id: uuid.UUID, body: DecisionIn, access: Annotated[Access, POLICY.guard("decide")]) -> dict:
        permit = await _transition(permit_id, Action(body.decision), body.reason, access)
        return {"permit_id": str(permit.permit_id), "status": permit.status.value,
                "permit_number": permit.permit_number}

    @routes.post("/permits/{permit_id}/freeze")
    async def freeze(permit_id: uuid.UUID, body: SanctionIn,
                     access: Annotated[Access, POLICY.guard("freeze")]) -> dict:
        return _summary(await _transition(permit_id, Action.FREEZE, body.reason, access, body.sanction_ground()))

    @routes.post("/permits/{permit_id}/reactivate")
    async def reactivate(permit_id: uuid.UUID, body: ReasonIn,
                         access: Annotated[Access, POLICY.guard("reactivate")]) -> dict:
        return _summary(await _transition(permit_id, Action.REACTIVATE, body.reason, access))

    @routes.post("/permits/{permit_id}/revoke")
    async def revoke(permit_id: uuid.UUID, body: SanctionIn,
                     access: Annotated[Access, POLICY.guard("revoke")]) -> dict:
        return _summary(await _transition(permit_id, Action.REVOKE, body.reason, access, body.sanction_ground()))

    @routes.get("/permits/{permit_id}/letters")
    async def letters(permit_id: uuid.UUID, access: Annotated[Access, POLICY.guard("letters")]) -> dict:
        """The permit's warning and sanction letters, oldest first."""
        return {"permit_id": str(permit_id),
                "letters": [_letter(letter) for letter in await handlers.letters(permit_id, access)]}

    @routes.get("/permits/{permit_id}/letters/{letter:path}", response_class=Response,
                responses={200: {"content": {"application/pdf": {}}}})
    async def letter(permit_id: uuid.UUID, letter: LetterReference,
                     access: Annotated[Access, POLICY.guard("letters")]) -> Response:
        found, pdf = await handlers.letter_pdf(permit_id, _letter_reference(letter), access)
        return Response(pdf, media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{found.filename}"'})

    @routes.get("/permits/{permit_id}/certificate", response_class=Response,
                responses={200: {"content": {"application/pdf": {}}},
                           409: {"description": "The permit is not issued, or no longer in force"}})
    async def certificate(permit_id: uuid.UUID, access: Annotated[Access, POLICY.guard("letters")]) -> Response:
        """The certificate of an issued permit (PDF, Bahasa Indonesia and English), with the registry's signed QR;
        read by whoever reads the permit's letters."""
        filename, pdf = await handlers.certificate_pdf(permit_id, access)
        return Response(pdf, media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    async def _transition(permit_id: uuid.UUID, action: Action, reason: str, access: Access,
                          ground: SanctionGround | None = None) -> Permit:
        # The request id is the causation of what this request changes (DESIGN §3: "event or request").
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        return await handlers.act(permit_id, action, reason, access, request_id, ground)

    @routes.post("/permits/{permit_id}/reactivation-requests", status_code=201)
    async def request_reactivation(permit_id: uuid.UUID, body: ReactivationRequestIn,
                                   access: Annotated[Access, POLICY.guard("request_reactivation")]) -> dict:
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        return _reactivation(await handlers.request_reactivation(permit_id, body.corrective_action, access,
                                                                 request_id))

    @routes.get("/permits/{permit_id}/reactivation-requests")
    async def reactivation_requests(permit_id: uuid.UUID, access: Annotated[Access, POLICY.guard("read")],
                                    limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict:
        """Where the company's requests stand, and the conditions a new one would meet now."""
        standing = await handlers.reactivation_standing(permit_id, access, limit)
        return {"permit_id": str(permit_id), "permit_status": standing.permit.status.value,
                "conditions": [_condition(check) for check in standing.outlook],
                "requests": [_reactivation(request) for request in standing.requests]}

    @routes.get("/reactivation-requests")
    async def reactivation_queue(
        access: Annotated[Access, POLICY.guard("reactivation_queue")],
        status: RequestStatus = RequestStatus.PENDING,
        province: Annotated[str | None, Query(pattern=regions.PROVINCE_PATTERN)] = None,
        regency: Annotated[str | None, Query(pattern=regions.REGENCY_PATTERN)] = None,
        cursor: Annotated[str | None, Query(max_length=64, description="`next_cursor` of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> dict:
        """The review queue: requests in one status (pending unless asked), the oldest first; a task force sees its
        own region's."""
        province, regency = access.asked_region(province, regency)
        found = await handlers.reactivation_queue(status, region=regency or province, after=_position(cursor),
                                                  limit=limit + 1)
        page = found[:limit]
        return {"items": [_reactivation(q.request) | {"province_code": q.permit.province_code,
                                                      "regency_code": q.permit.regency_code,
                                                      "permit": _summary(q.permit)} for q in page],
                "next_cursor": _cursor(page[-1].seq) if len(found) > limit else None}

    @routes.post("/reactivation-requests/{request_id}/decision")
    async def decide_reactivation(request_id: uuid.UUID, body: ReactivationDecisionIn,
                                  access: Annotated[Access, POLICY.guard("decide_reactivation")]) -> dict:
        http_request_id = structlog.contextvars.get_contextvars().get("request_id")
        decided, permit = await handlers.decide_reactivation(request_id, body.decision, body.reason, access,
                                                             http_request_id)
        return _reactivation(decided) | {"permit": _summary(permit)}

    @public.get("/registry/keys")
    async def keys() -> dict:
        return {"keys": [registry_tokens.public_jwk(handlers.signing_key.public_key())]}

    @public.get("/registry/{permit_number}")
    async def verify_online(permit_number: RegistryNumber) -> dict:
        entry = await _registry_entry(permit_number)
        p = entry.permit
        return {"permit_number": p.permit_number, "status": entry.status.value, "kind": p.kind.value,
                "company_name": p.company_name,
                "plant_regency": {"code": p.regency_code, "name": entry.regency_name},
                "sector_class": p.sector_class, "export_oriented": p.export_oriented,
                # IOMKI is valid for the whole emergency (SE 7/2020): no end date unless revoked.
                "validity": {"valid_from": p.issued_at.isoformat() if p.issued_at else None,
                             "valid_until": p.revoked_at.isoformat() if p.revoked_at else None,
                             "operating_allowed": entry.status.value == "valid"},
                "token": entry.token}

    @public.get("/registry/{permit_number}/qr.png", response_class=Response,
                responses={200: {"content": {"image/png": {}}}})
    async def qr(permit_number: RegistryNumber) -> Response:
        entry = await _registry_entry(permit_number)
        return Response(qr_png(entry.token), media_type="image/png",
                        headers={"Cache-Control": "public, max-age=86400"})

    async def _registry_entry(permit_number: str) -> Any:
        if not PERMIT_NUMBER.fullmatch(permit_number):
            raise Problem(404, "Not found", "No such permit number (format IOMKI-<year>-<6 digits>).")
        return await handlers.registry_entry(permit_number)

    routes.include_router(public)
    return routes


def objections_router(objections: ObjectionHandlers) -> APIRouter:
    """Objections to a freeze or a revocation (UU 30/2014 Pasal 77): the company files, an operator decides."""
    routes = APIRouter(route_class=AuthenticatedFirst, tags=["objections"])

    @routes.post("/permits/{permit_id}/objections", status_code=201)
    async def object_to(permit_id: uuid.UUID, body: ObjectionIn,
                        access: Annotated[Access, POLICY.guard("object")]) -> dict:
        objection = await objections.file(permit_id, body.statement, access, _request_id())
        return _objection(objection)

    @routes.get("/permits/{permit_id}/objections")
    async def of_permit(permit_id: uuid.UUID, access: Annotated[Access, POLICY.guard("read_objections")]) -> dict:
        return _permit_objections(await objections.of_permit(permit_id, access))

    @routes.post("/objections/{objection_id}/decision")
    async def decide(objection_id: uuid.UUID, body: ObjectionDecisionIn,
                     access: Annotated[Access, POLICY.guard("decide_objection")]) -> dict:
        objection, permit = await objections.decide(objection_id, body.outcome, body.reason, access, _request_id())
        return _objection(objection) | {"permit": _summary(permit)}

    return routes


def _request_id() -> str | None:
    # The request id is the causation of what this request changes (DESIGN §3: "event or request").
    return structlog.contextvars.get_contextvars().get("request_id")


def _objection(o: Objection) -> dict:
    return {"objection_id": str(o.objection_id), "permit_id": str(o.permit_id),
            "sanction": {"action": o.sanction.action.value, "at": o.sanction.at.isoformat(),
                         "from_status": o.sanction.from_status.value},
            "last_day": o.last_day.isoformat(), "statement": o.statement,
            "filed_by": o.filed_by, "filed_role": o.filed_role, "filed_at": o.filed_at.isoformat(),
            "status": "pending" if o.pending else "decided",
            "decision": None if o.pending else {
                "outcome": o.outcome.value if o.outcome else None, "reason": o.reason, "decided_by": o.decided_by,
                "decided_role": o.decided_role, "decided_at": o.decided_at.isoformat() if o.decided_at else None}}


def _permit_objections(view: PermitObjections) -> dict:
    open_ = view.open
    return {"permit_id": str(view.permit.permit_id), "status": view.permit.status.value,
            "open_to_objection": None if open_ is None else {
                "sanction": open_.sanction.action.value, "sanctioned_at": open_.sanction.at.isoformat(),
                "last_day": open_.last_day.isoformat(), "open": open_.open},
            "objections": [_objection(o) for o in view.objections]}


def _letter_reference(text: str) -> uuid.UUID | tuple[str | None, LetterKind, int]:
    """The path's letter: its id, or what its number names. One that matches the pattern but names no letter (a
    sequence beyond any counter) is answered like an unknown one."""
    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    reference = letter_reference(text)
    if reference is None:
        raise LetterNotFound("Letter")
    return reference


def _letter(letter: Letter) -> dict:
    return {"letter_id": str(letter.letter_id), "number": letter.number, "kind": letter.kind.value,
            "issued_at": letter.issued_at.isoformat(), "ground": letter.ground.code.value,
            "periods": [{"period_id": str(p.period_id), "deadline": p.deadline.isoformat() if p.deadline else None}
                        for p in letter.periods],
            "more_periods": letter.more_periods,
            "download": f"/permits/{letter.permit_id}/letters/{letter.short_number}"}


def _application(body: ApplicationIn) -> Application:
    return Application(
        nib=body.company.nib, npwp=body.company.npwp, company_name=body.company.name,
        facility_name=body.facility.name, address=body.facility.address,
        province_code=body.facility.province_code, regency_code=body.facility.regency_code, kbli=body.kbli,
        sector_class=body.sector_class, export_oriented=body.export_oriented, workforce_total=body.workforce.total,
        on_site_per_shift=body.workforce.on_site_per_shift,
        health_protocol_commitment=body.health_protocol_commitment,
        contact_email=body.contact.email, contact_phone=body.contact.phone, kind=body.kind,
        estate_permit_number=body.facility.estate_permit_number,
    )


def _summary(p: Permit) -> dict:
    return {"permit_id": str(p.permit_id), "facility_id": str(p.facility_id), "status": p.status.value,
            "permit_number": p.permit_number, "nib": p.nib, "company_name": p.company_name,
            "province_code": p.province_code, "regency_code": p.regency_code, "sector_class": p.sector_class,
            "export_oriented": p.export_oriented, "freeze_count": p.freeze_count, "kind": p.kind.value}


def _detail(view: PermitView, *, with_contact: bool) -> dict:
    p, a = view.permit, view.application
    out = _summary(p) | {
        "issued_at": p.issued_at.isoformat() if p.issued_at else None,
        "revoked_at": p.revoked_at.isoformat() if p.revoked_at else None,
        "reapply_after": p.reapply_after.isoformat() if p.reapply_after else None,
        "facility": {"name": a["facility_name"], "address": a["address"]},
        "kbli": a["kbli"], "workforce": {"total": a["workforce_total"], "on_site_per_shift": a["on_site_per_shift"]},
        "sector": {"class": p.sector_class, "export_oriented": p.export_oriented,
                   "basis": p.class_basis.value if p.class_basis else "declared", "table_version": view.table_version,
                   "open_review": _review(view.open_review) if view.open_review else None},
        "operating_status": view.operating.label,
        "closures": [{"closure_id": str(c.closure_id), "scope": c.scope, "reason": c.reason,
                      "starts_at": c.starts_at.isoformat(), "ends_at": c.ends_at.isoformat()}
                     for c in view.operating.closures],
    }
    if p.estate_nib is not None:
        out["estate_nib"] = p.estate_nib  # the estate that confirmed the plant as its tenant
    if with_contact:
        out["contact"] = {"email": a.get("contact_email"), "phone": a.get("contact_phone")}
    return out


def _sanctions(rows: list[dict]) -> dict:
    """Freezes and revocations by ground (the totals), and by province, month and ground (the rows)."""
    by_ground = {action.value: dict.fromkeys((g.value for g in GroundCode), 0) for action in SanctionAction}
    for row in rows:
        by_ground[row["action"]][row["ground"]] += row["sanctions"]
    return {"by_ground": by_ground, "counting_zone": "Asia/Jakarta",
            "rows": [{"province_code": r["province_code"], "month": r["month"].isoformat()[:7], "action": r["action"],
                      "ground": r["ground"], "sanctions": r["sanctions"]} for r in rows]}

def _condition(check: ConditionCheck) -> dict:
    out: dict[str, Any] = {"condition": check.condition, "met": check.met, "message": check.message}
    if check.missing_periods:
        out["missing_periods"] = [str(period) for period in check.missing_periods]
    if check.open_request:
        out["open_request"] = str(check.open_request)
    return out


def _reactivation(r: ReactivationRequest) -> dict:
    decision = None
    if r.decided_at is not None:
        decision = {"by": {"sub": r.decided_by, "role": r.decided_role}, "at": r.decided_at.isoformat(),
                    "reason": r.decision_reason}
    return {"request_id": str(r.request_id), "permit_id": str(r.permit_id), "status": r.status.value,
            "corrective_action": r.corrective_action, "missed_periods": [str(p) for p in r.missed_periods],
            "freeze_count": r.freeze_count, "conditions": [_condition(check) for check in r.conditions],
            "requested_by": {"sub": r.requested_by}, "requested_at": r.requested_at.isoformat(),
            "decision": decision}


def _cursor(seq: int) -> str:
    return cursor(f"s:{seq}")


def _position(token: str | None) -> int:
    """The keyset position (`seq`) a `next_cursor` stands for; the list's start without one."""
    return position(token, _seq, field="cursor") or 0


def _seq(parts: list[str]) -> int:
    (text,) = parts
    if not text.startswith("s:"):
        raise ValueError(text)
    seq = int(text[2:])
    if not 0 <= seq < 2**63:  # positions are bigint identities: anything else was not issued here
        raise ValueError(text)
    return seq


def worklists_router(worklists: WorklistHandlers) -> APIRouter:
    """What waits for an operator: applications, reactivation requests and objections, overdue first."""
    routes = APIRouter(route_class=AuthenticatedFirst, tags=["worklists"])

    @routes.get("/worklists")
    async def waiting(access: Annotated[Access, POLICY.guard("worklists")],
                      kind: Annotated[list[WorkKind] | None, Query(max_length=len(WorkKind),
                                                                   description="Only these lists")] = None,
                      region: Annotated[str | None, Query(pattern=r"^[0-9]{2}(\.[0-9]{2})?$",
                                                          description="A province (32) or regency (32.16)")] = None,
                      limit: Annotated[int, Query(ge=1, le=200, description="Items per list")] = 50,
                      after: Annotated[str | None, Query(max_length=CURSOR_MAX_LENGTH, description=(
                          "The `next` of a list of the previous answer: continues that list, asked alone"))] = None,
                      ) -> dict:
        """Each list oldest first, overdue first; a task force's are its region's (narrowed further if asked)."""
        if region is not None:
            access.require(region_code=region, what="Region")
        if after is not None and (kind is None or len(set(kind)) != 1):
            raise _invalid("after", "a cursor continues one list; ask for its kind alone")
        now, lists = await worklists.worklists(region or access.region_filter, kind or list(WorkKind), limit,
                                               position(after, moment_and_id))
        return {"now": now.isoformat(), "zone": MINISTRY_ZONE.key, "worklists": [{
            "kind": w.kind.value, "sla_working_days": w.working_days, "total": w.total, "overdue": w.overdue,
            "next": cursor(w.continues_after.received_at.isoformat(), w.continues_after.item_id)
            if w.continues_after else None,
            "items": [{"kind": q.item.kind.value, "item_id": str(q.item.item_id), "permit_id": str(q.item.permit_id),
                       "permit_number": q.item.permit_number, "company_name": q.item.company_name,
                       "province_code": q.item.province_code, "regency_code": q.item.regency_code,
                       "received_at": q.item.received_at.isoformat(), "due_at": q.due_at.isoformat(),
                       "overdue": q.overdue, "age_hours": round(q.age.total_seconds() / 3600, 1)}
                      for q in w.items]} for w in lists]}

    return routes


class ClassReviewDecisionIn(BaseModel):
    decision: ReviewDecision = Field(description="accept: the plant's class becomes the company's claim; reject: the "
                                                 "KBLI table's class stays")
    reason: Text = Field(min_length=1, max_length=1000, description="Shown to the company with the decision.")


def sectors_router(sectors: SectorHandlers) -> APIRouter:
    """The KBLI sector table, and the companies' claims against its reading that operators review."""
    routes = APIRouter(route_class=AuthenticatedFirst, tags=["sectors"])

    @routes.get("/kbli-sectors")
    async def table(access: Annotated[Access, POLICY.guard("sector_table")]) -> dict:
        t = sectors.table
        return {"version": t.version, "source": t.source, "row_count": len(t.rows),
                "default": {"class": "non_essential", "export_oriented": False},
                "rows": [{"prefix": r.prefix, "name": r.name, "class": r.classing.sector_class.value,
                          "export_oriented": r.classing.export_oriented} for r in t.rows]}

    @routes.get("/class-reviews")
    async def reviews(
        access: Annotated[Access, POLICY.guard("class_reviews")],
        status: ReviewStatus = ReviewStatus.PENDING,
        permit_id: Annotated[uuid.UUID | None, Query(description="One permit's reviews")] = None,
        province: Annotated[str | None, Query(pattern=regions.PROVINCE_PATTERN)] = None,
        regency: Annotated[str | None, Query(pattern=regions.REGENCY_PATTERN)] = None,
        cursor: Annotated[str | None, Query(max_length=64, description="`next_cursor` of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> dict:
        """Claims in one status (pending unless asked), the oldest first: an operator's of every plant, a task
        force's of its region, a company's of its own plants."""
        province, regency = access.asked_region(province, regency)
        found = await sectors.reviews(ReviewSearch(
            status=status, permit_id=permit_id, region=regency or province, nib=access.nib_filter,
            after=_position(cursor), limit=limit + 1), access)
        page = found[:limit]
        return {"items": [_listed_review(listed) for listed in page],
                "next_cursor": _cursor(page[-1].seq) if len(found) > limit else None}

    @routes.post("/class-reviews/{review_id}/decision")
    async def decide(review_id: uuid.UUID, body: ClassReviewDecisionIn,
                     access: Annotated[Access, POLICY.guard("decide_class_review")]) -> dict:
        review, permit = await sectors.decide(review_id, body.decision, body.reason, access, _request_id())
        return _review(review) | {"permit": _summary(permit) | {
            "class_basis": permit.class_basis.value if permit.class_basis else "declared"}}

    return routes


def _classing(sector_class: str, export_oriented: bool) -> dict:
    return {"class": sector_class, "export_oriented": export_oriented}


def _review(r: ClassReview) -> dict:
    decision = None
    if r.decided_at is not None:
        decision = {"by": {"sub": r.decided_by, "role": r.decided_role}, "at": r.decided_at.isoformat(),
                    "reason": r.decision_reason}
    return {"review_id": str(r.review_id), "permit_id": str(r.permit_id), "status": r.status.value,
            "claimed": _classing(r.claimed.sector_class.value, r.claimed.export_oriented),
            "derived": _classing(r.derived.sector_class.value, r.derived.export_oriented),
            "table_version": r.table_version, "origin": r.origin.value,
            "opened_by": {"sub": r.opened_by}, "opened_at": r.opened_at.isoformat(), "decision": decision}


def _listed_review(listed: ListedReview) -> dict:
    return _review(listed.review) | {"province_code": listed.permit.province_code,
                                     "regency_code": listed.permit.regency_code, "permit": _summary(listed.permit)}


class TenancyDecisionIn(BaseModel):
    decision: TenancyDecision = Field(description="confirm: the plant lies inside the estate; decline: it does not")
    reason: Text = Field(min_length=1, max_length=1000)


def estates_router(estates: EstateHandlers) -> APIRouter:
    """Industrial estates' tenant plants: a plant names its estate when it applies; the estate answers."""
    routes = APIRouter(route_class=AuthenticatedFirst, tags=["estates"])

    @routes.get("/estates/{estate_permit_id}/tenants")
    async def tenants(estate_permit_id: uuid.UUID, access: Annotated[Access, POLICY.guard("tenants")],
                      status: TenancyStatus = TenancyStatus.CONFIRMED,
                      cursor: Annotated[str | None, Query(max_length=64,
                                                          description="`next_cursor` of the previous page")] = None,
                      limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict:
        """The estate's tenancies in one status (confirmed unless asked), in the order the plants claimed them."""
        found = await estates.tenants(estate_permit_id, status, access, after=_position(cursor), limit=limit + 1)
        page = found[:limit]
        return {"estate_permit_id": str(estate_permit_id), "items": [_listed_tenancy(t) for t in page],
                "next_cursor": _cursor(page[-1].seq) if len(found) > limit else None}

    @routes.post("/estates/{estate_permit_id}/tenants/{tenant_permit_id}/decision")
    async def decide(estate_permit_id: uuid.UUID, tenant_permit_id: uuid.UUID, body: TenancyDecisionIn,
                     access: Annotated[Access, POLICY.guard("decide_tenancy")]) -> dict:
        return _tenancy(await estates.decide(estate_permit_id, tenant_permit_id, body.decision, body.reason, access,
                                             _request_id()))

    @routes.post("/estates/{estate_permit_id}/tenants/{tenant_permit_id}/release")
    async def release(estate_permit_id: uuid.UUID, tenant_permit_id: uuid.UUID, body: ReasonIn,
                      access: Annotated[Access, POLICY.guard("decide_tenancy")]) -> dict:
        return _tenancy(await estates.release(estate_permit_id, tenant_permit_id, body.reason, access, _request_id()))

    return routes


def _tenancy(t: Tenancy) -> dict:
    """Each move with its who, when and why: the claim, the estate's answer, and the end."""
    decision = ended = None
    if t.decided_at is not None:
        decision = {"by": {"sub": t.decided_by, "role": t.decided_role}, "at": t.decided_at.isoformat(),
                    "reason": t.decision_reason}
    if t.ended_at is not None:
        ended = {"by": {"sub": t.ended_by, "role": t.ended_role}, "at": t.ended_at.isoformat(),
                 "reason": t.end_reason, "cause": t.end_cause.value if t.end_cause else None}
    return {"estate_permit_id": str(t.estate_permit_id), "tenant_permit_id": str(t.tenant_permit_id),
            "tenant_facility_id": str(t.tenant_facility_id), "status": t.status.value,
            "claimed": {"by": {"sub": t.claimed_by}, "at": t.claimed_at.isoformat()},
            "decision": decision, "ended": ended}


def _listed_tenancy(listed: ListedTenancy) -> dict:
    return _tenancy(listed.tenancy) | {"tenant": _summary(listed.tenant)}


class SanctionRequestDecisionIn(BaseModel):
    decision: Literal["approve", "decline"] = Field(
        description="approve: the permit is frozen or revoked on the request's ground; decline: nothing changes")
    reason: Text = Field(min_length=1, max_length=1000, description="Sent to the regional office with the decision.")


_REQUEST_DECISIONS = {"approve": RequestDecision.APPROVED, "decline": RequestDecision.DECLINED}


def sanction_requests_router(handlers: PermitHandlers) -> APIRouter:
    """The regional offices' sanction requests in the ministry's review queue (the office asks; an operator
    decides)."""
    routes = APIRouter(route_class=AuthenticatedFirst, tags=["sanction requests"])

    @routes.get("/sanction-requests")
    async def listed(
        access: Annotated[Access, POLICY.guard("sanction_requests")],
        status: SanctionRequestStatus | None = None,
        province: Annotated[str | None, Query(pattern=regions.PROVINCE_PATTERN)] = None,
        regency: Annotated[str | None, Query(pattern=regions.REGENCY_PATTERN)] = None,
        cursor: Annotated[str | None, Query(max_length=64, description="`next_cursor` of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> dict:
        """Requests, the oldest first, in one status if asked; a task force's or an office's of its region."""
        province, regency = access.asked_region(province, regency)
        found = await handlers.sanction_requests(SanctionRequestSearch(
            status=status, region=regency or province, after=_position(cursor), limit=limit + 1))
        page = found[:limit]
        return {"items": [_listed_sanction_request(listed) for listed in page],
                "next_cursor": _cursor(page[-1].seq) if len(found) > limit else None}

    @routes.get("/sanction-requests/{request_id}")
    async def one(request_id: uuid.UUID, access: Annotated[Access, POLICY.guard("sanction_requests")]) -> dict:
        request, permit = await handlers.sanction_request(request_id, access)
        return _sanction_request(request) | {"permit": _summary(permit)}

    @routes.post("/sanction-requests/{request_id}/decision")
    async def decide(request_id: uuid.UUID, body: SanctionRequestDecisionIn,
                     access: Annotated[Access, POLICY.guard("decide_sanction_request")]) -> dict:
        request, permit = await handlers.decide_sanction_request(
            request_id, _REQUEST_DECISIONS[body.decision], body.reason, access, _request_id())
        return _sanction_request(request) | {"permit": _summary(permit)}

    return routes


def _sanction_request(r: SanctionRequest) -> dict:
    decision = None
    if r.decided_at is not None:
        decision = {"by": {"sub": r.decided_by, "role": r.decided_role}, "at": r.decided_at.isoformat(),
                    "reason": r.decision_reason}
    return {"request_id": str(r.request_id), "permit_id": str(r.permit_id), "action": r.action.value,
            "status": r.status.value, "ground": r.ground.model_dump(mode="json", exclude_none=True),
            "reason": r.reason, "office_region": r.office_region,
            "inspection_id": str(r.inspection_id) if r.inspection_id else None,
            "requested_at": r.requested_at.isoformat(), "received_at": r.received_at.isoformat(),
            "decision": decision}


def _listed_sanction_request(listed: ListedSanctionRequest) -> dict:
    return _sanction_request(listed.request) | {"province_code": listed.permit.province_code,
                                                "regency_code": listed.permit.regency_code,
                                                "permit": _summary(listed.permit)}
