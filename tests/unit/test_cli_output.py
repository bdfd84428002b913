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
