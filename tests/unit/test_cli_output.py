"""The CLI prints what the services hold as text: a company's name is never read as console markup, and a line
break in it never breaks a table's row."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from tooling.cli import support
from tooling.cli.app import app as cli

HOSTILE_NAMES = ["PT [/]", "PT [bold]X[/bold]\nY", "PT \x1b[31mRed\x1b[0m"]
SHOWN = {"PT [/]": "PT [/]", "PT [bold]X[/bold]\nY": "PT [bold]X[/bold]\\nY", "PT \x1b[31mRed\x1b[0m":
         "PT \\x1b[31mRed\\x1b[0m"}


@pytest.fixture
def screen(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What a person would see: both consoles, wide enough that no cell wraps, no colours."""
    seen = io.StringIO()
    for name in ("out", "err"):
        monkeypatch.setattr(support, name, Console(file=seen, width=300, color_system=None, highlight=False))
    return seen


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_company_name_in_a_table_prints_as_the_text_it_is(screen, name):
    support.table(f"Permits of {name}", ["permit id", "company"], [["p-1", name]])
    printed = screen.getvalue()
    assert printed.count(SHOWN[name]) == 2  # the title and the cell
    assert "\x1b" not in printed
    assert len([line for line in printed.splitlines() if "p-1" in line]) == 1  # one row, one line


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_company_name_in_a_record_prints_as_the_text_it_is(screen, name):
    support.fields(f"Permit of {name}", {"company_name": name, "contacts": {"name": name}, "notes": [name]})
    printed = screen.getvalue()
    assert printed.count(SHOWN[name]) == 4
    assert "\x1b" not in printed


def test_a_problem_from_a_service_prints_its_detail_and_fields_as_text(screen):
    response = httpx.Response(422, json={
        "title": "Invalid [bold]request[/bold]", "status": 422, "detail": "company PT [/] exists",
        "errors": [{"field": "company_name[/]", "message": "PT [bold]X[/bold]\nY is taken"}],
        "conflicting_name": "PT [/]"})
    with pytest.raises(support.CliFailure):
        support.problem(response, as_json=False)
    printed = screen.getvalue()
    for text in ("Invalid [bold]request[/bold]", "company PT [/] exists", "company_name[/]",
                 "PT [bold]X[/bold]\\nY is taken", "conflicting_name: PT [/]"):
        assert text in printed


def test_iomki_permits_list_shows_hostile_company_names_as_text(monkeypatch):
    page: dict[str, Any] = {"items": [
        {"permit_id": f"p-{n}", "permit_number": None, "status": "ISSUED", "company_name": name,
         "nib": "8120000123456", "regency_code": "32.16", "sector_class": "critical", "freeze_count": 0}
        for n, name in enumerate(HOSTILE_NAMES)], "next_cursor": None}
    monkeypatch.setattr(support.Api, "call", lambda self, method, path, **kwargs: page)
    monkeypatch.setenv("COLUMNS", "300")

    shown = CliRunner().invoke(cli, ["permits", "list", "--token", "t"])

    assert shown.exit_code == 0, shown.output
    for n, name in enumerate(HOSTILE_NAMES):
        rows = [line for line in shown.output.splitlines() if f"p-{n}" in line]
        assert len(rows) == 1 and SHOWN[name] in rows[0]


def test_iomki_worklist_ranks_plants_with_the_parts_of_their_scores(monkeypatch):
    page: dict[str, Any] = {"items": [
        {"facility_id": f"f-{n}", "permit_id": f"p-{n}", "permit_number": f"IOMKI-{n}", "company_name": name,
         "regency_code": "32.16", "status": "ISSUED", "score": 9.5 - n,
         "parts": {"complaints": 1, "cases": 0, "days_since_inspection": 15}, "last_inspected_on": None,
         "open_complaints": 1} for n, name in enumerate(HOSTILE_NAMES)], "next": "abc"}
    monkeypatch.setattr(support.Api, "call", lambda self, method, path, **kwargs: page)
    monkeypatch.setenv("COLUMNS", "300")

    first = CliRunner().invoke(cli, ["worklist", "--token", "t"])
    after = CliRunner().invoke(cli, ["worklist", "--after", "abc", "--token", "t"])

    assert first.exit_code == 0, first.output
    for n, name in enumerate(HOSTILE_NAMES):
        [row] = [line for line in first.output.splitlines() if f"IOMKI-{n}" in line]
        assert row.split()[1] == str(n + 1) and SHOWN[name] in row and "never" in row
        assert "complaints=1, days_since_inspection=15" in row and "cases=" not in row
    assert "more: --after abc" in first.output
    assert [line.split()[1] for line in after.output.splitlines() if "IOMKI-" in line] == ["+1", "+2", "+3"]


