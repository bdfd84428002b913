"""The task force's pages: its region's open alerts to acknowledge, the closures recommended to it to order or
decline, the plants closed there to clear for reopening, and the plants with cases (their clusters and closures, with
the region's contact tracing); with the region's reporting compliance.

Made for a phone in the field first: one column of cards, each with its own small form. The task force's region is
the token's: every list the services give it is already scoped to it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.console.backend import Refused
from services.console.sessions import Session
from services.console.vocabulary import EVENT_NAMES, LEVEL_NAMES, N_, SEVERITY_NAMES
from services.console.web import (
    checked_form,
    console_of,
    redirect,
    render,
    signed_in,
    worded_errors,
    worded_problem,
)
from shared.web.access import Role

ROLES = (Role.TASK_FORCE,)
ALERTS_PAGE = 50  # alerts a page, newest first
PAGE = 25  # recommendations and closures a page (the incidents service's keyset cursor for the rest)
REASON_MAX_LENGTH = 1000  # the incidents service's limit on an officer's reason (the field's maxlength)
MAX_CLOSURE_DAYS = 90  # an upper bound for the form; the incidents service decides the real one

SCOPE_NAMES = {"plant": N_("the whole plant"), "room": N_("a room or line")}
RECOMMENDATION_STATUS_NAMES = {"pending": N_("awaiting your decision"), "ordered": N_("closure ordered"),
                               "declined": N_("declined")}
# A plant's state as the incidents service sums it up, most serious last; the list can be narrowed to one.
FACILITY_STATUS_NAMES = {"monitoring": N_("active cases, under monitoring"), "room_closed": N_("a room or line closed"),
                         "plant_closed": N_("plant closed"), "open": N_("no active case")}
# The confirmation shown after a redirect, chosen by a fixed key (never text from the address).
NOTICES = {
    "acknowledged": N_("The alert was acknowledged: its escalation has stopped."),
    "already": N_("This alert had already been acknowledged."),
    "ordered": N_("The closure was ordered. The company is notified."),
    "declined": N_("The recommendation was declined."),
    "cleared": N_("The closure was cleared: the plant may reopen."),
}

Cursor = Annotated[uuid.UUID | None, Query()]
Notice = Annotated[str, Query(max_length=20)]


def _notice(key: str) -> str | None:
    return NOTICES.get(key)


def clearable(closure: dict[str, Any], now: datetime) -> bool:
    """Whether the task force may clear the closure now: once its period is over (the service refuses before)."""
    try:
        ends = datetime.fromisoformat(str(closure.get("ends_at")))
    except ValueError:
        return True  # the service decides
    return ends.tzinfo is None or ends <= now


async def _plants(request: Request, session: Session) -> dict[str, dict[str, Any]]:
    """The region's plants by facility id (their company and permit), to name them; none when the permits
    service will not say."""
    try:
        found = await console_of(request).backend.call(session, "permits", "GET", "/permits",
                                                       params={"limit": 200})
    except Refused:
        return {}
    return {str(item.get("facility_id")): item for item in found.get("items", []) if isinstance(item, dict)}


async def _compliance(request: Request, session: Session) -> dict[str, Any] | None:
    """The region's reporting compliance; none when the reports service will not say."""
    try:
        found: dict[str, Any] = await console_of(request).backend.call(session, "reports", "GET", "/compliance")
    except Refused:
        return None
    return found


