"""Estates and field supervision through the notifier, against the real database and broker and a real SMTP server.

Stories in Makassar (73.71): a plant confirmed as a tenant of an industrial estate runs over its PPKM cap, and the
estate company reads of it once, in Bahasa Indonesia then English, as long as the tenancy lasts; a complaint about a
plant, and an inspection that found violations, reach Makassar's Satpol PP as low alerts; an inspection that found
nothing alerts nobody; a regional office's sanction request informs South Sulawesi's task force. The tests publish
the permits, reports and supervision services' events as those services would.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import uuid
from datetime import UTC, date, datetime

import asyncpg
import pytest
import pytest_asyncio

from shared.contract import (
    CapacityBreachDetected, CapacityExcess, CapacityMeasure, ComplaintCategory, ComplaintFiled, EstateTenancyConfirmed,
    EstateTenancyEnded, FindingResult, GroundCode, InspectionBody, InspectionFinding, InspectionRecorded, PpkmLevel,
    ProtocolItem, SanctionAction, SanctionGround, SanctionRequested, SectorClass, TenancyEndCause,
)
from tests.support.notifier_world import World, notifier_world, plant
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

PROVINCE, MAKASSAR = "73", "73.71"
SATPOL_PP, PROVINCE_PP = "satpolpp@makassar.example", "pp@sulsel.example"
ESTATE_MAIL = "k3@kima.example"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(platform):
    async with notifier_world(platform) as world:
        await world.register("regency", MAKASSAR, [{"division": "health", "email": "kes@makassar.example"},
                                                   {"division": "law_enforcement", "email": SATPOL_PP}])
        await world.register("province", PROVINCE, [{"division": "law_enforcement", "email": PROVINCE_PP}])
        yield world


def text_of(mail: str) -> str:
    message = email.message_from_string(mail, policy=email.policy.default)
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def over_the_cap(where: dict) -> CapacityBreachDetected:
    return CapacityBreachDetected(
        **where, permit_id=uuid.uuid4(), breach_id=uuid.uuid4(), report_id=uuid.uuid4(), period_id=uuid.uuid4(),
        day=date(2021, 7, 20), level=PpkmLevel.LEVEL_4, rule_set="Inmendagri 22/2021", rule="L4-Export",
        sector_class=SectorClass.ESSENTIAL, export_oriented=True,
        excesses=[CapacityExcess(measure=CapacityMeasure.SHIFT_ON_SITE, shift=1, cap=600, count=900)])


def complaint(where: dict) -> ComplaintFiled:
    return ComplaintFiled(**where, permit_id=uuid.uuid4(), complaint_id=uuid.uuid4(),
                          category=ComplaintCategory.CAPACITY, filed_at=datetime.now(UTC))


def inspection(where: dict, *violated: ProtocolItem) -> InspectionRecorded:
    findings = [InspectionFinding(item=item, result=FindingResult.VIOLATED if item in violated else FindingResult.MET)
                for item in (ProtocolItem.MASKS, ProtocolItem.DISTANCING, ProtocolItem.COVID_TEAM)]
    return InspectionRecorded(**where, permit_id=uuid.uuid4(), inspection_id=uuid.uuid4(),
                              reference=f"INSP-2021-{uuid.uuid4().int % 10**6:06d}", inspected_on=date(2021, 7, 21),
                              bodies=[InspectionBody.REGIONAL_OFFICE], findings=findings, violations=len(violated))


async def mails(world: World, address: str, about: str, count: int = 1) -> list[str]:
    """The e-mails to `address` whose text names `about`, once there are `count` of them."""
    def found() -> list[str]:
        return [m for m in world.mailbox.to(address) if about in text_of(m)]
    return await eventually(lambda: asyncio.sleep(0, m if len(m := found()) >= count else None))


async def tenancies_of(world: World, facility_id: uuid.UUID) -> int:
    connection = await asyncpg.connect(world.database_url)
    try:
        return await connection.fetchval("SELECT count(*) FROM notifier.estate_tenancies WHERE facility_id = $1",
                                         facility_id)
    finally:
        await connection.close()


async def test_an_alert_about_a_tenant_reaches_the_estate_once_while_the_tenancy_lasts(world: World):
    estate, tenant, neighbour = plant(PROVINCE, MAKASSAR), plant(PROVINCE, MAKASSAR), plant(PROVINCE, MAKASSAR)
    await world.contacts(estate, company_name="PT Kawasan Industri Makassar", email_address=ESTATE_MAIL)
    await world.publish(EstateTenancyConfirmed(
        **tenant, permit_id=uuid.uuid4(), nib="8120007371002", estate_facility_id=estate["facility_id"],
        estate_permit_id=uuid.uuid4(), estate_permit_number="IOMKI-2021-007371", estate_nib="8120007371001",
        estate_name="Kawasan Industri Makassar", confirmed_at=datetime.now(UTC)))
    await eventually(lambda: tenancies_of(world, tenant["facility_id"]))

    # Twice over the cap within the hour: one alert, and one e-mail to the estate.
    await world.publish(over_the_cap(tenant))
    await world.publish(over_the_cap(tenant))
    await world.publish(over_the_cap(neighbour))
    alert = await world.alert_for(tenant["facility_id"], "CapacityBreachDetected")
    [mail] = await mails(world, ESTATE_MAIL, alert["alert_id"])
    text = text_of(mail)
    indonesian, english = text.index("Satgas COVID-19 menerima peringatan"), text.index("The COVID-19 task force")
    assert text.startswith("Yth. Pimpinan PT Kawasan Industri Makassar,") and indonesian < english
    assert str(tenant["facility_id"]) in text and "melampaui batas kapasitas PPKM" in text
    deliveries = await world.deliveries(alert["alert_id"], settled=2)
    assert sorted(d["recipient_kind"] for d in deliveries) == ["company", "task_force"]
    # The neighbour is no tenant: its alert reaches Satpol PP, and not the estate.
    other = await world.alert_for(neighbour["facility_id"], "CapacityBreachDetected")
    assert [d["recipient_kind"] for d in await world.deliveries(other["alert_id"], settled=1)] == ["task_force"]

    await world.publish(EstateTenancyEnded(
        **tenant, permit_id=uuid.uuid4(), nib="8120007371002", estate_facility_id=estate["facility_id"],
        estate_nib="8120007371001", cause=TenancyEndCause.RELEASED, reason="The plant left the estate."))
    await eventually(lambda: _gone(world, tenant["facility_id"]))
    await world.publish(complaint(tenant))
    after = await world.alert_for(tenant["facility_id"], "ComplaintFiled")
    assert [d["recipient_kind"] for d in await world.deliveries(after["alert_id"], settled=1)] == ["task_force"]
    assert len(world.mailbox.to(ESTATE_MAIL)) == 1


async def _gone(world: World, facility_id: uuid.UUID) -> bool:
    return await tenancies_of(world, facility_id) == 0


async def test_complaints_and_violating_inspections_alert_satpol_pp_and_a_sanction_request_the_province(world: World):
    pabrik = plant(PROVINCE, MAKASSAR)
    await world.publish(complaint(pabrik))
    await world.publish(complaint(pabrik))  # grouped, as capacity breaches are
    alert = await world.alert_for(pabrik["facility_id"], "ComplaintFiled")
    assert (alert["severity"], alert["level"], alert["regency_code"]) == ("low", "regency", MAKASSAR)
    [mail] = await mails(world, SATPOL_PP, alert["alert_id"])
    assert "Pengaduan masyarakat" in text_of(mail) and "A public complaint" in text_of(mail)
    assert not [m for m in world.mailbox.to("kes@makassar.example") if alert["alert_id"] in text_of(m)]

    # An inspection that found nothing violated alerts nobody; one that found two violations alerts Satpol PP.
    await world.publish(inspection(pabrik))
    await world.publish(inspection(pabrik, ProtocolItem.MASKS, ProtocolItem.DISTANCING))
    found = await world.alert_for(pabrik["facility_id"], "InspectionRecorded")
    assert (found["severity"], found["level"]) == ("low", "regency")
    # Told when raised: by the inspection that found the violations, never by the one before it.
    [inspected] = await mails(world, SATPOL_PP, found["alert_id"])
    assert "menemukan 2 pelanggaran protokol kesehatan: masks, distancing" in text_of(inspected)

    await world.publish(SanctionRequested(
        **pabrik, permit_id=uuid.uuid4(), request_id=uuid.uuid4(), action=SanctionAction.FREEZE,
        ground=SanctionGround(code=GroundCode.INSPECTION_FINDING), reason="Two violations on inspection.",
        office_region=MAKASSAR, requested_at=datetime.now(UTC)))
    requested = await world.alert_for(pabrik["facility_id"], "SanctionRequested")
    assert (requested["severity"], requested["level"], requested["escalate_at"]) == ("low", "province", None)
    [informed] = await mails(world, PROVINCE_PP, requested["alert_id"])
    assert "menunggu keputusan kementerian" in text_of(informed)
    assert not [m for m in world.mailbox.to(SATPOL_PP) if requested["alert_id"] in text_of(m)]
