"""PPKM levels in Banten, over the real database and broker: the agency's levels and an operator's, applied to the
plants' allowances on their first day (a clock set in March 2031), what a plant is told it may run before and after,
the conditions a report lifts, rule sets published ahead of time, and how many plants each re-evaluation counts.

Banten (36) is this module's own: no other test has plants or levels there.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import pytest_asyncio

from services.reports.app import ReportsSettings, create_app
from services.reports.handlers import ReportHandlers
from shared.clock import FakeClock
from shared.contract import Envelope, PermitIssued, PermitRevoked, PpkmLevel, PpkmLevelSet, SectorClass
from tests.support.kafka import publish
from tests.support.platform import bearer, running_service
from tests.support.waiting import eventually, until

pytestmark = pytest.mark.integration

PROVINCE, TANGERANG, SERANG = "36", "36.03", "36.04"
NIB = "8120003600001"
# Monday 3 March 2031, 10:00 in Banten (WIB).
MONDAY = datetime(2031, 3, 3, 3, tzinfo=UTC)
OPERATOR = bearer("operator", sub="ops.dewi")


def wib_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=7)


def report_body(permit_id: str, period_id: str, *, dose1: int, pedulilindungi: bool) -> dict:
    return {
        "permit_id": permit_id, "period_id": period_id,
        "workforce": {"total": 1200, "on_site_per_shift": [500, 500]}, "odp": 0, "pdp": 0, "new_positives": 0,
        "tests": {"pcr": 0, "antigen": 10}, "vaccinated": {"dose1": dose1, "dose2": 300, "booster": 0},
        "transport_modes": ["company_bus"],
        "protocol_checklist": {"temperature_screening": True, "masks": True, "distancing": True,
                               "ventilation": True, "disinfection": True, "handwash_stations": True,
                               "pedulilindungi_scan": pedulilindungi},
        "case_handling": "", "declared_true": True,
    }


class Banten:
    """The service, its clock, handlers on its pool (evaluating two plants a chunk), and the plants issued."""

    def __init__(self, platform: Any, client: Any, clock: FakeClock, handlers: ReportHandlers) -> None:
        self.platform, self.client, self.clock, self.handlers = platform, client, clock, handlers
        self.plants: dict[str, tuple[uuid.UUID, uuid.UUID]] = {}  # name → (permit_id, facility_id)

    async def issue(self, name: str, regency: str, *, sector_class: SectorClass = SectorClass.ESSENTIAL,
                    export_oriented: bool = True, workforce: int = 1200) -> None:
        permit_id, facility_id = uuid.uuid4(), uuid.uuid4()
        self.plants[name] = (permit_id, facility_id)
        await publish(self.platform.bootstrap, Envelope.wrap(PermitIssued(
            facility_id=facility_id, province_code=PROVINCE, regency_code=regency, permit_id=permit_id, nib=NIB,
            permit_number=f"IOMKI-2031-{uuid.uuid4().int % 10**6:06d}", company_name=f"PT {name}",
            sector_class=sector_class, workforce_total=workforce, issued_at=self.clock.now(),
            export_oriented=export_oriented), service="permits"))

    async def rows(self, query: str, *args: Any) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.platform.admin_url)
        try:
            return await connection.fetch(query, *args)
        finally:
            await connection.close()

    async def stored_allowance(self, name: str) -> asyncpg.Record | None:
        rows = await self.rows("SELECT * FROM reports.plant_allowances WHERE permit_id = $1", self.plants[name][0])
        return rows[0] if rows else None

    async def allowance(self, name: str, token: dict[str, str] = OPERATOR, **params: str) -> dict:
        answer = await self.client.get(f"/plants/{self.plants[name][1]}/allowance", params=params, headers=token)
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def banten(platform):
    clock = FakeClock(MONDAY)
    settings = ReportsSettings(IOMKI_REPORT_REGIME="weekly:FRI@23:59", IOMKI_PPKM_SWEEP_SECONDS="0.2",
                               IOMKI_PPKM_RULES_REFRESH_SECONDS="0")
    app = create_app(clock=clock, reports_settings=settings)
    async with running_service(app) as client:
        handlers = ReportHandlers(app.state.runtime.database, clock, replace(settings.config(), allowance_chunk=2))
        banten = Banten(platform, client, clock, handlers)
        await banten.issue("Tekstil Tangerang", TANGERANG)
        await banten.issue("Garmen Tangerang", TANGERANG)
        await banten.issue("Logam Serang", SERANG, sector_class=SectorClass.CRITICAL, export_oriented=False)
        await banten.issue("Kimia Serang", SERANG, sector_class=SectorClass.NON_ESSENTIAL, export_oriented=False)
        await banten.issue("Sepatu Serang", SERANG)
        await eventually(lambda: banten.rows(
            "SELECT 1 FROM reports.plant_allowances WHERE permit_id = ANY($1::uuid[]) HAVING count(*) = 5",
            [permit_id for permit_id, _ in banten.plants.values()]), timeout=60)
        yield banten


async def test_the_agencys_levels_are_recorded_and_the_later_instruction_wins(banten):
    # Each plant was evaluated as it was issued: no level in Banten yet.
    assert (await banten.stored_allowance("Tekstil Tangerang"))["rule"] == "NoRestriction"
    before = await banten.allowance("Tekstil Tangerang")
    assert (before["level"], before["rule"], before["capacity"]["production_share"]) == (None, "NoRestriction", 100)
    assert before["summary_id"].startswith("Tidak ada level PPKM yang berlaku di Kabupaten Tangerang pada 3 Maret 2031")

    regency = PpkmLevelSet(province_code=PROVINCE, regency_code=TANGERANG, level=PpkmLevel.LEVEL_3,
                           effective_from=date(2031, 3, 1), instruction="Inmendagri 10/2031")
    province = PpkmLevelSet(province_code=PROVINCE, level=PpkmLevel.LEVEL_4, effective_from=date(2031, 3, 3),
                            instruction="Inmendagri 11/2031")
    await publish(banten.platform.bootstrap, Envelope.wrap(regency, service="ppkm"))
    await until(lambda: banten.rows("SELECT 1 FROM reports.ppkm_levels WHERE region_code = $1", TANGERANG), bool,
                "the agency's level for Tangerang recorded")
    banten.clock.advance(timedelta(minutes=5))
    await publish(banten.platform.bootstrap, Envelope.wrap(province, service="ppkm"))

    # Both have taken effect: the sweep applies them at once, and the province's, which took effect last, decides.
    await until(lambda: banten.rows("SELECT applied_at FROM reports.ppkm_levels WHERE province_code = $1", PROVINCE),
                lambda rows: len(rows) == 2 and all(row["applied_at"] for row in rows), "both levels applied")
    stored = await banten.stored_allowance("Tekstil Tangerang")
    assert (stored["rule"], stored["rule_set"], stored["production_share"], stored["max_shifts"]) == (
        "L4-Export", "PPKM September 2021", 50, 1)
    listed = (await banten.client.get(f"/ppkm/levels?province={PROVINCE}", headers=bearer("agency"))).json()
    current = {c["region_code"]: c for c in listed["current"]}
    assert set(current) == {TANGERANG, SERANG}
    assert (current[TANGERANG]["level"], current[TANGERANG]["set_for"], current[TANGERANG]["instruction"],
            current[TANGERANG]["source"]) == ("4", PROVINCE, "Inmendagri 11/2031", "agency")
    agency = [h for h in listed["history"] if h["source"] == "agency"]
    assert [(h["region_code"], h["level"], h["actor"], h["reason"]) for h in agency] == [
        (PROVINCE, "4", "/iomki/ppkm", None), (TANGERANG, "3", "/iomki/ppkm", None)]

    # A task force of Banten reads its own province by default; one of another province is told it is not found.
    own = (await banten.client.get("/ppkm/levels", headers=bearer("task_force", region=PROVINCE))).json()
    assert own["province"] == PROVINCE and len(own["current"]) == 2
    elsewhere = await banten.client.get(f"/ppkm/levels?regency={SERANG}", headers=bearer("task_force", region="32"))
    assert elsewhere.status_code == 404


async def test_an_operators_level_for_a_later_day_is_applied_on_that_day(banten):
    body = {"province_code": PROVINCE, "regency_code": SERANG, "level": "2", "effective_from": "2031-03-05",
            "instruction": "Inmendagri 12/2031", "reason": "cases falling in Serang"}
    for wrong, field in (({"regency_code": "32.16"}, "regency_code"), ({"effective_until": "2031-03-04"},
                                                                        "effective_until"),
                         ({"instruction": "x" * 201}, "instruction"), ({"reason": ""}, "reason"),
                         ({"province_code": "3"}, "province_code"), ({"level": "5"}, "level")):
        refused = await banten.client.post("/ppkm/levels", json=body | wrong, headers=OPERATOR)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == field, refused.text
    assert (await banten.client.post("/ppkm/levels", json=body, headers=bearer("task_force",
                                                                                region=PROVINCE))).status_code == 403

    banten.clock.advance(timedelta(minutes=5))
    recorded = await banten.client.post("/ppkm/levels", json=body, headers=OPERATOR)
    assert recorded.status_code == 201, recorded.text
    assert {k: v for k, v in recorded.json().items() if k not in ("level_id", "recorded_at")} == {
        "region_code": SERANG, "province_code": PROVINCE, "regency_code": SERANG, "level": "2",
        "effective_from": "2031-03-05", "effective_until": None, "instruction": "Inmendagri 12/2031",
        "source": "operator", "actor": "ops.dewi", "reason": "cases falling in Serang"}
    history = (await banten.client.get(f"/ppkm/levels?regency={SERANG}", headers=OPERATOR)).json()["history"]
    assert (history[0]["level_id"], history[0]["actor"], history[0]["reason"]) == (
        recorded.json()["level_id"], "ops.dewi", "cases falling in Serang")

    # Before its day, Serang is at the province's level 4; the allowance of that day or any other can be asked.
    sepatu = await banten.allowance("Sepatu Serang")
    assert (sepatu["level"], sepatu["rule"]) == ("4", "L4-Export")
    ahead = await banten.allowance("Sepatu Serang", on="2031-03-05")
    assert (ahead["level"], ahead["rule"], ahead["level_entry"]["source"]) == ("2", "L2-Other", "operator")
    assert (await banten.stored_allowance("Sepatu Serang"))["level"] == "4"
    [pending] = await banten.rows("SELECT applied_at FROM reports.ppkm_levels WHERE level_id = $1",
                                  uuid.UUID(recorded.json()["level_id"]))
    assert pending["applied_at"] is None

    # Wednesday 5 March begins in Banten: the sweep applies the level to Serang's plants, not Tangerang's.
    tangerang_before = await banten.stored_allowance("Tekstil Tangerang")
    banten.clock.set(wib_midnight(date(2031, 3, 5)) + timedelta(seconds=1))
    stored = await until(lambda: banten.stored_allowance("Sepatu Serang"),
                         lambda row: row["level"] == "2", "Serang's plants re-evaluated on the level's day")
    assert (stored["rule"], stored["day"], stored["production_share"]) == ("L2-Other", date(2031, 3, 5), 50)
    assert (await banten.stored_allowance("Logam Serang"))["rule"] == "L2-Critical"
    assert (await banten.stored_allowance("Tekstil Tangerang"))["evaluated_at"] == tangerang_before["evaluated_at"]
    now = await banten.allowance("Sepatu Serang")
    assert (now["day"], now["level"], now["level_entry"]["instruction"]) == ("2031-03-05", "2", "Inmendagri 12/2031")


async def test_a_report_that_meets_the_conditions_lifts_the_cap(banten):
    permit_id, facility_id = banten.plants["Tekstil Tangerang"]
    before = await banten.allowance("Tekstil Tangerang")
    assert (before["level"], before["rule"], before["lifted"]) == ("4", "L4-Export", False)
    assert before["capacity"] == {"production_share": 50, "shift_share": None, "max_shifts": 1, "office_share": 10,
                                  "total_cap": 600, "shift_cap": None}
    assert [(c["name"], c["met"]) for c in before["conditions"]] == [
        ("ActivePermit", True), ("PeduliLindungiInUse", False), ("FirstDoseShare", False)]
    assert before["summary_id"].startswith("PPKM Level 4 di Kabupaten Tangerang (Inmendagri 11/2031): industri "
                                           "orientasi ekspor boleh 1 shift, paling banyak 50% pekerja (600 orang)")
    assert before["summary_en"].startswith("PPKM level 4 in Kabupaten Tangerang (Inmendagri 11/2031)")

    schedule = (await banten.client.get(f"/schedules/{permit_id}", headers=OPERATOR)).json()
    period_id = schedule["periods"][-1]["period_id"]
    company = bearer("company", nib=NIB)
    submitted = await banten.client.post("/reports", headers=company, json=report_body(
        str(permit_id), period_id, dose1=700, pedulilindungi=True))
    assert submitted.status_code == 201, submitted.text

    after = await banten.allowance("Tekstil Tangerang", token=company)
    assert (after["lifted"], after["capacity"]["production_share"], after["capacity"]["shift_share"],
            after["capacity"]["shift_cap"], after["capacity"]["max_shifts"]) == (True, 100, 50, 600, None)
    assert all(c["met"] for c in after["conditions"]) and "syarat pelonggaran terpenuhi" in after["summary_id"]
    # The stored allowance follows at the region's next re-evaluation.
    assert await banten.handlers.reevaluate(TANGERANG) == 2
    assert (await banten.stored_allowance("Tekstil Tangerang"))["lifted"] is True

    # Whose plant it is: its company, the task force of its region, operators; not another company or region, and
    # never an agency.
    for token in (bearer("company", nib="8120009999999"), bearer("task_force", region="32")):
        assert (await banten.client.get(f"/plants/{facility_id}/allowance", headers=token)).status_code == 404
    assert (await banten.client.get(f"/plants/{facility_id}/allowance", headers=bearer("agency"))).status_code == 403
    assert (await banten.allowance("Tekstil Tangerang", token=bearer("task_force", region=TANGERANG)))["rule"]
    assert (await banten.client.get(f"/plants/{uuid.uuid4()}/allowance", headers=OPERATOR)).status_code == 404


async def test_a_plant_of_unknown_class_has_no_cap_and_is_counted_apart(banten):
    await banten.issue("Lama Serang", SERANG)
    permit_id = (await until(lambda: banten.stored_allowance("Lama Serang"), lambda row: row is not None))["permit_id"]
    # Issued before classes were derived from KBLI codes: the permits service has not announced its class yet.
    await banten.rows("UPDATE reports.schedules SET sector_class = NULL WHERE permit_id = $1", permit_id)
    assert await banten.handlers.reevaluate(SERANG) == 4
    stored = await banten.stored_allowance("Lama Serang")
    assert (stored["level"], stored["rule"], stored["production_share"]) == ("2", "ClassUnknown", 100)
    shown = await banten.allowance("Lama Serang")
    assert (shown["sector_class"], shown["rule"]) == (None, "ClassUnknown")
    assert "kelas sektor pabrik belum diketahui" in shown["summary_id"]


async def test_a_rule_set_is_published_for_a_later_day_only_and_applied_when_it_starts(banten):
    today = banten.clock.now().astimezone(ZoneInfo("Asia/Jayapura")).date()  # the first zone to begin a day
    rule_sets = (await banten.client.get("/ppkm/rule-sets", headers=bearer("task_force", region=PROVINCE))).json()
    september = next(r for r in rule_sets["rule_sets"] if r["name"] == "PPKM September 2021")
    assert rule_sets["in_force"] == {"Asia/Jakarta": "PPKM September 2021", "Asia/Makassar": "PPKM September 2021",
                                     "Asia/Jayapura": "PPKM September 2021"}
    assert (september["shipped"], september["published_by"], september["in_force_in"]) == (
        True, "configuration", ["Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"])
    # The same rules, stricter for export at level 2 (one shift at half), from Monday 10 March.
    rules = [rule | ({"max_shifts": 1} if rule["name"] == "L2-Other" else {}) for rule in september["rules"]]
    body = {"name": "Inmendagri 13/2031", "starts_on": "2031-03-10", "source": "Instruksi Mendagri 13/2031 (a test)",
            "rules": rules}

    on_today = await banten.client.post("/ppkm/rule-sets", json=body | {"starts_on": today.isoformat()},
                                        headers=OPERATOR)
    assert on_today.status_code == 422, on_today.text
    assert [e["field"] for e in on_today.json()["errors"]] == ["starts_on"]
    broken = await banten.client.post("/ppkm/rule-sets", headers=OPERATOR, json=body | {
        "starts_on": "2031-02-30", "rules": [rules[0] | {"production_share": 120, "levels": ["5"]}]})
    assert {e["field"] for e in broken.json()["errors"]} == {"starts_on", "rules[0].production_share",
                                                            "rules[0].levels"}
    assert (await banten.client.post("/ppkm/rule-sets", json=body, headers=bearer("agency"))).status_code == 403

    published = await banten.client.post("/ppkm/rule-sets", json=body, headers=OPERATOR)
    assert published.status_code == 201, published.text
    assert (published.json()["starts_on"], published.json()["published_by"]) == ("2031-03-10", "ops.dewi")
    again = await banten.client.post("/ppkm/rule-sets", json=body, headers=OPERATOR)
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "name"
    same_day = await banten.client.post("/ppkm/rule-sets", json=body | {"name": "Inmendagri 14/2031"},
                                        headers=OPERATOR)
    assert same_day.status_code == 409 and same_day.json()["errors"][0]["field"] == "starts_on"
    listed = {r["name"]: r for r in (await banten.client.get("/ppkm/rule-sets", headers=OPERATOR)).json()["rule_sets"]}
    mine = listed["Inmendagri 13/2031"]
    assert (mine["shipped"], mine["published_by"], mine["in_force_in"], mine["applied_at"]) == (
        False, "ops.dewi", [], None)
    assert (await banten.allowance("Sepatu Serang", on="2031-03-10"))["capacity"]["max_shifts"] == 1

    # Monday 10 March begins in Banten: every province with levels is re-evaluated under the new set.
    banten.clock.set(wib_midnight(date(2031, 3, 10)) + timedelta(seconds=1))
    stored = await until(lambda: banten.stored_allowance("Sepatu Serang"),
                         lambda row: row["rule_set"] == "Inmendagri 13/2031", "Banten re-evaluated under the new set")
    assert (stored["rule"], stored["max_shifts"]) == ("L2-Other", 1)
    zones = await banten.rows("SELECT applied_zones FROM reports.ppkm_rule_sets WHERE name = $1", body["name"])
    assert "Asia/Jakarta" in zones[0]["applied_zones"]


async def test_re_evaluation_counts_the_live_plants_of_the_region_chunk_by_chunk(banten):
    """The handlers evaluate two plants a chunk here: Banten's six plants take three, Serang's four two."""
    assert await banten.handlers.reevaluate(PROVINCE) == 6
    assert await banten.handlers.reevaluate(SERANG) == 4
    assert await banten.handlers.reevaluate(TANGERANG) == 2
    assert await banten.handlers.reevaluate("36.71") == 0  # Kota Tangerang: no plant issued there

    permit_id, facility_id = banten.plants["Kimia Serang"]
    await publish(banten.platform.bootstrap, Envelope.wrap(PermitRevoked(
        facility_id=facility_id, province_code=PROVINCE, regency_code=SERANG, permit_id=permit_id, nib=NIB,
        permit_number="IOMKI-2031-000001", reason="revoked (a test)", reapply_after=date(2031, 4, 10)),
        service="permits"))
    await until(lambda: banten.stored_allowance("Kimia Serang"), lambda row: row is None,
                "a revoked plant's allowance forgotten")
    assert await banten.handlers.reevaluate(PROVINCE) == 5
    counts = await banten.rows("SELECT rule, count(*) FROM reports.plant_allowances WHERE province_code = $1"
                               " GROUP BY rule ORDER BY rule", PROVINCE)
    assert [(row["rule"], row["count"]) for row in counts] == [
        ("ClassUnknown", 1), ("L2-Critical", 1), ("L2-Other", 1), ("L4-Export", 2)]


async def test_when_a_levels_last_day_has_passed_its_region_is_re_evaluated(banten):
    """Monday 10 March: the agency sets Tangerang at level 1 for two days. After them, the latest instruction there
    has run out: no restriction, until another level is set."""
    short = PpkmLevelSet(province_code=PROVINCE, regency_code=TANGERANG, level=PpkmLevel.LEVEL_1,
                         effective_from=date(2031, 3, 10), effective_until=date(2031, 3, 11),
                         instruction="Inmendagri 15/2031")
    await publish(banten.platform.bootstrap, Envelope.wrap(short, service="ppkm"))
    stored = await until(lambda: banten.stored_allowance("Garmen Tangerang"), lambda row: row["level"] == "1",
                         "Tangerang at level 1")
    assert stored["rule"] == "L1-All"

    banten.clock.set(wib_midnight(date(2031, 3, 12)) - timedelta(seconds=1))
    assert (await banten.allowance("Garmen Tangerang"))["level"] == "1"
    banten.clock.set(wib_midnight(date(2031, 3, 12)) + timedelta(seconds=1))
    await until(lambda: banten.rows("SELECT 1 FROM reports.ppkm_levels WHERE instruction = $1"
                                    " AND lapse_applied_at IS NOT NULL", "Inmendagri 15/2031"), bool,
                "the passing of the level's last day applied")
    stored = await banten.stored_allowance("Garmen Tangerang")
    assert (stored["level"], stored["rule"], stored["production_share"]) == (None, "NoRestriction", 100)
    assert (await banten.stored_allowance("Sepatu Serang"))["level"] == "2"  # Serang's own level holds
