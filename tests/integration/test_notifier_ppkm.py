"""PPKM through the notifier, against the real database and broker, a real webhook receiver and a real SMTP server.

Stories in East Java: a Sidoarjo plant runs over its PPKM cap twice within the hour, and Sidoarjo's Satpol PP hears
of it once, with each excess; a Surabaya company is warned for a breach and reads that the warning is for the cap,
with its letter, even when its alert grouped a missed report's warning; a Gresik company hears of each change of its
sector class; Jember's task force, subscribed to sanction recommendations, reads one on the capacity ground as
repeated breaches. The tests publish the reports and permits services' events as those services would.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import uuid
from datetime import UTC, date, datetime

import pytest
import pytest_asyncio

from shared.contract import (
    CapacityBreachDetected, CapacityExcess, CapacityMeasure, ClassBasis, Envelope, GroundCode, PpkmLevel,
    SanctionAction, SanctionEvidence, SanctionRecommended, SectorClass, SectorClassChanged, WarningCause,
    WarningIssued,
)
from tests.support.notifier_world import (
    OPERATOR, World, attachments, letter_for, letter_pdf, notifier_world, plant,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(platform):
    async with notifier_world(platform) as world:
        yield world


def over_the_cap(where: dict, *excesses: CapacityExcess) -> CapacityBreachDetected:
    return CapacityBreachDetected(
        **where, permit_id=uuid.uuid4(), breach_id=uuid.uuid4(), report_id=uuid.uuid4(), period_id=uuid.uuid4(),
        day=date(2021, 7, 20), level=PpkmLevel.LEVEL_4, rule_set="Inmendagri 22/2021", rule="L4-Export",
        sector_class=SectorClass.ESSENTIAL, export_oriented=True, excesses=list(excesses))


def warned(where: dict, cause: WarningCause, consecutive: int = 1) -> WarningIssued:
    return WarningIssued(**where, permit_id=uuid.uuid4(), warning_id=uuid.uuid4(), period_id=uuid.uuid4(),
                         deadline=datetime(2021, 7, 20, 16, 59, tzinfo=UTC), consecutive=consecutive, cause=cause,
                         breach_id=uuid.uuid4() if cause is WarningCause.CAPACITY_BREACH else None)


def text_of(mail: str) -> str:
    message = email.message_from_string(mail, policy=email.policy.default)
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def subject_of(mail: str) -> str:
    return str(email.message_from_string(mail, policy=email.policy.default)["Subject"])


def in_order(text: str, *parts: str) -> bool:
    """Each part is in the text, after the one before it."""
    at = 0
    for part in parts:
        found = text.find(part, at)
        if found < 0:
            return False
        at = found + len(part)
    return True


async def mails_to(world: World, address: str, count: int) -> list[str]:
    return await eventually(lambda: asyncio.sleep(0, m if len(m := world.mailbox.to(address)) >= count else None))


async def test_two_breaches_within_the_hour_are_one_alert_to_the_regencys_satpol_pp_naming_each_excess(world: World):
    # Sidoarjo's task force: its health division, and Satpol PP (law enforcement) by e-mail and on a webhook.
    await world.register("regency", "35.15", [
        {"division": "health", "email": "kes@sidoarjo.example"},
        {"division": "law_enforcement", "email": "satpolpp@sidoarjo.example",
         "webhook": world.receiver.url("sidoarjo-satpolpp")}])
    await world.register("regency", "35.25", [{"division": "law_enforcement", "email": "pp@gresik.example"}])
    pabrik = plant("35", "35.15")
    await world.contacts(pabrik, company_name="PT Sepatu Sidoarjo", email_address="hse@sepatu.example")

    # Its report counted 900 on the first shift and 650 on the second against 600 each, and 25 in the offices.
    first = over_the_cap(pabrik,
                         CapacityExcess(measure=CapacityMeasure.SHIFT_ON_SITE, shift=1, cap=600, count=900),
                         CapacityExcess(measure=CapacityMeasure.SHIFT_ON_SITE, shift=2, cap=600, count=650),
                         CapacityExcess(measure=CapacityMeasure.OFFICE_ON_SITE, cap=10, count=25))
    await world.publish(first)
    # The next day's report is over again, within the hour the alert groups.
    await world.publish(over_the_cap(pabrik, CapacityExcess(measure=CapacityMeasure.SHIFT_COUNT, cap=1, count=2)))

    alert = await world.alert_for(pabrik["facility_id"], "CapacityBreachDetected")
    assert (alert["severity"], alert["level"], alert["regency_code"]) == ("low", "regency", "35.15")

    async def counted_twice() -> dict | None:
        found = (await world.notifier.get(f"/alerts/{alert['alert_id']}", headers=OPERATOR)).json()
        return found if found["count"] == 2 else None
    grouped = await eventually(counted_twice)
    assert grouped["status"] == "open" and grouped["escalations"] == []
    alerts = (await world.notifier.get("/alerts", headers=OPERATOR)).json()["alerts"]
    assert [a["alert_id"] for a in alerts if a["facility_id"] == str(pabrik["facility_id"])] == [alert["alert_id"]]

    deliveries = await world.deliveries(alert["alert_id"], settled=2)
    assert sorted((d["channel"], d["recipient_kind"], d["level"], d["status"]) for d in deliveries) == [
        ("email", "task_force", "regency", "delivered"), ("webhook", "task_force", "regency", "delivered")]

    [(_, body)] = [hook for hook in world.receiver.on("sidoarjo-satpolpp") if alert["alert_id"].encode() in hook[1]]
    notice = json.loads(body)
    assert notice["event_type"] == "CapacityBreachDetected" and notice["count"] == 1  # told when it was raised
    assert notice["details"]["breach_id"] == str(first.breach_id)
    assert in_order(notice["summary"],
                    f"Pabrik {pabrik['facility_id']}", "melampaui batas kapasitas PPKM pada 2021-07-20: PPKM Level 4, "
                    "aturan L4-Export (Inmendagri 22/2021)", "- shift 1: 900 orang di lokasi, batas 600",
                    "- shift 2: 650 orang di lokasi, batas 600", "- kantor: 25 orang di lokasi, batas 10",
                    f"\n\nPlant {pabrik['facility_id']}", "exceeded the PPKM staffing cap on 2021-07-20: PPKM level 4, "
                    "rule L4-Export", "- shift 1: 900 on site vs cap 600", "- shift 2: 650 on site vs cap 600",
                    "- offices: 25 on site vs cap 10")

    [mail] = [m for m in world.mailbox.to("satpolpp@sidoarjo.example") if alert["alert_id"] in text_of(m)]
    assert subject_of(mail) == "[iomki low] CapacityBreachDetected in 35.15"
    assert in_order(text_of(mail), "Pabrik ", "- shift 1: 900 orang di lokasi, batas 600", "Plant ",
                    "- shift 1: 900 on site vs cap 600", "Level: regency")
    # Both deliveries were planned with the alert: nobody else was told, and no more will be.
    assert not world.mailbox.to("kes@sidoarjo.example") and not world.mailbox.to("pp@gresik.example")
    assert not world.mailbox.to("hse@sepatu.example")  # the company hears of its warning, not of the breach


async def test_a_capacity_warning_reaches_the_company_with_its_letter_saying_it_is_for_the_cap(world: World):
    surabaya = plant("35", "35.78")
    await world.contacts(surabaya, company_name="PT Garmen Surabaya", email_address="k3@garmen.example")
    cause = await world.publish(warned(surabaya, WarningCause.CAPACITY_BREACH))
    await world.publish_envelope(letter_for(cause, "IOMKI-2021-000321/SP-1"))

    [mail] = await mails_to(world, "k3@garmen.example", 1)
    assert subject_of(mail) == ("[IOMKI] Surat Peringatan IOMKI-2021-000321/SP-1 (batas kapasitas PPKM) / "
                                "Warning letter IOMKI-2021-000321/SP-1 (PPKM staffing cap)")
    text = text_of(mail)
    assert in_order(text, "Yth. Pimpinan PT Garmen Surabaya,",
                    "Kami memberitahukan peringatan melampaui batas kapasitas pekerja PPKM",
                    "jumlah pekerja di lokasi melebihi batas", "terlampir.",
                    "We notify you of a warning for exceeding the PPKM staffing cap", "is attached.")
    assert attachments(mail) == [("IOMKI-2021-000321_SP-1.pdf", letter_pdf("IOMKI-2021-000321/SP-1"))]
    alert = await world.alert_for(surabaya["facility_id"], "WarningIssued")
    [delivery] = await world.deliveries(alert["alert_id"], settled=1)
    assert (delivery["recipient_kind"], delivery["attachment"]) == ("company", "IOMKI-2021-000321_SP-1.pdf")


async def test_each_warning_of_a_grouped_alert_names_its_own_cause_whichever_half_comes_first(world: World):
    """A missed report's warning opens the alert; a capacity warning within the hour is grouped into it, its letter
    first: the company's second e-mail still says it is for the cap, the first that it is not."""
    mojokerto = plant("35", "35.16")
    await world.contacts(mojokerto, company_name="PT Kertas Mojokerto", email_address="hse@kertas.example")
    missed = await world.publish(warned(mojokerto, WarningCause.MISSED_REPORT))
    await world.publish_envelope(letter_for(missed, "IOMKI-2021-000516/SP-1"))
    await mails_to(world, "hse@kertas.example", 1)

    envelope = Envelope.wrap(warned(mojokerto, WarningCause.CAPACITY_BREACH), service="reports",
                             time=datetime.now(UTC))
    await world.publish_envelope(letter_for(envelope, "IOMKI-2021-000516/SP-2"))
    await world.pairing(envelope, "letter_number")
    await world.publish_envelope(envelope)

    first, second = await mails_to(world, "hse@kertas.example", 2)
    assert "PPKM" not in subject_of(first) + text_of(first)
    assert subject_of(second).endswith("IOMKI-2021-000516/SP-2 (PPKM staffing cap)")
    assert in_order(text_of(second), "peringatan melampaui batas kapasitas pekerja PPKM",
                    "a warning for exceeding the PPKM staffing cap")
    assert attachments(second) == [("IOMKI-2021-000516_SP-2.pdf", letter_pdf("IOMKI-2021-000516/SP-2"))]
    alert = await world.alert_for(mojokerto["facility_id"], "WarningIssued")
    assert (await world.notifier.get(f"/alerts/{alert['alert_id']}", headers=OPERATOR)).json()["count"] == 2


