"""`iomki cases report`: record a confirmed case at a plant (the incidents service)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

import typer

from tooling.cli.support import Api, JsonOption, TokenOption, emit, fields

app = typer.Typer(help="Confirmed cases at plants.", no_args_is_help=True)


@app.callback()
def cases() -> None:
    """Keeps `report` a named subcommand, so more can be added without breaking scripts."""


@app.command()
def report(
    facility_id: Annotated[uuid.UUID, typer.Option(help="The plant's facility id")],
    case_ref: Annotated[str, typer.Option(help="The company's pseudonymous case reference (never a name)")],
    confirmed_on: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Date of the positive result")],
    close_contacts: Annotated[int, typer.Option(min=0, help="Close contacts at the plant")],
    symptomatic: Annotated[bool, typer.Option("--symptomatic/--asymptomatic", help="Whether the case has symptoms")],
    tested_on: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"],
                                                          help="Swab date (isolation counts from it)")] = None,
    contacts_exit_test_negative: Annotated[bool, typer.Option(
        help="Contacts tested out negative on day 5 (5-day quarantine instead of 14)")] = False,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Report a confirmed case; the service derives isolation, quarantine and closures."""
    body = {"facility_id": str(facility_id), "case_ref": case_ref, "confirmed_on": _day(confirmed_on),
            "symptomatic": symptomatic, "close_contacts": close_contacts,
            "tested_on": _day(tested_on) if tested_on else None,
            "contacts_exit_test_negative": contacts_exit_test_negative}
    case = Api("incidents", token, as_json=as_json).post("/cases", body)

    def render(found: dict[str, Any]) -> None:
        fields(f"Case {found['case_id']}", found)

    emit(case, as_json, render)


def _day(value: datetime) -> str:
    return date(value.year, value.month, value.day).isoformat()
