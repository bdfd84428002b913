"""Every action of the reports POLICY × every role: 403 for a role the rule omits; for the roles it allows,
2xx inside the caller's scope and 404 outside it. Generated from POLICY, so a new rule is tested at once."""

from __future__ import annotations

import asyncio
import tomllib
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from services.reports.api import POLICY
from services.reports.app import PPKM_RULES_FILE, ReportsSettings, create_app
from services.reports.staffing import rule_set_mapping, shipped_rule_sets
from shared.contract import EstateTenancyConfirmed, Envelope, PermitIssued, PermitKind, SectorClass
from shared.web.access import Role, Scope
from tests.support.platform import bearer, running_service

pytestmark = pytest.mark.integration

NIB, OTHER_NIB, ESTATE_NIB = "8120000999999", "8120000888888", "8120000777777"
PROVINCE, REGENCY = "32", "32.16"
FACILITY, ESTATE_FACILITY = uuid.uuid4(), uuid.uuid4()

# A caller inside and one outside the plant's scope, for each role (operators and agencies see everything). The
# estate is the one that confirmed the plant as its tenant; for what it may do to its own objects only (OWN), the
# object is its own estate's permit.
IN_SCOPE = {Role.OPERATOR: {}, Role.TASK_FORCE: {"region": PROVINCE}, Role.COMPANY: {"nib": NIB},
            Role.AGENCY: {}, Role.REGIONAL_OFFICE: {"region": PROVINCE}, Role.ESTATE: {"nib": ESTATE_NIB},
            Role.HEALTH_OFFICE: {"region": REGENCY}}
OUT_OF_SCOPE = {Role.TASK_FORCE: {"region": "51"}, Role.COMPANY: {"nib": OTHER_NIB},
                Role.REGIONAL_OFFICE: {"region": "33"}, Role.ESTATE: {"nib": OTHER_NIB},
                Role.HEALTH_OFFICE: {"region": "33.74"}}


def report_body(permit_id: str, period_id: str) -> dict:
    return {
        "permit_id": permit_id, "period_id": period_id,
        "workforce": {"total": 300, "on_site_per_shift": [100, 100]}, "odp": 0, "pdp": 0, "new_positives": 0,
        "tests": {"pcr": 0, "antigen": 10}, "vaccinated": {"dose1": 280, "dose2": 250, "booster": 20},
        "transport_modes": ["company_bus"],
        "protocol_checklist": {"temperature_screening": True, "masks": True, "distancing": True,
                               "ventilation": True, "disinfection": True, "handwash_stations": True,
                               "pedulilindungi_scan": True},
        "case_handling": "", "declared_true": True,
    }


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def plant(platform):
    """The reports service with one issued plant in Kab. Bekasi, the tenant of an estate there; yields (client,
    (the plant's permit_id, its open period_id), (the estate's permit_id, its open period_id))."""
    permit_id, estate_permit_id = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    issued = PermitIssued(facility_id=FACILITY, province_code=PROVINCE, regency_code=REGENCY, permit_id=permit_id,
                          nib=NIB, permit_number="IOMKI-2026-000777", company_name="PT Tekstil Jaya",
                          sector_class=SectorClass.ESSENTIAL, workforce_total=300, issued_at=now)
    estate = PermitIssued(facility_id=ESTATE_FACILITY, province_code=PROVINCE, regency_code=REGENCY,
                          permit_id=estate_permit_id, nib=ESTATE_NIB, permit_number="IOMKI-2026-000778",
                          company_name="PT Kawasan Industri Jababeka", sector_class=SectorClass.ESSENTIAL,
                          workforce_total=40, issued_at=now, kind=PermitKind.ESTATE)
    tenancy = EstateTenancyConfirmed(facility_id=FACILITY, province_code=PROVINCE, regency_code=REGENCY,
                                     permit_id=permit_id, nib=NIB, estate_facility_id=ESTATE_FACILITY,
                                     estate_permit_id=estate_permit_id, estate_permit_number="IOMKI-2026-000778",
                                     estate_nib=ESTATE_NIB, estate_name="Kawasan Industri Jababeka",
                                     confirmed_at=now)
    settings = ReportsSettings(IOMKI_REPORT_REGIME="weekly:FRI@23:59")
    async with running_service(create_app(reports_settings=settings)) as client:
        producer = AIOKafkaProducer(bootstrap_servers=platform.bootstrap)
        await producer.start()
        for event in (issued, estate, tenancy):
            envelope = Envelope.wrap(event, service="permits")
            await producer.send_and_wait("iomki.permits", envelope.to_bytes(), key=envelope.key)
        await producer.stop()
        estate_caller = bearer("estate", nib=ESTATE_NIB)
        async with asyncio.timeout(30):
            while (found := await client.get(f"/schedules/{permit_id}", headers=estate_caller)).status_code != 200:
                await asyncio.sleep(0.2)
            while (own := await client.get(f"/schedules/{estate_permit_id}", headers=estate_caller)).status_code != 200:
                await asyncio.sleep(0.2)
        yield (client, (str(permit_id), found.json()["periods"][-1]["period_id"]),
               (str(estate_permit_id), own.json()["periods"][-1]["period_id"]))


