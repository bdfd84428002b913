"""`iomki worklist`, `iomki complaints …`, `iomki inspections …` and `iomki sanction-requests …`: field supervision.

A regional office works its risk-ranked worklist, answers the public's complaints, inspects plants with the task
force and asks the ministry to freeze or revoke a permit; an operator decides the request in the permits service.
The public files and follows a complaint without a token.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from shared.contract import ComplaintCategory, FindingResult, InspectionBody, ProtocolItem, SanctionAction
from tooling.cli.support import Api, JsonOption, TokenOption, emit, fields, table

Province = Annotated[str | None, typer.Option(help="A province code, e.g. 32")]
Regency = Annotated[str | None, typer.Option(help="A regency code, e.g. 32.16")]
Limit = Annotated[int, typer.Option(help="At most this many (1–200)")]
After = Annotated[str | None, typer.Option(help="`next` of the previous page")]
Day = Annotated[datetime, typer.Option("--on", formats=["%Y-%m-%d"], help="The day (YYYY-MM-DD)")]
InspectionId = Annotated[uuid.UUID, typer.Argument(help="The inspection id (as `inspections list` shows)")]
ComplaintId = Annotated[uuid.UUID, typer.Argument(help="The complaint id (as `complaints list` shows)")]
RequestId = Annotated[uuid.UUID, typer.Argument(help="The sanction request id")]
PermitId = Annotated[uuid.UUID, typer.Argument(help="The permit id (a UUID, as `permits list` shows)")]
COMPLAINT_STATUSES = "received | unmatched | under_review | inspected | closed_unfounded | closed_resolved"
PHOTO_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


def _choices(values: type[Any]) -> str:
    return " | ".join(value.value for value in values)


def _more(body: dict[str, Any], option: str = "--after", key: str = "next") -> None:
    if body.get(key):
        typer.echo(f"more: {option} {body[key]}")


# -- the worklist --------------------------------------------------------------------------------------------------


def worklist(province: Province = None, regency: Regency = None, limit: Limit = 50, after: After = None,
             token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Plants of a region ranked by risk, the riskiest first, with the parts of each score (operators: the country
    or a region; regional offices and task forces: their region unless a part of it is asked)."""
    found = Api("supervision", token, as_json=as_json).get("/worklist", province=province, regency=regency,
                                                           limit=limit, after=after)
    emit(found, as_json, lambda body: _render_worklist(body, continued=after is not None))


def _render_worklist(body: dict[str, Any], *, continued: bool) -> None:
    """A continued page's ranks count from its cursor (+1 is the first plant after it)."""
    table("Inspection worklist, the riskiest first" + (", continued" if continued else ""),
          ["rank", "permit", "company", "regency", "status", "score", "parts", "last inspected", "open complaints"],
          [[f"+{rank}" if continued else rank, row["permit_number"], row["company_name"], row["regency_code"],
            row["status"], row["score"],
            ", ".join(f"{name}={value}" for name, value in row["parts"].items() if value),
            row["last_inspected_on"] or "never", row["open_complaints"]]
           for rank, row in enumerate(body["items"], 1)])
    _more(body)


# -- complaints ------------------------------------------------------------------------------------------------------

complaints = typer.Typer(help="The public's complaints about plants: filed and followed without a login, handled by "
                              "the region's office.", no_args_is_help=True)


@complaints.command("file")
def file_complaint(
    category: Annotated[str, typer.Option(help=_choices(ComplaintCategory))],
    text: Annotated[str, typer.Option(help="What was seen (Bahasa Indonesia welcome)")],
    permit_number: Annotated[str | None, typer.Option(help="The plant's permit number, if known")] = None,
    address: Annotated[str | None, typer.Option(help="Else the plant's address…")] = None,
    regency: Annotated[str | None, typer.Option(help="…and its regency code, e.g. 32.16")] = None,
    email: Annotated[str | None, typer.Option(help="Where the office may answer (never shown publicly)")] = None,
    phone: Annotated[str | None, typer.Option(help="Or a phone number")] = None,
    as_json: JsonOption = False,
) -> None:
    """File a complaint about a plant, without a token; keep the reference it answers to follow it."""
    if permit_number is None and (address is None or regency is None):
        raise typer.BadParameter("give --permit-number, or --address and --regency", param_hint="--permit-number")
    body: dict[str, Any] = {"category": category, "text": text, "permit_number": permit_number, "address": address,
                            "regency_code": regency}
    contact = {key: value for key, value in {"email": email, "phone": phone}.items() if value is not None}
    body = {key: value for key, value in body.items() if value is not None} | ({"contact": contact} if contact else {})
    found = Api("supervision", None, as_json=as_json, authenticated=False).post("/public/complaints", body)
    emit(found, as_json, lambda answer: typer.echo(
        f"{answer['reference']}: {answer['status']} (follow it: iomki complaints follow {answer['reference']})"))


