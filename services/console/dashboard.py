"""The operators' dashboard: the platform's figures on one page, as the five services' read APIs answer them.

Permits by state and by province, freezes and revocations by ground, PPKM levels, reporting compliance and contact
tracing by province, the plants closed now and the open alerts. Each part is fetched with the signed-in person's
token, so each shows what that person may read: a part a service refuses them, or cannot give now, says so and the
others are still shown. Drawn on the server (bars as inline SVG); the page's "Refresh" link fetches it again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.console.backend import Refused, ServiceDown
from services.console.sessions import Session
from services.console.vocabulary import (
    EVENT_NAMES,
    GROUND_NAMES,
    LEVEL_NAMES,
    N_,
    SECTOR_CLASS_NAMES,
    SEVERITY_NAMES,
)
from services.console.web import console_of, render, signed_in
from shared.web.access import Role

# Whom the services let read these figures: the ministry and the agencies the whole country, a regional office its
# region (alerts are not the agencies' to read: that part says so).
ROLES = (Role.OPERATOR, Role.AGENCY, Role.REGIONAL_OFFICE)
STATES = {"SUBMITTED": N_("Submitted"), "ISSUED": N_("Issued"), "FROZEN": N_("Frozen"), "REVOKED": N_("Revoked"),
          "REJECTED": N_("Rejected")}
SANCTION_ROWS = 60  # the latest province-month-ground rows shown
CLOSED_PAGE = 50  # closed plants (and plants with a room closed) a page: the incidents service's keyset cursor
ALERTS = 200  # open alerts shown, most pressing first as the notifier orders them
SECTOR_CLASSES = SECTOR_CLASS_NAMES | {"unknown": N_("Not known yet"), "export_oriented": N_("Export-oriented")}
SANCTION_NAMES = {"freeze": STATES["FROZEN"], "revoke": STATES["REVOKED"]}
# Why a part is missing: the person's role may not read it, or its service cannot be reached now.
NOT_YOURS = N_("Not available to your role.")
UNREACHABLE = N_("This part of the platform cannot be reached at the moment.")

Cursor = Annotated[uuid.UUID | None, Query()]


class Missing:
    """A part of the page that has no figures, and why."""

    def __init__(self, why: str) -> None:
        self.why = why


def missing(part: Any) -> bool:
    return isinstance(part, Missing)


async def _part(call: Awaitable[Any]) -> Any:
    """A part's answer, or why it has none (a message to show in its place)."""
    try:
        return await call
    except Refused:
        return Missing(NOT_YOURS)
    except ServiceDown:
        return Missing(UNREACHABLE)


def bar(value: float | None, whole: float | None) -> int:
    """A bar's length in percent of its track (0 to 100)."""
    if not value or not whole:
        return 0
    return max(0, min(100, round(100 * value / whole)))


def router() -> APIRouter:
    routes = APIRouter()

    @routes.get("/dashboard")
    async def dashboard(request: Request, plants_after: Cursor = None, rooms_after: Cursor = None) -> Response:
        session = signed_in(request, ROLES)
        call = console_of(request).backend.call

        def closed(status: str, after: uuid.UUID | None) -> Awaitable[Any]:
            return call(session, "incidents", "GET", "/incidents",
                        params={"status": status, "after": str(after) if after else None, "limit": CLOSED_PAGE})

        summary, plants, rooms, alerts = await asyncio.gather(
            _part(call(session, "permits", "GET", "/permits/summary")),
            _part(closed("plant_closed", plants_after)), _part(closed("room_closed", rooms_after)),
            _part(call(session, "notifier", "GET", "/alerts", params={"status": "open", "limit": ALERTS})))
        compliance, tracing = await _by_region(request, session, summary)
        return render(request, "dashboard.html", summary=summary, compliance=compliance, tracing=tracing,
                      ppkm_rows=ppkm_rows(compliance),
                      plants=plants, rooms=rooms, alerts=alerts, missing=missing, states=STATES,
                      sanction_rows=(list(reversed(summary["sanctions"]["rows"][-SANCTION_ROWS:]))
                                     if not missing(summary) else []),
                      plants_after=plants_after, rooms_after=rooms_after, updated=datetime.now(UTC),
                      bar=bar, ground_names=GROUND_NAMES, sanction_names=SANCTION_NAMES,
                      sector_classes=SECTOR_CLASSES,
                      event_names=EVENT_NAMES, severity_names=SEVERITY_NAMES,
                      level_names=LEVEL_NAMES)

    return routes


async def _by_region(request: Request, session: Session, summary: Any) -> tuple[Any, Any]:
    """Compliance and tracing, a row a province with permits (a regional office: its own region, one row); or why
    there are none."""
    if missing(summary):
        return summary, summary
    call = console_of(request).backend.call
    if session.principal.region:
        asked: list[tuple[str, dict[str, str]]] = [(session.principal.region, {})]
    else:
        asked = [(p["province_code"], {"province": p["province_code"]}) for p in summary["by_province"]]
    answers = await asyncio.gather(
        *(_part(call(session, "reports", "GET", "/compliance", params=params)) for _, params in asked),
        *(_part(call(session, "incidents", "GET", "/tracing", params=params)) for _, params in asked))
    compliance, tracing = answers[:len(asked)], answers[len(asked):]
    return _rows(asked, compliance), _rows(asked, tracing)


def ppkm_rows(compliance: Any) -> list[tuple[str, Any, bool]]:
    """(region, its PPKM figures or why there are none, whether it is an asked region rather than one of its
    regencies): each region asked, then its regencies."""
    if missing(compliance):
        return []
    rows = []
    for region, answer in compliance:
        rows.append((region, answer if missing(answer) else answer["ppkm"]["totals"], True))
        if not missing(answer):
            rows.extend((r["regency_code"], r, False) for r in answer["ppkm"]["regions"]
                        if r.get("regency_code") and r["regency_code"] != region)
    return rows


def _rows(asked: list[tuple[str, dict[str, str]]], answers: list[Any]) -> Any:
    """(region, answer) rows; when every answer is missing, why (a part refused is refused for every province)."""
    if answers and all(missing(answer) for answer in answers):
        return answers[0]
    return [(region, answer) for (region, _), answer in zip(asked, answers, strict=True)]