def request_for(action: str, permit_id: str, period_id: str) -> list[tuple[str, str, dict | None]]:
    return {
        "read": [("GET", f"/schedules/{permit_id}", None), ("GET", f"/reports?permit_id={permit_id}", None)],
        "submit": [("POST", "/reports", report_body(permit_id, period_id))],
        "compliance": [("GET", f"/compliance?province={PROVINCE}", None)],
        "regimes": [("GET", "/regimes", None)],
        # A regime of its own each time (a name and a date no other has), scheduled then withdrawn.
        "change_regimes": [("POST", "/regimes", regime_body(name := f"T-{uuid.uuid4().hex[:12]}")),
                           ("DELETE", f"/regimes/{name}", None)],
        "ppkm_levels": [("GET", f"/ppkm/levels?province={PROVINCE}", None),
                        ("GET", f"/ppkm/levels?regency={REGENCY}&limit=5", None)],
        # A level a month ahead, for Papua Barat Daya, where no test has plants.
        "set_ppkm_level": [("POST", "/ppkm/levels", {
            "province_code": "96", "level": "3", "effective_from": (date.today() + timedelta(days=30)).isoformat(),
            "instruction": "Inmendagri (a test)", "reason": "the access matrix"})],
        "ppkm_rule_sets": [("GET", "/ppkm/rule-sets", None)],
        # A rule set of its own each time (a name and a start day no other has), the shipped one's rules.
        "publish_ppkm_rules": [("POST", "/ppkm/rule-sets", rule_set_body(f"T-{uuid.uuid4().hex[:12]}"))],
        "allowance": [("GET", f"/plants/{FACILITY}/allowance", None),
                      ("GET", f"/plants/{FACILITY}/allowance?on=2021-07-30", None)],
    }[action]


def rule_set_body(name: str) -> dict:
    later = date.today() + timedelta(days=400 + uuid.uuid4().int % 300_000)
    shipped = rule_set_mapping(SHIPPED_RULES[-1][0])
    return {"name": name, "starts_on": later.isoformat(), "source": "Inmendagri (a test)", "rules": shipped["rules"]}


def regime_body(name: str, **changes) -> dict:
    later = date.today() + timedelta(days=400 + uuid.uuid4().int % 300_000)
    return {"name": name, "source": "SE Menperin (a test)", "effective_on": later.isoformat(),
            "rule": "weekly:MON@12:00", "ladder": "SE-5/2021"} | changes


SHIPPED_RULES = shipped_rule_sets(tomllib.loads(PPKM_RULES_FILE.read_text(encoding="utf-8")))
CASES = [(action, role) for action in POLICY.rules for role in Role]


def test_every_action_has_a_request():
    for action in POLICY.rules:
        assert request_for(action, "p", "q")


@pytest.mark.parametrize("action, role", CASES, ids=[f"{a}-{r.value}" for a, r in CASES])
async def test_policy_matrix(plant, action, role):
    client, tenant, estate = plant
    scope = POLICY.rules[action].allow.get(role)
    target = estate if role is Role.ESTATE and scope is Scope.OWN else tenant
    for method, path, body in request_for(action, *target):
        inside = await client.request(method, path, json=body, headers=bearer(role, **IN_SCOPE[role]))
        if scope is None:
            assert inside.status_code == 403, (method, path, inside.text)
            assert inside.json()["rule"] == action
            continue
        assert 200 <= inside.status_code < 300, (method, path, inside.text)
        if scope is Scope.ALL:
            continue
        outside = await client.request(method, path, json=body, headers=bearer(role, **OUT_OF_SCOPE[role]))
        if action == "compliance" and scope is Scope.TENANTS:  # an estate's compliance lists its own tenants
            assert outside.status_code == 200 and outside.json()["tenants"] == [], outside.text
            assert [t["facility_id"] for t in inside.json()["tenants"]] == [str(FACILITY)], inside.text
        else:
            assert outside.status_code == 404, (method, path, outside.text)