def test_iomki_inspections_photo_uploads_the_files_bytes_as_its_type(monkeypatch, tmp_path):
    sent: list[dict[str, Any]] = []

    def call(self, method, path, **kwargs):
        sent.append({"method": method, "path": path} | kwargs)
        return {"photo_id": "ph-1", "content_type": "image/jpeg", "width": 4, "height": 3}

    monkeypatch.setattr(support.Api, "call", call)
    (tmp_path / "gate.JPG").write_bytes(b"\xff\xd8 jpeg")
    (tmp_path / "gate.gif").write_bytes(b"GIF89a")
    inspection = "0c9b4b6e-9f2b-4d3c-8a57-2f0e4f1d2a11"

    uploaded = CliRunner().invoke(cli, ["inspections", "photo", inspection, str(tmp_path / "gate.JPG"), "--token", "t"])
    refused = CliRunner().invoke(cli, ["inspections", "photo", inspection, str(tmp_path / "gate.gif"), "--token", "t"])

    assert uploaded.exit_code == 0, uploaded.output
    assert "ph-1: image/jpeg 4×3" in uploaded.output
    assert sent == [{"method": "POST", "path": f"/inspections/{inspection}/photos", "content": b"\xff\xd8 jpeg",
                     "headers": {"Content-Type": "image/jpeg"}}]
    assert refused.exit_code == 2 and ".png" in refused.output


@pytest.mark.parametrize(("option", "value"), [("--member", "Satgas"), ("--member", "Satgas:police"),
                                               ("--member", ":task_force")])
def test_iomki_inspections_plan_refuses_a_member_it_cannot_read_before_calling(monkeypatch, option, value):
    monkeypatch.setattr(support.Api, "call", lambda *args, **kwargs: pytest.fail("called the service"))
    refused = CliRunner().invoke(cli, ["inspections", "plan", "0c9b4b6e-9f2b-4d3c-8a57-2f0e4f1d2a11", "--on",
                                       "2026-12-07", option, value, "--token", "t"])
    assert refused.exit_code == 2 and "Name:body" in refused.output


@pytest.mark.parametrize("value", ["masks", "masks=broken", "gloves=met"])
def test_iomki_inspections_record_refuses_a_finding_it_cannot_read_before_calling(monkeypatch, value):
    monkeypatch.setattr(support.Api, "call", lambda *args, **kwargs: pytest.fail("called the service"))
    refused = CliRunner().invoke(cli, ["inspections", "record", "0c9b4b6e-9f2b-4d3c-8a57-2f0e4f1d2a11", "--on",
                                       "2026-12-07", "--finding", value, "--token", "t"])
    assert refused.exit_code == 2 and "item=result" in refused.output


def test_iomki_inspections_record_says_when_a_finding_contradicts_a_declared_report(monkeypatch):
    contradiction = "Temuan ini bertentangan dengan laporan … A finding contradicts the report …"
    answer = {"inspection_id": "i-1", "reference": "INSP-2026-000001", "status": "recorded", "violations": 1,
              "contradicted_report_id": "r-9", "contradiction": contradiction}
    monkeypatch.setattr(support.Api, "call", lambda self, method, path, **kwargs: answer)

    shown = CliRunner().invoke(cli, ["inspections", "record", "0c9b4b6e-9f2b-4d3c-8a57-2f0e4f1d2a11", "--on",
                                     "2026-12-07", "--finding", "masks=violated", "--token", "t"])

    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines() == ["i-1 (INSP-2026-000001): recorded, 1 violated",
                                         f"{contradiction} (report r-9)"]


CASE_ARGS = ["cases", "report", "--facility-id", "0c9b4b6e-9f2b-4d3c-8a57-2f0e4f1d2a11", "--case-ref", "C-1",
             "--confirmed-on", "2026-12-07", "--token", "t"]


@pytest.mark.parametrize(("symptoms", "hint"), [(["--symptomatic"], "required for a symptomatic case"),
                                                (["--asymptomatic", "--symptom-onset", "2026-12-05"],
                                                 "only for a symptomatic case")])
def test_iomki_cases_report_says_what_symptom_onset_is_for_before_calling(monkeypatch, symptoms, hint):
    monkeypatch.setattr(support.Api, "call", lambda *args, **kwargs: pytest.fail("called the service"))
    monkeypatch.setenv("COLUMNS", "300")
    refused = CliRunner().invoke(cli, [*CASE_ARGS, *symptoms])
    assert refused.exit_code == 2 and "--symptom-onset" in refused.output and hint in refused.output


