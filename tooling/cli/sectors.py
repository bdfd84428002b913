"""`iomki sectors …`: the KBLI sector table plants' classes are read from, and the companies' claims against its
reading that an operator accepts or rejects."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer

from tooling.cli.support import Api, JsonOption, TokenOption, emit, fields, table

app = typer.Typer(help="Sector classes: the KBLI sector table, and the companies' class claims in review.",
                  no_args_is_help=True)
STATUSES = ("pending", "accepted", "rejected")


@app.command("table")
def sector_table(token: TokenOption = None, as_json: JsonOption = False) -> None:
    """The KBLI sector table in force: its version, the lists it is read from, its rows."""
    found = Api("permits", token, as_json=as_json).get("/kbli-sectors")

    def render(body: dict[str, Any]) -> None:
        fields("KBLI sector table", {"version": body["version"], "source": body["source"],
                                     "rows": body["row_count"]})
        table("Rows (the longest prefix of a code decides; a code no row matches is non_essential)",
              ["prefix", "class", "export", "name"],
              [[r["prefix"], r["class"], "yes" if r["export_oriented"] else "", r["name"]] for r in body["rows"]])

    emit(found, as_json, render)


@app.command("reviews")
def reviews(status: Annotated[str, typer.Option(help=f"{' | '.join(STATUSES)}")] = "pending",
            permit: Annotated[uuid.UUID | None, typer.Option(help="One permit's claims")] = None,
            province: Annotated[str | None, typer.Option(help="A province code, e.g. 32")] = None,
            regency: Annotated[str | None, typer.Option(help="A regency code, e.g. 32.16")] = None,
            limit: Annotated[int, typer.Option(help="At most this many (1–200)")] = 50,
            cursor: Annotated[str | None, typer.Option(help="`next_cursor` of the previous page")] = None,
            token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Companies' class claims in one status, the oldest first (task forces: their region's; a company: its own)."""
    found = Api("permits", token, as_json=as_json).get("/class-reviews", status=status, permit_id=permit,
                                                       province=province, regency=regency, limit=limit, cursor=cursor)

    def render(body: dict[str, Any]) -> None:
        table(f"Class reviews ({status})", ["review", "permit", "company", "regency", "claimed", "table reads",
                                            "table", "opened", "decision"],
              [[r["review_id"], r["permit"]["permit_number"] or r["permit_id"], r["permit"]["company_name"],
                r["regency_code"], _classing(r["claimed"]), _classing(r["derived"]), r["table_version"],
                r["opened_at"], (r["decision"] or {}).get("reason")] for r in body["items"]])
        if body["next_cursor"]:
            typer.echo(f"more: --cursor {body['next_cursor']}")

    emit(found, as_json, render)


@app.command("decide")
def decide(review_id: Annotated[uuid.UUID, typer.Argument(help="The review id (as `sectors reviews` shows)")],
           decision: Annotated[str, typer.Argument(help="accept | reject")],
           reason: Annotated[str, typer.Option("--reason", "-r", help="Why: shown to the company with the decision")],
           token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Accept a company's class claim (the plant's class becomes it) or reject it (the table's class stays)."""
    found = Api("permits", token, as_json=as_json).post(f"/class-reviews/{review_id}/decision",
                                                        {"decision": decision, "reason": reason})
    emit(found, as_json, lambda body: typer.echo(
        f"{body['review_id']}: {body['status']}, plant {body['permit']['sector_class']}"
        f"{' (export-oriented)' if body['permit']['export_oriented'] else ''}, set by {body['permit']['class_basis']}"))


def _classing(classing: dict[str, Any]) -> str:
    return classing["class"] + (" + export" if classing["export_oriented"] else "")
