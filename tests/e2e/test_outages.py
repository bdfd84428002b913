"""The broker or the database goes away under the five running services, and comes back.

While a dependency is down every API answers at once: 503 with a problem body, never a hang, never a 500, and
readiness names what is missing. What was accepted is kept (with the broker down, writes still commit and
their events wait in the outbox) and, once the dependency returns, everything catches up by itself, without
restarting a service.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from shared.settings import SERVICES
from shared.storage.db import quote_identifier
from tests.support.issued_permits import APPLICATION, issued_permit
from tests.support.platform import bearer
from tests.support.processes import RunningServices, running_platform
from tests.support.waiting import poll

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"
# Each answer must arrive well within this, or the client gives up and the test fails: nothing may hang.
CLIENT_TIMEOUT = 10
# The broker coming back: the relays' reconnection backoff, then the consumer groups joining again.
CATCH_UP = 120
OPERATOR = bearer("operator")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services() -> AsyncIterator[RunningServices]:
    async with running_platform("outages", own_database=True) as running:
        yield running


def application(nib: str, plant: str) -> dict[str, Any]:
    return {**APPLICATION, "company": {**APPLICATION["company"], "nib": nib},
            "facility": {**APPLICATION["facility"], "name": plant, "address": f"Kawasan Industri, {plant}"}}


async def readiness_while(http: httpx.AsyncClient, base: str, condition) -> httpx.Response:
    """Readiness as soon as it meets `condition` (a dependency's loss or return takes a moment to notice)."""
    async with asyncio.timeout(CATCH_UP):
        while not condition(ready := await http.get(f"{base}/readyz")):
            await asyncio.sleep(0.3)
    return ready


def unready(dependency: str):
    return lambda ready: ready.status_code == 503 and ready.json()["checks"][dependency] is False


def ready(answer: httpx.Response) -> bool:
    return answer.status_code == 200


async def unpublished(services: RunningServices, service: str, facility_id: str) -> list[str]:
    """The plant's events still waiting in a service's outbox, read as the platform's administrator."""
    connection = await asyncpg.connect(services.platform.admin_url)
    try:
        schema = quote_identifier(service)
        rows = await connection.fetch(
            f"SELECT event_type FROM {schema}.outbox JOIN {schema}.outbox_pending USING (position) WHERE key = $1"  # noqa: S608 -- a schema name, quoted; values are parameters
            " ORDER BY position",
            facility_id.encode())
    finally:
        await connection.close()
    return [row["event_type"] for row in rows]


def assert_unavailable(answer: httpx.Response, what: str) -> None:
    assert answer.status_code == 503, f"{what}: {answer.status_code} {answer.text}"
    assert answer.headers["content-type"] == PROBLEM, what
    assert int(answer.headers["retry-after"]) > 0, what
    problem = answer.json()
    assert (problem["status"], problem["title"]) == (503, "Service unavailable"), what


async def test_with_the_broker_down_writes_wait_in_the_outbox_and_flow_when_it_returns(services):
    platform = services.platform
    assert platform.broker is not None
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as http:
        platform.broker.stop()
        for service in SERVICES:
            readiness = await readiness_while(http, services.url(service), unready("broker"))
            assert readiness.headers["content-type"] == PROBLEM
            assert readiness.json()["checks"] == {"database": True, "broker": False}

        # A company applies and the ministry issues: both accepted, their events kept in the outbox.
        permit_id, facility_id = await issued_permit(http, services, application("8120000100001", "Karawang"))
        waiting = await unpublished(services, "permits", facility_id)
        assert waiting.index("iomki.PermitApplied.v1") < waiting.index("iomki.PermitIssued.v1")
        read = await http.get(f"{services.url('permits')}/permits/{permit_id}", headers=OPERATOR)
        assert read.status_code == 200 and read.json()["status"] == "ISSUED"
        task_force = await http.post(f"{services.url('notifier')}/task-forces", headers=OPERATOR, json={
            "level": "regency", "region_code": "32.15", "name": "Satgas COVID-19 Kabupaten Karawang",
            "contacts": [{"division": "health", "email": "dinkes@karawang.example"}]})
        assert task_force.status_code == 201, task_force.text
        directory = await http.get(f"{services.url('notifier')}/task-forces", headers=OPERATOR)
        assert task_force.json()["task_force_id"] in {t["task_force_id"] for t in directory.json()["task_forces"]}

        platform.broker.start()
        for service in SERVICES:
            await readiness_while(http, services.url(service), ready)
        # Nobody restarted anything: the relay published the waiting events and the other services acted on them.
        schedule = await poll(http, f"{services.url('reports')}/schedules/{permit_id}", OPERATOR,
                              lambda body: bool(body["periods"]), timeout=CATCH_UP)
        assert schedule["facility_id"] == facility_id
        plant = await poll(http, f"{services.url('incidents')}/facilities/{facility_id}/status", OPERATOR,
                           lambda body: body["monitored"], timeout=CATCH_UP)
        assert plant["status"] == "open"
        assert await unpublished(services, "permits", facility_id) == []


async def test_with_the_database_down_every_api_answers_503_at_once_and_recovers_without_a_restart(services):
    platform = services.platform
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as http:
        # Accepted just before the outage: its events may still be in the outbox when the server stops.
        before_id, before_facility = await issued_permit(http, services, application("8120000100002", "Purwakarta"))
        case = {"facility_id": before_facility, "case_ref": "C-OUTAGE-1", "confirmed_on": date.today().isoformat(),
                "symptomatic": True, "symptom_onset_on": date.today().isoformat(), "close_contacts": 3}
        calls = {
            "permits": [("GET", "/permits", None), ("GET", f"/permits/{before_id}", None),
                        ("POST", "/permits", application("8120000100003", "Subang"))],
            "reports": [("GET", f"/schedules/{before_id}", None), ("GET", "/compliance", None)],
            "incidents": [("GET", f"/facilities/{before_facility}/status", None), ("POST", "/cases", case)],
            "notifier": [("GET", "/alerts", None), ("GET", "/task-forces", None)],
        }

        platform.stop_database()
        for service, requests in calls.items():
            base = services.url(service)
            for method, path, body in requests:
                answer = await http.request(method, f"{base}{path}", json=body, headers=OPERATOR)
                assert_unavailable(answer, f"{service} {method} {path}")
            readiness = await http.get(f"{base}/readyz")
            assert_unavailable(readiness, f"{service} readiness")
            assert readiness.json()["checks"]["database"] is False
            assert (await http.get(f"{base}/healthz")).status_code == 200  # the process itself is fine

        platform.start_database()
        for service in SERVICES:
            await readiness_while(http, services.url(service), ready)
        # Writes work again on the same processes, and what was accepted before the outage is all there.
        after_id, after_facility = await issued_permit(http, services, application("8120000100003", "Subang"))
        for permit_id in (before_id, after_id):
            await poll(http, f"{services.url('reports')}/schedules/{permit_id}", OPERATOR,
                       lambda body: bool(body["periods"]), timeout=CATCH_UP)
        async with asyncio.timeout(CATCH_UP):  # incidents learns of the plant from PermitIssued
            while (reported := await http.post(f"{services.url('incidents')}/cases", headers=OPERATOR,
                                               json=case)).status_code == 404:
                await asyncio.sleep(0.3)
        assert reported.status_code == 201, reported.text
        assert reported.json()["facility_id"] == before_facility
        assert await unpublished(services, "permits", after_facility) == []