def test_iomki_cases_report_sends_the_symptom_onset_and_each_contacts_last_exposure(monkeypatch):
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(support.Api, "call", lambda self, method, path, **kwargs: sent.append(
        {"method": method, "path": path} | kwargs) or {"case_id": "c-1"})

    entered = CliRunner().invoke(cli, [*CASE_ARGS, "--symptomatic", "--symptom-onset", "2026-12-05",
                                       "--exposed-on", "2026-12-04", "--exposed-on", "2026-12-05"])

    assert entered.exit_code == 0, entered.output
    [call] = sent
    assert (call["method"], call["path"]) == ("POST", "/cases")
    assert call["body"] | {"facility_id": None} == {
        "facility_id": None, "case_ref": "C-1", "confirmed_on": "2026-12-07", "symptomatic": True,
        "symptom_onset_on": "2026-12-05", "tested_on": None, "close_contacts": None, "from_contact_id": None,
        "contacts": [{"last_exposure_on": "2026-12-04"}, {"last_exposure_on": "2026-12-05"}]}


CONTACT = {"contact_id": "k-1", "number": 3, "status": "released", "left_on": "2026-12-09",
           "quarantine": {"starts_on": "2026-12-04", "ends_on": "2026-12-09"}}
SUBJECT = "0c9b4b6e-9f2b-4d3c-8a57-2f0e4f1d2a11"


@pytest.mark.parametrize(("args", "method", "path", "body", "shown"), [
    (["contacts", "test", SUBJECT, "--kind", "exit", "--on", "2026-12-09", "--result", "negative"], "POST",
     f"/contacts/{SUBJECT}/tests", {"kind": "exit", "tested_on": "2026-12-09", "result": "negative"},
     "k-1 #3: released on 2026-12-09"),
    (["contacts", "exposure", SUBJECT, "--on", "2026-12-04"], "PATCH", f"/contacts/{SUBJECT}",
     {"last_exposure_on": "2026-12-04"}, "k-1 #3: released on 2026-12-09"),
    (["cases", "verify", SUBJECT, "corrected", "--symptom-onset", "2026-12-03", "-r", "onset per the swab form"],
     "POST", f"/cases/{SUBJECT}/verification",
     {"verdict": "corrected", "corrections": {"symptom_onset_on": "2026-12-03"}, "reason": "onset per the swab form"},
     None),
    (["cases", "verify", SUBJECT, "confirmed"], "POST", f"/cases/{SUBJECT}/verification",
     {"verdict": "confirmed", "corrections": {}, "reason": None}, None),
])
def test_iomki_contacts_and_verification_send_what_the_service_takes(monkeypatch, args, method, path, body, shown):
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(support.Api, "call", lambda self, method, path, **kwargs: sent.append(
        {"method": method, "path": path} | kwargs) or CONTACT | {"case_id": "c-1"})

    done = CliRunner().invoke(cli, [*args, "--token", "t"])

    assert done.exit_code == 0, done.output
    assert sent == [{"method": method, "path": path, "body": body}]
    if shown:
        assert done.output.splitlines() == [shown]


def test_iomki_cases_contacts_shows_the_line_list_and_its_tally(monkeypatch):
    page = {"case_id": "c-1", "total": 2, "quarantining": 1, "released": 1, "tested_positive": 0,
            "exposure_assumed": 1, "last_quarantine_ends_on": "2026-12-19", "follow_up_closed_at": None, "next": 2,
            "items": [CONTACT | {"last_exposure_on": "2026-12-04", "exposure_assumed": False,
                                 "entry_test": {"tested_on": "2026-12-05", "result": "negative"},
                                 "exit_test": {"tested_on": "2026-12-09", "result": "negative"}},
                      CONTACT | {"contact_id": "k-2", "number": 4, "status": "quarantining", "left_on": None,
                                 "last_exposure_on": "2026-12-05", "exposure_assumed": True, "entry_test": None,
                                 "exit_test": None, "quarantine": {"starts_on": "2026-12-05",
                                                                   "ends_on": "2026-12-19"}}]}
    asked: list[dict[str, Any]] = []
    monkeypatch.setattr(support.Api, "call", lambda self, method, path, **kwargs: asked.append(
        {"path": path} | kwargs) or page)
    monkeypatch.setenv("COLUMNS", "300")

    shown = CliRunner().invoke(cli, ["cases", "contacts", SUBJECT, "--after", "2", "--token", "t"])

    assert shown.exit_code == 0, shown.output
    assert asked == [{"path": f"/cases/{SUBJECT}/contacts", "params": {"after": 2, "limit": 100}}]
    rows = {cells[0]: cells[1:] for line in shown.output.splitlines()
            if len(cells := [cell.strip() for cell in line.strip("│ ").split("│")]) == 7}
    assert rows["k-1"] == ["3", "2026-12-04", "negative 2026-12-05", "negative 2026-12-09", "2026-12-09", "released"]
    assert rows["k-2"] == ["4", "2026-12-05 (assumed)", "", "", "2026-12-19", "quarantining"]
    tally = dict(line.split() for line in shown.output.splitlines()[1:8])
    assert tally == {"total": "2", "quarantining": "1", "released": "1", "tested_positive": "0",
                     "exposure_assumed": "1", "last_quarantine_ends_on": "2026-12-19", "follow_up_closed_at": "—"}
    assert "more: --after 2" in shown.output