async def test_without_a_token_every_action_is_401(plant):
    client, tenant, _ = plant
    for action in POLICY.rules:
        for method, path, body in request_for(action, *tenant):
            assert (await client.request(method, path, json=body)).status_code == 401


async def test_a_task_force_sees_its_own_region_by_default(plant):
    client, _, _ = plant
    answer = await client.get("/compliance", headers=bearer("task_force", region=REGENCY))
    assert answer.status_code == 200 and answer.json()["regency"] == REGENCY
    wrong = await client.get("/compliance?province=32&regency=33.01", headers=bearer("operator"))
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "regency"


async def test_an_operator_schedules_and_withdraws_a_regime_ahead_of_time_and_each_change_is_audited(plant):
    client, _, _ = plant
    operator = bearer("operator", sub="ops.rina")
    name = f"SE-{uuid.uuid4().int % 90 + 10}/{uuid.uuid4().int % 900 + 2100}"
    body = regime_body(name)
    scheduled = await client.post("/regimes", json=body, headers=operator)
    assert scheduled.status_code == 201, scheduled.text
    # Unless stated, a regime requires the declaration of truth, as the latest circular does.
    assert scheduled.json() == {key: body[key] for key in ("name", "source", "effective_on", "rule", "ladder")} | {
        "declaration": True}
    undeclared = regime_body(f"T-{uuid.uuid4().hex[:12]}", declaration=False)
    stated = await client.post("/regimes", json=undeclared, headers=operator)
    assert stated.status_code == 201 and stated.json()["declaration"] is False, stated.text
    assert (await client.post("/regimes", json=regime_body("y") | {"declaration": "no"},
                              headers=operator)).status_code == 422

    timeline = (await client.get("/regimes", headers=bearer("agency"))).json()
    declaration = {r["name"]: r["declaration"] for r in timeline["regimes"]}
    assert (declaration["SE-8/2020"], declaration["SE-3/2021"], declaration["SE-5/2021"]) == (False, False, True)
    assert (declaration[name], declaration[undeclared["name"]]) == (True, False)
    assert (await client.delete(f"/regimes/{undeclared['name']}", headers=operator)).status_code == 200
    # IOMKI_REPORT_REGIME is set here: the one configured rule is in force, the stored entries listed under it.
    assert timeline["configured"] is True and set(timeline["in_force"].values()) == {"configured"}
    changes = [c for c in timeline["changes"] if c["name"] == name]
    assert [(c["action"], c["by"]) for c in changes] == [("scheduled", "ops.rina")]
    assert changes[0]["entry"]["effective_on"] == body["effective_on"]

    again = await client.post("/regimes", json=body, headers=operator)
    assert again.status_code == 409 and again.json()["title"] == "Regime exists"
    for wrong, field in (({"effective_on": date.today().isoformat()}, "effective_on"),
                         ({"rule": "every:5s"}, "rule"), ({"rule": "weekly:XYZ@23:59"}, "rule")):
        refused = await client.post("/regimes", json=regime_body(f"T-{uuid.uuid4().hex[:12]}", **wrong),
                                    headers=operator)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == field, refused.text
    for wrong in ({"name": "SE 9/2099"}, {"ladder": "SE-4/2020"}, {"source": ""}):
        assert (await client.post("/regimes", json=regime_body("x") | wrong, headers=operator)).status_code == 422

    withdrawn = await client.delete(f"/regimes/{name}", headers=operator)
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn"] is True
    assert (await client.delete(f"/regimes/{name}", headers=operator)).status_code == 404
    in_effect = await client.delete("/regimes/SE-8/2020", headers=operator)
    assert in_effect.status_code == 409 and in_effect.json()["title"] == "Regime in effect"
    timeline = (await client.get("/regimes", headers=bearer("task_force", region=PROVINCE))).json()
    assert [(c["action"], c["by"]) for c in timeline["changes"] if c["name"] == name] == [
        ("withdrawn", "ops.rina"), ("scheduled", "ops.rina")]