async def test_the_company_hears_of_each_change_of_its_sector_class_and_why(world: World):
    gresik = plant("35", "35.25")
    await world.contacts(gresik, company_name="PT Pupuk Gresik", email_address="hse@pupuk.example")
    common = dict(permit_id=uuid.uuid4(), nib="8120000352525", permit_number="IOMKI-2021-003525",
                  table_version="KBLI-2021.2")
    # The ministry's lists are revised: fertiliser is essential, not export-oriented …
    await world.publish(SectorClassChanged(
        **gresik, **common, sector_class=SectorClass.ESSENTIAL, export_oriented=False, basis=ClassBasis.KBLI_TABLE,
        reason="Daftar sektor esensial Kemenperin direvisi"))
    # … and within the hour an operator confirms the company's claim that it exports most of what it makes.
    await world.publish(SectorClassChanged(
        **gresik, **common, sector_class=SectorClass.ESSENTIAL, export_oriented=True, basis=ClassBasis.OPERATOR,
        reason="Dokumen ekspor 2020 menunjukkan 70 % produksi diekspor"))

    mails = await mails_to(world, "hse@pupuk.example", 2)  # sent side by side: in either order
    [first] = [mail for mail in mails if "revisi tabel KBLI" in text_of(mail)]
    [second] = [mail for mail in mails if "konfirmasi operator" in text_of(mail)]
    assert subject_of(first) == subject_of(second) == "[IOMKI] Perubahan kelas sektor / Change of sector class"
    assert in_order(text_of(first), "Yth. Pimpinan PT Pupuk Gresik,",
                    "Kelas sektor pabrik Anda (IOMKI-2021-003525) kini: esensial, tidak berorientasi ekspor.",
                    "Dasar: revisi tabel KBLI (versi KBLI-2021.2).",
                    "Alasan: Daftar sektor esensial Kemenperin direvisi",
                    "is now: essential, not export-oriented.", "Basis: a revision of the KBLI table")
    assert in_order(text_of(second), "kini: esensial, berorientasi ekspor.",
                    "Dasar: konfirmasi operator atas klaim perusahaan Anda (tabel KBLI versi KBLI-2021.2).",
                    "Alasan: Dokumen ekspor 2020 menunjukkan 70 % produksi diekspor",
                    "is now: essential, export-oriented.", "Basis: an operator's confirmation of your claim")
    alert = await world.alert_for(gresik["facility_id"], "SectorClassChanged")
    deliveries = await world.deliveries(alert["alert_id"], settled=2)
    assert [(d["recipient_kind"], d["status"]) for d in deliveries] == [("company", "delivered")] * 2
    assert (await world.notifier.get(f"/alerts/{alert['alert_id']}", headers=OPERATOR)).json()["count"] == 2


