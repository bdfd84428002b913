"""Access to the supervision API, generated from its POLICY: every action × role, and in scope vs out of scope.

A role the rule does not name gets 403; a role it names gets a success on a plant in its scope and 404 on a plant
outside it (existence is not leaked), or, for a list asked about a region outside its own, 404 for that region.
Plants: one in Kab. Bekasi (32.16), one in Surabaya (35.78); the task force and the regional office are West Java's.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from services.supervision.api import POLICY
from services.supervision.app import create_app
from services.supervision.repository import PlantFacts
from shared import regions
from shared.web.access import Role, Scope
from tests.support.platform import bearer, running_service

pytestmark = pytest.mark.integration

NIB = "8120000333333"
CLAIMS = {Role.OPERATOR: {}, Role.TASK_FORCE: {"region": "32"}, Role.COMPANY: {"nib": NIB}, Role.AGENCY: {},
          Role.REGIONAL_OFFICE: {"region": "32"}, Role.ESTATE: {"nib": NIB}, Role.HEALTH_OFFICE: {"region": "32.16"}}
OPERATOR = bearer("operator")
REGENCY = {"in": "32.16", "out": "35.78"}
LISTS = {"read_worklist": "/worklist", "read_inspections": "/inspections", "read_complaints": "/complaints",
         "read_sanction_requests": "/sanction-requests"}


class Scene:
    def __init__(self, client, app) -> None:
        self.client, self.app = client, app
        self.permits = {"in": uuid.uuid4(), "out": uuid.uuid4()}

    def today(self, where: str) -> str:
        return datetime.now(UTC).astimezone(regions.local_zone(REGENCY[where])).date().isoformat()

    async def inspection(self, where: str, *, recorded: bool = False) -> str:
        planned = await self.client.post("/inspections", headers=OPERATOR, json={
            "permit_id": str(self.permits[where]), "planned_on": self.today(where),
            "team": [{"name": "Tim Gabungan", "body": "task_force"}]})
        assert planned.status_code == 201, planned.text
        inspection_id = planned.json()["inspection_id"]
        if recorded:
            done = await self.client.post(f"/inspections/{inspection_id}/record", headers=OPERATOR,
                                          json={"inspected_on": self.today(where)})
            assert done.status_code == 200, done.text
        return inspection_id

    async def complaint(self, where: str) -> uuid.UUID:
        """A complaint about the plant, as filing one with its permit number leaves it."""
        complaint_id = uuid.uuid4()
        async with self.app.state.runtime.database.transaction() as work:
            plant = await work.supervision.plant_by_permit(self.permits[where])
            await work.supervision.add_complaints([{
                "complaint_id": complaint_id, "reference": f"ADU-{uuid.uuid4().hex[:16].upper()}",
                "status": "received", "category": "protocol", "text": "Tidak ada pemeriksaan suhu di gerbang.",
                "permit_number_given": plant["permit_number"], "address": None,
                "province_code": plant["province_code"], "regency_code": plant["regency_code"],
                "facility_id": plant["facility_id"], "permit_id": plant["permit_id"], "contact_email": None,
                "contact_phone": None, "filed_at": datetime.now(UTC)}])
        return complaint_id

    async def sanction_request(self, where: str) -> str:
        office = bearer("regional_office", region=REGENCY[where][:2])
        asked = await self.client.post("/sanction-requests", headers=office, json=sanction_body(self, where))
        assert asked.status_code == 201, asked.text
        return asked.json()["request_id"]


def sanction_body(scene: Scene, where: str) -> dict:
    return {"permit_id": str(scene.permits[where]), "action": "freeze", "reason": "Pelanggaran protokol berulang",
            "ground": {"code": "inspection_finding", "evidence": {"finding": "BAP-2026-17"}}}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def scene(platform):
    app = create_app()
    async with running_service(app) as client:
        scene = Scene(client, app)
        # The plants as PermitIssued leaves them (consumption over the broker is the slice test's subject).
        async with app.state.runtime.database.transaction() as work:
            await work.supervision.learn_plants([
                PlantFacts(uuid.uuid4(), scene.permits[where], f"IOMKI-2026-{uuid.uuid4().int % 10**9:09d}", NIB,
                           "PT Akses Uji", regency[:2], regency, datetime.now(UTC).date())
                for where, regency in REGENCY.items()], datetime.now(UTC))
        yield scene


# One request per action, against the plant `where`; each returns the response.
async def read_worklist(scene: Scene, headers, where):
    return await scene.client.get("/worklist", headers=headers, params={"regency": REGENCY[where]})


async def plan_inspection(scene: Scene, headers, where):
    return await scene.client.post("/inspections", headers=headers, json={
        "permit_id": str(scene.permits[where]), "planned_on": scene.today(where),
        "team": [{"name": "Dinas Perindustrian", "body": "regional_office"}]})


async def record_inspection(scene: Scene, headers, where):
    return await scene.client.post(f"/inspections/{await scene.inspection(where)}/record", headers=headers,
                                   json={"inspected_on": scene.today(where), "findings": {"masks": "met"}})


async def read_inspections(scene: Scene, headers, where):
    return await scene.client.get(f"/inspections/{await scene.inspection(where)}", headers=headers)


async def read_complaints(scene: Scene, headers, where):
    return await scene.client.get(f"/complaints/{await scene.complaint(where)}", headers=headers)


async def handle_complaints(scene: Scene, headers, where):
    return await scene.client.post(f"/complaints/{await scene.complaint(where)}/status", headers=headers,
                                   json={"status": "under_review"})


async def request_sanction(scene: Scene, headers, where):
    return await scene.client.post("/sanction-requests", headers=headers, json=sanction_body(scene, where))


async def read_sanction_requests(scene: Scene, headers, where):
    return await scene.client.get(f"/sanction-requests/{await scene.sanction_request(where)}", headers=headers)


REQUESTS = {"read_worklist": read_worklist, "plan_inspection": plan_inspection,
            "record_inspection": record_inspection, "read_inspections": read_inspections,
            "read_complaints": read_complaints, "handle_complaints": handle_complaints,
            "request_sanction": request_sanction, "read_sanction_requests": read_sanction_requests}


def test_every_action_of_the_policy_has_a_request():
    assert set(REQUESTS) == set(POLICY.rules)


def test_companies_estates_and_agencies_have_no_part():
    assert not any({Role.COMPANY, Role.ESTATE, Role.AGENCY} & set(rule.allow) for rule in POLICY.rules.values())


MATRIX = [(action, role) for action in POLICY.rules for role in Role]


@pytest.mark.parametrize(("action", "role"), MATRIX, ids=[f"{a}-{r.value}" for a, r in MATRIX])
async def test_a_role_outside_the_rule_is_forbidden_and_one_inside_succeeds(scene, action, role):
    response = await REQUESTS[action](scene, bearer(role, **CLAIMS[role]), "in")
    if role in POLICY.rules[action].allow:
        assert 200 <= response.status_code < 300, response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["rule"] == action


SCOPED = [(action, role) for action, rule in POLICY.rules.items() for role, scope in rule.allow.items()]


@pytest.mark.parametrize(("action", "role"), SCOPED, ids=[f"{a}-{r.value}" for a, r in SCOPED])
async def test_out_of_scope_is_not_found(scene, action, role):
    scope = POLICY.rules[action].allow[role]
    response = await REQUESTS[action](scene, bearer(role, **CLAIMS[role]), "out")
    if scope is Scope.ALL:
        assert 200 <= response.status_code < 300, response.text
    else:
        assert response.status_code == 404, response.text


@pytest.mark.parametrize("action", sorted(LISTS))
async def test_a_list_narrows_to_the_callers_region(scene, action):
    await REQUESTS[action](scene, OPERATOR, "out")  # something outside West Java to leave out
    if action == "read_sanction_requests":
        await scene.sanction_request("in")
    own = await scene.client.get(LISTS[action], headers=bearer("task_force", region="32"), params={"limit": 200})
    everything = await scene.client.get(LISTS[action], headers=OPERATOR, params={"limit": 200})
    assert own.status_code == everything.status_code == 200
    assert own.json()["items"] and all(item["regency_code"].startswith("32.") for item in own.json()["items"])
    assert any(item["regency_code"] == "35.78" for item in everything.json()["items"])


async def test_no_token_is_401_but_the_public_files_without_one(scene):
    assert (await scene.client.get("/worklist")).status_code == 401
    filed = await scene.client.post("/public/complaints", json={
        "address": "Kawasan Industri Rungkut", "regency_code": "35.78", "category": "protocol",
        "text": "Pekerja tidak diperiksa suhunya di gerbang."})
    assert filed.status_code == 201
    assert (await scene.client.get(f"/public/complaints/{filed.json()['reference']}")).status_code == 200
    assert (await scene.client.get("/public/complaints/ADU-0000000000000000")).status_code == 404
