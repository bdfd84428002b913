"""One vocabulary for failure: each service's domain names what a request can be refused for under one base, and
its api.py answers each kind from one table."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from services.incidents import api as incidents_api
from services.incidents.domain import IncidentError
from services.notifier import api as notifier_api
from services.notifier.domain import NotifierRefusal
from services.permits import api as permits_api
from services.permits.domain import PermitsRefusal
from services.reports import api as reports_api
from services.reports.domain import Refused
from shared.contract import MAX_EVENT_BYTES, EventTooLarge
from shared.web.http import Problem, ProblemTable, install_problem_handlers

pytestmark = pytest.mark.unit

TABLES = {
    "incidents": (IncidentError, incidents_api.PROBLEMS),
    "notifier": (NotifierRefusal, notifier_api.PROBLEMS),
    "permits": (PermitsRefusal, permits_api.PROBLEMS),
    "reports": (Refused, reports_api.PROBLEMS),
}


def _kinds(base: type[Exception]) -> set[type[Exception]]:
    found: set[type[Exception]] = set()
    pending = [base]
    while pending:
        for kind in pending.pop().__subclasses__():
            found.add(kind)
            pending.append(kind)
    return found


@pytest.mark.parametrize("service", sorted(TABLES))
def test_every_refusal_of_a_domain_has_its_own_problem(service):
    base, table = TABLES[service]
    assert _kinds(base), f"{service} names no refusal"
    assert _kinds(base) == set(table), "each kind answered by its own entry, and no entry for anything else"


class Refusal(Exception):
    pass


class Conflicting(Refusal):
    def __init__(self, current: str) -> None:
        super().__init__(f"it is {current}")
        self.current = current


class ConflictingLater(Conflicting):
    pass


TABLE: ProblemTable = {
    Refusal: lambda exc: Problem(422, "Refused", str(exc)),
    Conflicting: lambda exc: Problem(409, "Conflict", str(exc), current_status=exc.current),
}


async def _answer(raised: Exception) -> httpx.Response:
    app = FastAPI()
    install_problem_handlers(app, TABLE)

    @app.get("/thing")
    async def thing() -> None:
        raise raised

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        return await client.get("/thing")


async def test_a_refusal_is_answered_from_its_entry_as_problem_json():
    response = await _answer(Conflicting("FROZEN"))
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {"type": "about:blank", "title": "Conflict", "status": 409, "detail": "it is FROZEN",
                               "current_status": "FROZEN"}


async def test_a_kind_without_an_entry_takes_its_nearest_ancestor_s():
    response = await _answer(ConflictingLater("REVOKED"))
    assert response.status_code == 409 and response.json()["current_status"] == "REVOKED"
    assert (await _answer(Refusal("no"))).json()["title"] == "Refused"


async def test_an_exception_outside_the_table_is_an_internal_error():
    response = await _answer(RuntimeError("bug"))
    assert response.status_code == 500 and response.json()["title"] == "Internal error"


async def test_an_event_too_large_for_the_contract_is_refused_by_every_service_as_unprocessable():
    """Whatever the request, the outbox refuses an event over the contract's limit: a 422 that says so."""
    response = await _answer(EventTooLarge("iomki.PermitApplied.v1", 1_048_600))
    assert response.status_code == 422
    assert response.json() == {
        "type": "about:blank", "title": "Event too large", "status": 422,
        "detail": "The request would publish an event of 1,048,600 bytes (iomki.PermitApplied.v1), over the "
                  f"{MAX_EVENT_BYTES:,} bytes an event may take; shorten its lists or texts.",
        "event_type": "iomki.PermitApplied.v1", "size": 1_048_600}
