"""Access to the incidents API, generated from its POLICY: every action × role, and in scope vs out of scope.

A role the rule does not name gets 403; a role it names gets a success on a plant in its scope and 404 on a
plant outside it (existence is not leaked). Plants: one in Kab. Bekasi (32.16, the company's), one in
Surabaya (35.78, another company's), and an industrial estate in Kab. Bekasi that confirmed the company's plant
as its tenant; the task force and the regional office are West Java's (32), the health office Kab. Bekasi's. The
estate acts on its own estate where it has the company's scope (OWN), and reads its tenant where it has TENANTS.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
import pytest_asyncio

from services.incidents.api import POLICY
from services.incidents.app import create_app
from shared.clock import FakeClock
from shared.web.access import Role, Scope
from tests.support.platform import bearer, running_service

pytestmark = pytest.mark.integration

NIB_IN, NIB_OUT, NIB_ESTATE = "8120000111111", "8120000222222", "8120000333333"
CLAIMS = {Role.OPERATOR: {}, Role.TASK_FORCE: {"region": "32"}, Role.COMPANY: {"nib": NIB_IN}, Role.AGENCY: {},
          Role.REGIONAL_OFFICE: {"region": "32"}, Role.ESTATE: {"nib": NIB_ESTATE},
          Role.HEALTH_OFFICE: {"region": "32.16"}}
REGENCY = {"in": "32.16", "out": "35.78", "estate": "32.16"}
OPERATOR = bearer("operator")
# Who acts for each plant as its company: the estate company for its own estate.
COMPANY_OF = {"in": bearer(Role.COMPANY, nib=NIB_IN), "out": bearer(Role.COMPANY, nib=NIB_OUT),
              "estate": bearer(Role.ESTATE, nib=NIB_ESTATE)}
WIB = timezone(timedelta(hours=7))


class Scene:
    def __init__(self, client, app, clock: FakeClock) -> None:
        self.client, self.app, self.clock = client, app, clock
        self.plants = {"in": uuid.uuid4(), "out": uuid.uuid4(), "estate": uuid.uuid4()}

    def today(self, days_ago: int = 0) -> str:
        return (self.clock.now().astimezone(WIB).date() - timedelta(days=days_ago)).isoformat()

    async def case(self, where: str, days_ago: int = 0, contacts: int = 0) -> str:
        # Digits in the reference: one of letters only ("A-fadebcab") reads as a person's name and is refused.
        response = await self.client.post("/cases", headers=OPERATOR, json={
            "facility_id": str(self.plants[where]), "case_ref": f"A-{uuid.uuid4().int % 10**8:08d}",
            "confirmed_on": self.today(days_ago), "symptomatic": False, "close_contacts": contacts})
        assert response.status_code == 201, response.text
        return response.json()["case_id"]

    async def contact(self, case_id: str) -> str:
        """The first close contact on the case's line list."""
        listed = await self.client.get(f"/cases/{case_id}/contacts", headers=OPERATOR)
        assert listed.status_code == 200, listed.text
        return listed.json()["items"][0]["contact_id"]

    async def link(self, case_id: str, other: str, headers=OPERATOR):
        return await self.client.post(f"/cases/{case_id}/links", headers=headers,
                                      json={"linked_case_id": other, "kind": "same_line"})

    async def plant_closure(self, where: str) -> dict | None:
        status = await self.client.get(f"/facilities/{self.plants[where]}/status", headers=OPERATOR)
        return status.json()["plant_closure"]

    async def pending_recommendation(self, where: str) -> str:
        """A cluster's closure recommendation at the plant, undecided: three cases linked (a plant closure in force
        is cleared first, since its cases belong to its cluster)."""
        closure = await self.plant_closure(where)
        if closure is not None:
            self.clock.set(max(self.clock.now(), datetime.fromisoformat(closure["ends_at"]) + timedelta(seconds=1)))
            cleared = await self.client.post(f"/closures/{closure['closure_id']}/clear", headers=OPERATOR)
            assert cleared.status_code == 200, cleared.text
        a, b, c = [await self.case(where) for _ in range(3)]
        assert (await self.link(a, b)).status_code == 201
        linked = await self.link(b, c)
        assert linked.status_code == 201, linked.text
        cluster_id, after = linked.json()["cluster_id"], None
        while True:  # the shared database holds other modules' recommendations too
            page = (await self.client.get("/closure-recommendations", headers=OPERATOR, params={
                "status": "pending", "limit": 500} | ({"after": after} if after else {}))).json()
            found = [r["recommendation_id"] for r in page["items"] if r["cluster_id"] == cluster_id]
            if found or page["next"] is None:
                return found[0]
            after = page["next"]

    async def plant_closure_over(self, where: str) -> str:
        """A plant closure at the plant whose period has passed (three linked cases, their closure ordered)."""
        closure = await self.plant_closure(where)
        if closure is None:
            recommendation = await self.pending_recommendation(where)
            ordered = await self.client.post(f"/closure-recommendations/{recommendation}/order", headers=OPERATOR)
            assert ordered.status_code == 200, ordered.text
            closure = await self.plant_closure(where)
        ends_at = datetime.fromisoformat(closure["ends_at"])
        self.clock.set(max(self.clock.now(), ends_at + timedelta(seconds=1)))
        return closure["closure_id"]

    async def own_closure_over(self, where: str) -> str:
        """A plant closure its company ordered, its period passed: anyone allowed to clear closures may clear it (a
        company only such a one). A closure in force ordered by others is cleared first."""
        closure = await self.plant_closure(where)
        if closure is not None and closure["ordered_by"] == "company":
            self.clock.set(max(self.clock.now(), datetime.fromisoformat(closure["ends_at"]) + timedelta(seconds=1)))
            return closure["closure_id"]
        if closure is not None:
            await self.client.post(f"/closures/{await self.plant_closure_over(where)}/clear", headers=OPERATOR)
        ordered = await self.client.post(f"/facilities/{self.plants[where]}/closures", headers=COMPANY_OF[where],
                                         json={"scope": "plant", "days": 1, "reason": "Disinfeksi menyeluruh"})
        assert ordered.status_code == 201, ordered.text
        self.clock.set(max(self.clock.now(), datetime.fromisoformat(ordered.json()["ends_at"]) + timedelta(seconds=1)))
        return ordered.json()["closure_id"]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def scene(platform):
    clock = FakeClock(datetime.now(UTC))
    app = create_app(clock=clock)
    async with running_service(app) as client:
        scene = Scene(client, app, clock)
        # The plants as PermitIssued leaves them (consumption over the broker is the slice test's subject).
        async with app.state.runtime.database.transaction() as work:
            for where, nib, regency in (("in", NIB_IN, "32.16"), ("out", NIB_OUT, "35.78"),
                                        ("estate", NIB_ESTATE, "32.16")):
                await work.incidents.learn_plant(facility_id=scene.plants[where], permit_id=uuid.uuid4(), nib=nib,
                                                 province_code=regency[:2], regency_code=regency,
                                                 workforce_total=500, now=clock.now())
            # The estate confirmed the company's plant as its tenant, as EstateTenancyConfirmed leaves it.
            await work.incidents.confirm_tenancy(scene.plants["in"], estate_facility_id=scene.plants["estate"],
                                                 estate_nib=NIB_ESTATE, confirmed_at=clock.now(), now=clock.now())
        yield scene


