"""A report's new positives and isolating workers, from POST /reports to the cases incidents keeps, over the real
database and broker: the same two isolating workers reported two periods running are two cases, not four.

The reports service runs the `every:5s` regime, so a plant's next period opens within seconds. A plant in Kota
Mataram (52.71), a region no other test uses: every service sees every test's events.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio

from services.incidents.app import create_app as create_incidents
from services.reports.app import ReportsSettings
from services.reports.app import create_app as create_reports
from shared.contract import Envelope, PermitIssued, ReportSubmitted, SectorClass, decode
from shared.regions import WITA
from tests.support.kafka import publish
from shared.storage.db import migrate
from tests.support.platform import bearer, running_service, schema_before, service_migrations
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

NIB = "8120000525271"
COMPANY = bearer("company", nib=NIB)
OPERATOR = bearer("operator")
PROVINCE, REGENCY = "52", "52.71"


def issued(facility_id: uuid.UUID, permit_id: uuid.UUID) -> Envelope:
    return Envelope.wrap(PermitIssued(
        facility_id=facility_id, province_code=PROVINCE, regency_code=REGENCY, permit_id=permit_id, nib=NIB,
        permit_number="IOMKI-2026-005271", company_name="PT Mutiara Lombok", sector_class=SectorClass.CRITICAL,
        workforce_total=1200, issued_at=datetime.now(UTC)), service="permits")


def report(permit_id: uuid.UUID, period_id: str, **positives: int) -> dict:
    return {
        "permit_id": str(permit_id), "period_id": period_id,
        "workforce": {"total": 1200, "on_site_per_shift": [380, 390, 290]}, "odp": 1, "pdp": 0,
        "tests": {"pcr": 12, "antigen": 40}, "vaccinated": {"dose1": 1100, "dose2": 950, "booster": 300},
        "transport_modes": ["company_bus"],
        "protocol_checklist": {"temperature_screening": True, "masks": True, "distancing": True, "ventilation": True,
                               "disinfection": True, "handwash_stations": True, "pedulilindungi_scan": True},
        "case_handling": "isolasi mandiri, kontak erat dilacak", "declared_true": True,
    } | positives


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services(platform):
    settings = ReportsSettings(IOMKI_REPORT_REGIME="every:5s", IOMKI_WARNING_DELAY="PT1H",
                               IOMKI_REPORT_DUE_LEAD="PT6H")
    async with running_service(create_reports(reports_settings=settings)) as reports:
        async with running_service(create_incidents()) as incidents:
            yield reports, incidents


async def open_period(reports, permit_id: uuid.UUID, other_than: str | None = None) -> str:
    async def probe():
        answer = await reports.get(f"/schedules/{permit_id}", headers=OPERATOR)
        if answer.status_code != 200:
            return None
        return next((p["period_id"] for p in answer.json()["periods"]
                     if p["status"] == "open" and p["period_id"] != other_than), None)
    return await eventually(probe)


async def submit(reports, permit_id: uuid.UUID, other_than: str | None = None, **positives: int) -> tuple[str, str]:
    """A report accepted for an open period (a 5 s period may close under it: then the next one)."""
    async def probe():
        period_id = await open_period(reports, permit_id, other_than)
        answer = await reports.post("/reports", headers=COMPANY, json=report(permit_id, period_id, **positives))
        return (period_id, answer.json()["report_id"]) if answer.status_code == 201 else None
    return await eventually(probe)


async def handled(admin: asyncpg.Connection, facility_id: uuid.UUID, report_id: str) -> ReportSubmitted:
    """The report's ReportSubmitted once incidents has consumed it."""
    async def probe():
        rows = await admin.fetch("SELECT event_id, value FROM reports.outbox WHERE event_type = $1 AND key = $2",
                                 "iomki.ReportSubmitted.v1", str(facility_id).encode())
        ours = [row for row in rows if decode(row["value"]).event.report_id == uuid.UUID(report_id)]
        if not ours or not await admin.fetchval("SELECT 1 FROM incidents.inbox WHERE event_id = $1",
                                                ours[0]["event_id"]):
            return None
        return decode(ours[0]["value"]).event
    return await eventually(probe)