async def test_a_task_force_subscribed_to_recommendations_reads_a_capacity_ground_as_repeated_breaches(world: World):
    jember = await world.register("regency", "35.09", [{"division": "law_enforcement", "email": "pp@jember.example"}])
    await world.subscribe(jember, "jember-sanksi", ["SanctionRecommended"])
    pabrik = plant("35", "35.09")
    breaches = [uuid.uuid4() for _ in range(3)]
    await world.publish(SanctionRecommended(
        **pabrik, permit_id=uuid.uuid4(), action=SanctionAction.FREEZE, rule="ThreeCapacityBreaches", ladder="PPKM",
        ground=GroundCode.CAPACITY_BREACHES,
        evidence=SanctionEvidence(missed_periods=[], warnings=[uuid.uuid4() for _ in range(3)], breaches=breaches)))

    alert = await world.alert_for(pabrik["facility_id"], "SanctionRecommended")
    hooks = await eventually(lambda: asyncio.sleep(0, [
        hook for hook in world.receiver.on("jember-sanksi") if alert["alert_id"].encode() in hook[1]]))
    notice = json.loads(hooks[0][1])
    assert notice["details"]["ground"] == "capacity_breaches"
    assert notice["details"]["evidence"]["breaches"] == [str(b) for b in breaches]
    assert in_order(notice["summary"], "Rekomendasi pembekuan IOMKI",
                    "atas dasar pelanggaran batas kapasitas PPKM berulang (3 pelanggaran): aturan "
                    "ThreeCapacityBreaches, PPKM.", "A freeze of the permit is recommended",
                    "on the ground of repeated breaches of the PPKM staffing cap (3 breaches)")
    assert "laporan" not in notice["summary"] and "missed" not in notice["summary"]
    assert not world.mailbox.to("pp@jember.example")  # a recommendation is routed to nobody but its subscribers