# One request per action, against the plant `where`; each returns the response.
async def report_case(scene: Scene, headers, where):
    return await scene.client.post("/cases", headers=headers, json={
        "facility_id": str(scene.plants[where]), "case_ref": f"R-{uuid.uuid4().int % 10**8:08d}",
        "confirmed_on": scene.today(), "symptomatic": True, "symptom_onset_on": scene.today(1), "close_contacts": 2})


async def read_case(scene: Scene, headers, where):
    return await scene.client.get(f"/cases/{await scene.case(where)}", headers=headers)


async def close_case(scene: Scene, headers, where):
    # Confirmed 20 days ago: its isolation is over (closing is idempotent if the sweep closed it first).
    return await scene.client.post(f"/cases/{await scene.case(where, days_ago=20)}/close", headers=headers)


async def read_status(scene: Scene, headers, where):
    return await scene.client.get(f"/facilities/{scene.plants[where]}/status", headers=headers)


async def clear_closure(scene: Scene, headers, where):
    return await scene.client.post(f"/closures/{await scene.own_closure_over(where)}/clear", headers=headers)


async def close_own_plant(scene: Scene, headers, where):
    # A room's: a plant closure would stand in the way of the other actions' clusters.
    return await scene.client.post(f"/facilities/{scene.plants[where]}/closures", headers=headers,
                                   json={"scope": "room", "days": 1, "reason": "Disinfeksi kantin / canteen"})


async def list_incidents(scene: Scene, headers, where):
    await scene.case(where)  # the plant has had a case, so it is an incident
    return await scene.client.get("/incidents", headers=headers, params={"limit": 500})


async def link_cases(scene: Scene, headers, where):
    return await scene.link(await scene.case(where), await scene.case(where), headers)


async def read_recommendations(scene: Scene, headers, where):
    return await scene.client.get(f"/closure-recommendations/{await scene.pending_recommendation(where)}",
                                  headers=headers)