async def known(incidents, facility_id: uuid.UUID) -> None:
    """Incidents has the plant from its permit (its NIB: the company may read it)."""
    async def probe():
        return (await incidents.get(f"/facilities/{facility_id}/status", headers=COMPANY)).status_code == 200
    await eventually(probe)


async def status_of(incidents, facility_id: uuid.UUID) -> dict:
    answer = await incidents.get(f"/facilities/{facility_id}/status", headers=COMPANY)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_two_isolating_workers_reported_two_periods_running_are_two_cases(platform, services):
    reports, incidents = services
    facility_id, permit_id = uuid.uuid4(), uuid.uuid4()
    await publish(platform.bootstrap, issued(facility_id, permit_id))
    await known(incidents, facility_id)
    admin = await asyncpg.connect(platform.admin_url)
    try:
        # First period: two workers newly positive, both isolating.
        first_period, first = await submit(reports, permit_id, new_positives=2, isolating_workers=2)
        event = await handled(admin, facility_id, first)
        assert (event.new_positives, event.isolating_workers, event.confirmed_positive) == (2, 2, 2)
        status = await status_of(incidents, facility_id)
        assert (status["cases_total"], status["active_isolations"]) == (2, 2)

        # The next period: nobody new, the same two still isolating.
        _, second = await submit(reports, permit_id, other_than=first_period, new_positives=0, isolating_workers=2)
        event = await handled(admin, facility_id, second)
        assert (event.new_positives, event.isolating_workers, event.confirmed_positive) == (0, 2, 0)
    finally:
        await admin.close()
    status = await status_of(incidents, facility_id)
    assert (status["cases_total"], status["active_isolations"]) == (2, 2)
    # Both are the company's to complete: placeholders no entered case has claimed yet.
    to_complete = status["placeholders_to_complete"]
    assert to_complete["count"] == 2 and len(to_complete["items"]) == 2
    assert {item["report_id"] for item in to_complete["items"]} == {first}
    today = datetime.now(WITA).date()
    assert {item["confirmed_between"]["last"] for item in to_complete["items"]} == {today.isoformat()}

    # The company enters one of them: it claims a placeholder, one is left to complete.
    entered = await incidents.post("/cases", headers=COMPANY, json={
        "facility_id": str(facility_id), "case_ref": "MTR-01", "confirmed_on": today.isoformat(),
        "symptomatic": False, "close_contacts": 3})
    assert entered.status_code == 201, entered.text
    assert entered.json()["claimed_at"] is not None
    status = await status_of(incidents, facility_id)
    assert status["cases_total"] == 2 and status["placeholders_to_complete"]["count"] == 1

    # The reads name both counts.
    listed = (await reports.get(f"/reports?permit_id={permit_id}", headers=COMPANY)).json()["reports"]
    assert [(r["new_positives"], r["isolating_workers"]) for r in listed] == [(0, 2), (2, 2)]
    assert [(r["report"]["new_positives"], r["report"]["confirmed_positive"]) for r in listed] == [(0, 0), (2, 2)]


async def test_positives_by_their_older_name_are_accepted_and_a_contradiction_is_refused(platform, services):
    reports, _ = services
    facility_id, permit_id = uuid.uuid4(), uuid.uuid4()
    await publish(platform.bootstrap, issued(facility_id, permit_id))
    period_id = await open_period(reports, permit_id)

    for positives, field in (({"new_positives": 1, "confirmed_positive": 2}, "confirmed_positive"),
                             ({}, "new_positives"),
                             ({"new_positives": 1, "isolating_workers": 1201}, "isolating_workers"),
                             ({"new_positives": 1, "isolating_workers": 141}, "isolating_workers")):
        refused = await reports.post("/reports", headers=COMPANY, json=report(permit_id, period_id, **positives))
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == [field]

    # A client written before the names: its confirmed_positive is the new positives; isolation not stated.
    admin = await asyncpg.connect(platform.admin_url)
    try:
        _, report_id = await submit(reports, permit_id, confirmed_positive=1)
        event = await handled(admin, facility_id, report_id)
    finally:
        await admin.close()
    assert (event.new_positives, event.isolating_workers, event.confirmed_positive) == (1, None, 1)
    listed = (await reports.get(f"/reports?permit_id={permit_id}", headers=COMPANY)).json()["reports"]
    assert [(r["new_positives"], r["isolating_workers"]) for r in listed] == [(1, None)]


