"""The access rules re-proven from outside: the four services as processes, attacked over real HTTP.

Forged tokens are refused with one answer whatever the forgery; a company probing other companies' ids, and
a task force probing another region's, get exactly what an id that does not exist gets; a task force that
names another region (or the country, or its parent province, or something that looks like an injection) in
query parameters is refused or kept to its own region, never shown another region's data.

The scene: company A has a plant in Kab. Bekasi (32.16); company B one in Surabaya (35.78) and one in
Kab. Karawang (32.15), next to Bekasi in the same province (Jawa Barat, 32). Each plant has an issued permit,
a reporting schedule, a case and the alert the case raised.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio

from shared.regions import NATIONAL
from shared.web.access import DEVELOPMENT_AUDIENCE, DEVELOPMENT_ISSUER, Principal, Role
from shared.web.http import PROBLEM
from tests.support.processes import RunningServices, running_platform
from tests.support.platform import JWT_SECRET, bearer, token

pytestmark = [
    pytest.mark.e2e,
    # The HS512 forgery uses the platform's (HS256-sized) secret on purpose.
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

NIB_A, NIB_B = "8120000555111", "8120000555222"
UNKNOWN_NIB = "8120000999000"
PLANTS = {"A-bekasi": (NIB_A, "32.16"), "B-surabaya": (NIB_B, "35.78"), "B-karawang": (NIB_B, "32.15")}


@dataclass(frozen=True)
class Plant:
    nib: str
    regency: str
    permit_id: str
    facility_id: str
    period_id: str
    case_id: str
    alert_id: str


@dataclass
class Scene:
    services: RunningServices
    http: httpx.AsyncClient
    plants: dict[str, Plant]

    def url(self, service: str, path: str) -> str:
        return f"{self.services.url(service)}{path}"


def application(nib: str, regency: str) -> dict[str, Any]:
    return {
        "company": {"nib": nib, "npwp": "01.234.567.8-901.000", "name": f"PT Uji {nib[-3:]}"},
        "facility": {"name": f"Pabrik {regency}", "address": f"Jl. Kawasan Industri {uuid.uuid4().hex[:8]}",
                     "province_code": regency[:2], "regency_code": regency},
        "kbli": ["13112"], "sector_class": "essential",
        "workforce": {"total": 200, "on_site_per_shift": [100, 100]},
        "health_protocol_commitment": True,
    }


async def eventually(http: httpx.AsyncClient, method: str, url: str, headers: dict[str, str], *,
                     json_body: Any = None, until=lambda r: r.status_code < 300, timeout: float = 60) -> httpx.Response:
    """A request repeated until another service has caught up with the events it needs."""
    async with asyncio.timeout(timeout):
        while not until(response := await http.request(method, url, headers=headers, json=json_body)):
            await asyncio.sleep(0.3)
    return response


async def build_plant(http: httpx.AsyncClient, services: RunningServices, nib: str, regency: str) -> Plant:
    operator = bearer("operator")
    company = bearer("company", nib=nib)
    applied = await http.post(f"{services.url('permits')}/permits", json=application(nib, regency), headers=company)
    assert applied.status_code == 201, applied.text
    permit_id, facility_id = applied.json()["permit_id"], applied.json()["facility_id"]
    issued = await http.post(f"{services.url('permits')}/permits/{permit_id}/decision", headers=operator,
                             json={"decision": "issue", "reason": "documents complete"})
    assert issued.status_code == 200, issued.text
    schedule = await eventually(http, "GET", f"{services.url('reports')}/schedules/{permit_id}", operator)
    case = await eventually(http, "POST", f"{services.url('incidents')}/cases", company, json_body={
        "facility_id": facility_id, "case_ref": f"C-{uuid.uuid4().int % 10**6:06d}",
        "confirmed_on": date.today().isoformat(), "symptomatic": False, "close_contacts": 1})
    alerts = await eventually(http, "GET", f"{services.url('notifier')}/alerts", operator,
                              until=lambda r: any(a["facility_id"] == facility_id for a in r.json()["alerts"]))
    alert_id = next(a["alert_id"] for a in alerts.json()["alerts"] if a["facility_id"] == facility_id)
    return Plant(nib, regency, permit_id, facility_id, schedule.json()["periods"][-1]["period_id"],
                 case.json()["case_id"], alert_id)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def scene() -> AsyncIterator[Scene]:
    async with running_platform("attacks") as services, httpx.AsyncClient(timeout=15) as http:
        for level, region in DIRECTORY:
            registered = await http.post(f"{services.url('notifier')}/task-forces", headers=bearer("operator"), json={
                "level": level, "region_code": region, "name": f"Satgas {region or 'nasional'}",
                "contacts": [{"division": "health", "email": f"kesehatan-{region or 'id'}@satgas.example"}]})
            assert registered.status_code == 201, registered.text
        built = await asyncio.gather(*(build_plant(http, services, nib, regency) for nib, regency in PLANTS.values()))
        yield Scene(services, http, dict(zip(PLANTS, built, strict=True)))


# ---------------------------------------------------------------------------------------------- forged tokens


def _segment(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def forgeries() -> dict[str, str]:
    """Every way to get a token the platform did not issue, or one it must not honour."""
    now = int(time.time())
    # Complete but for the one thing each forgery gets wrong, so that each is refused for its own reason.
    operator = {"sub": "mallory", "role": "operator", "iss": DEVELOPMENT_ISSUER, "aud": DEVELOPMENT_AUDIENCE,
                "iat": now, "exp": now + 600}
    genuine = token("company", nib=NIB_A, sub="mallory")
    head, payload, signature = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return {
        "signed with another key": jwt.encode(operator, "not-the-platform-secret-" + "k" * 32, algorithm="HS256"),
        "alg none": f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(operator)}.",
        "alg none, signature kept": f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(operator)}.{signature}",
        "claims tampered, signature kept": f"{head}.{_segment(claims | {'role': 'operator'})}.{signature}",
        "nib tampered, signature kept": f"{head}.{_segment(claims | {'nib': NIB_B})}.{signature}",
        "signature stripped": f"{head}.{payload}.",
        "expired": token("operator", sub="mallory", ttl_seconds=-120),  # beyond the clock-skew leeway
        "from another issuer": jwt.encode(operator | {"iss": "https://sso.example.com"}, JWT_SECRET,
                                          algorithm="HS256"),
        "living a month": jwt.encode(operator | {"exp": now + 30 * 86400}, JWT_SECRET, algorithm="HS256"),
        "another algorithm": jwt.encode(operator, JWT_SECRET, algorithm="HS512"),
        "for another audience": jwt.encode(operator | {"aud": "another-application"}, JWT_SECRET, algorithm="HS256"),
        "a role that does not exist": jwt.encode(operator | {"role": "superuser"}, JWT_SECRET, algorithm="HS256"),
        "no expiry": jwt.encode({k: v for k, v in operator.items() if k != "exp"}, JWT_SECRET, algorithm="HS256"),
        "task force without a region": jwt.encode(operator | {"role": "task_force"}, JWT_SECRET, algorithm="HS256"),
        "not a JWT": "mallory",
    }


# One protected route per service: any of them must refuse a forged token before anything else happens.
PROTECTED = [("permits", "/permits"), ("reports", "/compliance"), ("incidents", "/incidents"),
             ("notifier", "/alerts")]


@pytest.mark.parametrize(("service", "path"), PROTECTED, ids=[s for s, _ in PROTECTED])
async def test_every_forged_token_gets_the_same_401(scene: Scene, service: str, path: str):
    answers = {kind: await scene.http.get(scene.url(service, path), headers={"Authorization": f"Bearer {forged}"})
               for kind, forged in forgeries().items()}
    for kind, answer in answers.items():
        assert answer.status_code == 401, (kind, answer.text)
        assert answer.headers["content-type"] == PROBLEM, kind
        assert answer.headers["www-authenticate"] == "Bearer", kind
        assert "mallory" not in answer.text and "operator" not in answer.text, (kind, answer.text)
    # No oracle: whatever was forged, the answer has one shape (the detail may say what is wrong with it).
    shapes = {kind: {name: value for name, value in answer.json().items() if name != "detail"} | {
        "keys": sorted(answer.json())} for kind, answer in answers.items()}
    assert all(shape == {"type": "about:blank", "title": "Unauthorized", "status": 401,
                         "keys": ["detail", "status", "title", "type"]} for shape in shapes.values()), shapes
    genuine = await scene.http.get(scene.url(service, path), headers=bearer("operator"))
    assert genuine.status_code == 200, genuine.text  # the same route honours a token the platform issued


# ---------------------------------------------------------------------------------------------- enumeration


@dataclass(frozen=True)
class Probe:
    """A request about one plant's object; `{permit}`, `{facility}`, `{period}`, `{case}`, `{alert}`, `{nib}`
    in the path or body are the plant's."""

    service: str
    method: str
    path: str
    body: dict[str, Any] | None = None

    def fill(self, ids: dict[str, str]) -> tuple[str, Any]:
        def filled(text: str) -> str:
            for name, value in ids.items():
                text = text.replace("{" + name + "}", value)
            return text
        body = json.loads(filled(json.dumps(self.body))) if self.body is not None else None
        return filled(self.path), body

    def __str__(self) -> str:
        return f"{self.method} {self.service}{self.path}"


