"""A plant in Kab. Bekasi gets its permit, three workers on one line test positive, and the plant closes as a cluster.

Over the real database and broker: PermitIssued arrives on iomki.permits, the company reports three cases and links
them, ClusterDeclared reaches iomki.incidents with the closure recommended to the task force, which orders it (the
plant's FacilityClosureOrdered), the task force cannot reopen early, and a weekly report's positives are reconciled
with the cases already known, whichever comes first. The recommendations in detail: test_incidents_recommendations.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import asyncpg
import pytest
import pytest_asyncio

from services.incidents.app import create_app
from shared.contract import Envelope, PermitIssued, ReportSubmitted, SectorClass, decode
from tests.support.kafka import publish, read_topic
from tests.support.platform import bearer, running_service
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

NIB = "8120000654321"
COMPANY = bearer("company", nib=NIB)
OPERATOR = bearer("operator")
SATGAS_JABAR = bearer("task_force", region="32")


def permit_issued(facility_id: uuid.UUID, *, regency_code: str = "32.16", workforce_total: int = 1200) -> Envelope:
    return Envelope.wrap(PermitIssued(
        facility_id=facility_id, province_code=regency_code[:2], regency_code=regency_code, permit_id=uuid.uuid4(),
        nib=NIB, permit_number="IOMKI-2026-000042", company_name="PT Baja Nusantara",
        sector_class=SectorClass.CRITICAL, workforce_total=workforce_total, issued_at=datetime.now(UTC),
    ), service="permits")


def report(facility_id: uuid.UUID, *, positives: int, starts_at: datetime, deadline: datetime) -> Envelope:
    return Envelope.wrap(ReportSubmitted(
        facility_id=facility_id, province_code="32", regency_code="32.16", permit_id=uuid.uuid4(),
        report_id=uuid.uuid4(), period_id=uuid.uuid4(), period_starts_at=starts_at, deadline=deadline, late=False,
        workforce_total=1200, on_site_total=1100, odp=2, pdp=1, confirmed_positive=positives, tests_pcr=10,
        tests_antigen=40, vaccinated_dose1=1100, vaccinated_dose2=900, vaccinated_booster=200,
    ), service="reports")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def incidents(platform):
    async with running_service(create_app()) as client:
        yield client


async def known_plant(client, facility_id: uuid.UUID) -> dict:
    async def probe():
        response = await client.get(f"/facilities/{facility_id}/status", headers=OPERATOR)
        return response.json() if response.status_code == 200 else None
    return await eventually(probe)


async def test_three_linked_cases_at_a_plant_declare_a_cluster_whose_closure_the_task_force_orders(
        platform, incidents):
    facility_id = uuid.uuid4()
    await publish(platform.bootstrap, permit_issued(facility_id))
    assert (await known_plant(incidents, facility_id))["status"] == "open"

    today = datetime.now(timezone(timedelta(hours=7))).date()
    case_ids = []
    for ref, symptomatic in (("C-2026-001", True), ("C-2026-002", False), ("C-2026-003", False)):
        onset = {"symptom_onset_on": (today - timedelta(days=2)).isoformat()} if symptomatic else {}
        created = await incidents.post("/cases", headers=COMPANY, json={
            "facility_id": str(facility_id), "case_ref": ref, "confirmed_on": today.isoformat(),
            "symptomatic": symptomatic, "close_contacts": 12} | onset)
        assert created.status_code == 201, created.text
        case_ids.append(created.json()["case_id"])
    assert created.json()["cluster_id"] is None  # not linked: a possible cluster, no closure
    for case_id, other in zip(case_ids, case_ids[1:], strict=False):
        linked = await incidents.post(f"/cases/{case_id}/links", headers=COMPANY,
                                      json={"linked_case_id": other, "kind": "same_line"})
        assert linked.status_code == 201, linked.text
    assert linked.json()["cluster_id"] is not None
    assert (await known_plant(incidents, facility_id))["status"] == "room_closed"  # until the task force orders
    pending = (await incidents.get("/closure-recommendations", headers=SATGAS_JABAR,
                                   params={"status": "pending", "limit": 500})).json()["items"]
    [recommendation] = [r for r in pending if r["cluster_id"] == linked.json()["cluster_id"]]
    ordered = await incidents.post(f"/closure-recommendations/{recommendation['recommendation_id']}/order",
                                   headers=SATGAS_JABAR)
    assert ordered.status_code == 200, ordered.text

    def cluster_and_closure(messages) -> bool:
        ours = [decode(m.value) for m in messages if m.key == str(facility_id).encode()]
        return {"iomki.ClusterDeclared.v1", "iomki.ClosureRecommendationDecided.v1"} <= {
            d.envelope.type for d in ours}

    messages = await read_topic(platform.bootstrap, "iomki.incidents", until=cluster_and_closure)
    ours = [decode(m.value) for m in messages if m.key == str(facility_id).encode()]
    cluster = [d.event for d in ours if d.envelope.type == "iomki.ClusterDeclared.v1"]
    plant_closures = [d.event for d in ours
                      if d.envelope.type == "iomki.FacilityClosureOrdered.v1" and d.event.scope == "plant"]
    assert len(cluster) == 1 and cluster[0].case_count == 3
    assert [c.cluster_id for c in plant_closures] == [cluster[0].cluster_id]
    assert plant_closures[0].ends_at - plant_closures[0].starts_at == timedelta(days=5)
    assert plant_closures[0].ordered_by == "task_force"
    assert sum(d.envelope.type == "iomki.CaseDetected.v1" for d in ours) == 3
    assert sum(d.envelope.type == "iomki.ContactsQuarantined.v1" for d in ours) == 3

    status = (await incidents.get(f"/facilities/{facility_id}/status", headers=SATGAS_JABAR)).json()
    assert status["status"] == "plant_closed"
    # Each case's twelve close contacts quarantine one by one.
    assert (status["active_isolations"], status["active_quarantines"]) == (3, 36)
    closure_id = status["plant_closure"]["closure_id"]

    # The task force tries to reopen at once: refused, naming the earliest moment.
    early = await incidents.post(f"/closures/{closure_id}/clear", headers=SATGAS_JABAR)
    assert early.status_code == 409, early.text
    assert early.headers["content-type"].startswith("application/problem+json")
    assert datetime.fromisoformat(early.json()["earliest_reopening"]) == plant_closures[0].ends_at

    # The same case reference twice is a conflict; a NIK as a reference is refused.
    again = await incidents.post("/cases", headers=COMPANY, json={
        "facility_id": str(facility_id), "case_ref": "C-2026-001", "confirmed_on": today.isoformat(),
        "symptomatic": False, "close_contacts": 0})
    assert again.status_code == 409
    nik = await incidents.post("/cases", headers=COMPANY, json={
        "facility_id": str(facility_id), "case_ref": "3216012345678901", "confirmed_on": today.isoformat(),
        "symptomatic": False, "close_contacts": 0})
    assert nik.status_code == 422 and nik.json()["errors"][0]["field"] == "case_ref"
    named = await incidents.post("/cases", headers=COMPANY, json={
        "facility_id": str(facility_id), "case_ref": "C-9", "confirmed_on": today.isoformat(),
        "symptomatic": False, "close_contacts": 0, "name": "Budi"})
    assert named.status_code == 422

    listed = (await incidents.get("/incidents", params={"province": "32", "status": "plant_closed"},
                                  headers=bearer("agency"))).json()
    assert str(facility_id) in [item["facility_id"] for item in listed["items"]]


async def test_the_company_s_reference_stays_with_the_company_and_never_reaches_the_public_topic(
        platform, incidents):
    # A plant's K3 officer records a case under the company's own code; agencies reading iomki.incidents see
    # the platform's id for it, while the company and the operator still see their code through the API.
    facility_id = uuid.uuid4()
    await publish(platform.bootstrap, permit_issued(facility_id))
    await known_plant(incidents, facility_id)
    today = datetime.now(timezone(timedelta(hours=7))).date().isoformat()
    reference = f"K3-{facility_id.hex[:8]}"
    created = await incidents.post("/cases", headers=COMPANY, json={
        "facility_id": str(facility_id), "case_ref": reference, "confirmed_on": today,
        "symptomatic": True, "symptom_onset_on": today, "close_contacts": 3})
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]

    def detected_and_room_closed(messages) -> bool:
        types = {decode(m.value).envelope.type for m in messages if m.key == str(facility_id).encode()}
        return {"iomki.CaseDetected.v1", "iomki.FacilityClosureOrdered.v1"} <= types

    messages = await read_topic(platform.bootstrap, "iomki.incidents", until=detected_and_room_closed)
    ours = [m.value for m in messages if m.key == str(facility_id).encode()]
    assert ours and not [raw for raw in ours if reference.encode() in raw]
    detected = [d.event for d in map(decode, ours) if d.envelope.type == "iomki.CaseDetected.v1"]
    assert [e.case_ref for e in detected] == [case_id]

    for allowed in (COMPANY, OPERATOR):
        shown = await incidents.get(f"/cases/{case_id}", headers=allowed)
        assert shown.status_code == 200 and shown.json()["case_ref"] == reference
    other_company = await incidents.get(f"/cases/{case_id}", headers=bearer("company", nib="8120000111111"))
    assert other_company.status_code == 404

    # A reference that is a person's name, NIK or phone number is refused, saying what to use instead.
    for personal in ("Budi Santoso", "3216 0123 4567 8901", "+62 812-3456-7890"):
        refused = await incidents.post("/cases", headers=COMPANY, json={
            "facility_id": str(facility_id), "case_ref": personal, "confirmed_on": today,
            "symptomatic": False, "close_contacts": 0})
        assert refused.status_code == 422, refused.text
        [error] = refused.json()["errors"]
        assert error["field"] == "case_ref"
        assert error["message"].startswith("Gunakan kode internal perusahaan, bukan nama, NIK atau nomor telepon")
        assert "Use the company's internal code" in error["message"]


async def test_a_case_dated_before_the_emergency_is_a_422_naming_the_date_not_a_500(platform, incidents):
    # Found by test_openapi_fuzz.py: year 1 overflowed the cluster window's date arithmetic.
    facility_id = uuid.uuid4()
    await publish(platform.bootstrap, permit_issued(facility_id))
    await known_plant(incidents, facility_id)
    today = datetime.now(timezone(timedelta(hours=7))).date().isoformat()
    for dates, field in (({"confirmed_on": "0001-01-05"}, "confirmed_on"),
                         ({"confirmed_on": today, "tested_on": "0001-01-01"}, "tested_on")):
        refused = await incidents.post("/cases", headers=COMPANY, json={
            "facility_id": str(facility_id), "case_ref": "OLD-1", "symptomatic": True, "close_contacts": 0} | dates)
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == [field]


async def test_a_report_adds_only_the_positives_not_already_entered(platform, incidents):
    facility_id = uuid.uuid4()
    await publish(platform.bootstrap, permit_issued(facility_id))
    await known_plant(incidents, facility_id)
    now = datetime.now(UTC)
    today = now.astimezone(timezone(timedelta(hours=7))).date()
    created = await incidents.post("/cases", headers=COMPANY, json={
        "facility_id": str(facility_id), "case_ref": "LINE2-A", "confirmed_on": today.isoformat(),
        "symptomatic": False, "close_contacts": 0})
    assert created.status_code == 201

    # This week's report says 2 positives: one is the case already entered, one is new.
    this_week = report(facility_id, positives=2, starts_at=now - timedelta(days=3), deadline=now + timedelta(days=4))
    # The broker redelivers it, and the company files a correction with the same count: nothing more.
    correction = report(facility_id, positives=2, starts_at=now - timedelta(days=3), deadline=now + timedelta(days=4))
    # Last week's report had one positive that nobody entered: a case of its own (same key, so it comes last).
    last_week = report(facility_id, positives=1, starts_at=now - timedelta(days=10), deadline=now - timedelta(days=4))
    await publish(platform.bootstrap, this_week, this_week, correction, last_week)

    async def three_cases():
        status = (await incidents.get(f"/facilities/{facility_id}/status", headers=OPERATOR)).json()
        return status if status["cases_total"] >= 3 else None
    status = await eventually(three_cases)
    assert status["cases_total"] == 3

    messages = await read_topic(platform.bootstrap, "iomki.incidents", until=lambda ms: sum(
        m.key == str(facility_id).encode() and b"CaseDetected" in m.value for m in ms) >= 3)
    detected = [decode(m.value) for m in messages
                if m.key == str(facility_id).encode() and b"iomki.CaseDetected.v1" in m.value]
    assert sorted(d.event.source.value for d in detected) == ["direct", "report", "report"]
    from_this_week = [d for d in detected if d.envelope.causationid == str(this_week.id)]
    assert len(from_this_week) == 1 and from_this_week[0].event.confirmed_on == today
    from_last_week = [d for d in detected if d.envelope.causationid == str(last_week.id)]
    assert [d.event.confirmed_on for d in from_last_week] == [
        (now - timedelta(days=4)).astimezone(timezone(timedelta(hours=7))).date()]
    # Case references of reported positives are generated, pseudonymous, and readable like any case.
    case = await incidents.get(f"/cases/{from_this_week[0].event.case_id}", headers=COMPANY)
    assert case.status_code == 200 and case.json()["source"] == "report"
    assert isinstance(date.fromisoformat(case.json()["isolation"]["ends_on"]), date)


async def test_cases_entered_after_the_report_claim_its_positives_instead_of_adding_to_them(platform, incidents):
    facility_id = uuid.uuid4()
    await publish(platform.bootstrap, permit_issued(facility_id))
    await known_plant(incidents, facility_id)
    now = datetime.now(UTC)
    today = now.astimezone(timezone(timedelta(hours=7))).date()

    # The weekly report comes first: 2 positives nobody entered yet.
    await publish(platform.bootstrap,
                  report(facility_id, positives=2, starts_at=now - timedelta(days=3), deadline=now + timedelta(days=4)))

    async def two_cases():
        status = (await incidents.get(f"/facilities/{facility_id}/status", headers=OPERATOR)).json()
        return status if status["cases_total"] == 2 else None
    await eventually(two_cases)

    # Then the K3 officer enters the same two cases, with their real dates and contacts.
    officer = bearer("company", nib=NIB, sub="k3-officer-7")
    for ref, confirmed_on, contacts in (("LINE4-A", today - timedelta(days=1), 9), ("LINE4-B", today, 0)):
        entered = await incidents.post("/cases", headers=officer, json={
            "facility_id": str(facility_id), "case_ref": ref, "confirmed_on": confirmed_on.isoformat(),
            "symptomatic": False, "close_contacts": contacts})
        assert entered.status_code == 201, entered.text
        assert entered.json()["source"] == "report" and entered.json()["claimed_at"] is not None

    status = (await incidents.get(f"/facilities/{facility_id}/status", headers=OPERATOR)).json()
    # The first claim's nine close contacts quarantine one by one.
    assert (status["cases_total"], status["active_isolations"], status["active_quarantines"]) == (2, 2, 9)

    def ours(messages) -> list[str]:
        return [decode(m.value).envelope.type for m in messages if m.key == str(facility_id).encode()]
    # Two isolations from the report, two corrected by the claims, and the claim's contacts' quarantine.
    messages = await read_topic(platform.bootstrap, "iomki.incidents", until=lambda ms: (
        ours(ms).count("iomki.IsolationStarted.v1") >= 4 and "iomki.ContactsQuarantined.v1" in ours(ms)))
    types = ours(messages)
    assert types.count("iomki.CaseDetected.v1") == 2
    # Counted once: two cases, not four, so no possible cluster (and without links, no cluster).
    assert types.count("iomki.PossibleClusterRaised.v1") == types.count("iomki.ClusterDeclared.v1") == 0

    connection = await asyncpg.connect(platform.admin_url)
    try:
        cases = await connection.fetch(
            "SELECT case_ref, source, claimed_by, claimed_role FROM incidents.cases WHERE facility_id = $1"
            " ORDER BY case_ref", facility_id)
        timers = await connection.fetch(
            "SELECT count(*) FILTER (WHERE cancelled_at IS NULL) AS pending, count(*) FILTER"
            " (WHERE cancelled_at IS NOT NULL) AS cancelled FROM incidents.timers"
            " WHERE facility_id = $1 AND kind = 'isolation_end'", facility_id)
    finally:
        await connection.close()
    assert [tuple(c) for c in cases] == [("LINE4-A", "report", "k3-officer-7", "company"),
                                         ("LINE4-B", "report", "k3-officer-7", "company")]
    # One live isolation timer per case; the placeholders' ones are cancelled, never to fire.
    assert (timers[0]["pending"], timers[0]["cancelled"]) == (2, 2)


async def test_permits_issued_together_are_all_learned_and_a_later_permit_for_a_plant_wins(platform, incidents):
    """Consecutive PermitIssued are applied as one run (one statement): every plant is learned, and a plant whose
    permit was issued twice in the run ends with the facts of the later one, as if applied one by one."""
    plants = [uuid.uuid4() for _ in range(30)]
    moved = plants[0]
    await publish(platform.bootstrap, *(permit_issued(plant) for plant in plants),
                  permit_issued(moved, regency_code="32.75", workforce_total=80))
    admin = await asyncpg.connect(platform.admin_url)  # the test reads the service's table as the operator
    try:
        async def learned():
            rows = await admin.fetch("SELECT facility_id, regency_code, workforce_total FROM incidents.plants"
                                     " WHERE facility_id = ANY($1::uuid[])", plants)
            facts = {row["facility_id"]: (row["regency_code"], row["workforce_total"]) for row in rows}
            return facts if len(facts) == len(plants) and facts[moved] == ("32.75", 80) else None
        facts = await eventually(learned)
    finally:
        await admin.close()
    assert all(facts[plant] == ("32.16", 1200) for plant in plants[1:])
