"""`iomki worklists`, `iomki reactivations …` and `iomki objections …`: the casework around a sanction.

A frozen company asks to be reactivated, or objects to its freeze or revocation; an operator works through what
waits, held to its service level, and decides.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer

from tooling.cli.support import Api, JsonOption, TokenOption, emit, fields, table

KINDS = ("application", "reactivation_request", "objection", "class_review", "sanction_request")
PermitId = Annotated[uuid.UUID, typer.Argument(help="The permit id (a UUID, as `permits list` shows)")]
Reason = Annotated[str, typer.Option("--reason", "-r", help="Why: shown to the company with the decision")]


def worklists(kind: Annotated[list[str] | None, typer.Option(help=f"Only these lists: {' | '.join(KINDS)}")] = None,
              region: Annotated[str | None, typer.Option(help="A province (32) or regency (32.16)")] = None,
              limit: Annotated[int, typer.Option(help="Items per list (1–200)")] = 20,
              token: TokenOption = None, as_json: JsonOption = False) -> None:
    """What waits for a decision, overdue first, with its service level in working days (operators; task forces
    read their region's)."""
    found = Api("permits", token, as_json=as_json).get("/worklists", limit=limit, kind=kind or None, region=region)

    def render(body: dict[str, Any]) -> None:
        for worklist in body["worklists"]:
            table(f"{worklist['kind']}: {worklist['total']} waiting, {worklist['overdue']} overdue "
                  f"(decided within {worklist['sla_working_days']} working days)",
                  ["item", "permit", "company", "regency", "received", "due", "age (h)", ""],
                  [[i["item_id"], i["permit_number"] or i["permit_id"], i["company_name"], i["regency_code"],
                    i["received_at"], i["due_at"], i["age_hours"], "OVERDUE" if i["overdue"] else ""]
                   for i in worklist["items"]])

    emit(found, as_json, render)


reactivations = typer.Typer(help="Reactivation of a frozen permit, on conditions: the request and its decision.",
                            no_args_is_help=True)


@reactivations.command("request")
def request_reactivation(permit_id: PermitId,
                         corrective_action: Annotated[str, typer.Option(
                             "--corrective-action", "-c", help="The corrective action taken (Bahasa Indonesia)")],
                         token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Ask for a frozen permit to be reactivated (the company): its missed reports filed first."""
    found = Api("permits", token, as_json=as_json).post(f"/permits/{permit_id}/reactivation-requests",
                                                        {"corrective_action": corrective_action})
    emit(found, as_json, lambda body: typer.echo(f"{body['request_id']}: {body['status']}"))


@reactivations.command("show")
def reactivation_standing(permit_id: PermitId, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Where a permit's requests stand, and the conditions a new one would meet now."""
    found = Api("permits", token, as_json=as_json).get(f"/permits/{permit_id}/reactivation-requests")

    def render(body: dict[str, Any]) -> None:
        table(f"Conditions ({body['permit_status']})", ["condition", "met", "message"],
              [[c["condition"], "yes" if c["met"] else "no", c.get("message")] for c in body["conditions"]])
        table("Requests", ["request", "status", "requested", "decision"],
              [[r["request_id"], r["status"], r["requested_at"],
                (r["decision"] or {}).get("reason")] for r in body["requests"]])

    emit(found, as_json, render)


@reactivations.command("decide")
def decide_reactivation(request_id: Annotated[uuid.UUID, typer.Argument(help="The request id")],
                        decision: Annotated[str, typer.Argument(help="approve | reject")], reason: Reason,
                        token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Approve (the permit is reactivated) or reject a reactivation request (operator)."""
    found = Api("permits", token, as_json=as_json).post(f"/reactivation-requests/{request_id}/decision",
                                                        {"decision": decision, "reason": reason})
    emit(found, as_json, lambda body: typer.echo(f"{body['request_id']}: {body['status']}, permit "
                                                 f"{body['permit']['status']}"))


objections = typer.Typer(help="Objections to a freeze or revocation: filed within the working days the law gives, "
                              "decided by an operator.", no_args_is_help=True)


@objections.command("file")
def file_objection(permit_id: PermitId,
                   statement: Annotated[str, typer.Option("--statement", "-s", help="The company's statement")],
                   token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Object to the permit's freeze or revocation in force (the company)."""
    found = Api("permits", token, as_json=as_json).post(f"/permits/{permit_id}/objections", {"statement": statement})
    emit(found, as_json, lambda body: typer.echo(f"{body['objection_id']}: filed"))


@objections.command("show")
def permit_objections(permit_id: PermitId, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """A permit's objections, and what may still be objected to and until when."""
    found = Api("permits", token, as_json=as_json).get(f"/permits/{permit_id}/objections")

    def render(body: dict[str, Any]) -> None:
        if body["open_to_objection"]:
            fields("Open to objection", body["open_to_objection"])
        table("Objections", ["objection", "sanction", "filed", "last day", "outcome", "reason"],
              [[o["objection_id"], o["sanction"]["action"], o["filed_at"], o["last_day"],
                (o["decision"] or {}).get("outcome"), (o["decision"] or {}).get("reason")] for o in body["objections"]])

    emit(found, as_json, render)


@objections.command("decide")
def decide_objection(objection_id: Annotated[uuid.UUID, typer.Argument(help="The objection id")],
                     outcome: Annotated[str, typer.Argument(help="upheld | overturned | partly")], reason: Reason,
                     token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Decide an objection (operator): upheld, overturned (the sanction reversed) or partly (a revocation becomes
    a freeze)."""
    found = Api("permits", token, as_json=as_json).post(f"/objections/{objection_id}/decision",
                                                        {"outcome": outcome, "reason": reason})
    emit(found, as_json, lambda body: typer.echo(f"{objection_id}: {outcome}, permit {body['permit']['status']}"))