REPORT = {"permit_id": "{permit}", "period_id": "{period}", "workforce": {"total": 200, "on_site_per_shift": [90, 90]},
          "odp": 0, "pdp": 0, "new_positives": 0, "isolating_workers": 0, "tests": {"pcr": 0, "antigen": 4},
          "vaccinated": {"dose1": 190, "dose2": 180, "booster": 10}, "transport_modes": ["company_bus"],
          "protocol_checklist": {"temperature_screening": True, "masks": True, "distancing": True, "ventilation": True,
                                 "disinfection": True, "handwash_stations": True, "pedulilindungi_scan": True},
          "case_handling": "", "declared_true": True}
# Confirmed in the future: the domain refuses it (422) at the caller's own plant, so probing adds no case; a
# plant out of scope must be 404 before the case is even looked at.
NEW_CASE = {"facility_id": "{facility}", "case_ref": "PROBE-1",
            "confirmed_on": (date.today() + timedelta(days=30)).isoformat(), "symptomatic": False, "close_contacts": 0}
REASON = {"reason": "probing"}
SANCTION = {"reason": "probing", "ground": {"code": "company_request"}}

# Every route that names one plant's object (read from each service's api.py), and the list that takes a NIB.
PROBES = [
    Probe("permits", "GET", "/permits/{permit}"),
    Probe("permits", "GET", "/permits/{permit}/history"),
    Probe("permits", "POST", "/permits/{permit}/decision", {"decision": "reject", "reason": "probing"}),
    Probe("permits", "POST", "/permits/{permit}/freeze", SANCTION),
    Probe("permits", "POST", "/permits/{permit}/reactivate", REASON),
    Probe("permits", "POST", "/permits/{permit}/revoke", SANCTION),
    Probe("permits", "GET", "/permits/{permit}/reactivation-requests"),
    Probe("permits", "POST", "/permits/{permit}/reactivation-requests", {"corrective_action": "probing " * 10}),
    Probe("permits", "GET", "/permits/{permit}/letters"),  # a letter's download: test_permits_letters.py (none here)
    Probe("permits", "GET", "/permits?nib={nib}"),
    Probe("reports", "GET", "/schedules/{permit}"),
    Probe("reports", "GET", "/reports?permit_id={permit}"),
    Probe("reports", "POST", "/reports", REPORT),
    Probe("incidents", "GET", "/cases/{case}"),
    Probe("incidents", "POST", "/cases/{case}/close", {}),
    Probe("incidents", "GET", "/facilities/{facility}/status"),
    Probe("incidents", "POST", "/cases", NEW_CASE),
    Probe("notifier", "GET", "/alerts/{alert}"),
    Probe("notifier", "GET", "/alerts/{alert}/deliveries"),
    Probe("notifier", "POST", "/alerts/{alert}/ack"),
]