@complaints.command("follow")
def follow_complaint(reference: Annotated[str, typer.Argument(help="The reference filing gave (ADU-…)")],
                     as_json: JsonOption = False) -> None:
    """Where a complaint stands, by its reference, without a token."""
    found = Api("supervision", None, as_json=as_json, authenticated=False).get(
        f"/public/complaints/{quote(reference, safe='')}")
    emit(found, as_json, lambda body: fields(f"Complaint {body['reference']}", body))


@complaints.command("list")
def list_complaints(province: Province = None, regency: Regency = None,
                    status: Annotated[str | None, typer.Option(help=COMPLAINT_STATUSES)] = None, limit: Limit = 50,
                    after: After = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Complaints of a region, in one status if asked (regional offices and task forces: their region's)."""
    found = Api("supervision", token, as_json=as_json).get("/complaints", province=province, regency=regency,
                                                           status=status, limit=limit, after=after)

    def render(body: dict[str, Any]) -> None:
        table("Complaints", ["complaint", "status", "category", "regency", "permit", "filed", "text"],
              [[c["complaint_id"], c["status"], c["category"], c["regency_code"],
                c["permit_id"] or c["permit_number_given"] or c["address"], c["filed_at"], c["text"]]
               for c in body["items"]])
        _more(body)

    emit(found, as_json, render)


@complaints.command("show")
def show_complaint(complaint_id: ComplaintId, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """One complaint: its words, where it stands, and (operators and regional offices) its filer's contact."""
    found = Api("supervision", token, as_json=as_json).get(f"/complaints/{complaint_id}")
    emit(found, as_json, lambda body: fields(f"Complaint {body['complaint_id']}", body))


@complaints.command("match")
def match_complaint(complaint_id: ComplaintId,
                    permit_number: Annotated[str, typer.Argument(help="The permit number of the plant meant")],
                    token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Match a complaint filed by address to the plant it is about (operator, regional office)."""
    found = Api("supervision", token, as_json=as_json).post(f"/complaints/{complaint_id}/match",
                                                            {"permit_number": permit_number})
    emit(found, as_json, lambda body: typer.echo(
        f"{body['complaint_id']}: {body['status']}, permit {body['permit_id']}"))


@complaints.command("status")
def move_complaint(complaint_id: ComplaintId,
                   status: Annotated[str, typer.Argument(help="under_review | closed_unfounded | closed_resolved")],
                   note: Annotated[str, typer.Option(help="What was done (the filer sees only the status)")] = "",
                   token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Move a complaint on (operator, regional office)."""
    found = Api("supervision", token, as_json=as_json).post(f"/complaints/{complaint_id}/status",
                                                            {"status": status, "note": note})
    emit(found, as_json, lambda body: typer.echo(f"{body['complaint_id']}: {body['status']}"))


# -- inspections -----------------------------------------------------------------------------------------------------

inspections = typer.Typer(help="Inspections of plants: planned with their team, recorded with their findings and "
                               "photos.", no_args_is_help=True)


def _member(spec: str) -> dict[str, str]:
    name, _, body = spec.rpartition(":")
    if not name.strip() or body not in {b.value for b in InspectionBody}:
        raise typer.BadParameter(f"{spec!r}: give \"Name:body\", body one of {_choices(InspectionBody)}",
                                 param_hint="--member")
    return {"name": name.strip(), "body": body}


def _findings(specs: list[str]) -> dict[str, str]:
    findings: dict[str, str] = {}
    for spec in specs:
        item, _, result = spec.partition("=")
        if item not in {i.value for i in ProtocolItem} or result not in {r.value for r in FindingResult}:
            raise typer.BadParameter(f"{spec!r}: give item=result, item one of {_choices(ProtocolItem)}, result "
                                     f"{_choices(FindingResult)}", param_hint="--finding")
        if item in findings:
            raise typer.BadParameter(f"{item} given twice", param_hint="--finding")
        findings[item] = result
    return findings


@inspections.command("plan")
def plan(permit_id: PermitId, on: Day,
         member: Annotated[list[str], typer.Option(help="A team member, \"Name:body\", body "
                                                        f"{_choices(InspectionBody)} (repeat for each)")],
         purpose: Annotated[str, typer.Option(help="Why the plant is inspected")] = "",
         complaint: Annotated[list[uuid.UUID] | None, typer.Option(help="A complaint it follows up (repeatable)")]
         = None,
         token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Plan an inspection of a plant (operator; regional office and task force: their region's plants)."""
    body = {"permit_id": str(permit_id), "planned_on": on.date().isoformat(), "team": [_member(m) for m in member],
            "purpose": purpose, "complaint_ids": [str(c) for c in complaint or []]}
    found = Api("supervision", token, as_json=as_json).post("/inspections", body)
    emit(found, as_json, lambda answer: typer.echo(f"{answer['inspection_id']} ({answer['reference']}): "
                                                   f"{answer['status']}"))


@inspections.command("record")
def record(inspection_id: InspectionId, on: Day,
           finding: Annotated[list[str] | None, typer.Option(
               help="item=met|violated|not_checked (repeat for each item; an item left out was not checked)")] = None,
           notes: Annotated[str, typer.Option(help="What the team saw")] = "",
           token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Record what an inspection found, once it has happened."""
    body = {"inspected_on": on.date().isoformat(), "findings": _findings(finding or []), "notes": notes}
    found = Api("supervision", token, as_json=as_json).post(f"/inspections/{inspection_id}/record", body)

    def render(answer: dict[str, Any]) -> None:
        typer.echo(f"{answer['inspection_id']} ({answer['reference']}): {answer['status']}, "
                   f"{answer['violations']} violated")
        if answer.get("contradiction"):
            typer.echo(f"{answer['contradiction']} (report {answer['contradicted_report_id']})")

    emit(found, as_json, render)


@inspections.command("show")
def show_inspection(inspection_id: InspectionId, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """One inspection: its team, findings, notes, the complaints it follows up and its photos."""
    found = Api("supervision", token, as_json=as_json).get(f"/inspections/{inspection_id}")

    def render(body: dict[str, Any]) -> None:
        fields(f"Inspection {body['reference']}",
               {k: v for k, v in body.items() if k not in ("team", "findings")}
               | {"team": [f"{m['name']} ({m['body']})" for m in body["team"]]})
        if body["findings"]:
            table("Findings", ["item", "result"], [[item, result] for item, result in body["findings"].items()])

    emit(found, as_json, render)


@inspections.command("list")
def list_inspections(province: Province = None, regency: Regency = None,
                     status: Annotated[str | None, typer.Option(help="planned | recorded")] = None, limit: Limit = 50,
                     after: After = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Inspections of a region, the latest first (regional offices and task forces: their region's)."""
    found = Api("supervision", token, as_json=as_json).get("/inspections", province=province, regency=regency,
                                                           status=status, limit=limit, after=after)

    def render(body: dict[str, Any]) -> None:
        table("Inspections", ["inspection", "reference", "permit", "regency", "status", "planned", "inspected",
                              "violated", "contradicts report"],
              [[i["inspection_id"], i["reference"], i["permit_id"], i["regency_code"], i["status"], i["planned_on"],
                i["inspected_on"], i["violations"], i["contradicted_report_id"]] for i in body["items"]])
        _more(body)

    emit(found, as_json, render)


@inspections.command("photo")
def photo(inspection_id: InspectionId,
          file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                               help="A .jpg, .jpeg or .png photo")],
          token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Add a photo to an inspection (its metadata, GPS included, is dropped by the service)."""
    content_type = PHOTO_TYPES.get(file.suffix.lower())
    if content_type is None:
        raise typer.BadParameter(f"a photo is one of {', '.join(PHOTO_TYPES)}", param_hint="FILE")
    found = Api("supervision", token, as_json=as_json).post_bytes(f"/inspections/{inspection_id}/photos",
                                                                  file.read_bytes(), content_type)
    emit(found, as_json, lambda body: typer.echo(
        f"{body['photo_id']}: {body['content_type']} {body['width']}×{body['height']}"))


# -- sanction requests -----------------------------------------------------------------------------------------------

sanction_requests = typer.Typer(help="A regional office's requests that the ministry freeze or revoke a permit, and "
                                     "the ministry's decisions.", no_args_is_help=True)
REQUEST_GROUNDS = "inspection_finding | false_declaration | closure_not_observed | other"


@sanction_requests.command("request")
def request_sanction(
    permit_id: PermitId,
    action: Annotated[str, typer.Option(help=_choices(SanctionAction))],
    ground: Annotated[str, typer.Option("--ground", "-g", help=REQUEST_GROUNDS)],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (sent to the ministry)")],
    finding: Annotated[str | None, typer.Option(help="The finding's reference (default: the inspection's)")] = None,
    report: Annotated[uuid.UUID | None, typer.Option(help="false_declaration: the declared report contradicted "
                                                          "(default: the one the inspection contradicts)")] = None,
    inspection: Annotated[uuid.UUID | None, typer.Option(help="The recorded inspection it rests on")] = None,
    token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Ask the ministry to freeze or revoke a permit (a regional office, for its region's plants)."""
    evidence = {"finding": finding, "report_id": str(report) if report else None}
    body = {"permit_id": str(permit_id), "action": action, "reason": reason,
            "ground": {"code": ground, "evidence": {k: v for k, v in evidence.items() if v is not None}},
            "inspection_id": str(inspection) if inspection else None}
    found = Api("supervision", token, as_json=as_json).post("/sanction-requests", body)
    emit(found, as_json, lambda answer: typer.echo(
        f"{answer['request_id']}: {answer['action']} requested, {answer['status']} (the ministry decides)"))


@sanction_requests.command("list")
def list_requests(status: Annotated[str | None, typer.Option(help="pending | approved | declined")] = None,
                  province: Province = None, regency: Regency = None, limit: Limit = 50,
                  cursor: Annotated[str | None, typer.Option(help="`next_cursor` of the previous page")] = None,
                  token: TokenOption = None, as_json: JsonOption = False) -> None:
    """The ministry's queue of requests, the oldest first, with their decisions (task forces and regional offices:
    their region's)."""
    found = Api("permits", token, as_json=as_json).get("/sanction-requests", status=status, province=province,
                                                       regency=regency, limit=limit, cursor=cursor)

    def render(body: dict[str, Any]) -> None:
        table("Sanction requests", ["request", "permit", "company", "regency", "action", "ground", "office",
                                    "requested", "status", "decision"],
              [[r["request_id"], r["permit"]["permit_number"] or r["permit_id"], r["permit"]["company_name"],
                r["regency_code"], r["action"], r["ground"]["code"], r["office_region"], r["requested_at"],
                r["status"], (r["decision"] or {}).get("reason")] for r in body["items"]])
        _more(body, "--cursor", "next_cursor")

    emit(found, as_json, render)


@sanction_requests.command("show")
def show_request(request_id: RequestId, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """One request as the ministry holds it: its ground, the permit, and the decision once made."""
    found = Api("permits", token, as_json=as_json).get(f"/sanction-requests/{request_id}")
    emit(found, as_json, lambda body: fields(f"Sanction request {body['request_id']}", body))


@sanction_requests.command("decide")
def decide_request(request_id: RequestId, decision: Annotated[str, typer.Argument(help="approve | decline")],
                   reason: Annotated[str, typer.Option("--reason", "-r", help="Why (sent to the regional office)")],
                   token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Approve (the permit is frozen or revoked on the request's ground) or decline a request (operator)."""
    found = Api("permits", token, as_json=as_json).post(f"/sanction-requests/{request_id}/decision",
                                                        {"decision": decision, "reason": reason})
    emit(found, as_json, lambda body: typer.echo(f"{body['request_id']}: {body['status']}, permit "
                                                 f"{body['permit']['status']}"))
