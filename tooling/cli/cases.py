"""`iomki cases …` and `iomki contacts …`: confirmed cases at plants and their close contacts (the incidents service).

A company (or the regency health office) enters a case with its close contacts, as a count or as a pseudonymous line
list of last exposures; each contact quarantines from its own exposure and is released by a negative exit test on
day 5 or at its end. The health office confirms or corrects cases and closes the follow-up of their contacts.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

import typer

from shared.contract import CaseVerdict
from tooling.cli.support import Api, JsonOption, TokenOption, emit, fields, table

app = typer.Typer(help="Confirmed cases at plants, their close contacts and their verification.",
                  no_args_is_help=True)
contacts = typer.Typer(help="One close contact of a case: its tests and its last exposure.", no_args_is_help=True)

DATE_FORMATS = ["%Y-%m-%d"]
CaseId = Annotated[uuid.UUID, typer.Argument(help="The case id (as `cases report` shows)")]
ContactId = Annotated[uuid.UUID, typer.Argument(help="The contact id (as `cases contacts` shows)")]
Exposures = Annotated[list[datetime] | None, typer.Option(
    "--exposed-on", formats=DATE_FORMATS,
    help="A close contact's last exposure (YYYY-MM-DD): repeat for each contact of the line list")]


@app.command()
def report(
    facility_id: Annotated[uuid.UUID, typer.Option(help="The plant's facility id")],
    case_ref: Annotated[str, typer.Option(help="The company's pseudonymous case reference (never a name)")],
    confirmed_on: Annotated[datetime, typer.Option(formats=DATE_FORMATS, help="Date of the positive result")],
    symptomatic: Annotated[bool, typer.Option("--symptomatic/--asymptomatic", help="Whether the case has symptoms")],
    symptom_onset: Annotated[datetime | None, typer.Option(
        formats=DATE_FORMATS, help="First day of symptoms: required with --symptomatic (isolation counts from it)")]
    = None,
    tested_on: Annotated[datetime | None, typer.Option(
        formats=DATE_FORMATS, help="Swab date (an asymptomatic case's isolation counts from it)")] = None,
    close_contacts: Annotated[int | None, typer.Option(
        min=0, help="How many close contacts, when they are not listed with --exposed-on: each is taken as exposed "
                    "on the case's first day of isolation until corrected")] = None,
    exposed_on: Exposures = None,
    from_contact: Annotated[uuid.UUID | None, typer.Option(
        help="The close contact (of another case at this plant) who became this case")] = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Report a confirmed case; the service derives isolation, each contact's quarantine and closures."""
    # Kepmenkes 4641/2021: a symptomatic case isolates from symptom onset, so the service refuses one without it.
    if symptomatic and symptom_onset is None:
        raise typer.BadParameter("Wajib untuk kasus bergejala / required for a symptomatic case: isolation counts "
                                 "from symptom onset", param_hint="--symptom-onset")
    if not symptomatic and symptom_onset is not None:
        raise typer.BadParameter("Hanya untuk kasus bergejala / only for a symptomatic case (--symptomatic)",
                                 param_hint="--symptom-onset")
    body: dict[str, Any] = {"facility_id": str(facility_id), "case_ref": case_ref, "confirmed_on": _day(confirmed_on),
                            "symptomatic": symptomatic, "symptom_onset_on": _maybe_day(symptom_onset),
                            "tested_on": _maybe_day(tested_on), "close_contacts": close_contacts,
                            "from_contact_id": str(from_contact) if from_contact else None}
    if exposed_on:
        body["contacts"] = _line_list(exposed_on)
    case = Api("incidents", token, as_json=as_json).post("/cases", body)
    emit(case, as_json, _render_case)