def weekly(facility_id: uuid.UUID, starts_on: date, **positives: int | None) -> Envelope:
    """A ReportSubmitted for the week from `starts_on` (WITA), published as a v1 or a later reports service would."""
    starts_at = datetime.combine(starts_on, datetime.min.time(), WITA)
    return Envelope.wrap(ReportSubmitted(
        facility_id=facility_id, province_code=PROVINCE, regency_code=REGENCY, permit_id=uuid.uuid4(),
        report_id=uuid.uuid4(), period_id=uuid.uuid4(), period_starts_at=starts_at,
        deadline=starts_at + timedelta(days=7, seconds=-60), late=False, workforce_total=1200, on_site_total=1000,
        odp=0, pdp=0, tests_pcr=0, tests_antigen=0, vaccinated_dose1=1000, vaccinated_dose2=900,
        vaccinated_booster=100, **positives), service="reports")


async def test_weekly_reports_over_real_dates_count_each_isolating_worker_once(platform, services):
    """Two weeks running with their real dates, as events: last week's two new positives, this week the same two
    isolating and a third isolating worker confirmed before the week, unknown till now (its correction, the same
    counts, adds nobody); then a v1 report."""
    _, incidents = services
    facility_id, permit_id = uuid.uuid4(), uuid.uuid4()
    await publish(platform.bootstrap, issued(facility_id, permit_id))
    await known(incidents, facility_id)
    today = datetime.now(WITA).date()
    last_week, this_week = today - timedelta(days=8), today - timedelta(days=1)
    admin = await asyncpg.connect(platform.admin_url)
    try:
        events = [weekly(facility_id, last_week, confirmed_positive=2, new_positives=2, isolating_workers=2),
                  weekly(facility_id, this_week, confirmed_positive=0, new_positives=0, isolating_workers=3),
                  weekly(facility_id, this_week, confirmed_positive=0, new_positives=0, isolating_workers=3)]
        await publish(platform.bootstrap, *events)

        async def consumed(envelope: Envelope):
            return await admin.fetchval("SELECT 1 FROM incidents.inbox WHERE event_id = $1", envelope.id)
        for envelope in events:
            await eventually(lambda envelope=envelope: consumed(envelope))
        status = await status_of(incidents, facility_id)
        assert status["cases_total"] == 3
        items = status["placeholders_to_complete"]["items"]
        # Last week's two for last week's days; the third for the days before this week.
        assert sorted((i["confirmed_between"]["first"], i["confirmed_between"]["last"]) for i in items) == sorted([
            (last_week.isoformat(), (last_week + timedelta(days=6)).isoformat())] * 2 + [
            (min(today - timedelta(days=13), this_week - timedelta(days=1)).isoformat(),
             (this_week - timedelta(days=1)).isoformat())])

        # The week before, reported by a v1 service (confirmed_positive only) and delivered late: four new
        # positives, none known in that week, isolation not stated.
        v1 = weekly(facility_id, last_week - timedelta(days=7), confirmed_positive=4)
        await publish(platform.bootstrap, v1)
        await eventually(lambda: consumed(v1))
    finally:
        await admin.close()
    assert (await status_of(incidents, facility_id))["cases_total"] == 7


async def test_reports_stored_before_the_names_state_their_new_positives_and_no_isolation(platform):
    schema = "reports_positives_upgrade"
    url = await schema_before(platform, schema, "reports", 17)
    connection = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        stored = {uuid.uuid4(): '{"confirmed_positive": 3}', uuid.uuid4(): '{"confirmed_positive": 0}'}
        for report_id, payload in stored.items():
            await connection.execute(
                "INSERT INTO reports (report_id, period_id, permit_id, submitted_at, late, actor, role, payload)"
                " VALUES ($1, $2, $3, now(), false, 'budi', 'company', $4::jsonb)",
                report_id, uuid.uuid4(), uuid.uuid4(), payload)
        await migrate(url, schema, service_migrations(schema, "reports"))
        rows = await connection.fetch("SELECT report_id, new_positives, isolating_workers FROM reports")
    finally:
        await connection.close()
    assert {(row["report_id"], row["new_positives"], row["isolating_workers"]) for row in rows} == {
        (report_id, count, None) for report_id, count in zip(stored, (3, 0), strict=True)}
