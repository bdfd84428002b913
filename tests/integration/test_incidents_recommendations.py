"""Clusters are linked cases and a person decides the closure, over the real database and broker.

A company enters three cases at a plant in Palangka Raya: they raise a possible cluster, not a closure. Linked,
they are a cluster whose five-day closure is recommended to the task force, which orders it (or, at another
plant, declines it; unanswered for a day, it escalates). South Kalimantan is configured to close automatically;
a room in Maluku closes for 3×24 h. Central Kalimantan (62), South Kalimantan (63) and Kota Tual (81.72) are this
module's own.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from services.incidents.app import create_app
from services.incidents.domain import IncidentPolicy
from shared.clock import FakeClock
from shared.contract import decode
from shared.regions import local_zone
from tests.support.kafka import read_topic
from tests.support.platform import bearer, running_service
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

NIB = "8120006271001"
COMPANY = bearer("company", nib=NIB)
SATGAS = bearer("task_force", region="62.71", sub="satgas-palangka-raya")
SATGAS_PROVINCE = bearer("task_force", region="62")
SATGAS_ELSEWHERE = bearer("task_force", region="33")
OPERATOR = bearer("operator")


class Scene:
    def __init__(self, client, app, clock: FakeClock) -> None:
        self.client, self.app, self.clock = client, app, clock

    async def plant(self, regency: str = "62.71") -> uuid.UUID:
        """A plant as PermitIssued leaves it (its consumption is the slice test's subject)."""
        facility_id = uuid.uuid4()
        async with self.app.state.runtime.database.transaction() as work:
            await work.incidents.learn_plant(facility_id=facility_id, permit_id=uuid.uuid4(), nib=NIB,
                                             province_code=regency[:2], regency_code=regency, workforce_total=400,
                                             now=self.clock.now())
        return facility_id

    async def cases(self, facility_id: uuid.UUID, count: int) -> list[str]:
        today = self.clock.now().astimezone(local_zone("62.71")).date().isoformat()
        ids = []
        for _ in range(count):
            created = await self.client.post("/cases", headers=COMPANY, json={
                "facility_id": str(facility_id), "case_ref": f"PR-{uuid.uuid4().int % 10**8:08d}",
                "confirmed_on": today, "symptomatic": False, "close_contacts": 0})
            assert created.status_code == 201, created.text
            assert created.json()["cluster_id"] is None
            ids.append(created.json()["case_id"])
        return ids

    async def link(self, case_id: str, other: str, kind: str = "same_line", headers=COMPANY):
        return await self.client.post(f"/cases/{case_id}/links", headers=headers,
                                      json={"linked_case_id": other, "kind": kind})

    async def cluster(self, facility_id: uuid.UUID) -> dict:
        """Three cases linked in a chain; the recommendation they make, as the operator reads it."""
        a, b, c = await self.cases(facility_id, 3)
        assert (await self.link(a, b)).status_code == 201
        linked = await self.link(c, b, "named_contact")
        assert linked.status_code == 201, linked.text
        assert linked.json()["cluster_id"] is not None
        listed = await self.client.get("/closure-recommendations", headers=OPERATOR, params={"limit": 500})
        [recommendation] = [r for r in listed.json()["items"] if r["facility_id"] == str(facility_id)]
        return recommendation


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def scene(platform):
    clock = FakeClock(datetime.now(UTC))
    app = create_app(clock=clock, policy=IncidentPolicy(automatic_closure_provinces=frozenset({"63"})))
    async with running_service(app) as client:
        yield Scene(client, app, clock)


def of(messages, facility_id: uuid.UUID) -> list:
    return [decode(m.value) for m in messages if m.key == str(facility_id).encode()]


async def test_linked_cases_make_a_cluster_whose_recommended_closure_the_task_force_orders(platform, scene):
    facility_id = await scene.plant()
    a, b, c = await scene.cases(facility_id, 3)

    # Linked by the company; seen from both cases; a pair is linked once; never to itself or an unknown case.
    first = await scene.link(a, b)
    assert first.status_code == 201, first.text
    assert [(link["case_id"], link["kind"]) for link in first.json()["links"]] == [(b, "same_line")]
    seen = await scene.client.get(f"/cases/{b}", headers=COMPANY)
    assert [link["case_id"] for link in seen.json()["links"]] == [a]
    assert (await scene.link(b, a, "same_shift")).status_code == 409
    for other, field in ((a, "linked_case_id"), (str(uuid.uuid4()), "linked_case_id")):
        refused = await scene.link(a, other)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == field
    invalid_kind = await scene.link(a, c, "same_canteen")
    assert invalid_kind.status_code == 422
    assert (await scene.link(a, c, headers=bearer("company", nib="8120000111111"))).status_code == 404
    assert (await scene.link(a, c, headers=SATGAS_ELSEWHERE)).status_code == 404
    assert (await scene.link(a, c, headers=bearer("agency"))).status_code == 403

    # The regency's task force links the third: the cluster is declared, nothing closes yet.
    third = await scene.link(b, c, "same_shift", headers=SATGAS)
    assert third.status_code == 201, third.text
    cluster_id = third.json()["cluster_id"]
    assert cluster_id is not None
    status = (await scene.client.get(f"/facilities/{facility_id}/status", headers=OPERATOR)).json()
    assert status["status"] == "room_closed" and status["plant_closure"] is None

    listed = await scene.client.get("/closure-recommendations", headers=SATGAS, params={"status": "pending"})
    [recommendation] = [r for r in listed.json()["items"] if r["cluster_id"] == cluster_id]
    assert (recommendation["scope"], recommendation["days"], recommendation["evidence"]["case_count"],
            recommendation["rule"]) == ("plant", 5, 3, "more than 2 linked confirmed cases within 14 days")
    assert recommendation["regency_code"] == "62.71"
    elsewhere = await scene.client.get("/closure-recommendations", headers=SATGAS_ELSEWHERE, params={"limit": 500})
    assert cluster_id not in [r["cluster_id"] for r in elsewhere.json()["items"]]
    rid = recommendation["recommendation_id"]
    assert (await scene.client.get(f"/closure-recommendations/{rid}", headers=SATGAS_ELSEWHERE)).status_code == 404

    # Only the task force of the region (or an operator) decides; a change says why.
    assert (await scene.client.post(f"/closure-recommendations/{rid}/order", headers=COMPANY)).status_code == 403
    assert (await scene.client.post(f"/closure-recommendations/{rid}/order",
                                    headers=SATGAS_ELSEWHERE)).status_code == 404
    unexplained = await scene.client.post(f"/closure-recommendations/{rid}/order", headers=SATGAS, json={"days": 7})
    assert unexplained.status_code == 422 and unexplained.json()["errors"][0]["field"] == "reason"
    too_long = await scene.client.post(f"/closure-recommendations/{rid}/order", headers=SATGAS,
                                       json={"days": 61, "reason": "x"})
    assert too_long.status_code == 422

    ordered = await scene.client.post(f"/closure-recommendations/{rid}/order", headers=SATGAS)
    assert ordered.status_code == 200, ordered.text
    assert (ordered.json()["status"], ordered.json()["decided_by_role"]) == ("ordered", "task_force")
    status = (await scene.client.get(f"/facilities/{facility_id}/status", headers=SATGAS_PROVINCE)).json()
    assert status["status"] == "plant_closed"
    assert status["plant_closure"]["closure_id"] == ordered.json()["closure_id"]
    again = await scene.client.post(f"/closure-recommendations/{rid}/decline", headers=SATGAS,
                                    json={"reason": "changed our mind"})
    assert again.status_code == 409 and again.json()["current_status"] == "ordered"

    def complete(messages) -> bool:
        return {"iomki.PossibleClusterRaised.v1", "iomki.ClusterDeclared.v1", "iomki.ClosureRecommended.v1",
                "iomki.ClosureRecommendationDecided.v1"} <= {d.envelope.type for d in of(messages, facility_id)}
    events = of(await read_topic(platform.bootstrap, "iomki.incidents", until=complete), facility_id)
    [declared] = [d.event for d in events if d.envelope.type == "iomki.ClusterDeclared.v1"]
    assert (declared.case_count, declared.rule) == (3, "more than 2 linked confirmed cases within 14 days")
    [plant_closure] = [d.event for d in events
                       if d.envelope.type == "iomki.FacilityClosureOrdered.v1" and d.event.scope == "plant"]
    assert (plant_closure.ordered_by, plant_closure.ordered_by_actor, str(plant_closure.recommendation_id)) == (
        "task_force", "satgas-palangka-raya", rid)
    assert plant_closure.ends_at - plant_closure.starts_at == timedelta(days=5)
    [decided] = [d.event for d in events if d.envelope.type == "iomki.ClosureRecommendationDecided.v1"]
    assert (decided.decision, str(decided.closure_id)) == ("ordered", ordered.json()["closure_id"])


async def test_an_unanswered_recommendation_escalates_once_and_may_still_be_declined(platform, scene):
    facility_id = await scene.plant()
    recommendation = await scene.cluster(facility_id)
    rid = recommendation["recommendation_id"]
    scene.clock.set(datetime.fromisoformat(recommendation["answer_by"]) + timedelta(seconds=1))

    async def overdue():
        read = (await scene.client.get(f"/closure-recommendations/{rid}", headers=SATGAS)).json()
        return read if read["overdue_at"] else None
    assert (await eventually(overdue))["status"] == "pending"
    await asyncio.sleep(2.5)  # two more sweeps: it escalates once

    silent = await scene.client.post(f"/closure-recommendations/{rid}/decline", headers=SATGAS, json={})
    assert silent.status_code == 422 and silent.json()["errors"][0]["field"] == "reason"
    declined = await scene.client.post(f"/closure-recommendations/{rid}/decline", headers=OPERATOR,
                                       json={"reason": "Penularan di luar pabrik / transmission outside the plant"})
    assert declined.status_code == 200, declined.text
    assert (declined.json()["status"], declined.json()["closure_id"]) == ("declined", None)
    status = (await scene.client.get(f"/facilities/{facility_id}/status", headers=OPERATOR)).json()
    assert status["plant_closure"] is None
    listed = await scene.client.get("/closure-recommendations", headers=SATGAS_PROVINCE,
                                    params={"status": "declined", "limit": 500})
    assert rid in [r["recommendation_id"] for r in listed.json()["items"]]

    def decided(messages) -> bool:
        return "iomki.ClosureRecommendationDecided.v1" in {d.envelope.type for d in of(messages, facility_id)}
    events = of(await read_topic(platform.bootstrap, "iomki.incidents", until=decided), facility_id)
    assert [d.envelope.type for d in events].count("iomki.ClosureRecommendationOverdue.v1") == 1
    [answer] = [d.event for d in events if d.envelope.type == "iomki.ClosureRecommendationDecided.v1"]
    assert (answer.decision, answer.decided_by_role) == ("declined", "operator")


async def test_a_province_in_automatic_mode_closes_at_once_and_maluku_closes_a_room_for_three_days(platform, scene):
    automatic = await scene.plant("63.71")
    recommendation = await scene.cluster(automatic)
    assert (recommendation["status"], recommendation["decided_by_role"]) == ("ordered", "system")
    status = (await scene.client.get(f"/facilities/{automatic}/status", headers=OPERATOR)).json()
    assert status["status"] == "plant_closed"

    maluku = await scene.plant("81.72")
    await scene.cases(maluku, 1)

    def closures(messages) -> bool:
        return (any(d.envelope.type == "iomki.ClosureRecommendationDecided.v1" for d in of(messages, automatic))
                and any(d.envelope.type == "iomki.FacilityClosureOrdered.v1" for d in of(messages, maluku)))
    messages = await read_topic(platform.bootstrap, "iomki.incidents", until=closures)
    [plant_closure] = [d.event for d in of(messages, automatic)
                       if d.envelope.type == "iomki.FacilityClosureOrdered.v1" and d.event.scope == "plant"]
    assert (plant_closure.ordered_by, plant_closure.ordered_by_actor) == ("rule", None)
    [room] = [d.event for d in of(messages, maluku) if d.envelope.type == "iomki.FacilityClosureOrdered.v1"]
    assert room.ends_at - room.starts_at == timedelta(hours=72)