# Who probes, from which plant of theirs, at which plant that is not theirs.
CALLERS = {
    "company A": (("company",), {"nib": NIB_A}, "A-bekasi", "B-surabaya"),
    "Bekasi task force": (("task_force",), {"region": "32.16"}, "A-bekasi", "B-karawang"),
}


def ids_of(plant: Plant) -> dict[str, str]:
    return {"permit": plant.permit_id, "facility": plant.facility_id, "period": plant.period_id,
            "case": plant.case_id, "alert": plant.alert_id, "nib": plant.nib}


def unknown_ids() -> dict[str, str]:
    return {name: str(uuid.uuid4()) for name in ("permit", "facility", "period", "case", "alert")} | {
        "nib": UNKNOWN_NIB}


def anonymised(response: httpx.Response, ids: dict[str, str]) -> tuple[int, Any]:
    text = response.text
    for name, value in ids.items():
        text = text.replace(value, f"<{name}>")
    return response.status_code, json.loads(text)


CASES = [(caller, probe) for caller in CALLERS for probe in PROBES]


@pytest.mark.parametrize(("caller", "probe"), CASES, ids=[f"{c}-{p}" for c, p in CASES])
async def test_an_object_out_of_scope_answers_like_one_that_does_not_exist(scene: Scene, caller: str, probe: Probe):
    (role,), claims, own_plant, other_plant = CALLERS[caller]
    headers = bearer(role, **claims)

    async def ask(ids: dict[str, str]) -> httpx.Response:
        path, body = probe.fill(ids)
        return await scene.http.request(probe.method, scene.url(probe.service, path), headers=headers, json=body)

    others, unknown = ids_of(scene.plants[other_plant]), unknown_ids()
    to_other, to_unknown = await ask(others), await ask(unknown)
    assert to_other.status_code in (200, 403, 404), to_other.text
    assert anonymised(to_other, others) == anonymised(to_unknown, unknown), "existence leaks"
    if to_other.status_code == 200:  # a list: filtered to nothing rather than refused
        assert to_other.json()["items"] == [], to_other.text
    if to_other.status_code != 403:
        # The same route on the caller's own object does find it: the probe compares a real object with none.
        own = await ask(ids_of(scene.plants[own_plant]))
        assert own.status_code != 404 and own.text != to_other.text, own.text


