"""A plant's reporting life over the real database and broker: issued, reports, misses, warnings, sanctions.

The regime is `every:5s` with warnings at the deadline (PT0S), so a missed period becomes ReportOverdue
and then WarningIssued on iomki.reports within seconds, and three misses in a row recommend a freeze.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio

from services.reports.app import ReportsSettings, create_app
from services.reports.repository import ReportRepository
from shared.contract import Envelope, PermitFrozen, PermitIssued, PermitRevoked, SectorClass, decode
from tests.support.kafka import publish, read_topic
from tests.support.platform import bearer, running_service
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

NIB = "8120000123456"
COMPANY = bearer("company", nib=NIB)


def report(permit_id: str, period_id: str, **changes) -> dict:
    body = {
        "permit_id": permit_id, "period_id": period_id,
        "workforce": {"total": 1200, "on_site_per_shift": [380, 390, 290]},
        "odp": 3, "pdp": 1, "new_positives": 0, "isolating_workers": 0, "tests": {"pcr": 12, "antigen": 40},
        "vaccinated": {"dose1": 1100, "dose2": 950, "booster": 300},
        "transport_modes": ["company_bus", "private_vehicle"],
        "protocol_checklist": {"temperature_screening": True, "masks": True, "distancing": True,
                               "ventilation": True, "disinfection": True, "handwash_stations": True,
                               "pedulilindungi_scan": True},
        "case_handling": "", "declared_true": True,
    }
    body.update(changes)
    return body


class Plant:
    def __init__(self, province: str = "32", regency: str = "32.16") -> None:
        self.permit_id, self.facility_id = uuid.uuid4(), uuid.uuid4()
        self.province, self.regency = province, regency

    def about(self) -> dict:
        return dict(facility_id=self.facility_id, province_code=self.province, regency_code=self.regency,
                    permit_id=self.permit_id, nib=NIB)

    def issued(self) -> Envelope:
        return Envelope.wrap(PermitIssued(
            **self.about(), permit_number="IOMKI-2026-000001", company_name="PT Baja Nusantara",
            sector_class=SectorClass.CRITICAL, workforce_total=1200, issued_at=datetime.now(UTC)), service="permits")


async def schedule_of(client, plant: Plant, headers=None) -> dict:
    async def probe():
        answer = await client.get(f"/schedules/{plant.permit_id}", headers=headers or bearer("operator"))
        return answer.json() if answer.status_code == 200 else None
    return await eventually(probe)


def reports_events(messages, plant: Plant) -> list:
    """The plant's events in topic order, once each: delivery is at-least-once (a relay that crashed after sending
    sends again)."""
    seen, events = set(), []
    for message in messages:
        decoded = decode(message.value)
        if decoded.envelope.subject == str(plant.facility_id) and decoded.envelope.id not in seen:
            seen.add(decoded.envelope.id)
            events.append(decoded)
    return events


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def reports(platform):
    settings = ReportsSettings(IOMKI_REPORT_REGIME="every:5s", IOMKI_WARNING_DELAY="PT0S",
                               IOMKI_REPORT_DUE_LEAD="PT6H")
    async with running_service(create_app(reports_settings=settings)) as client:
        yield client


async def test_an_unreported_period_becomes_overdue_then_a_warning_then_a_freeze_then_a_revoke(platform, reports):
    # A plant in Bali is issued its permit and never reports.
    plant = Plant("51", "51.71")
    await publish(platform.bootstrap, plant.issued())
    schedule = await schedule_of(reports, plant)
    assert schedule["zone"] == "Asia/Makassar" and schedule["regime"] == "every:5s"

    def kinds(messages):
        return [d.envelope.type.split(".")[1] for d in reports_events(messages, plant)]

    messages = await read_topic(platform.bootstrap, "iomki.reports", timeout=40,
                                until=lambda ms: "SanctionRecommended" in kinds(ms))
    seen = kinds(messages)
    assert seen.index("ReportDue") < seen.index("ReportOverdue") < seen.index("WarningIssued")
    events = reports_events(messages, plant)
    warnings = [d.event for d in events if d.envelope.type == "iomki.WarningIssued.v1"]
    overdue = [d.event for d in events if d.envelope.type == "iomki.ReportOverdue.v1"]
    assert [w.consecutive for w in warnings] == [1, 2, 3]
    assert [w.period_id for w in warnings] == [o.period_id for o in overdue[:3]]
    (freeze,) = [d for d in events if d.envelope.type == "iomki.SanctionRecommended.v1"]
    assert freeze.event.action == "freeze" and freeze.event.rule == "ThreeWarningsInARow"
    assert freeze.event.evidence.warnings == [w.warning_id for w in warnings]
    assert freeze.envelope.causationid == str([d for d in events
                                               if d.envelope.type == "iomki.WarningIssued.v1"][-1].envelope.id)
    # Each period is warned exactly once, even across sweeps.
    assert len({w.period_id for w in warnings}) == len(warnings)

    # Permits freezes it; the next miss while frozen recommends revocation.
    await publish(platform.bootstrap, Envelope.wrap(PermitFrozen(
        **plant.about(), permit_number="IOMKI-2026-000001", reason="three warnings", freeze_count=1),
        service="permits"))
    messages = await read_topic(platform.bootstrap, "iomki.reports", timeout=30,
                                until=lambda ms: kinds(ms).count("SanctionRecommended") == 2)
    revoke = [d.event for d in reports_events(messages, plant) if d.envelope.type == "iomki.SanctionRecommended.v1"][1]
    assert (revoke.action, revoke.rule) == ("revoke", "MissedWhileFrozen")
    assert (await schedule_of(reports, plant))["frozen"] is True


async def test_a_company_reports_corrects_and_is_refused_after_revocation(platform, reports):
    plant = Plant()
    await publish(platform.bootstrap, plant.issued())
    schedule = await schedule_of(reports, plant, COMPANY)
    open_period = next(p for p in schedule["periods"] if p["status"] == "open")
    permit_id, period_id = str(plant.permit_id), open_period["period_id"]

    # Counts that contradict each other are refused field by field.
    bad = await reports.post("/reports", headers=COMPANY, json=report(
        permit_id, period_id, workforce={"total": 100, "on_site_per_shift": [80, 80]},
        vaccinated={"dose1": 50, "dose2": 60, "booster": 0}, new_positives=2))
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"workforce.on_site_per_shift", "vaccinated.dose2",
                                                          "case_handling"}
    missing = await reports.post("/reports", headers=COMPANY, json=report(permit_id, period_id, odp=-1))
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "odp"
    # PostgreSQL's jsonb cannot hold a NUL: refused up front (found by test_openapi_fuzz.py), not a 500.
    nul = await reports.post("/reports", headers=COMPANY, json=report(permit_id, period_id,
                                                                      transport_modes=["bus\x00"]))
    assert nul.status_code == 422 and [e["field"] for e in nul.json()["errors"]] == ["transport_modes.0"]
    # A negative shift made the on-site total the event carries smaller than what was on site; a mode is a name.
    negative = await reports.post("/reports", headers=COMPANY, json=report(
        permit_id, period_id, workforce={"total": 100, "on_site_per_shift": [-1_000_000, 80]}))
    assert negative.status_code == 422
    assert negative.json()["errors"] == [{"field": "workforce.on_site_per_shift.0",
                                          "message": "Input should be greater than or equal to 0",
                                          "type": "greater_than_equal", "limit": 0}]
    endless = await reports.post("/reports", headers=COMPANY, json=report(permit_id, period_id,
                                                                          transport_modes=["bus" * 34]))
    assert endless.status_code == 422 and [e["field"] for e in endless.json()["errors"]] == ["transport_modes.0"]
    unknown = await reports.post("/reports", headers=COMPANY, json=report(permit_id, str(uuid.uuid4())))
    assert unknown.status_code == 404

    # A period already passed is still accepted, marked late.
    first = await reports.post("/reports", headers=COMPANY, json=report(permit_id, period_id))
    assert first.status_code == 201, first.text
    second = await reports.post("/reports", headers=COMPANY, json=report(permit_id, period_id, odp=4))
    assert second.status_code == 201 and second.json()["supersedes"] == first.json()["report_id"]
    listed = (await reports.get(f"/reports?permit_id={permit_id}", headers=COMPANY)).json()["reports"]
    assert [(r["report_id"], r["current"]) for r in listed] == [(second.json()["report_id"], True),
                                                                (first.json()["report_id"], False)]
    assert listed[0]["report"]["odp"] == 4 and listed[0]["submitted_by"]["role"] == "company"

    messages = await read_topic(platform.bootstrap, "iomki.reports",
                                until=lambda ms: sum(d.envelope.type == "iomki.ReportSubmitted.v1"
                                                     for d in reports_events(ms, plant)) == 2)
    submitted = [d.event for d in reports_events(messages, plant) if d.envelope.type == "iomki.ReportSubmitted.v1"]
    assert submitted[0].on_site_total == 1060 and submitted[0].late is first.json()["late"]
    published = messages[-1].value.decode()
    assert "protocol_checklist" not in published and "case_handling" not in published

    # Revoked: the obligation ends and reports are refused clearly.
    await publish(platform.bootstrap, Envelope.wrap(PermitRevoked(
        **plant.about(), permit_number="IOMKI-2026-000001", reason="data contradict the statement",
        reapply_after=(datetime.now(UTC) + timedelta(days=14)).date()), service="permits"))

    async def ended():
        found = (await reports.get(f"/schedules/{permit_id}", headers=COMPANY)).json()
        return found if found["ended"] else None
    after = await eventually(ended)
    refused = await reports.post("/reports", headers=COMPANY, json=report(permit_id, after["periods"][-1]["period_id"]))
    assert refused.status_code == 409 and refused.json()["current_status"] == "REVOKED"


async def test_a_permits_reports_page_latest_first_each_once_by_the_cursor(platform, reports):
    plant = Plant()
    await publish(platform.bootstrap, plant.issued())
    schedule = await schedule_of(reports, plant, COMPANY)
    period_id = next(p for p in schedule["periods"] if p["status"] == "open")["period_id"]
    permit_id = str(plant.permit_id)
    sent = []
    for odp in range(5):  # the report and four corrections of it
        answer = await reports.post("/reports", headers=COMPANY, json=report(permit_id, period_id, odp=odp))
        assert answer.status_code == 201, answer.text
        sent.append(answer.json()["report_id"])
    seen, after = [], None
    for _ in range(len(sent)):
        page = (await reports.get("/reports", headers=COMPANY, params={
            "permit_id": permit_id, "limit": 2} | ({"after": after} if after else {}))).json()
        seen += [r["report_id"] for r in page["reports"]]
        after = page["next"]
        if after is None:
            break
    assert seen == sent[::-1]
    for forged in ("not-a-cursor", "x" * 201):
        refused = await reports.get("/reports", headers=COMPANY, params={"permit_id": permit_id, "after": forged})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"].endswith("after")


async def test_a_company_declares_its_report_true_and_the_service_records_who_and_when(platform, reports):
    # IOMKI_REPORT_REGIME's rule requires the declaration, as SE 5/2021 does.
    plant = Plant()
    await publish(platform.bootstrap, plant.issued())
    budi = bearer("company", nib=NIB, sub="budi.hse@baja-nusantara")
    schedule = await schedule_of(reports, plant, budi)
    permit_id, period_id = str(plant.permit_id), schedule["periods"][0]["period_id"]

    # Left out, false, or a declaration that is not a JSON true: refused, the field named, Bahasa Indonesia first.
    undeclared = report(permit_id, period_id)
    del undeclared["declared_true"]
    for body in (undeclared, report(permit_id, period_id, declared_true=False)):
        refused = await reports.post("/reports", headers=budi, json=body)
        assert refused.status_code == 422, refused.text
        [error] = refused.json()["errors"]
        assert error["field"] == "declared_true"
        assert error["message"].startswith("Perusahaan wajib menyatakan") and " / The company must declare" in \
            error["message"]
        assert refused.json()["detail"] == error["message"]
    for loose in ("true", 1):
        refused = await reports.post("/reports", headers=budi, json=report(permit_id, period_id, declared_true=loose))
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "declared_true"

    # Declared: who is the token's subject, whatever the body says; when is the service's clock.
    before = datetime.now(UTC)
    body = report(permit_id, period_id) | {"declared_by": "someone else", "declared_at": "2020-01-01T00:00:00Z"}
    accepted = await reports.post("/reports", headers=budi, json=body)
    assert accepted.status_code == 201, accepted.text
    [listed] = (await reports.get(f"/reports?permit_id={permit_id}", headers=budi)).json()["reports"]
    assert listed["declared"] is True and listed["declaration"]["sub"] == "budi.hse@baja-nusantara"
    assert before <= datetime.fromisoformat(listed["declaration"]["at"]) <= datetime.now(UTC)
    assert listed["declaration"]["at"] == listed["submitted_at"]

    # The event says that it was declared, not who declared.
    messages = await read_topic(platform.bootstrap, "iomki.reports",
                                until=lambda ms: any(d.envelope.type == "iomki.ReportSubmitted.v1"
                                                     for d in reports_events(ms, plant)))
    [submitted] = [d for d in reports_events(messages, plant) if d.envelope.type == "iomki.ReportSubmitted.v1"]
    assert submitted.event.declared is True
    assert "budi.hse" not in next(m.value.decode() for m in messages
                                  if decode(m.value).envelope.id == submitted.envelope.id)

    # Kept for a later finding in the field to be checked against.
    connection = await asyncpg.connect(platform.admin_url, server_settings={"search_path": "reports"})
    try:
        [declared] = await ReportRepository(connection).declared(plant.permit_id)
    finally:
        await connection.close()
    assert (str(declared.report_id), declared.declared_by, declared.current) == (
        accepted.json()["report_id"], "budi.hse@baja-nusantara", True)
    assert declared.payload["odp"] == 3


async def test_reports_sent_at_once_share_transactions_and_each_gets_its_own_answer(platform, reports):
    plants = [Plant() for _ in range(12)]
    await publish(platform.bootstrap, *(plant.issued() for plant in plants))
    periods = []
    for plant in plants:
        schedule = await schedule_of(reports, plant, COMPANY)
        periods.append(next(p["period_id"] for p in schedule["periods"] if p["status"] == "open"))
    first, refused, contradicted = plants[0], plants[1], plants[2]
    bodies = [report(str(plant.permit_id), period) for plant, period in zip(plants, periods, strict=True)]
    bodies[1] = report(str(refused.permit_id), str(uuid.uuid4()))  # no such period
    bodies[2] = report(str(contradicted.permit_id), periods[2], odp=1, new_positives=3)  # no case handling
    bodies.append(report(str(first.permit_id), periods[0], odp=9))  # the first plant's period, twice at once

    answers = await asyncio.gather(*(reports.post("/reports", headers=COMPANY, json=body) for body in bodies))

    assert [answer.status_code for answer in answers] == [201, 404, 422] + [201] * 10
    # The first plant's two reports went in one after the other: whichever came second corrects the other.
    twice = sorted((answers[0].json(), answers[-1].json()), key=lambda answer: answer["supersedes"] is not None)
    assert twice[0]["supersedes"] is None and twice[1]["supersedes"] == twice[0]["report_id"]
    listed = (await reports.get(f"/reports?permit_id={first.permit_id}", headers=COMPANY)).json()["reports"]
    assert [(r["report_id"], r["current"]) for r in listed] == [(twice[1]["report_id"], True),
                                                                (twice[0]["report_id"], False)]
    admin = await asyncpg.connect(platform.admin_url)
    try:
        stored = await admin.fetch(
            "SELECT r.permit_id, r.submitted_at, p.status FROM reports.reports r JOIN reports.periods p"
            " USING (period_id) WHERE r.permit_id = ANY($1::uuid[])", [plant.permit_id for plant in plants])
        events = await admin.fetchval(
            "SELECT count(*) FROM reports.outbox WHERE event_type = 'iomki.ReportSubmitted.v1'"
            " AND key = ANY($1::bytea[])", [str(plant.facility_id).encode() for plant in plants])
    finally:
        await admin.close()
    assert len(stored) == 11 and events == 11  # one event per report stored, none for the refused two
    assert {row["status"] for row in stored} <= {"submitted", "late"}  # a 5 s period may have passed meanwhile
    assert {row["permit_id"] for row in stored} == {plant.permit_id for plant in plants} - {refused.permit_id,
                                                                                            contradicted.permit_id}
    # Reports of one transaction share its moment: fewer moments than reports means they shared commits.
    assert len({row["submitted_at"] for row in stored}) < len(stored)


async def test_compliance_counts_by_region(platform, reports):
    plant = Plant("73", "73.71")
    await publish(platform.bootstrap, plant.issued())
    await schedule_of(reports, plant)

    async def counted():
        answer = (await reports.get("/compliance?province=73&days=1", headers=bearer("agency"))).json()
        return answer if answer["overdue"] >= 1 and answer["warnings"] >= 1 else None
    figures = await eventually(counted, timeout=20)
    assert figures["reporting_rate"] == 0 and figures["periods_due"] >= 1
    other = (await reports.get("/compliance?regency=32.16&days=1", headers=bearer("agency"))).json()
    assert other["overdue"] == 0 or other["periods_due"] >= other["overdue"]
