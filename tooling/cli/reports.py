"""`iomki reports …`: a plant's reporting schedule, submitting a report, and compliance by region."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from tooling.cli.support import Api, JsonOption, TokenOption, emit, fail, fields, shown, table

app = typer.Typer(help="Periodic reports: schedule, submit, compliance.", no_args_is_help=True)


@app.command()
def schedule(
    permit_id: Annotated[uuid.UUID, typer.Argument(help="The permit id")],
    limit: Annotated[int, typer.Option(help="How many periods, newest last")] = 52,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """A permit's reporting periods, with their deadlines and status (the period ids `submit` needs)."""
    found = Api("reports", token, as_json=as_json).get(f"/schedules/{permit_id}", limit=limit)

    def render(body: dict[str, Any]) -> None:
        fields(f"Schedule of {body['permit_id']}",
               {k: v for k, v in body.items() if k not in ("permit_id", "periods")})
        table("Periods", ["#", "period id", "starts", "deadline", "status", "warned"],
              [[p["seq"], p["period_id"], p["starts_at"], p["deadline"], p["status"], "yes" if p["warned"] else ""]
               for p in body["periods"]])

    emit(found, as_json, render)


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(help="The report as JSON (the POST /reports body); `-` reads stdin",
                                         allow_dash=True)],
    permit_id: Annotated[uuid.UUID | None, typer.Option(help="Overrides the file's permit_id")] = None,
    period_id: Annotated[uuid.UUID | None, typer.Option(help="Overrides the file's period_id")] = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Submit a periodic report for one period (a company for its own plants, or an operator)."""
    text = sys.stdin.read() if str(file) == "-" else _read(file, as_json)
    try:
        body = json.loads(text)
    except ValueError as exc:
        fail(f"{shown(file)} is not JSON: {shown(exc)}", as_json=as_json)
    if not isinstance(body, dict):
        fail(f"{shown(file)} must hold a JSON object (the report)", as_json=as_json)
    body |= {k: str(v) for k, v in {"permit_id": permit_id, "period_id": period_id}.items() if v}
    accepted = Api("reports", token, as_json=as_json).post("/reports", body)
    emit(accepted, as_json, lambda r: typer.echo(
        f"report {r['report_id']} accepted" + (" (late)" if r["late"] else "")
        + (f", superseding {r['supersedes']}" if r["supersedes"] else "")))


@app.command()
def compliance(
    province: Annotated[str | None, typer.Option(help="Province code, e.g. 32")] = None,
    regency: Annotated[str | None, typer.Option(help="Regency code, e.g. 32.16")] = None,
    days: Annotated[int, typer.Option(help="Deadlines within the last N days")] = 28,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reporting compliance for the nation, a province or a regency."""
    figures = Api("reports", token, as_json=as_json).get("/compliance", province=province, regency=regency,
                                                         days=days)

    def render(body: dict[str, Any]) -> None:
        where = body["regency"] or body["province"] or "Indonesia"
        fields(f"Compliance in {where}, {body['since']} – {body['until']}",
               {k: _percent(v) if k.endswith("_rate") else v for k, v in body.items()
                if k not in ("province", "regency", "since", "until")})

    emit(figures, as_json, render)


def _read(file: Path, as_json: bool) -> str:
    try:
        return file.read_text()
    except OSError as exc:
        fail(f"cannot read {shown(file)}: {shown(exc.strerror)}", as_json=as_json)


def _percent(rate: float | None) -> str:
    return "— (nothing due)" if rate is None else f"{rate:.1%}"
