"""`iomki estates …`: an industrial estate's tenants: the plants that name it when they apply, which the estate
confirms or declines, and later releases."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer

from tooling.cli.support import Api, JsonOption, TokenOption, emit, table

app = typer.Typer(help="Industrial estates: the plants inside them (tenants), confirmed by the estate.",
                  no_args_is_help=True)
STATUSES = ("pending", "confirmed", "declined", "released")
EstateId = Annotated[uuid.UUID, typer.Argument(help="The estate's permit id")]
TenantId = Annotated[uuid.UUID, typer.Argument(help="The tenant plant's permit id")]
Reason = Annotated[str, typer.Option("--reason", "-r", help="Why (recorded with the tenancy)")]


@app.command("tenants")
def tenants(estate: EstateId,
            status: Annotated[str, typer.Option(help=" | ".join(STATUSES))] = "confirmed",
            limit: Annotated[int, typer.Option(help="At most this many (1–200)")] = 50,
            cursor: Annotated[str | None, typer.Option(help="`next_cursor` of the previous page")] = None,
            token: TokenOption = None, as_json: JsonOption = False) -> None:
    """The estate's tenancies in one status, in the order the plants claimed them."""
    found = Api("permits", token, as_json=as_json).get(f"/estates/{estate}/tenants", status=status, limit=limit,
                                                       cursor=cursor)

    def render(body: dict[str, Any]) -> None:
        table(f"Tenants of {estate} ({status})", ["tenant permit", "number", "company", "status", "claimed", "answer"],
              [[t["tenant_permit_id"], t["tenant"]["permit_number"], t["tenant"]["company_name"],
                t["tenant"]["status"], t["claimed"]["at"], (t["decision"] or {}).get("reason")]
               for t in body["items"]])
        if body["next_cursor"]:
            typer.echo(f"more: --cursor {body['next_cursor']}")

    emit(found, as_json, render)


@app.command("decide")
def decide(estate: EstateId, tenant: TenantId,
           decision: Annotated[str, typer.Argument(help="confirm | decline")], reason: Reason,
           token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Confirm that a plant lies inside the estate (it then reads the plant's data and hears of its alerts), or
    decline its claim (the estate company, or an operator)."""
    found = Api("permits", token, as_json=as_json).post(f"/estates/{estate}/tenants/{tenant}/decision",
                                                        {"decision": decision, "reason": reason})
    emit(found, as_json, lambda body: typer.echo(f"{body['tenant_permit_id']}: {body['status']}"))


@app.command("release")
def release(estate: EstateId, tenant: TenantId, reason: Reason, token: TokenOption = None,
            as_json: JsonOption = False) -> None:
    """The plant is no longer inside the estate: the estate stops reading it."""
    found = Api("permits", token, as_json=as_json).post(f"/estates/{estate}/tenants/{tenant}/release",
                                                        {"reason": reason})
    emit(found, as_json, lambda body: typer.echo(f"{body['tenant_permit_id']}: {body['status']}"))
