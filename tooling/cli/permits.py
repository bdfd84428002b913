"""`iomki permits …`: search, read and decide permits through the permits service's HTTP API."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer

from tooling.cli.support import Api, JsonOption, TokenOption, emit, fields, table

app = typer.Typer(help="Permits: list, show, issue, reject, freeze, reactivate, revoke.", no_args_is_help=True)

# Ids are parsed here: they become part of a URL path, which only a UUID may be.
PermitId = Annotated[uuid.UUID, typer.Argument(help="The permit id (a UUID, as `permits list` shows)")]
Reason = Annotated[str, typer.Option("--reason", "-r", help="Why (recorded in the permit's history)")]
GROUNDS = "false_declaration | inspection_finding | closure_not_observed | company_request | other"
Ground = Annotated[str, typer.Option("--ground", "-g", help=f"The ground of the sanction: {GROUNDS}")]
Finding = Annotated[str | None, typer.Option(help="The inspection's reference for the finding")]
ReportId = Annotated[uuid.UUID | None, typer.Option(help="false_declaration: the declared report contradicted")]
ClosureId = Annotated[uuid.UUID | None, typer.Option(help="closure_not_observed: the closure the plant ignored")]


@app.command("list")
def list_permits(
    status: Annotated[str | None, typer.Option(help="SUBMITTED | ISSUED | REJECTED | FROZEN | REVOKED")] = None,
    province: Annotated[str | None, typer.Option(help="Province code, e.g. 32")] = None,
    regency: Annotated[str | None, typer.Option(help="Regency code, e.g. 32.16")] = None,
    nib: Annotated[str | None, typer.Option(help="A company's 13-digit NIB")] = None,
    sector: Annotated[str | None, typer.Option(help="critical | essential | non_essential")] = None,
    limit: Annotated[int, typer.Option(help="Page size (1–200)")] = 50,
    cursor: Annotated[str | None, typer.Option(help="`next_cursor` of the previous page")] = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Search permits, a page at a time (the service's order; follow `next_cursor` for more)."""
    page = Api("permits", token, as_json=as_json).get(
        "/permits", status=status.upper() if status else None, province=province, regency=regency, nib=nib,
        sector=sector, limit=limit, cursor=cursor)

    def render(body: dict[str, Any]) -> None:
        table(f"Permits ({len(body['items'])})",
              ["permit id", "number", "status", "company", "NIB", "regency", "sector", "freezes"],
              [[p["permit_id"], p["permit_number"], p["status"], p["company_name"], p["nib"], p["regency_code"],
                p["sector_class"], p["freeze_count"]] for p in body["items"]])
        if body.get("next_cursor"):
            typer.echo(f"more: --cursor {body['next_cursor']}")

    emit(page, as_json, render)


@app.command()
def show(permit_id: PermitId, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """One permit, its operating status (closures) and its history."""
    api = Api("permits", token, as_json=as_json)
    permit = api.get(f"/permits/{permit_id}")
    permit["history"] = api.get(f"/permits/{permit_id}/history")["transitions"]

    def render(body: dict[str, Any]) -> None:
        fields(f"Permit {body['permit_number'] or body['permit_id']}",
               {k: v for k, v in body.items() if k not in ("history", "closures")})
        if body["closures"]:
            table("Closures", ["scope", "reason", "starts", "ends"],
                  [[c["scope"], c["reason"], c["starts_at"], c["ends_at"]] for c in body["closures"]])
        table("History", ["at", "action", "from", "to", "actor", "role", "reason"],
              [[t["at"], t["action"], t["from_status"], t["to_status"], t["actor"], t["role"], t["reason"]]
               for t in body["history"]])

    emit(permit, as_json, render)


@app.command()
def issue(permit_id: PermitId, reason: Reason = "documents complete", token: TokenOption = None,
          as_json: JsonOption = False) -> None:
    """Issue an applied permit (operator)."""
    _decide(permit_id, "issue", reason, token, as_json)


@app.command()
def reject(permit_id: PermitId, reason: Reason, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Reject an application (operator)."""
    _decide(permit_id, "reject", reason, token, as_json)


@app.command()
def freeze(permit_id: PermitId, ground: Ground, reason: Reason, finding: Finding = None, report: ReportId = None,
           closure: ClosureId = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Freeze (deactivate) an issued permit on a ground (operator)."""
    _sanction(permit_id, "freeze", _ground(ground, finding, report, closure), reason, token, as_json)


@app.command()
def reactivate(permit_id: PermitId, reason: Reason, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Reactivate a frozen permit (operator)."""
    _transition(permit_id, "reactivate", reason, token, as_json)


@app.command()
def revoke(permit_id: PermitId, ground: Ground, reason: Reason, finding: Finding = None, report: ReportId = None,
           closure: ClosureId = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Revoke an issued or frozen permit on a ground (operator)."""
    _sanction(permit_id, "revoke", _ground(ground, finding, report, closure), reason, token, as_json)


def _ground(code: str, finding: str | None, report: uuid.UUID | None, closure: uuid.UUID | None) -> dict[str, Any]:
    evidence = {"finding": finding, "report_id": str(report) if report else None,
                "closure_id": str(closure) if closure else None}
    return {"code": code, "evidence": {key: value for key, value in evidence.items() if value is not None}}


def _decide(permit_id: uuid.UUID, decision: str, reason: str, token: str | None, as_json: bool) -> None:
    result = Api("permits", token, as_json=as_json).post(f"/permits/{permit_id}/decision",
                                                         {"decision": decision, "reason": reason})
    emit(result, as_json, lambda body: typer.echo(
        f"{body['permit_id']}: {body['status']}" + (f" ({body['permit_number']})" if body["permit_number"] else "")))


def _transition(permit_id: uuid.UUID, action: str, reason: str, token: str | None, as_json: bool) -> None:
    _sanction(permit_id, action, None, reason, token, as_json)


def _sanction(permit_id: uuid.UUID, action: str, ground: dict[str, Any] | None, reason: str, token: str | None,
              as_json: bool) -> None:
    body: dict[str, Any] = {"reason": reason} | ({"ground": ground} if ground else {})
    result = Api("permits", token, as_json=as_json).post(f"/permits/{permit_id}/{action}", body)
    emit(result, as_json, lambda body: typer.echo(
        f"{body['permit_id']} ({body['permit_number']}): {body['status']}, frozen {body['freeze_count']}×"))
