"""Industrial estates in the incidents service, over the real database and broker: an estate reads the cases,
status, clusters and closures of the plants it confirmed as tenants and of no other plant, reports cases in its own
estate's common areas, and stops reading a tenant when the tenancy ends.

Kota Gorontalo (75.71) is this module's own.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
import pytest_asyncio

from services.incidents.app import create_app
from shared.contract import (
    EstateTenancyConfirmed, EstateTenancyEnded, Envelope, PermitIssued, PermitKind, SectorClass, TenancyEndCause,
)
from tests.support.kafka import publish
from tests.support.platform import bearer, running_service
from tests.support.waiting import poll, until

pytestmark = pytest.mark.integration

PROVINCE, REGENCY = "75", "75.71"  # Gorontalo: a province no other test puts plants in
ESTATE_NIB, TENANT_NIB, NEIGHBOUR_NIB = "8120003672001", "8120003672002", "8120003672003"
ESTATE = bearer("estate", nib=ESTATE_NIB)
OPERATOR = bearer("operator")
WIB = timezone(timedelta(hours=7))


def issued(facility_id: uuid.UUID, nib: str, kind: PermitKind = PermitKind.PLANT) -> Envelope:
    return Envelope.wrap(PermitIssued(
        facility_id=facility_id, province_code=PROVINCE, regency_code=REGENCY, permit_id=uuid.uuid4(), nib=nib,
        permit_number=f"IOMKI-2026-{uuid.uuid4().int % 10**6:06d}", company_name="PT Gorontalo",
        sector_class=SectorClass.CRITICAL, workforce_total=800, issued_at=datetime.now(UTC), kind=kind),
        service="permits")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(platform):
    async with running_service(create_app()) as client:
        yield client


async def case_at(client, facility_id: uuid.UUID, headers: dict[str, str]):
    return await client.post("/cases", headers=headers, json={
        "facility_id": str(facility_id), "case_ref": f"E-{uuid.uuid4().int % 10**8:08d}",
        "confirmed_on": datetime.now(WIB).date().isoformat(), "symptomatic": False, "close_contacts": 1})


async def listed(client, headers: dict[str, str], **params: str) -> dict[str, dict]:
    answer = await client.get("/incidents", headers=headers, params={"limit": 500} | params)
    assert answer.status_code == 200, answer.text
    return {item["facility_id"]: item for item in answer.json()["items"]}


async def test_an_estate_reads_its_tenants_clusters_and_closures_and_no_other_plant(platform, service):
    estate, tenant, neighbour = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    tenancy = EstateTenancyConfirmed(
        facility_id=tenant, province_code=PROVINCE, regency_code=REGENCY, permit_id=uuid.uuid4(), nib=TENANT_NIB,
        estate_facility_id=estate, estate_permit_id=uuid.uuid4(), estate_permit_number="IOMKI-2026-003672",
        estate_nib=ESTATE_NIB, estate_name="Kawasan Industri Krakatau", confirmed_at=datetime.now(UTC))
    # The tenancy first: it may come before the plant's permit reaches this service.
    await publish(platform.bootstrap, Envelope.wrap(tenancy, service="permits"), issued(tenant, TENANT_NIB),
                  issued(neighbour, NEIGHBOUR_NIB), issued(estate, ESTATE_NIB, PermitKind.ESTATE))
    for facility_id in (tenant, neighbour, estate):
        await poll(service, f"/facilities/{facility_id}/status", OPERATOR, lambda body: body["monitored"])

    # Three linked cases at the tenant make a cluster whose closure is ordered; one case at the neighbour.
    cases = [await case_at(service, tenant, OPERATOR) for _ in range(3)]
    assert all(answer.status_code == 201 for answer in cases)
    for case, other in zip(cases, cases[1:], strict=False):
        linked = await service.post(f"/cases/{case.json()['case_id']}/links", headers=OPERATOR,
                                    json={"linked_case_id": other.json()["case_id"], "kind": "same_shift"})
        assert linked.status_code == 201, linked.text
    pending = (await service.get("/closure-recommendations", headers=bearer("task_force", region=PROVINCE),
                                 params={"status": "pending"})).json()["items"]
    [recommendation] = [r for r in pending if r["facility_id"] == str(tenant)]
    assert (await service.post(f"/closure-recommendations/{recommendation['recommendation_id']}/order",
                               headers=OPERATOR)).status_code == 200
    assert (await case_at(service, neighbour, OPERATOR)).status_code == 201
    # The estate reports a case in its own common areas, as a company does; never at its tenant's plant.
    assert (await case_at(service, estate, ESTATE)).status_code == 201
    assert (await case_at(service, tenant, ESTATE)).status_code == 404

    await until(lambda: service.get(f"/cases/{cases[0].json()['case_id']}", headers=ESTATE),
                lambda answer: answer.status_code == 200, "the estate never read its tenant's case")
    status = await service.get(f"/facilities/{tenant}/status", headers=ESTATE)
    assert status.status_code == 200 and status.json()["plant_closure"] is not None
    assert (await service.get(f"/facilities/{neighbour}/status", headers=ESTATE)).status_code == 404

    seen = await listed(service, ESTATE)
    assert set(seen) == {str(tenant), str(estate)}
    assert seen[str(tenant)]["clusters_total"] == 1 and seen[str(tenant)]["plant_closure"] is not None
    # Across the estate, as an operator sees it: its tenants only.
    assert set(await listed(service, OPERATOR, estate=ESTATE_NIB)) == {str(tenant)}

    await publish(platform.bootstrap, Envelope.wrap(EstateTenancyEnded(
        facility_id=tenant, province_code=PROVINCE, regency_code=REGENCY, permit_id=tenancy.permit_id,
        nib=TENANT_NIB, estate_facility_id=estate, estate_nib=ESTATE_NIB, cause=TenancyEndCause.ESTATE_REVOKED,
        reason="The estate's permit was revoked."), service="permits"))
    await until(lambda: service.get(f"/facilities/{tenant}/status", headers=ESTATE),
                lambda answer: answer.status_code == 404, "the estate still reads its former tenant")
    assert (await service.get(f"/cases/{cases[0].json()['case_id']}", headers=ESTATE)).status_code == 404
    assert set(await listed(service, ESTATE)) == {str(estate)}
    assert await listed(service, OPERATOR, estate=ESTATE_NIB) == {}
