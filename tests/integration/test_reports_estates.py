"""Industrial estates in the reports service, over the real database and broker: an estate reads the plants it
confirmed as tenants (schedules, reports, allowance, compliance) and no other, and stops when the tenancy ends; a
report answering no to checklist items names them in ReportSubmitted.

Kab. Purwakarta (32.14) is this module's own.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from services.reports.app import ReportsSettings, create_app
from shared.contract import (
    EstateTenancyConfirmed, EstateTenancyEnded, Envelope, PermitIssued, ProtocolItem, SectorClass, TenancyEndCause,
    decode,
)
from tests.support.kafka import publish, read_topic
from tests.support.platform import bearer, running_service
from tests.support.waiting import poll, until

pytestmark = pytest.mark.integration

PROVINCE, REGENCY = "32", "32.14"
ESTATE_NIB, TENANT_NIB, NEIGHBOUR_NIB = "8120003214001", "8120003214002", "8120003214003"
ESTATE = bearer("estate", nib=ESTATE_NIB)


def checklist(**no: bool) -> dict:
    return {item: no.get(item, True) for item in ("temperature_screening", "masks", "distancing", "ventilation",
                                                  "disinfection", "handwash_stations", "pedulilindungi_scan")}


def report_body(permit_id: str, period_id: str, answers: dict) -> dict:
    return {
        "permit_id": permit_id, "period_id": period_id,
        "workforce": {"total": 200, "on_site_per_shift": [80]}, "odp": 0, "pdp": 0, "new_positives": 0,
        "tests": {"pcr": 0, "antigen": 5}, "vaccinated": {"dose1": 180, "dose2": 150, "booster": 0},
        "transport_modes": [], "protocol_checklist": answers, "case_handling": "", "declared_true": True,
    }


class Plant:
    def __init__(self, nib: str, name: str) -> None:
        self.nib, self.name = nib, name
        self.permit_id, self.facility_id = uuid.uuid4(), uuid.uuid4()
        self.number = f"IOMKI-2026-{uuid.uuid4().int % 10**6:06d}"

    def issued(self) -> Envelope:
        return Envelope.wrap(PermitIssued(
            facility_id=self.facility_id, province_code=PROVINCE, regency_code=REGENCY, permit_id=self.permit_id,
            nib=self.nib, permit_number=self.number, company_name=self.name, sector_class=SectorClass.ESSENTIAL,
            workforce_total=200, issued_at=datetime.now(UTC)), service="permits")

    def tenancy(self, estate_facility_id: uuid.UUID) -> Envelope:
        return Envelope.wrap(EstateTenancyConfirmed(
            facility_id=self.facility_id, province_code=PROVINCE, regency_code=REGENCY, permit_id=self.permit_id,
            nib=self.nib, estate_facility_id=estate_facility_id, estate_permit_id=uuid.uuid4(),
            estate_permit_number="IOMKI-2026-000321", estate_nib=ESTATE_NIB, estate_name="Kawasan Industri Kota Bukit",
            confirmed_at=datetime.now(UTC)), service="permits")

    def released(self, estate_facility_id: uuid.UUID) -> Envelope:
        return Envelope.wrap(EstateTenancyEnded(
            facility_id=self.facility_id, province_code=PROVINCE, regency_code=REGENCY, permit_id=self.permit_id,
            nib=self.nib, estate_facility_id=estate_facility_id, estate_nib=ESTATE_NIB,
            cause=TenancyEndCause.RELEASED, reason="The plant moved out of the estate."), service="permits")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(platform):
    settings = ReportsSettings(IOMKI_REPORT_REGIME="weekly:FRI@23:59")
    async with running_service(create_app(reports_settings=settings)) as client:
        yield client


async def open_period(client, plant: Plant) -> str:
    found = await poll(client, f"/schedules/{plant.permit_id}", bearer("operator"), lambda body: body["periods"])
    return found["periods"][-1]["period_id"]


async def test_an_estate_reads_its_tenant_and_no_other_plant_until_the_tenancy_ends(platform, service):
    estate_facility_id = uuid.uuid4()
    tenant, neighbour = Plant(TENANT_NIB, "PT Tenant Abadi"), Plant(NEIGHBOUR_NIB, "PT Tetangga")
    # The tenancy first: it may come before the plant's permit reaches this service.
    await publish(platform.bootstrap, tenant.tenancy(estate_facility_id), tenant.issued(), neighbour.issued())
    period_id = await open_period(service, tenant)
    await open_period(service, neighbour)
    company = bearer("company", nib=TENANT_NIB)
    assert (await service.post("/reports", headers=company,
                               json=report_body(str(tenant.permit_id), period_id, checklist()))).status_code == 201

    reads = ("/schedules/{}", "/reports?permit_id={}")
    for path in reads:
        assert (await service.get(path.format(tenant.permit_id), headers=ESTATE)).status_code == 200
        assert (await service.get(path.format(neighbour.permit_id), headers=ESTATE)).status_code == 404
    assert (await service.get(f"/plants/{tenant.facility_id}/allowance", headers=ESTATE)).status_code == 200
    assert (await service.get(f"/plants/{neighbour.facility_id}/allowance", headers=ESTATE)).status_code == 404
    # An estate may not report for its tenant: it reports for its own estate only.
    refused = await service.post("/reports", headers=ESTATE,
                                 json=report_body(str(tenant.permit_id), period_id, checklist()))
    assert refused.status_code == 404

    compliance = (await service.get("/compliance", headers=ESTATE)).json()
    assert compliance["estate_nib"] == ESTATE_NIB and compliance["tenants_count"] == 1
    [row] = compliance["tenants"]
    assert (row["facility_id"], row["permit_number"], row["company"]) == (
        str(tenant.facility_id), tenant.number, {"nib": TENANT_NIB, "name": "PT Tenant Abadi"})
    assert {"periods_due", "submitted", "late", "overdue", "warnings", "capacity_breaches"} <= set(row)
    elsewhere = (await service.get("/compliance?province=51", headers=ESTATE)).json()
    assert elsewhere["tenants"] == []

    await publish(platform.bootstrap, tenant.released(estate_facility_id))
    await until(lambda: service.get(f"/schedules/{tenant.permit_id}", headers=ESTATE),
                lambda answer: answer.status_code == 404, "the estate still reads its former tenant")
    assert (await service.get(f"/plants/{tenant.facility_id}/allowance", headers=ESTATE)).status_code == 404
    assert (await service.get("/compliance", headers=ESTATE)).json()["tenants"] == []
    # The company still reads its own.
    assert (await service.get(f"/schedules/{tenant.permit_id}", headers=company)).status_code == 200


async def test_a_report_with_two_no_answers_names_those_two_lapses(platform, service):
    plant = Plant("8120003214004", "PT Dua Kelalaian")
    await publish(platform.bootstrap, plant.issued())
    period_id = await open_period(service, plant)
    answers = checklist(masks=False, ventilation=False)
    submitted = await service.post("/reports", headers=bearer("company", nib=plant.nib),
                                   json=report_body(str(plant.permit_id), period_id, answers))
    assert submitted.status_code == 201, submitted.text
    report_id = submitted.json()["report_id"]
    key = str(plant.facility_id).encode()

    def ours(messages) -> list:
        return [event for event in (decode(m.value).event for m in messages if m.key == key)
                if getattr(event, "report_id", None) == uuid.UUID(report_id)]

    messages = await read_topic(platform.bootstrap, "iomki.reports", until=lambda ms: bool(ours(ms)))
    [event] = ours(messages)
    assert event.protocol_lapses == [ProtocolItem.MASKS, ProtocolItem.VENTILATION]
