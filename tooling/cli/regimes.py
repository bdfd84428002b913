"""`iomki regimes …`: the reporting regimes' timeline, and an operator's changes to it ahead of time."""

from __future__ import annotations

import urllib.parse
from datetime import date, datetime
from typing import Annotated, Any

import typer

from tooling.cli.support import Api, JsonOption, TokenOption, emit, fields, table

app = typer.Typer(help="Reporting regimes: the timeline, scheduling and withdrawing a regime.", no_args_is_help=True)

# The ladders a regime may name (the reports service's closed list; the service refuses any other).
LADDERS = ("SE-8/2020", "SE-3/2021", "SE-5/2021")


@app.command("list")
def listing(token: TokenOption = None, as_json: JsonOption = False) -> None:
    """The timeline, which regime is in force now in each zone, and the latest changes (who, when, what)."""
    found = Api("reports", token, as_json=as_json).get("/regimes")

    def render(body: dict[str, Any]) -> None:
        fields("In force now" + (" (IOMKI_REPORT_REGIME replaces the timeline)" if body["configured"] else ""),
               body["in_force"])
        table("Regimes", ["name", "from", "rule", "ladder", "declaration", "shipped", "scheduled by", "source"],
              [[r["name"], r["effective_on"], r["rule"], r["ladder"], "required" if r["declaration"] else "",
                "yes" if r["shipped"] else "", r["scheduled_by"], r["source"]] for r in body["regimes"]])
        table("Changes", ["at", "by", "action", "name"],
              [[c["at"], c["by"], c["action"], c["name"]] for c in body["changes"]])

    emit(found, as_json, render)


@app.command()
def schedule(
    name: Annotated[str, typer.Argument(help="The circular's number, e.g. SE-2/2022")],
    effective_on: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"],
                                                   help="The date it takes effect: not yet begun in any zone")],
    rule: Annotated[str, typer.Option(help="weekly:DAY@HH:MM or twice-weekly:DAY,DAY@HH:MM (local time)")],
    ladder: Annotated[str, typer.Option(help=f"The circular's sanction ladder: {', '.join(LADDERS)}")],
    source: Annotated[str, typer.Option(help="The circular that sets the regime")],
    declaration: Annotated[bool, typer.Option(help="Its reports must carry the company's declaration that their "
                                                   "data are true (as under SE 5/2021)")] = True,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Schedule a regime ahead of time (operators). It applies to periods opening from its date on."""
    day: date = effective_on.date()
    body = {"name": name, "source": source, "effective_on": day.isoformat(), "rule": rule, "ladder": ladder,
            "declaration": declaration}
    scheduled = Api("reports", token, as_json=as_json).post("/regimes", body)
    emit(scheduled, as_json, lambda r: typer.echo(
        f"regime {r['name']} scheduled from {r['effective_on']}: {r['rule']}, ladder {r['ladder']}"
        + (", declaration required" if r["declaration"] else "")))


@app.command()
def withdraw(
    name: Annotated[str, typer.Argument(help="The regime's name")],
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Withdraw a scheduled regime before it takes effect anywhere (operators)."""
    withdrawn = Api("reports", token, as_json=as_json).call("DELETE", f"/regimes/{urllib.parse.quote(name)}")
    emit(withdrawn, as_json, lambda r: typer.echo(f"regime {r['name']} withdrawn"))
