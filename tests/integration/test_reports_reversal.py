"""A sanction reversed on objection, as the reports service takes it over the real broker and database: a reversed
freeze unfreezes the plant's schedule; a reversed revocation resumes the ended schedule, with obligations from now on
and none for the time the revocation stood."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import pytest
import pytest_asyncio

from services.reports.app import ReportsSettings, create_app
from services.reports.repository import ScheduleRepository
from shared.contract import (
    Envelope, PermitFrozen, PermitIssued, PermitRevoked, SanctionAction, SanctionReversed, SectorClass,
)
from tests.support.kafka import publish
from tests.support.platform import bearer, running_service
from tests.support.waiting import until

pytestmark = pytest.mark.integration

NIB = "8120000123777"
COMPANY = bearer("company", nib=NIB)
NUMBER = "IOMKI-2026-000777"


class Plant:
    def __init__(self) -> None:
        self.permit_id, self.facility_id = uuid.uuid4(), uuid.uuid4()

    def about(self) -> dict[str, Any]:
        return dict(facility_id=self.facility_id, province_code="32", regency_code="32.16",
                    permit_id=self.permit_id, nib=NIB)

    def issued(self) -> Envelope:
        return Envelope.wrap(PermitIssued(
            **self.about(), permit_number=NUMBER, company_name="PT Baja Nusantara", sector_class=SectorClass.CRITICAL,
            workforce_total=1200, issued_at=datetime.now(UTC)), service="permits")

    def frozen(self) -> Envelope:
        return Envelope.wrap(PermitFrozen(**self.about(), permit_number=NUMBER, reason="three warnings",
                                          freeze_count=1), service="permits")

    def revoked(self) -> Envelope:
        return Envelope.wrap(PermitRevoked(**self.about(), permit_number=NUMBER, reason="false declaration",
                                           reapply_after=(datetime.now(UTC) + timedelta(days=14)).date()),
                             service="permits")

    def reversed(self, sanction: SanctionAction, to_status: Literal["ISSUED", "FROZEN"],
                 freeze_count: int) -> Envelope:
        return Envelope.wrap(SanctionReversed(
            **self.about(), objection_id=uuid.uuid4(), permit_number=NUMBER, reversed=sanction, to_status=to_status,
            reason="the reports were received on time", freeze_count=freeze_count), service="permits")


def report(permit_id: uuid.UUID, period_id: str) -> dict[str, Any]:
    return {
        "permit_id": str(permit_id), "period_id": period_id,
        "workforce": {"total": 1200, "on_site_per_shift": [380, 390, 290]},
        "odp": 0, "pdp": 0, "new_positives": 0, "isolating_workers": 0, "tests": {"pcr": 12, "antigen": 40},
        "vaccinated": {"dose1": 1100, "dose2": 950, "booster": 300}, "transport_modes": ["company_bus"],
        "protocol_checklist": {"temperature_screening": True, "masks": True, "distancing": True,
                               "ventilation": True, "disinfection": True, "handwash_stations": True,
                               "pedulilindungi_scan": True},
        "case_handling": "", "declared_true": True,
    }


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def reports(platform):
    # A weekly deadline: nothing falls due while a test runs, so each period stays as the events leave it.
    settings = ReportsSettings(IOMKI_REPORT_REGIME="weekly:FRI@23:59")
    async with running_service(create_app(reports_settings=settings)) as client:
        yield client


async def schedule_where(reports, plant: Plant, holds, failure: str) -> dict[str, Any]:
    async def read() -> dict[str, Any] | None:
        answer = await reports.get(f"/schedules/{plant.permit_id}", headers=bearer("operator"))
        return answer.json() if answer.status_code == 200 else None
    return await until(read, lambda found: found is not None and holds(found), failure)


async def freeze_count(platform, plant: Plant) -> int:
    connection = await asyncpg.connect(platform.admin_url, server_settings={"search_path": "reports"})
    try:
        schedule = await ScheduleRepository(connection).get(plant.permit_id)
    finally:
        await connection.close()
    assert schedule is not None
    return schedule.freeze_count


async def test_a_reversed_freeze_unfreezes_the_schedule_and_no_longer_counts(platform, reports):
    plant = Plant()
    await publish(platform.bootstrap, plant.issued(), plant.frozen())
    await schedule_where(reports, plant, lambda s: s["frozen"], "frozen")
    assert await freeze_count(platform, plant) == 1
    await publish(platform.bootstrap, plant.reversed(SanctionAction.FREEZE, "ISSUED", 0))
    after = await schedule_where(reports, plant, lambda s: not s["frozen"], "unfrozen")
    assert not after["ended"] and [p["status"] for p in after["periods"]] == ["open"]
    assert await freeze_count(platform, plant) == 0


async def test_a_reversed_revocation_resumes_reporting_from_now_on(platform, reports):
    plant = Plant()
    await publish(platform.bootstrap, plant.issued())
    before = await schedule_where(reports, plant, lambda s: len(s["periods"]) == 1, "opened")
    await publish(platform.bootstrap, plant.revoked())
    ended = await schedule_where(reports, plant, lambda s: s["ended"], "ended")
    assert [p["status"] for p in ended["periods"]] == ["ended"]
    refused = await reports.post("/reports", headers=COMPANY,
                                 json=report(plant.permit_id, ended["periods"][0]["period_id"]))
    assert refused.status_code == 409

    reversed_at = datetime.now(UTC)
    await publish(platform.bootstrap, plant.reversed(SanctionAction.REVOKE, "ISSUED", 0))
    resumed = await schedule_where(reports, plant, lambda s: not s["ended"], "resumed")
    assert not resumed["frozen"]
    # The period the revocation ended stays ended, owing nothing; a new one opens from the reversal on.
    old, new = sorted(resumed["periods"], key=lambda p: p["seq"])
    assert (old["period_id"], old["status"]) == (before["periods"][0]["period_id"], "ended")
    assert (new["seq"], new["status"]) == (old["seq"] + 1, "open")
    assert datetime.fromisoformat(new["starts_at"]) >= reversed_at - timedelta(seconds=5)
    accepted = await reports.post("/reports", headers=COMPANY, json=report(plant.permit_id, new["period_id"]))
    assert accepted.status_code == 201, accepted.text
    assert (await reports.post("/reports", headers=COMPANY,
                               json=report(plant.permit_id, old["period_id"]))).status_code == 409


async def test_a_revocation_reduced_to_a_freeze_resumes_a_frozen_schedule(platform, reports):
    plant = Plant()
    await publish(platform.bootstrap, plant.issued(), plant.revoked())
    await schedule_where(reports, plant, lambda s: s["ended"], "ended")
    await publish(platform.bootstrap, plant.reversed(SanctionAction.REVOKE, "FROZEN", 1))
    resumed = await schedule_where(reports, plant, lambda s: not s["ended"], "resumed")
    assert resumed["frozen"] and [p["status"] for p in resumed["periods"]] == ["ended", "open"]
    assert await freeze_count(platform, plant) == 1