@app.command()
def show(case_id: CaseId, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """One case: its isolation, verification, contacts' follow-up and links."""
    emit(Api("incidents", token, as_json=as_json).get(f"/cases/{case_id}"), as_json, _render_case)


@app.command("contacts")
def list_contacts(
    case_id: CaseId,
    after: Annotated[int, typer.Option(help="`next` of the previous page (a contact's number)")] = 0,
    limit: Annotated[int, typer.Option(help="At most this many (1–500)")] = 100,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """A case's close contacts in number order, with the tally of their quarantine."""
    found = Api("incidents", token, as_json=as_json).get(f"/cases/{case_id}/contacts", after=after, limit=limit)

    def render(body: dict[str, Any]) -> None:
        fields(f"Contacts of case {body['case_id']}", {k: v for k, v in body.items() if k not in ("case_id", "items",
                                                                                                  "next")})
        table(None, ["contact", "#", "last exposure", "entry test", "exit test", "quarantine until", "status"],
              [[c["contact_id"], c["number"], c["last_exposure_on"] + (" (assumed)" if c["exposure_assumed"] else ""),
                _test(c["entry_test"]), _test(c["exit_test"]), c["quarantine"]["ends_on"], c["status"]]
               for c in body["items"]])
        if body.get("next"):
            typer.echo(f"more: --after {body['next']}")

    emit(found, as_json, render)


@app.command("add-contacts")
def add_contacts(case_id: CaseId, exposed_on: Exposures = None, token: TokenOption = None,
                 as_json: JsonOption = False) -> None:
    """More close contacts of a case, as tracing finds them; each quarantines from its own last exposure."""
    if not exposed_on:
        raise typer.BadParameter("give each new contact's last exposure", param_hint="--exposed-on")
    added = Api("incidents", token, as_json=as_json).post(f"/cases/{case_id}/contacts",
                                                          {"contacts": _line_list(exposed_on)})

    def render(body: dict[str, Any]) -> None:
        for contact in body["items"]:
            _render_contact(contact)

    emit(added, as_json, render)


@app.command()
def verify(
    case_id: CaseId,
    verdict: Annotated[CaseVerdict, typer.Argument(help="confirmed (as entered) | corrected")],
    confirmed_on: Annotated[datetime | None, typer.Option(formats=DATE_FORMATS, help="The corrected confirmation")]
    = None,
    tested_on: Annotated[datetime | None, typer.Option(formats=DATE_FORMATS, help="The corrected swab date")] = None,
    symptomatic: Annotated[bool | None, typer.Option("--symptomatic/--asymptomatic",
                                                     help="Whether the case in fact has symptoms")] = None,
    symptom_onset: Annotated[datetime | None, typer.Option(formats=DATE_FORMATS,
                                                           help="The corrected first day of symptoms")] = None,
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="Why it is corrected (required then)")] = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """The health office confirms a case as entered, or corrects its dates or symptoms (an isolating case's
    isolation follows the corrected facts)."""
    corrections = {name: value for name, value in {
        "confirmed_on": _maybe_day(confirmed_on), "tested_on": _maybe_day(tested_on), "symptomatic": symptomatic,
        "symptom_onset_on": _maybe_day(symptom_onset)}.items() if value is not None}
    body = {"verdict": verdict.value, "corrections": corrections, "reason": reason}
    case = Api("incidents", token, as_json=as_json).post(f"/cases/{case_id}/verification", body)
    emit(case, as_json, _render_case)


@app.command("close-follow-up")
def close_follow_up(case_id: CaseId, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """The health office closes the follow-up of a case's contacts, once none is in quarantine."""
    case = Api("incidents", token, as_json=as_json).post(f"/cases/{case_id}/contacts/close")
    emit(case, as_json, lambda body: typer.echo(f"{body['case_id']}: contacts' follow-up closed at "
                                                f"{body['contact_follow_up_closed_at']}"))


@app.command()
def tracing(
    province: Annotated[str | None, typer.Option(help="A province code, e.g. 32")] = None,
    regency: Annotated[str | None, typer.Option(help="A regency code, e.g. 32.16")] = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Close contacts traced per case in a region, against the target, and its plants below it."""
    found = Api("incidents", token, as_json=as_json).get("/tracing", province=province, regency=regency)
    emit(found, as_json, lambda body: fields(
        f"Tracing in {body['regency_code'] or body['province_code'] or 'Indonesia'}", body))


@contacts.command("show")
def show_contact(contact_id: ContactId, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """One close contact: its exposure, tests and quarantine."""
    found = Api("incidents", token, as_json=as_json).get(f"/contacts/{contact_id}")
    emit(found, as_json, lambda body: fields(f"Contact {body['contact_id']}", body))


@contacts.command("test")
def record_test(
    contact_id: ContactId,
    kind: Annotated[str, typer.Option(help="entry (day 1 of quarantine) | exit (day 5 or later)")],
    on: Annotated[datetime, typer.Option("--on", formats=DATE_FORMATS, help="The day of the test (YYYY-MM-DD)")],
    result: Annotated[str, typer.Option(help="negative | positive")],
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a contact's entry or exit test: a negative exit test releases it that day; a positive one is a case of
    its own, to enter with `cases report --from-contact`."""
    found = Api("incidents", token, as_json=as_json).post(f"/contacts/{contact_id}/tests", {
        "kind": kind, "tested_on": _day(on), "result": result})
    emit(found, as_json, _render_contact)


@contacts.command("exposure")
def correct_exposure(
    contact_id: ContactId,
    on: Annotated[datetime, typer.Option("--on", formats=DATE_FORMATS, help="The last exposure (YYYY-MM-DD)")],
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Correct a contact's last exposure as traced: its quarantine counts from it."""
    found = Api("incidents", token, as_json=as_json).patch(f"/contacts/{contact_id}", {"last_exposure_on": _day(on)})
    emit(found, as_json, _render_contact)


def _render_case(case: dict[str, Any]) -> None:
    fields(f"Case {case['case_id']}", case)


def _render_contact(contact: dict[str, Any]) -> None:
    typer.echo(f"{contact['contact_id']} #{contact['number']}: {contact['status']}"
               + (f" on {contact['left_on']}" if contact["left_on"] else
                  f" until {contact['quarantine']['ends_on']}"))


def _test(test: dict[str, Any] | None) -> str | None:
    return f"{test['result']} {test['tested_on']}" if test else None


def _line_list(exposures: list[datetime]) -> list[dict[str, str]]:
    return [{"last_exposure_on": _day(exposure)} for exposure in exposures]


def _day(value: datetime) -> str:
    return date(value.year, value.month, value.day).isoformat()


def _maybe_day(value: datetime | None) -> str | None:
    return _day(value) if value else None