async def decide_closure(scene: Scene, headers, where):
    return await scene.client.post(f"/closure-recommendations/{await scene.pending_recommendation(where)}/decline",
                                   headers=headers, json={"reason": "Penularan di luar pabrik / outside the plant"})


def same_answer(*responses):
    """Routes guarded by one action answer alike, all a success or all the same refusal: the last response."""
    answers = {"success" if 200 <= r.status_code < 300 else r.status_code for r in responses}
    assert len(answers) == 1, [(r.request.url.path, r.status_code) for r in responses]
    return responses[-1]


async def read_contacts(scene: Scene, headers, where):
    case_id = await scene.case(where, contacts=2)
    return same_answer(await scene.client.get(f"/cases/{case_id}/contacts", headers=headers),
                       await scene.client.get(f"/contacts/{await scene.contact(case_id)}", headers=headers))


async def trace_contacts(scene: Scene, headers, where):
    # Each request stands alone: the exposure corrected to yesterday or not, today's entry test is after it.
    case_id = await scene.case(where, contacts=1)
    contact_id = await scene.contact(case_id)
    return same_answer(
        await scene.client.post(f"/cases/{case_id}/contacts", headers=headers,
                                json={"contacts": [{"last_exposure_on": scene.today(1)}]}),
        await scene.client.patch(f"/contacts/{contact_id}", headers=headers,
                                 json={"last_exposure_on": scene.today(1)}),
        await scene.client.post(f"/contacts/{contact_id}/tests", headers=headers,
                                json={"kind": "entry", "tested_on": scene.today(), "result": "negative"}))


async def verify_case(scene: Scene, headers, where):
    return await scene.client.post(f"/cases/{await scene.case(where)}/verification", headers=headers,
                                   json={"verdict": "confirmed"})


async def close_follow_up(scene: Scene, headers, where):
    # A case without contacts: none is in quarantine, so its follow-up may close.
    return await scene.client.post(f"/cases/{await scene.case(where)}/contacts/close", headers=headers)


async def read_tracing(scene: Scene, headers, where):
    await scene.case(where, contacts=3)  # the region has traced contacts
    return await scene.client.get("/tracing", headers=headers, params={"regency": REGENCY[where]})


REQUESTS = {"report_case": report_case, "read_case": read_case, "close_case": close_case,
            "read_status": read_status, "clear_closure": clear_closure, "list_incidents": list_incidents,
            "link_cases": link_cases, "read_recommendations": read_recommendations,
            "decide_closure": decide_closure, "read_contacts": read_contacts, "trace_contacts": trace_contacts,
            "verify_case": verify_case, "close_follow_up": close_follow_up, "read_tracing": read_tracing,
            "close_own_plant": close_own_plant}


def test_every_action_of_the_policy_has_a_request():
    assert set(REQUESTS) == set(POLICY.rules)


MATRIX = [(action, role) for action in POLICY.rules for role in Role]


def inside(action: str, role: Role) -> str:
    """The plant in the caller's scope: an estate's own for what it does as a company, else the tenant."""
    return "estate" if role is Role.ESTATE and POLICY.rules[action].allow.get(role) is Scope.OWN else "in"


@pytest.mark.parametrize(("action", "role"), MATRIX, ids=[f"{a}-{r.value}" for a, r in MATRIX])
async def test_a_role_outside_the_rule_is_forbidden_and_one_inside_succeeds(scene, action, role):
    response = await REQUESTS[action](scene, bearer(role, **CLAIMS[role]), inside(action, role))
    if role in POLICY.rules[action].allow:
        assert 200 <= response.status_code < 300, response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["rule"] == action


SCOPED = [(action, role) for action, rule in POLICY.rules.items() for role, scope in rule.allow.items()]


@pytest.mark.parametrize(("action", "role"), SCOPED, ids=[f"{a}-{r.value}" for a, r in SCOPED])
async def test_out_of_scope_is_not_found(scene, action, role):
    scope = POLICY.rules[action].allow[role]
    headers = bearer(role, **CLAIMS[role])
    response = await REQUESTS[action](scene, headers, "out")
    if action == "list_incidents":  # a list filters instead of refusing
        assert response.status_code == 200
        listed = {item["facility_id"] for item in response.json()["items"]}
        assert (str(scene.plants["out"]) in listed) is (scope is Scope.ALL)
    elif scope is Scope.ALL:
        assert 200 <= response.status_code < 300, response.text
    else:
        assert response.status_code == 404, response.text


async def test_no_token_is_401(scene):
    response = await scene.client.get(f"/facilities/{scene.plants['in']}/status")
    assert response.status_code == 401
