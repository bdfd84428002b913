"""`iomki ppkm …` and `iomki plants allowance`: PPKM levels by region, the staffing rule sets, and what a plant may
run under them."""

from __future__ import annotations

import json
import tomllib
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from tooling.cli.support import Api, JsonOption, TokenOption, emit, fail, fields, shown, table

app = typer.Typer(help="PPKM: levels by province and regency, and the staffing rule sets.", no_args_is_help=True)
plants = typer.Typer(help="Plants: what a plant may run under the PPKM level of its regency.", no_args_is_help=True)

LEVELS = ("emergency", "4", "3", "2", "1")
Day = Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])]


@app.command("set-level")
def set_level(
    province: Annotated[str, typer.Option("--province", "-p", help="Province code, e.g. 32")],
    level: Annotated[str, typer.Option("--level", "-l", help=f"The level: {' | '.join(LEVELS)}")],
    effective_from: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"],
                                                     help="Its first day, in the region's time zone")],
    instruction: Annotated[str, typer.Option("--instruction", "-i", help="The instruction that sets it, e.g. "
                                                                          "\"Inmendagri 22/2021\"")],
    reason: Annotated[str, typer.Option(help="Why it is recorded (audited)")],
    regency: Annotated[str | None, typer.Option("--regency", "-r", help="A regency of the province, e.g. 32.16; "
                                                                        "without it, every regency")] = None,
    effective_until: Annotated[datetime | None, typer.Option("--until", formats=["%Y-%m-%d"],
                                                             help="Its last day; without it, until another level")]
    = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a PPKM level for a province or a regency (operators): applied to its plants on its first day."""
    body = {"province_code": province, "regency_code": regency, "level": level,
            "effective_from": effective_from.date().isoformat(),
            "effective_until": effective_until.date().isoformat() if effective_until else None,
            "instruction": instruction, "reason": reason}
    recorded = Api("reports", token, as_json=as_json).post("/ppkm/levels", body)
    emit(recorded, as_json, lambda r: typer.echo(
        f"level {r['level']} for {r['region_code']} from {r['effective_from']}"
        + (f" until {r['effective_until']}" if r["effective_until"] else "")
        + f" ({r['instruction']}): {r['level_id']}"))


@app.command("levels")
def levels(
    province: Annotated[str | None, typer.Option("--province", "-p", help="Province code, e.g. 32")] = None,
    regency: Annotated[str | None, typer.Option("--regency", "-r", help="Regency code, e.g. 32.16")] = None,
    limit: Annotated[int, typer.Option(help="Levels recorded to list, newest first (1–1000)")] = 20,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """The level in force today in each regency (with plants or levels of its own), and the levels recorded."""
    found = Api("reports", token, as_json=as_json).get("/ppkm/levels", province=province, regency=regency,
                                                       limit=limit)

    def render(body: dict[str, Any]) -> None:
        where = body["regency"] or body["province"] or "Indonesia"
        table(f"In force today in {where}", ["regency", "level", "from", "until", "instruction", "set for", "source"],
              [[c["region_code"], c["level"] or "—", c["effective_from"], c["effective_until"], c["instruction"],
                c["set_for"], c["source"]] for c in body["current"]])
        table("Recorded", ["recorded", "region", "level", "from", "until", "instruction", "by", "reason"],
              [[h["recorded_at"], h["region_code"], h["level"], h["effective_from"], h["effective_until"],
                h["instruction"], h["actor"], h["reason"]] for h in body["history"]])

    emit(found, as_json, render)


@app.command("rule-sets")
def rule_sets(token: TokenOption = None, as_json: JsonOption = False) -> None:
    """The staffing rule sets, shipped and published, and the one in force today in each zone."""
    found = Api("reports", token, as_json=as_json).get("/ppkm/rule-sets")

    def render(body: dict[str, Any]) -> None:
        fields("In force today", body["in_force"])
        table("Rule sets", ["name", "from", "rules", "shipped", "published by", "in force in", "source"],
              [[r["name"], r["starts_on"], len(r["rules"]), "yes" if r["shipped"] else "", r["published_by"],
                ", ".join(r["in_force_in"]), r["source"]] for r in body["rule_sets"]])

    emit(found, as_json, render)


@app.command("publish-rules")
def publish_rules(
    file: Annotated[Path, typer.Argument(help="The rule set as JSON, or TOML (one [[rule_set]] as "
                                              "services/reports/ppkm_rules.toml writes them, or its keys at the top)")],
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Publish a staffing rule set for a day not yet begun anywhere (operators)."""
    document = _rule_set_file(file, as_json)
    published = Api("reports", token, as_json=as_json).post("/ppkm/rule-sets", document)
    emit(published, as_json, lambda r: typer.echo(
        f"rule set {r['name']} published from {r['starts_on']}: {len(r['rules'])} rules"))


@plants.command("allowance")
def allowance(
    facility_id: Annotated[uuid.UUID, typer.Argument(help="The plant (facility) id")],
    on: Day = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """What a plant may run on a day (today in its zone unless --on) and why: its level, rule and conditions."""
    found = Api("reports", token, as_json=as_json).get(f"/plants/{facility_id}/allowance",
                                                       on=on.date().isoformat() if on else None)

    def render(body: dict[str, Any]) -> None:
        typer.echo(body["summary_id"])
        typer.echo(body["summary_en"])
        fields(f"Allowance of {body['facility_id']} on {body['day']}",
               {k: body[k] for k in ("level", "rule_set", "rule", "sector_class", "export_oriented",
                                     "workforce_total", "lifted", "capacity")})
        if body["conditions"]:
            table("Conditions that lift the cap", ["condition", "met", ""],
                  [[c["name"], "yes" if c["met"] else "no", c["said_id"]] for c in body["conditions"]])

    emit(found, as_json, render)


def _rule_set_file(file: Path, as_json: bool) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {shown(file)}: {shown(exc.strerror)}", as_json=as_json)
    try:
        document: Any = json.loads(text) if file.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        fail(f"{shown(file)} is not {'JSON' if file.suffix.lower() == '.json' else 'TOML'}: {shown(exc)}",
             as_json=as_json)
    if isinstance(document, dict) and isinstance(document.get("rule_set"), list):
        if len(document["rule_set"]) != 1:
            fail(f"{shown(file)} holds {len(document['rule_set'])} [[rule_set]] tables: publish one at a time",
                 as_json=as_json)
        document = document["rule_set"][0]
    if not isinstance(document, dict):
        fail(f"{shown(file)} must hold one rule set (an object)", as_json=as_json)
    # TOML has dates, JSON does not: the service reads `starts_on` as YYYY-MM-DD.
    return {key: value.isoformat() if isinstance(value, date) else value for key, value in document.items()}
