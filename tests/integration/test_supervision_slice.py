"""A plant in Kab. Karawang misses a report, breaches its PPKM cap and draws a complaint from a neighbour: it rises to
the top of its regency's worklist. The regional office inspects it, finds masks off the faces its last declared
report swore were masked, and asks the ministry to revoke; the ministry decides.

Over the real database and broker: the facts arrive as the permits, reports and incidents services publish them;
ComplaintFiled, InspectionRecorded and SanctionRequested reach iomki.supervision.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
import pytest_asyncio

from services.supervision.app import create_app
from shared import regions
from shared.contract import (
    CapacityBreachDetected, CapacityExcess, CapacityMeasure, Envelope, PermitIssued, PpkmLevel, ReportOverdue,
    ReportSubmitted, RequestDecision, SanctionAction, SanctionRequestDecided, SectorClass, decode,
)
from tests.support.images import jpeg_with_gps, pixel_bomb, png
from tests.support.kafka import publish, read_topic
from tests.support.platform import bearer, running_service
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

OPERATOR = bearer("operator")
NIB = "8120000777777"


_REGENCIES = iter(range(70, 100))


def fresh_regency() -> str:
    """A regency of Jawa Barat of this test's own, so that other tests' plants do not share its worklist."""
    return f"32.{next(_REGENCIES)}"


def _today(regency: str) -> date:
    return datetime.now(UTC).astimezone(regions.local_zone(regency)).date()


class Plant:
    def __init__(self, regency: str) -> None:
        self.facility_id, self.permit_id = uuid.uuid4(), uuid.uuid4()
        self.regency, self.province = regency, regency[:2]
        self.permit_number = f"IOMKI-2026-{uuid.uuid4().int % 10**9:09d}"

    def where(self) -> dict:
        return {"facility_id": self.facility_id, "province_code": self.province, "regency_code": self.regency,
                "permit_id": self.permit_id}

    def issued(self) -> Envelope:
        return Envelope.wrap(PermitIssued(**self.where(), nib=NIB, permit_number=self.permit_number,
                                          company_name="PT Tekstil Karawang", sector_class=SectorClass.ESSENTIAL,
                                          workforce_total=800, issued_at=datetime.now(UTC) - timedelta(days=30)),
                             service="permits")

    def overdue(self) -> Envelope:
        return Envelope.wrap(ReportOverdue(**self.where(), period_id=uuid.uuid4(), deadline=datetime.now(UTC)),
                             service="reports")

    def breach(self) -> Envelope:
        return Envelope.wrap(CapacityBreachDetected(
            **self.where(), breach_id=uuid.uuid4(), report_id=uuid.uuid4(), period_id=uuid.uuid4(),
            day=_today(self.regency), level=PpkmLevel.LEVEL_4, rule_set="Inmendagri 22/2021", rule="L4-Essential",
            sector_class=SectorClass.ESSENTIAL, export_oriented=False,
            excesses=[CapacityExcess(measure=CapacityMeasure.ON_SITE_TOTAL, cap=400, count=700)]), service="reports")

    def declared_report(self, report_id: uuid.UUID, *, starts_days_ago: int) -> Envelope:
        starts = datetime.now(UTC) - timedelta(days=starts_days_ago)
        return Envelope.wrap(ReportSubmitted(
            **self.where(), report_id=report_id, period_id=uuid.uuid4(), period_starts_at=starts,
            deadline=starts + timedelta(days=6), late=False, workforce_total=800, on_site_total=600, odp=0, pdp=0,
            confirmed_positive=0, tests_pcr=0, tests_antigen=0, vaccinated_dose1=700, vaccinated_dose2=600,
            vaccinated_booster=0, declared=True, protocol_lapses=[]), service="reports")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def supervision(platform):
    async with running_service(create_app()) as client:
        yield client


async def row_of(client: httpx.AsyncClient, plant: Plant, holds=lambda row: True) -> dict:
    async def probe():
        response = await client.get("/worklist", headers=OPERATOR, params={"regency": plant.regency, "limit": 200})
        assert response.status_code == 200, response.text
        rows = response.json()["items"]
        mine = [row for row in rows if row["facility_id"] == str(plant.facility_id)]
        return rows if mine and holds(mine[0]) else None
    rows = await eventually(probe)
    return next(row for row in rows if row["facility_id"] == str(plant.facility_id)) | {"_rank": [
        row["facility_id"] for row in rows]}


async def ours(platform, plant: Plant, event_type: str) -> list:
    key = str(plant.facility_id).encode()

    def arrived(messages) -> bool:
        return any(m.key == key and decode(m.value).envelope.type == event_type for m in messages)

    messages = await read_topic(platform.bootstrap, "iomki.supervision", until=arrived)
    return [d.event for d in (decode(m.value) for m in messages if m.key == key) if d.envelope.type == event_type]


async def test_a_missed_report_a_breach_and_a_complaint_put_a_plant_on_top_of_its_regency(platform, supervision):
    regency = fresh_regency()
    risky, quiet = Plant(regency), Plant(regency)
    await publish(platform.bootstrap, quiet.issued(), risky.issued())
    await row_of(supervision, risky)
    await row_of(supervision, quiet)

    await publish(platform.bootstrap, risky.overdue(), risky.breach())
    filed = await supervision.post("/public/complaints", json={
        "permit_number": risky.permit_number, "category": "capacity",
        "text": "Ratusan pekerja masuk sekaligus setiap pagi, tidak ada jaga jarak.",
        "contact": {"email": "warga@example.id", "phone": "+6281234567890"}})
    assert filed.status_code == 201, filed.text
    reference = filed.json()["reference"]

    row = await row_of(supervision, risky, lambda r: r["parts"]["missed_reports"] and r["parts"]["capacity_breaches"])
    assert row["_rank"][0] == str(risky.facility_id)
    assert row["parts"] | {"days_since_inspection": 0} == {
        "missed_reports": 1, "late_reports": 0, "protocol_lapses": 0, "capacity_breaches": 1, "cases": 0,
        "clusters": 0, "complaints": 1, "days_since_inspection": 0}
    assert row["parts"]["days_since_inspection"] >= 29
    assert row["open_complaints"] == 1 and row["last_inspected_on"] is None
    assert row["score"] == pytest.approx(5 + 6 + 4 + 0.1 * row["parts"]["days_since_inspection"], abs=0.01)
    assert row["permit_number"] == risky.permit_number and row["status"] == "issued"

    complaint = (await ours(platform, risky, "iomki.ComplaintFiled.v1"))[0]
    assert complaint.category == "capacity"
    # The public sees its complaint's state, and nothing of the plant or its words.
    public = await supervision.get(f"/public/complaints/{reference}")
    assert public.status_code == 200
    assert set(public.json()) == {"reference", "status", "filed_at", "updated_at"}
    assert public.json()["status"] == "received"
    # The task force reads the complaint, but not the filer's contact; the regional office sees both.
    office = bearer("regional_office", region="32")
    listed = (await supervision.get("/complaints", headers=office, params={"regency": regency})).json()["items"]
    assert [c["contact"]["email"] for c in listed] == ["warga@example.id"]
    seen = await supervision.get(f"/complaints/{listed[0]['complaint_id']}", headers=bearer("task_force", region="32"))
    assert "contact" not in seen.json() and seen.json()["text"].startswith("Ratusan")


async def test_an_unknown_number_is_filed_like_an_address_and_an_office_matches_it(platform, supervision):
    plant = Plant(fresh_regency())
    await publish(platform.bootstrap, plant.issued())
    await row_of(supervision, plant)
    unknown = await supervision.post("/public/complaints", json={
        "permit_number": "IOMKI-2026-999999999", "category": "protocol", "text": "Tidak ada yang memakai masker."})
    address = await supervision.post("/public/complaints", json={
        "address": "Jl. Industri No. 5", "regency_code": plant.regency, "category": "hidden_cases",
        "text": "Ada pekerja positif yang tetap disuruh masuk kerja."})
    assert unknown.status_code == address.status_code == 201
    assert unknown.json()["status"] == address.json()["status"] == "received"  # whether a number exists is not said

    office = bearer("regional_office", region=plant.regency)
    waiting = (await supervision.get("/complaints", headers=office, params={"status": "unmatched"})).json()["items"]
    assert [c["address"] for c in waiting] == ["Jl. Industri No. 5"]
    matched = await supervision.post(f"/complaints/{waiting[0]['complaint_id']}/match", headers=office,
                                     json={"permit_number": plant.permit_number})
    assert matched.status_code == 200 and matched.json()["status"] == "received"
    again = await supervision.post(f"/complaints/{waiting[0]['complaint_id']}/match", headers=office,
                                   json={"permit_number": plant.permit_number})
    assert again.status_code == 409 and again.json()["current_status"] == "received"
    assert (await ours(platform, plant, "iomki.ComplaintFiled.v1"))[0].category == "hidden_cases"
    row = await row_of(supervision, plant, lambda r: r["parts"]["complaints"] == 1)
    assert row["open_complaints"] == 1

    closed = await supervision.post(f"/complaints/{waiting[0]['complaint_id']}/status", headers=office,
                                    json={"status": "closed_unfounded", "note": "Sudah dicek, tidak terbukti."})
    assert closed.json()["status"] == "closed_unfounded"
    assert (await row_of(supervision, plant))["open_complaints"] == 0
    refused = await supervision.post(f"/complaints/{waiting[0]['complaint_id']}/status", headers=office,
                                     json={"status": "under_review"})
    assert refused.status_code == 409 and refused.json()["current_status"] == "closed_unfounded"


async def test_an_inspection_contradicting_a_declared_report_is_recorded_and_resets_the_risk(platform, supervision):
    plant = Plant(fresh_regency())
    report_id = uuid.uuid4()
    # The declared report (masks: yes) comes first on its topic, so the overdue behind it says it was applied.
    await publish(platform.bootstrap, plant.issued(), plant.declared_report(report_id, starts_days_ago=3),
                  plant.overdue())
    await row_of(supervision, plant, lambda r: r["parts"]["missed_reports"] == 1)
    office = bearer("regional_office", region=plant.province)
    today = _today(plant.regency)

    planned = await supervision.post("/inspections", headers=office, json={
        "permit_id": str(plant.permit_id), "planned_on": today.isoformat(), "purpose": "Pemeriksaan protokol",
        "team": [{"name": "Siti Rahayu", "body": "regional_office"}, {"name": "Bripka Andi", "body": "task_force"}]})
    assert planned.status_code == 201, planned.text
    assert planned.json()["status"] == "planned"
    assert planned.json()["reference"].startswith(f"INSP-{datetime.now(UTC).year}-")
    inspection_id = planned.json()["inspection_id"]

    recorded = await supervision.post(f"/inspections/{inspection_id}/record", headers=office, json={
        "inspected_on": today.isoformat(), "notes": "Pekerja di lini 2 tanpa masker.",
        "findings": {"masks": "violated", "handwash_stations": "met", "covid_team": "violated"}})
    assert recorded.status_code == 200, recorded.text
    answer = recorded.json()
    assert answer["status"] == "recorded" and answer["violations"] == 2
    assert answer["contradicted_report_id"] == str(report_id) and "contradicts" in answer["contradiction"]
    assert answer["findings"]["distancing"] == "not_checked"
    again = await supervision.post(f"/inspections/{inspection_id}/record", headers=office, json={
        "inspected_on": today.isoformat()})
    assert again.status_code == 409 and again.json()["current_status"] == "recorded"

    event = (await ours(platform, plant, "iomki.InspectionRecorded.v1"))[0]
    assert event.contradicted_report_id == report_id and event.violations == 2
    assert sorted(event.bodies) == ["regional_office", "task_force"]
    assert len(event.findings) == 10
    row = await row_of(supervision, plant, lambda r: r["last_inspected_on"] == today.isoformat())
    assert set(row["parts"].values()) == {0}

    # The office asks for revocation on the false declaration; the inspection completes the evidence.
    refused = await supervision.post("/sanction-requests", headers=office, json={
        "permit_id": str(plant.permit_id), "action": "freeze", "reason": "Tiga laporan tidak masuk",
        "ground": {"code": "missed_reports"}})
    assert refused.status_code == 422
    asked = await supervision.post("/sanction-requests", headers=office, json={
        "permit_id": str(plant.permit_id), "action": "revoke", "reason": "Data lapangan bertentangan dengan laporan",
        "ground": {"code": "false_declaration"}, "inspection_id": inspection_id})
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert request["status"] == "pending" and request["office_region"] == plant.province
    assert request["ground"]["evidence"]["report_id"] == str(report_id)
    assert request["ground"]["evidence"]["finding"] == answer["reference"]
    requested = (await ours(platform, plant, "iomki.SanctionRequested.v1"))[0]
    assert requested.request_id == uuid.UUID(request["request_id"]) and requested.action is SanctionAction.REVOKE

    await publish(platform.bootstrap, Envelope.wrap(SanctionRequestDecided(
        **plant.where(), nib=NIB, request_id=uuid.UUID(request["request_id"]), action=SanctionAction.REVOKE,
        decision=RequestDecision.APPROVED, reason="Terbukti memberikan keterangan palsu"), service="permits"))

    async def decided():
        found = await supervision.get(f"/sanction-requests/{request['request_id']}", headers=OPERATOR)
        return found.json() if found.json()["status"] != "pending" else None
    decision = await eventually(decided)
    assert decision["status"] == "approved" and decision["decision_reason"] == "Terbukti memberikan keterangan palsu"


async def test_photos_are_images_stripped_of_their_metadata(platform, supervision):
    plant = Plant(fresh_regency())
    await publish(platform.bootstrap, plant.issued())
    await row_of(supervision, plant)
    planned = await supervision.post("/inspections", headers=OPERATOR, json={
        "permit_id": str(plant.permit_id), "planned_on": _today(plant.regency).isoformat(),
        "team": [{"name": "Inspektur Kemenperin", "body": "ministry"}]})
    photos = f"/inspections/{planned.json()['inspection_id']}/photos"

    sent = await supervision.post(photos, headers=OPERATOR | {"Content-Type": "image/jpeg"}, content=jpeg_with_gps())
    assert sent.status_code == 201, sent.text
    got = await supervision.get(f"{photos}/{sent.json()['photo_id']}", headers=OPERATOR)
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.content.startswith(b"\xff\xd8") and b"Exif" not in got.content and b"PhoneMaker" not in got.content
    shown = await supervision.get(f"/inspections/{planned.json()['inspection_id']}", headers=OPERATOR)
    assert shown.json()["photo_ids"] == [sent.json()["photo_id"]]

    text = await supervision.post(photos, headers=OPERATOR | {"Content-Type": "image/png"},
                                  content=b"Ini bukan foto, hanya teks.")
    assert text.status_code == 422
    bomb = await supervision.post(photos, headers=OPERATOR | {"Content-Type": "image/png"}, content=pixel_bomb())
    assert bomb.status_code == 422 and "pixels" in bomb.json()["detail"]
    huge = await supervision.post(photos, headers=OPERATOR | {"Content-Type": "image/jpeg"},
                                  content=b"\xff" * (5 * 1024 * 1024 + 1))
    assert huge.status_code == 413
    outside = await supervision.get(f"{photos}/{sent.json()['photo_id']}",
                                    headers=bearer("task_force", region="35"))
    assert outside.status_code == 404
    for _ in range(9):  # ten in all
        assert (await supervision.post(photos, headers=OPERATOR | {"Content-Type": "image/png"},
                                       content=png())).status_code == 201
    eleventh = await supervision.post(photos, headers=OPERATOR | {"Content-Type": "image/png"}, content=png())
    assert eleventh.status_code == 409 and "10 photos" in eleventh.json()["detail"]


async def test_an_inspection_links_only_complaints_about_its_plant(platform, supervision):
    plant, other = Plant(fresh_regency()), Plant(fresh_regency())
    await publish(platform.bootstrap, plant.issued(), other.issued())
    await row_of(supervision, plant)
    await row_of(supervision, other)
    for target in (plant, other):
        filed = await supervision.post("/public/complaints", json={
            "permit_number": target.permit_number, "category": "protocol",
            "text": "Tidak ada tempat cuci tangan di pintu masuk."})
        assert filed.status_code == 201
    listed = {c["regency_code"]: c["complaint_id"]
              for c in (await supervision.get("/complaints", headers=OPERATOR, params={"province": "32",
                                                                                    "limit": 200})).json()["items"]}

    async def plan(complaint_ids: list[str]):
        return await supervision.post("/inspections", headers=OPERATOR, json={
            "permit_id": str(plant.permit_id), "planned_on": _today(plant.regency).isoformat(),
            "team": [{"name": "Tim Dinas", "body": "regional_office"}], "complaint_ids": complaint_ids})

    refused = await plan([listed[other.regency]])
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "complaint_ids"
    planned = await plan([listed[plant.regency]])
    assert planned.status_code == 201
    inspection_id = planned.json()["inspection_id"]
    await supervision.post(f"/inspections/{inspection_id}/record", headers=OPERATOR,
                           json={"inspected_on": _today(plant.regency).isoformat()})
    linked = await supervision.get(f"/complaints/{listed[plant.regency]}", headers=OPERATOR)
    assert linked.json()["status"] == "inspected"
    assert (await row_of(supervision, plant))["open_complaints"] == 0


async def test_filing_complaints_is_limited_per_address(platform, supervision):
    app = supervision._transport.app  # the running service, reached from another address
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as neighbour:
        answers = [await neighbour.post("/public/complaints", json={
            "address": "Jl. Raya Cikampek Km 5", "regency_code": "32.15", "category": "other",
            "text": f"Asap hitam keluar dari cerobong, malam ke-{n}."}) for n in range(11)]
    assert [a.status_code for a in answers] == [201] * 10 + [429]
    assert int(answers[-1].headers["retry-after"]) > 0
    assert "Terlalu banyak pengaduan" in answers[-1].json()["detail"]


async def test_complaints_filed_at_the_same_moment_are_each_counted_once_against_their_plant(platform, supervision):
    """A burst from many people at once: the complaints share transactions, two about one plant never the same one,
    and each plant counts every complaint about it, each with its own ComplaintFiled."""
    regency = fresh_regency()
    plants = [Plant(regency), Plant(regency), Plant(regency)]
    await publish(platform.bootstrap, *(plant.issued() for plant in plants))
    for plant in plants:
        await row_of(supervision, plant)
    app = supervision._transport.app

    async def complain(number: int, plant: Plant) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(f"203.0.113.{number + 1}", 4000))  # a person each
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as person:
            return await person.post("/public/complaints", json={
                "permit_number": plant.permit_number, "category": "protocol",
                "text": f"Antrean di gerbang tanpa masker, laporan warga ke-{number}."})

    answers = await asyncio.gather(*(complain(number, plants[number % 3]) for number in range(12)))
    assert [a.status_code for a in answers] == [201] * 12, [a.text for a in answers]
    assert len({a.json()["reference"] for a in answers}) == 12
    for plant in plants:
        row = await row_of(supervision, plant, lambda r: r["parts"]["complaints"] == 4)
        assert (row["parts"]["complaints"], row["open_complaints"]) == (4, 4)
        filed = await eventually(lambda plant=plant: _filed_four(platform, plant))
        assert len({event.complaint_id for event in filed}) == 4


async def _filed_four(platform, plant: Plant) -> list | None:
    filed = await ours(platform, plant, "iomki.ComplaintFiled.v1")
    return filed if len(filed) == 4 else None