async def test_probing_changed_nothing_at_the_other_companys_plants(scene: Scene):
    operator = bearer("operator")
    for name in ("B-surabaya", "B-karawang"):
        plant = scene.plants[name]
        permit = await scene.http.get(scene.url("permits", f"/permits/{plant.permit_id}"), headers=operator)
        assert permit.json()["status"] == "ISSUED" and permit.json()["freeze_count"] == 0
        status = await scene.http.get(scene.url("incidents", f"/facilities/{plant.facility_id}/status"),
                                      headers=operator)
        assert status.json()["cases_total"] == 1
        reports = await scene.http.get(scene.url("reports", f"/reports?permit_id={plant.permit_id}"), headers=operator)
        assert reports.json()["reports"] == []
        alert = await scene.http.get(scene.url("notifier", f"/alerts/{plant.alert_id}"), headers=operator)
        assert alert.json()["acknowledged_at"] is None


# ---------------------------------------------------------------------------------------------- widening


# Every query parameter of the lists and aggregates that names a place (read from each service's api.py),
# plus the names a caller might guess; the services must ignore those.
LISTS = {
    ("permits", "/permits"): ("province", "regency", "region", "region_code"),
    ("permits", "/permits/summary"): ("province", "region"),
    ("permits", "/reactivation-requests"): ("province", "regency", "region"),
    ("reports", "/compliance"): ("province", "regency", "region"),
    ("incidents", "/incidents"): ("province", "region"),
    ("notifier", "/alerts"): ("province", "region", "region_code"),
    ("notifier", "/task-forces"): ("region", "region_code", "level"),
}
WIDER = ("35", "35.78", "32", "32.15", "ID", "", "3", "32%", "3_", "32.1%", "32' OR '1'='1", "32.16' OR 'x'='x",
         "32.16;--", "32.16 OR 1=1", "*", "..", "32.16\x00", "%")