def router() -> APIRouter:
    routes = APIRouter()

    @routes.get("/alerts")
    async def alerts(request: Request, after: Annotated[str | None, Query(max_length=200)] = None,
                     notice: Notice = "") -> Response:
        session = signed_in(request, ROLES)
        backend = console_of(request).backend
        found = await backend.call(session, "notifier", "GET", "/alerts",
                                   params={"status": "open", "limit": ALERTS_PAGE, "after": after})
        items = found.get("alerts", [])
        return render(request, "tf_alerts.html", alerts=items, compliance=await _compliance(request, session),
                      plants=await _plants(request, session) if items else {},
                      next=found.get("next"), first=after is None, notice=_notice(notice),
                      severity_names=SEVERITY_NAMES, level_names=LEVEL_NAMES, event_names=EVENT_NAMES)

    @routes.get("/incidents")
    async def incidents(request: Request, next: Cursor = None,  # noqa: A002 -- the API's cursor name
                        status: Annotated[str, Query(pattern="^(monitoring|room_closed|plant_closed|open|)$")] = "",
                        ) -> Response:
        session = signed_in(request, ROLES)
        backend = console_of(request).backend
        found, tracing = await asyncio.gather(
            backend.call(session, "incidents", "GET", "/incidents",
                         params={"status": status or None, "after": str(next) if next else None, "limit": PAGE}),
            backend.call(session, "incidents", "GET", "/tracing"))
        items = found.get("items", [])
        return render(request, "tf_incidents.html", items=items, next=found.get("next"), shown_status=status,
                      tracing=tracing, compliance=await _compliance(request, session),
                      plants=await _plants(request, session) if items else {},
                      facility_status_names=FACILITY_STATUS_NAMES)

    @routes.post("/alerts/{alert_id}/ack")
    async def acknowledge(request: Request, alert_id: uuid.UUID) -> Response:
        session = signed_in(request, ROLES)
        await checked_form(request, session)
        try:
            await console_of(request).backend.call(session, "notifier", "POST", f"/alerts/{alert_id}/ack")
        except Refused as refused:
            if refused.status != 409:
                raise
            return redirect("/alerts?notice=already")
        return redirect("/alerts?notice=acknowledged")

    @routes.get("/recommendations")
    async def recommendations(request: Request, next: Cursor = None,  # noqa: A002 -- the API's cursor name
                              status: Annotated[str, Query(pattern="^(pending|ordered|declined|)$")] = "pending",
                              notice: Notice = "") -> Response:
        session = signed_in(request, ROLES)
        return await _recommendations_page(request, session, status, next, notice=_notice(notice))

    @routes.post("/recommendations/{recommendation_id}/{decision}")
    async def decide(request: Request, recommendation_id: uuid.UUID, decision: str) -> Response:
        session = signed_in(request, ROLES)
        if decision not in ("order", "decline"):
            return render(request, "message.html", status=404, heading=N_("Not found"),
                          message=N_("This page does not exist."))
        fields = await checked_form(request, session)
        typed = {key: fields.get(key, "").strip() for key in ("reason", "scope", "days")}
        body: dict[str, Any] = {"reason": typed["reason"] or None}
        if decision == "order":
            body |= {"scope": typed["scope"] or None}
            if typed["days"]:
                if not typed["days"].isdigit() or len(typed["days"]) > 4:
                    return await _recommendations_page(
                        request, session, "pending", None, http_status=422, failed=recommendation_id, decision=decision,
                        typed=typed, errors={"days": N_("Enter a whole number of days.")})
                body["days"] = int(typed["days"])
        elif not body["reason"]:
            return await _recommendations_page(
                request, session, "pending", None, http_status=422, failed=recommendation_id, decision=decision,
                typed=typed, errors={"reason": N_("Say why the closure is declined.")})
        try:
            await console_of(request).backend.call(
                session, "incidents", "POST", f"/closure-recommendations/{recommendation_id}/{decision}", json=body)
        except Refused as refused:
            if refused.status not in (409, 422):
                raise
            return await _recommendations_page(
                request, session, "pending", None, http_status=refused.status, failed=recommendation_id,
                decision=decision, typed=typed, errors=worded_errors(request, refused),
                problem=worded_problem(request, refused))
        return redirect("/recommendations?notice=" + ("ordered" if decision == "order" else "declined"))

    @routes.get("/closures")
    async def closures(request: Request, next: Cursor = None,  # noqa: A002 -- the API's cursor name
                       notice: Notice = "") -> Response:
        session = signed_in(request, ROLES)
        return await _closures_page(request, session, next, notice=_notice(notice))

    @routes.post("/closures/{closure_id}/clear")
    async def clear(request: Request, closure_id: uuid.UUID) -> Response:
        session = signed_in(request, ROLES)
        await checked_form(request, session)
        try:
            await console_of(request).backend.call(session, "incidents", "POST", f"/closures/{closure_id}/clear")
        except Refused as refused:
            if refused.status != 409:
                raise
            return await _closures_page(request, session, None, status=409, failed=closure_id,
                                        problem=worded_problem(request, refused, with_fields=True))
        return redirect("/closures?notice=cleared")

    return routes


async def _recommendations_page(request: Request, session: Session, status: str, after: uuid.UUID | None, *,
                                http_status: int = 200, notice: str | None = None, **form: Any) -> Response:
    backend = console_of(request).backend
    found = await backend.call(session, "incidents", "GET", "/closure-recommendations",
                               params={"status": status or None, "after": str(after) if after else None,
                                       "limit": PAGE})
    items = found.get("items", [])
    return render(request, "tf_recommendations.html", status=http_status, items=items,
                  shown_status=status, next=found.get("next"), notice=notice,
                  plants=await _plants(request, session) if items else {},
                  failed=str(form.get("failed") or ""), decision=form.get("decision", ""),
                  typed=form.get("typed", {}), errors=form.get("errors", {}), problem=form.get("problem"),
                  scope_names=SCOPE_NAMES, status_names=RECOMMENDATION_STATUS_NAMES,
                  reason_max=REASON_MAX_LENGTH, days_max=MAX_CLOSURE_DAYS)


async def _closures_page(request: Request, session: Session, after: uuid.UUID | None, *, status: int = 200,
                         notice: str | None = None, failed: uuid.UUID | None = None,
                         problem: str | None = None) -> Response:
    found = await console_of(request).backend.call(
        session, "incidents", "GET", "/incidents",
        params={"status": "plant_closed", "after": str(after) if after else None, "limit": PAGE})
    now = datetime.now(UTC)
    items = [item | {"clearable": clearable(item["plant_closure"], now)}
             for item in found.get("items", []) if item.get("plant_closure")]
    return render(request, "tf_closures.html", status=status, items=items, next=found.get("next"), notice=notice,
                  plants=await _plants(request, session) if items else {}, failed=str(failed or ""),
                  problem=problem)
