"""`iomki alerts …`: open alerts and their escalation level, and acknowledging one (the notifier)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer

from tooling.cli.support import Api, JsonOption, TokenOption, emit, fields, table

app = typer.Typer(help="Alerts raised for task forces: list, acknowledge.", no_args_is_help=True)


@app.command("list")
def list_alerts(
    status: Annotated[str | None, typer.Option(help="open | acknowledged")] = None,
    limit: Annotated[int, typer.Option(help="At most this many")] = 100,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Alerts in your scope, with severity and the level they have escalated to."""
    found = Api("notifier", token, as_json=as_json).get("/alerts", status=status, limit=limit)

    def render(body: dict[str, Any]) -> None:
        table(f"Alerts ({len(body['alerts'])})",
              ["alert id", "event", "severity", "status", "level", "count", "regency", "last seen", "escalate at"],
              [[a["alert_id"], a["event_type"], a["severity"], a["status"], a["level"], a["count"],
                a["regency_code"], a["last_seen_at"], a["escalate_at"]] for a in body["alerts"]])

    emit(found, as_json, render)


@app.command()
def ack(
    alert_id: Annotated[uuid.UUID, typer.Argument(help="The alert id")],
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Acknowledge an alert, which stops its escalation."""
    alert = Api("notifier", token, as_json=as_json).post(f"/alerts/{alert_id}/ack")
    emit(alert, as_json, lambda body: fields(f"Alert {body['alert_id']} acknowledged", body))
