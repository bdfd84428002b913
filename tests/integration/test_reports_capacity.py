"""Reports checked against the PPKM staffing cap, over the real database and broker, in September 2021.

The service runs on a clock set to Tuesday 14 September 2021, 10:00 in Lampung (WIB), a week's period (Friday
23:59), the shipped rule sets (from 7 September: "PPKM September 2021", with its conditions that lift the cap), and
warnings at the deadline. Levels are recorded as an operator's entries straight in `ppkm_levels`, in regencies of
Lampung (18) and Bangka Belitung (19) that no other test uses, each entry ending in October 2021 so that no plant of
another test is ever checked against them. Every plant is revoked at the end, so that no later test's sweep walks
its periods from 2021 onwards.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from services.reports.app import ReportsSettings, create_app
from shared.clock import FakeClock
from shared.contract import ContractViolation, Decoded, Envelope, PermitIssued, PermitRevoked, SectorClass, decode
from shared.regions import WIB
from tests.support.kafka import publish, read_topic
from tests.support.platform import bearer, running_service
from tests.support.waiting import eventually, until

pytestmark = pytest.mark.integration

OPERATOR = bearer("operator")
START = datetime(2021, 9, 14, 3, tzinfo=UTC)  # Tuesday 14 September 2021, 10:00 WIB
RULE_SET = "PPKM September 2021"
LEVELS_END = date(2021, 10, 31)


class Plant:
    def __init__(self, regency: str, sector_class: SectorClass, workforce: int, *, export: bool = False) -> None:
        self.permit_id, self.facility_id = uuid.uuid4(), uuid.uuid4()
        self.regency, self.province = regency, regency.split(".")[0]
        self.sector_class, self.export, self.workforce = sector_class, export, workforce
        self.nib = f"81200{uuid.uuid4().int % 10**8:08d}"

    def about(self) -> dict[str, Any]:
        return dict(facility_id=self.facility_id, province_code=self.province, regency_code=self.regency,
                    permit_id=self.permit_id, nib=self.nib)

    def report(self, period_id: str, per_shift: list[int], *, dose1: int, pedulilindungi: bool = False,
               offices: dict[str, int] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "permit_id": str(self.permit_id), "period_id": period_id,
            "workforce": {"total": self.workforce, "on_site_per_shift": per_shift},
            "odp": 0, "pdp": 0, "new_positives": 0, "isolating_workers": 0, "tests": {"pcr": 2, "antigen": 10},
            "vaccinated": {"dose1": dose1, "dose2": dose1 // 2, "booster": 0}, "transport_modes": ["company_bus"],
            "protocol_checklist": {"temperature_screening": True, "masks": True, "distancing": True,
                                   "ventilation": True, "disinfection": True, "handwash_stations": True,
                                   "pedulilindungi_scan": pedulilindungi},
            "case_handling": "", "declared_true": True,
        }
        if offices is not None:
            body["offices"] = offices
        return body

    @property
    def company(self) -> dict[str, str]:
        return bearer("company", nib=self.nib)


class Reports:
    """The service under test, its clock, a connection of the test's own to its schema, and the plants issued."""

    def __init__(self, client: Any, clock: FakeClock, db: asyncpg.Connection, bootstrap: str, admin_url: str) -> None:
        self.client, self.clock, self.db, self.bootstrap, self.admin_url = client, clock, db, bootstrap, admin_url
        self.plants: list[Plant] = []

    async def issue(self, plant: Plant) -> Plant:
        await publish(self.bootstrap, Envelope.wrap(PermitIssued(
            **plant.about(), permit_number=f"IOMKI-2021-{plant.nib[-6:]}", company_name="PT Kapasitas",
            sector_class=plant.sector_class, workforce_total=plant.workforce, issued_at=self.clock.now(),
            export_oriented=plant.export), service="permits"))
        self.plants.append(plant)
        await self.periods(plant, 1)
        return plant

    async def periods(self, plant: Plant, count: int) -> list[dict[str, Any]]:
        async def probe() -> list[dict[str, Any]] | None:
            answer = await self.client.get(f"/schedules/{plant.permit_id}", headers=OPERATOR)
            found = answer.json()["periods"] if answer.status_code == 200 else []
            return found if len(found) >= count else None
        return await eventually(probe, timeout=60)

    async def level(self, region: str, level: str, effective_from: date, effective_until: date = LEVELS_END) -> None:
        """An operator's level entry for a regency, or a whole province, as recorded in the service's store."""
        await self.db.execute(
            "INSERT INTO ppkm_levels (level_id, region_code, province_code, level, effective_from, effective_until,"
            " instruction, source, actor, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, 'Inmendagri 42/2021',"
            " 'operator', 'test', $7)",
            uuid.uuid4(), region, region.split(".")[0], level, effective_from, effective_until, self.clock.now())

    async def submit(self, plant: Plant, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.client.post("/reports", json=body, headers=plant.company)
        assert answer.status_code == 201, answer.text
        return answer.json()

    async def breaches(self, plant: Plant) -> list[asyncpg.Record]:
        return await self.db.fetch("SELECT * FROM capacity_breaches WHERE permit_id = $1 ORDER BY day, recorded_at",
                                   plant.permit_id)

    async def compliance(self, **scope: str) -> dict[str, Any]:
        answer = await self.client.get("/compliance", params=scope, headers=OPERATOR)
        assert answer.status_code == 200, answer.text
        return answer.json()


def events_of(messages: list[Any], plant: Plant) -> list[Decoded]:
    """The plant's events in topic order, once each (delivery is at least once)."""
    seen, events = set(), []
    for message in messages:
        try:
            decoded = decode(message.value)
        except ContractViolation:  # another test's malformed message
            continue
        if decoded.envelope.subject == str(plant.facility_id) and decoded.envelope.id not in seen:
            seen.add(decoded.envelope.id)
            events.append(decoded)
    return events


def of_type(events: list[Decoded], name: str) -> list[Decoded]:
    return [d for d in events if d.envelope.type == f"iomki.{name}.v1"]


async def plant_events(reports: Reports, plant: Plant, until_seen: Any) -> list[Decoded]:
    messages = await read_topic(reports.bootstrap, "iomki.reports", timeout=60,
                                until=lambda ms: until_seen(events_of(ms, plant)))
    return events_of(messages, plant)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def reports(platform) -> AsyncIterator[Reports]:
    clock = FakeClock(START)
    settings = ReportsSettings(IOMKI_REPORT_REGIME="weekly:FRI@23:59", IOMKI_WARNING_DELAY="PT0S",
                               IOMKI_REPORT_SWEEP_SECONDS="0.2")
    async with running_service(create_app(clock=clock, reports_settings=settings)) as client:
        db = await asyncpg.connect(platform.admin_url, server_settings={"search_path": "reports"})
        found = Reports(client, clock, db, platform.bootstrap, platform.admin_url)
        try:
            yield found
        finally:
            # Nothing is left owing reports from 2021 for a later test's sweep to walk.
            await publish(platform.bootstrap, *(Envelope.wrap(PermitRevoked(
                **plant.about(), permit_number=None, reason="end of the capacity tests",
                reapply_after=date(2021, 12, 1)), service="permits") for plant in found.plants))
            for plant in found.plants:
                await until(lambda p=plant: client.get(f"/schedules/{p.permit_id}", headers=OPERATOR),
                            lambda answer: answer.json()["ended"], "the plant's schedule ended", timeout=60)
            await db.close()


async def test_a_report_within_the_cap_is_accepted_and_nothing_more_is_recorded(reports):
    # Lampung Selatan is at level 3; an essential plant may have half its workforce on site.
    await reports.level("18.01", "3", date(2021, 9, 1))
    plant = await reports.issue(Plant("18.01", SectorClass.ESSENTIAL, 400))
    [period] = await reports.periods(plant, 1)

    # Exactly half: 200 of 400, in two shifts. A quarter with a first dose lifts nothing.
    accepted = await reports.submit(plant, plant.report(period["period_id"], [120, 80], dose1=100,
                                                        pedulilindungi=True))

    assert accepted["capacity"] == {"checked": True, "day": "2021-09-14", "level": "3", "rule_set": RULE_SET,
                                    "rule": "L4-L3-Essential", "lifted": False, "within": True, "excesses": [],
                                    "breach_id": None}
    assert await reports.breaches(plant) == []
    events = await plant_events(reports, plant, lambda seen: of_type(seen, "ReportSubmitted"))
    assert not of_type(events, "CapacityBreachDetected") and not of_type(events, "WarningIssued")


async def test_over_the_cap_at_level_4_is_a_breach_with_its_numbers_and_a_warning_to_the_company(reports):
    # Bandar Lampung is at level 4: an export-oriented plant runs one shift at 50 %, its offices at 10 %.
    await reports.level("18.71", "4", date(2021, 9, 1))
    plant = await reports.issue(Plant("18.71", SectorClass.ESSENTIAL, 1000, export=True))
    [period] = await reports.periods(plant, 1)

    # Two shifts, 600 on site, 10 of 50 office staff in; PeduliLindungi not in use, so the cap is not lifted.
    accepted = await reports.submit(plant, plant.report(period["period_id"], [400, 200], dose1=700,
                                                        offices={"staff": 50, "on_site": 10}))

    excesses = [{"measure": "on_site_total", "shift": None, "cap": 500, "count": 600},
                {"measure": "shift_count", "shift": None, "cap": 1, "count": 2},
                {"measure": "office_on_site", "shift": None, "cap": 5, "count": 10}]
    capacity = accepted["capacity"]
    assert capacity | {"breach_id": None} == {
        "checked": True, "day": "2021-09-14", "level": "4", "rule_set": RULE_SET, "rule": "L4-Export",
        "lifted": False, "within": False, "excesses": excesses, "breach_id": None}

    events = await plant_events(reports, plant, lambda seen: of_type(seen, "WarningIssued"))
    [submitted], [detected], [warning] = (of_type(events, name) for name in
                                          ("ReportSubmitted", "CapacityBreachDetected", "WarningIssued"))
    breach = detected.event
    assert str(breach.breach_id) == capacity["breach_id"]
    assert (breach.report_id, breach.period_id, breach.day) == (
        submitted.event.report_id, uuid.UUID(period["period_id"]), date(2021, 9, 14))
    assert (breach.level, breach.rule_set, breach.rule, breach.sector_class, breach.export_oriented) == (
        "4", RULE_SET, "L4-Export", SectorClass.ESSENTIAL, True)
    assert [e.model_dump(mode="json") for e in breach.excesses] == excesses
    assert (warning.event.cause, warning.event.breach_id, warning.event.consecutive) == (
        "capacity_breach", breach.breach_id, 1)
    assert (str(warning.event.period_id), warning.event.deadline.isoformat()) == (
        period["period_id"], period["deadline"])
    # Caused one by the other: the report, its breach, the warning.
    assert detected.envelope.causationid == str(submitted.envelope.id)
    assert warning.envelope.causationid == str(detected.envelope.id)

    [stored] = await reports.breaches(plant)
    assert (stored["breach_id"], stored["warning_id"], stored["report_id"], stored["sanction_id"]) == (
        breach.breach_id, warning.event.warning_id, breach.report_id, None)
    assert (stored["level"], stored["rule"], stored["regency_code"]) == ("4", "L4-Export", "18.71")


async def test_the_september_conditions_lift_the_cap_to_two_shifts_at_half_each(reports):
    await reports.level("18.04", "4", date(2021, 9, 1))
    plant = await reports.issue(Plant("18.04", SectorClass.ESSENTIAL, 1000, export=True))
    [period] = await reports.periods(plant, 1)

    # An active permit, PeduliLindungi in use and half the staff with a first dose: the whole workforce on site in
    # two shifts of 500 each; the offices at their 10 %.
    lifted = await reports.submit(plant, plant.report(period["period_id"], [500, 500], dose1=500, pedulilindungi=True,
                                                      offices={"staff": 100, "on_site": 10}))
    assert lifted["capacity"] | {"excesses": None} == {
        "checked": True, "day": "2021-09-14", "level": "4", "rule_set": RULE_SET, "rule": "L4-Export",
        "lifted": True, "within": True, "excesses": None, "breach_id": None}
    assert await reports.breaches(plant) == []

    # One first dose fewer (499 of 1000) and the cap is not lifted: the correction is checked, and breaches.
    corrected = await reports.submit(plant, plant.report(period["period_id"], [500, 500], dose1=499,
                                                         pedulilindungi=True, offices={"staff": 100, "on_site": 10}))
    assert corrected["supersedes"] == lifted["report_id"]
    assert (corrected["capacity"]["lifted"], corrected["capacity"]["within"]) == (False, False)
    assert [e["measure"] for e in corrected["capacity"]["excesses"]] == ["on_site_total", "shift_count"]
    [stored] = await reports.breaches(plant)
    assert str(stored["breach_id"]) == corrected["capacity"]["breach_id"]

    # Corrected again, still over the cap: the period's one breach, no second warning on the ladder.
    again = await reports.submit(plant, plant.report(period["period_id"], [500, 500], dose1=450,
                                                     pedulilindungi=True, offices={"staff": 100, "on_site": 10}))
    assert (again["capacity"]["within"], again["capacity"]["breach_id"]) == (False, corrected["capacity"]["breach_id"])
    assert [row["breach_id"] for row in await reports.breaches(plant)] == [stored["breach_id"]]


async def test_an_offices_count_over_its_staff_is_refused_naming_the_field(reports):
    await reports.level("18.05", "4", date(2021, 9, 1))
    plant = await reports.issue(Plant("18.05", SectorClass.CRITICAL, 100))
    [period] = await reports.periods(plant, 1)
    answer = await reports.client.post("/reports", headers=plant.company, json=plant.report(
        period["period_id"], [50], dose1=80, offices={"staff": 10, "on_site": 11}))
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["offices.on_site"]


async def test_compliance_shows_levels_plants_by_class_breaches_this_week_and_the_dose1_share(reports):
    # Bangka Belitung at level 4 as a whole; Pangkal Pinang (19.71) moved to level 3 on 10 September.
    await reports.level("19", "4", date(2021, 9, 1))
    await reports.level("19.71", "3", date(2021, 9, 10))
    critical = await reports.issue(Plant("19.71", SectorClass.CRITICAL, 1000))
    exporter = await reports.issue(Plant("19.71", SectorClass.ESSENTIAL, 400, export=True))
    shop = await reports.issue(Plant("19.01", SectorClass.NON_ESSENTIAL, 200))
    unclassified = await reports.issue(Plant("19.01", SectorClass.ESSENTIAL, 100))
    # A plant issued before classes were derived: its class unknown, its reports not checked. Changed from an
    # operator's session, outside the service's schema: the counts follow all the same.
    operator = await asyncpg.connect(reports.admin_url)
    try:
        await operator.execute("UPDATE reports.schedules SET sector_class = NULL WHERE permit_id = $1",
                               unclassified.permit_id)
    finally:
        await operator.close()

    async def first_period(plant: Plant) -> str:
        return (await reports.periods(plant, 1))[0]["period_id"]

    # Level 3, critical: 100 % in production.
    first = await reports.submit(critical, critical.report(await first_period(critical), [500, 400], dose1=600))
    assert (first["capacity"]["rule"], first["capacity"]["within"]) == ("L4-L3-Critical", True)
    # Level 3, export: two shifts at half the workforce each; the first shift is over its 200.
    over = await reports.submit(exporter, exporter.report(await first_period(exporter), [250, 100], dose1=100))
    assert over["capacity"]["excesses"] == [{"measure": "shift_on_site", "shift": 1, "cap": 200, "count": 250}]
    # Level 4 from the province's entry, non-essential: work from home.
    home = await reports.submit(shop, shop.report(await first_period(shop), [20], dose1=50))
    assert (home["capacity"]["level"], home["capacity"]["rule"], home["capacity"]["excesses"]) == (
        "4", "L4-L3-NonEssential", [{"measure": "on_site_total", "shift": None, "cap": 0, "count": 20}])
    unchecked = await reports.submit(unclassified, unclassified.report(await first_period(unclassified), [100],
                                                                       dose1=100))
    assert unchecked["capacity"] == {"checked": False, "day": "2021-09-14", "level": "4", "rule_set": None,
                                     "rule": None, "lifted": False, "within": None, "excesses": [],
                                     "breach_id": None}
    # The critical plant corrects its report: 800 of its 1000 have a first dose, not 600.
    corrected = await reports.submit(critical, critical.report(await first_period(critical), [500, 400], dose1=800))
    assert corrected["supersedes"] == first["report_id"]

    plants = {"critical": 1, "essential": 1, "non_essential": 0, "unknown": 0, "export_oriented": 1}
    pangkal_pinang = {"level": "3", "plants": plants, "breaches_this_week": 1, "dose1_share": round(900 / 1400, 4),
                      "dose1_plants": 2}
    bangka = {"level": "4", "plants": plants | {"critical": 0, "essential": 0, "non_essential": 1, "unknown": 1,
                                                "export_oriented": 0},
              "breaches_this_week": 1, "dose1_share": 0.5, "dose1_plants": 2}
    province = {"level": "4", "plants": {"critical": 1, "essential": 1, "non_essential": 1, "unknown": 1,
                                         "export_oriented": 1},
                "breaches_this_week": 2, "dose1_share": round(1050 / 1700, 4), "dose1_plants": 4}

    by_province = await reports.compliance(province="19")
    assert by_province["ppkm"] == {"regions": [{"regency_code": "19.01"} | bangka,
                                               {"regency_code": "19.71"} | pangkal_pinang],
                                   "totals": province}
    assert by_province["capacity_breaches"] == 2
    by_regency = await reports.compliance(regency="19.71")
    assert by_regency["ppkm"] == {"regions": [{"regency_code": "19.71"} | pangkal_pinang], "totals": pangkal_pinang}
    national = await reports.compliance()
    assert {"province_code": "19"} | province in national["ppkm"]["regions"]
    # A regency asked for by name with nothing counted in it.
    empty = await reports.compliance(regency="19.04")
    assert empty["ppkm"]["regions"] == [{"regency_code": "19.04", "level": "4", "plants": dict.fromkeys(
        plants, 0), "breaches_this_week": 0, "dose1_share": None, "dose1_plants": 0}]

    # The shop's permit is revoked: it leaves the counts and the share; its breach stays recorded.
    await publish(reports.bootstrap, Envelope.wrap(PermitRevoked(
        **shop.about(), permit_number=None, reason="operating during level 4",
        reapply_after=date(2021, 10, 14)), service="permits"))
    after = await until(lambda: reports.compliance(regency="19.01"),
                        lambda answer: answer["ppkm"]["totals"]["plants"]["non_essential"] == 0,
                        "the revoked plant left the counts")
    assert after["ppkm"]["totals"] == bangka | {"plants": bangka["plants"] | {"non_essential": 0},
                                                "dose1_share": 1.0, "dose1_plants": 1}


async def test_a_late_report_is_checked_on_its_deadlines_day(reports):
    # Lampung Timur is at level 3 until Friday 17 September, at level 4 from Saturday.
    await reports.level("18.07", "3", date(2021, 9, 1), date(2021, 9, 17))
    await reports.level("18.07", "4", date(2021, 9, 18))
    plant = await reports.issue(Plant("18.07", SectorClass.NON_ESSENTIAL, 1000, export=True))
    [first] = await reports.periods(plant, 1)
    assert first["deadline"] == "2021-09-17T16:59:00+00:00"  # Friday 23:59 WIB

    # Nothing is reported by Friday; on Saturday morning the report for that week comes in, late.
    reports.clock.set(datetime(2021, 9, 18, 3, tzinfo=UTC))
    await reports.periods(plant, 2)
    late = await reports.submit(plant, plant.report(first["period_id"], [300, 300], dose1=300))
    assert late["late"] is True
    # Checked on Friday, at level 3: two shifts at half the workforce each.
    assert late["capacity"] | {"breach_id": None} == {
        "checked": True, "day": "2021-09-17", "level": "3", "rule_set": RULE_SET, "rule": "L3-Export",
        "lifted": False, "within": True, "excesses": [], "breach_id": None}
    # The same counts for this week's period are checked today, at level 4.
    second = (await reports.periods(plant, 2))[1]
    today = await reports.submit(plant, plant.report(second["period_id"], [300, 300], dose1=300))
    assert (today["capacity"]["day"], today["capacity"]["level"], today["capacity"]["rule"],
            today["capacity"]["within"]) == ("2021-09-18", "4", "L4-Export", False)


async def test_a_third_breach_within_30_days_recommends_a_freeze_on_the_capacity_ground(reports):
    await reports.level("18.02", "4", date(2021, 9, 1))
    plant = await reports.issue(Plant("18.02", SectorClass.ESSENTIAL, 1000, export=True))
    breach_ids, days = [], []
    # One shift of 600 where 500 are allowed, in three weeks in a row.
    for week in range(3):
        if week:
            reports.clock.advance(timedelta(days=7))
        period = (await reports.periods(plant, week + 1))[week]
        accepted = await reports.submit(plant, plant.report(period["period_id"], [600], dose1=300))
        breach_ids.append(uuid.UUID(accepted["capacity"]["breach_id"]))
        days.append(reports.clock.now().astimezone(WIB).date())

    events = await plant_events(reports, plant, lambda seen: of_type(seen, "SanctionRecommended"))
    warnings = [w.event for w in of_type(events, "WarningIssued")]
    assert [(w.cause, w.breach_id, w.consecutive) for w in warnings] == [
        ("capacity_breach", breach, count) for count, breach in enumerate(breach_ids, start=1)]
    [recommended] = of_type(events, "SanctionRecommended")
    sanction = recommended.event
    assert (sanction.action, sanction.rule, sanction.ladder, sanction.ground) == (
        "freeze", "RepeatedCapacityBreaches", "PPKM", "capacity_breaches")
    assert sanction.evidence.breaches == breach_ids
    assert sanction.evidence.warnings == [w.warning_id for w in warnings]
    assert sanction.evidence.missed_periods == []
    assert recommended.envelope.causationid == str(of_type(events, "WarningIssued")[-1].envelope.id)

    # The three breaches are the sanction's: they will not count towards another.
    stored = await reports.breaches(plant)
    assert [row["day"] for row in stored] == days
    [sanction_id] = {row["sanction_id"] for row in stored}
    recorded = await reports.db.fetchrow("SELECT action, rule, evidence FROM sanctions WHERE sanction_id = $1",
                                         sanction_id)
    assert (recorded["action"], recorded["rule"]) == ("freeze", "RepeatedCapacityBreaches")
    assert json.loads(recorded["evidence"]) == {"missed_periods": [], "warnings": [str(w.warning_id) for w in warnings],
                                                "breaches": [str(b) for b in breach_ids]}