TASK_FORCES = {"Bekasi (regency)": "32.16", "Jawa Barat (province)": "32"}
# Registered in the directory, so that the task-force list has other regions' entries to withhold.
DIRECTORY = (("regency", "32.16"), ("regency", "32.15"), ("regency", "35.78"), ("province", "32"),
             ("province", "35"), ("national", NATIONAL))

WIDENING = [(tf, service, path, parameter) for tf in TASK_FORCES for (service, path), parameters in LISTS.items()
            for parameter in parameters]


def regions_in(body: dict[str, Any]) -> list[str]:
    """Every region a list or aggregate answer speaks of (a plant's regency, a task force's region)."""
    rows = body.get("items") or body.get("alerts") or body.get("task_forces") or []
    named = [row["regency_code"] if "regency_code" in row else row["region_code"] for row in rows]
    aggregate = [body["regency"] or body["province"]] if "province" in body and "regency" in body else []
    provinces = [entry["province_code"] for entry in body.get("by_province", [])]
    return named + [code for code in aggregate if code is not None] + provinces


@pytest.mark.parametrize(("task_force", "service", "path", "parameter"), WIDENING,
                         ids=[f"{t}-{s}{p}-{n}" for t, s, p, n in WIDENING])
async def test_a_task_force_cannot_widen_its_region_with_query_parameters(scene: Scene, task_force, service, path,
                                                                         parameter):
    region = TASK_FORCES[task_force]
    own = Principal(sub="satgas", role=Role.TASK_FORCE, region=region)
    headers = bearer("task_force", region=region)
    answers = await asyncio.gather(*(scene.http.get(scene.url(service, path), params={parameter: value},
                                                    headers=headers) for value in WIDER))
    for value, answer in zip(WIDER, answers, strict=True):
        assert answer.status_code in (200, 404, 422), (value, answer.text)
        if answer.status_code != 200:
            assert answer.headers["content-type"] == PROBLEM, value
            continue
        # An aggregate over a regency also names its province, as the row its counts are under.
        outside = [code for code in regions_in(answer.json()) if not own.covers(code)
                   and not region.startswith(code + ".")]
        assert not outside, f"{task_force} asking {parameter}={value!r} saw {outside}: {answer.text}"
        if path == "/permits/summary":
            assert answer.json()["total"] == sum(own.covers(p.regency) for p in scene.plants.values()), value


async def test_the_lists_do_show_each_task_force_its_own_region(scene: Scene):
    """The refusals above are not an empty platform: each list shows its own region's plants, and a national
    task force (region `ID`, the country) sees them all."""
    for region, expected in (("32.16", {"A-bekasi"}), ("32", {"A-bekasi", "B-karawang"}),
                             ("ID", set(PLANTS))):
        headers = bearer("task_force", region=region)
        wanted = {scene.plants[name].facility_id for name in expected}
        for service, path, rows in (("permits", "/permits", "items"), ("incidents", "/incidents", "items"),
                                    ("notifier", "/alerts", "alerts")):
            answer = await scene.http.get(scene.url(service, path), headers=headers)
            assert answer.status_code == 200, answer.text
            seen = {row["facility_id"] for row in answer.json()[rows]}
            assert seen == wanted, (region, service, path, seen, wanted)
        directory = await scene.http.get(scene.url("notifier", "/task-forces"), headers=headers)
        listed = {tf["region_code"] for tf in directory.json()["task_forces"]}
        assert listed == {code for _, code in DIRECTORY if code == region or code.startswith(region + ".")
                          or region == "ID"}, (region, listed)
