"""`make demo`'s story, small and fast, against the five services as processes: its summary is what the
services' APIs report, and every expectation of the scenario holds."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from rich.console import Console

from tests.support.processes import ARTIFACTS, RunningServices, running_platform
from tests.support.platform import JWT_SECRET, bearer
from tooling.demo.runner import demo_environment, play
from tooling.demo.scenario import Scenario

pytestmark = pytest.mark.e2e

SCENARIO = Scenario(plants=20, period_seconds=7, weeks=4, seed=7)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services() -> AsyncIterator[RunningServices]:
    async with running_platform("demo", demo_environment(SCENARIO.period_seconds)) as running:
        yield running


async def test_the_demo_plays_its_story_and_its_summary_is_what_the_apis_report(services):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open(ARTIFACTS / "demo-output.txt", "w") as output:
        summary = await play({service: services.url(service) for service in services.ports}, JWT_SECRET, SCENARIO,
                             Console(file=output, width=160))
    failed = [check for check in summary.checks if not check.ok]
    assert not failed, failed

    # The summary's numbers are the APIs' numbers, read again here.
    async with httpx.AsyncClient(timeout=10) as http:
        operator = bearer("operator")
        permits = (await http.get(f"{services.url('permits')}/permits", params={"limit": 200},
                                  headers=operator)).json()["items"]
        compliance = (await http.get(f"{services.url('reports')}/compliance", headers=operator)).json()
        alerts = (await http.get(f"{services.url('notifier')}/alerts", params={"limit": 1000},
                                 headers=operator)).json()["alerts"]
    assert Counter(p["status"] for p in permits) == summary.permits_by_state() == Counter(
        {"ISSUED": SCENARIO.plants - 2, "FROZEN": 1, "REVOKED": 1})
    # The casework: the plant frozen by the ladder was reactivated on its request, approved by the officer; the
    # revoked one objected, and its objection was upheld.
    async with httpx.AsyncClient(base_url=services.url("permits"), timeout=10) as http:
        [reactivated] = [p for p in permits if p["status"] == "ISSUED" and p["freeze_count"] == 1]
        requests = (await http.get(f"/permits/{reactivated['permit_id']}/reactivation-requests",
                                   headers=operator)).json()["requests"]
        assert [(r["status"], r["decision"]["by"]["sub"]) for r in requests] == [("approved", "demo-ministry-officer")]
        [revoked] = [p for p in permits if p["status"] == "REVOKED"]
        objections = (await http.get(f"/permits/{revoked['permit_id']}/objections", headers=operator)).json()
        assert [o["decision"]["outcome"] for o in objections["objections"]] == ["upheld"]
    # The plants keep filing each new period as it opens and the closed plant's periods keep being excused, so
    # periods falling due since the summary can only add reported or excused ones, never a missed one.
    for name in ("overdue", "warnings"):
        assert compliance[name] == summary.compliance["ALL"][name], name
    for name in ("periods_due", "reported", "on_time", "excused_closed"):
        assert compliance[name] >= summary.compliance["ALL"][name], name
    assert compliance["periods_due"] - compliance["reported"] == summary.compliance["ALL"]["overdue"]
    assert {a["alert_id"]: a["status"] for a in alerts} == {a["alert_id"]: a["status"] for a in summary.alerts}
