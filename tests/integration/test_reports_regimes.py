"""A plant's reporting across a change of regime, over the real database and broker, with the shipped timeline.

The service runs on a clock set in 2021 (no IOMKI_REPORT_REGIME): a plant in Bekasi issued in July 2021 reports
under SE 8/2020 (weekly, Saturday 23:59) until SE 3/2021 takes effect on 30 July; periods opened before that are
judged by SE 8/2020's ladder (three missed periods revoke), the later ones by SE 3/2021's (three warnings in a row
freeze), and misses under the one are no evidence for the other. Warnings go out at the deadline (PT0S).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import asyncpg
import pytest
import pytest_asyncio

from services.reports.app import ReportsSettings, create_app
from services.reports.domain import LadderName, RegimeEntry, parse_regime
from services.reports.handlers import ReportHandlers, ReportsConfig
from services.reports.repository import ReportsWork
from shared.clock import FakeClock
from shared.contract import Envelope, PermitIssued, PermitRevoked, SectorClass, decode
from shared.storage.db import create_pool, migrate
from shared.storage.unit_of_work import Database
from shared.web.access import Access, Principal, Role, Scope
from tests.support.kafka import publish, read_topic
from tests.support.platform import bearer, running_service, schema_before, service_migrations
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

NIB = "8120000135790"
# Tuesday 13 July 2021, 10:00 in Bekasi (WIB).
ISSUED = datetime(2021, 7, 13, 3, tzinfo=UTC)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def reports(platform):
    clock = FakeClock(ISSUED)
    settings = ReportsSettings(IOMKI_WARNING_DELAY="PT0S", IOMKI_REPORT_DUE_LEAD="PT6H",
                               IOMKI_REPORT_SWEEP_SECONDS="0.2")
    assert settings.regime is None  # the shipped timeline, not one configured rule
    async with running_service(create_app(clock=clock, reports_settings=settings)) as client:
        yield client, clock


async def test_periods_opened_under_se_8_2020_are_judged_by_its_ladder_and_later_ones_by_se_3_2021s(platform,
                                                                                                      reports):
    client, clock = reports
    permit_id, facility_id = uuid.uuid4(), uuid.uuid4()
    about = dict(facility_id=facility_id, province_code="32", regency_code="32.16", permit_id=permit_id, nib=NIB)
    await publish(platform.bootstrap, Envelope.wrap(PermitIssued(
        **about, permit_number="IOMKI-2021-000135", company_name="PT Logam Cikarang",
        sector_class=SectorClass.ESSENTIAL, workforce_total=400, issued_at=ISSUED), service="permits"))

    async def periods(count: int) -> list[dict]:
        async def probe():
            answer = await client.get(f"/schedules/{permit_id}", headers=bearer("operator"))
            found = answer.json()["periods"] if answer.status_code == 200 else []
            return found if len(found) >= count else None
        return await eventually(probe, timeout=30)

    def kinds_and_events(messages) -> list:
        seen, events = set(), []
        for message in messages:
            decoded = decode(message.value)
            if decoded.envelope.subject == str(facility_id) and decoded.envelope.id not in seen:
                seen.add(decoded.envelope.id)
                events.append(decoded)
        return events

    def sanctions(messages) -> list:
        return [d.event for d in kinds_and_events(messages) if d.envelope.type == "iomki.SanctionRecommended.v1"]

    def warnings(messages) -> list:
        return [d.event for d in kinds_and_events(messages) if d.envelope.type == "iomki.WarningIssued.v1"]

    # Its first period opens under SE 8/2020: weekly, Saturday 17 July 23:59 WIB.
    [first] = await periods(1)
    assert (first["regime_name"], first["rule"]) == ("SE-8/2020", "weekly:SAT@23:59")
    assert first["deadline"] == "2021-07-17T16:59:00+00:00"

    # The plant reports nothing for three weeks. Sunday 1 August, 10:00 WIB.
    clock.set(datetime(2021, 8, 1, 3, tzinfo=UTC))
    messages = await read_topic(platform.bootstrap, "iomki.reports", timeout=40,
                                until=lambda ms: len(sanctions(ms)) >= 1)
    listed = await periods(4)
    # The period opened on Saturday 24 July is SE 8/2020's, though SE 3/2021 took effect before its deadline; the
    # next opens at 31 July 23:59 WIB, under SE 3/2021: twice weekly, its deadline Tuesday 3 August 23:59.
    assert [(p["seq"], p["regime_name"], p["status"]) for p in listed[:4]] == [
        (1, "SE-8/2020", "overdue"), (2, "SE-8/2020", "overdue"), (3, "SE-8/2020", "overdue"),
        (4, "SE-3/2021", "open")]
    assert listed[3]["rule"] == "twice-weekly:TUE,FRI@23:59" and listed[3]["deadline"] == "2021-08-03T16:59:00+00:00"
    # Three missed periods under SE 8/2020 revoke (SE 3/2021 would have frozen).
    [revoke] = sanctions(messages)
    assert (revoke.action, revoke.rule) == ("revoke", "ThreeMissedPeriods")
    assert revoke.evidence.warnings == [w.warning_id for w in warnings(messages)][:3]

    # Nor does it report under SE 3/2021: Tuesday 3, Friday 6 and Tuesday 10 August pass.
    clock.set(datetime(2021, 8, 11, 3, tzinfo=UTC))
    messages = await read_topic(platform.bootstrap, "iomki.reports", timeout=40,
                                until=lambda ms: len(sanctions(ms)) >= 2)
    issued = warnings(messages)
    # SE 3/2021 counts its own periods: the first of its warnings is the first in a row, and its freeze names the
    # three periods opened under it, none of SE 8/2020's.
    assert [w.consecutive for w in issued] == [1, 2, 3, 1, 2, 3]
    freeze = sanctions(messages)[1]
    assert (freeze.action, freeze.rule) == ("freeze", "ThreeWarningsInARow")
    assert freeze.evidence.warnings == [w.warning_id for w in issued[3:]]
    listed = await periods(7)
    assert [p["regime_name"] for p in listed[3:6]] == ["SE-3/2021"] * 3

    # The permit is revoked: nothing more is owed (and nothing is left for another test's sweep).
    await publish(platform.bootstrap, Envelope.wrap(PermitRevoked(
        **about, permit_number="IOMKI-2021-000135", reason="three missed periods (SE 8/2020)",
        reapply_after=date(2021, 8, 25)), service="permits"))

    async def ended():
        answer = await client.get(f"/schedules/{permit_id}", headers=bearer("operator"))
        return answer.json()["ended"] or None
    assert await eventually(ended, timeout=30)


async def test_periods_stored_before_the_timeline_are_named_by_their_rule_or_the_regime_in_force_when_they_opened(
        platform):
    schema = "reports_regime_upgrade"
    url = await schema_before(platform, schema, "reports", 10)
    connection = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        stored = {  # (the rule, the zone, when it opened): the name it should get
            ("weekly:SAT@23:59", "Asia/Jakarta", datetime(2022, 1, 1, tzinfo=UTC)): "SE-8/2020",
            ("twice-weekly:TUE,FRI@23:59", "Asia/Jakarta", datetime(2020, 6, 1, tzinfo=UTC)): "SE-3/2021",
            ("weekly:FRI@23:59", "Asia/Jayapura", datetime(2021, 8, 1, tzinfo=UTC)): "SE-5/2021",
            # A demonstration's rule: the regime in force on the local day it opened.
            ("every:5s", "Asia/Jakarta", datetime(2021, 7, 29, 16, 59, 59, tzinfo=UTC)): "SE-8/2020",
            ("every:5s", "Asia/Jakarta", datetime(2021, 7, 29, 17, tzinfo=UTC)): "SE-3/2021",  # 30 Jul 00:00 WIB
            ("every:5s", "Asia/Jayapura", datetime(2021, 9, 9, 15, tzinfo=UTC)): "SE-5/2021",  # 10 Sep 00:00 WIT
            ("every:5s", "Asia/Makassar", datetime(2021, 9, 9, 15, tzinfo=UTC)): "SE-3/2021",  # 9 Sep 23:00 WITA
        }
        ids = {}
        for (rule, zone, opened), _ in stored.items():
            permit_id = uuid.uuid4()
            await connection.execute(
                "INSERT INTO schedules (permit_id, facility_id, nib, province_code, regency_code, zone, issued_at)"
                " VALUES ($1, $2, $3, '32', '32.16', $4, $5)", permit_id, uuid.uuid4(), NIB, zone, opened)
            ids[(rule, zone, opened)] = await connection.fetchval(
                "INSERT INTO periods (period_id, permit_id, seq, regime, starts_at, deadline, status, province_code,"
                " regency_code) VALUES ($1, $2, 1, $3, $4, $4, 'open', '32', '32.16') RETURNING period_id",
                uuid.uuid4(), permit_id, rule, opened)
        await migrate(url, schema, service_migrations(schema, "reports"))
        named = {key: await connection.fetchval("SELECT regime_name FROM periods WHERE period_id = $1", period_id)
                 for key, period_id in ids.items()}
        assert named == stored
    finally:
        await connection.close()


def report(permit_id: uuid.UUID, period_id: str, **changes) -> dict:
    return {"permit_id": str(permit_id), "period_id": period_id,
            "workforce": {"total": 400, "on_site_per_shift": [200, 150]}, "odp": 0, "pdp": 0, "new_positives": 0,
            "tests": {"pcr": 2, "antigen": 30}, "vaccinated": {"dose1": 380, "dose2": 300, "booster": 40},
            "transport_modes": ["company_bus"],
            "protocol_checklist": dict.fromkeys(("temperature_screening", "masks", "distancing", "ventilation",
                                                 "disinfection", "handwash_stations", "pedulilindungi_scan"), True),
            "case_handling": ""} | changes


async def test_the_declaration_of_truth_is_required_from_se_5_2021_on_and_recorded_whenever_given(platform, reports):
    client, clock = reports
    company = bearer("company", nib=NIB, sub="siti.k3@logam-cikarang")

    facilities: dict[uuid.UUID, uuid.UUID] = {}

    async def issued_and_first_period(at: datetime) -> tuple[uuid.UUID, dict]:
        clock.set(at)
        permit_id = uuid.uuid4()
        facilities[permit_id] = uuid.uuid4()
        await publish(platform.bootstrap, Envelope.wrap(PermitIssued(
            facility_id=facilities[permit_id], province_code="32", regency_code="32.16", permit_id=permit_id, nib=NIB,
            permit_number="IOMKI-2021-000136", company_name="PT Logam Cikarang", sector_class=SectorClass.ESSENTIAL,
            workforce_total=400, issued_at=at), service="permits"))

        async def first():
            answer = await client.get(f"/schedules/{permit_id}", headers=company)
            return answer.json()["periods"][0] if answer.status_code == 200 else None
        return permit_id, await eventually(first, timeout=30)

    async def revoked(permit_id: uuid.UUID) -> None:
        """Nothing left for a later sweep, once the clock moves on."""
        await publish(platform.bootstrap, Envelope.wrap(PermitRevoked(
            facility_id=facilities[permit_id], province_code="32", regency_code="32.16", permit_id=permit_id, nib=NIB,
            permit_number="IOMKI-2021-000136", reason="end of the test", reapply_after=date(2021, 10, 1)),
            service="permits"))

        async def ended():
            answer = await client.get(f"/schedules/{permit_id}", headers=company)
            return answer.json()["ended"] or None
        assert await eventually(ended, timeout=30)

    # Thursday 12 August 2021, 10:00 WIB: SE 3/2021 asks for no declaration. A report without one is accepted, and
    # a correction that declares is recorded as declared.
    permit_id, period = await issued_and_first_period(datetime(2021, 8, 12, 3, tzinfo=UTC))
    assert period["regime_name"] == "SE-3/2021"
    assert (await client.post("/reports", headers=company, json=report(permit_id, period["period_id"]))).status_code \
        == 201
    clock.set(datetime(2021, 8, 12, 4, tzinfo=UTC))
    declared = await client.post("/reports", headers=company,
                                 json=report(permit_id, period["period_id"], declared_true=True))
    assert declared.status_code == 201, declared.text
    listed = (await client.get(f"/reports?permit_id={permit_id}", headers=company)).json()["reports"]
    assert [(r["declared"], r["declaration"]) for r in listed] == [
        (True, {"sub": "siti.k3@logam-cikarang", "at": "2021-08-12T04:00:00+00:00"}), (False, None)]
    await revoked(permit_id)

    # Friday 17 September 2021, 10:00 WIB: under SE 5/2021 the same report is refused until it is declared.
    permit_id, period = await issued_and_first_period(datetime(2021, 9, 17, 3, tzinfo=UTC))
    assert period["regime_name"] == "SE-5/2021"
    refused = await client.post("/reports", headers=company, json=report(permit_id, period["period_id"]))
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "declared_true", refused.text
    accepted = await client.post("/reports", headers=company,
                                 json=report(permit_id, period["period_id"], declared_true=True))
    assert accepted.status_code == 201, accepted.text
    [listed_now] = (await client.get(f"/reports?permit_id={permit_id}", headers=company)).json()["reports"]
    assert listed_now["declaration"] == {"sub": "siti.k3@logam-cikarang", "at": "2021-09-17T03:00:00+00:00"}
    await revoked(permit_id)


async def test_regimes_stored_before_the_declaration_state_it_as_their_circulars_do(platform):
    schema = "reports_declaration_upgrade"
    url = await schema_before(platform, schema, "reports", 11)
    connection = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        for name, effective_on, shipped in (("SE-8/2020", date(2020, 5, 19), True),
                                            ("SE-3/2021", date(2021, 7, 30), True),
                                            ("SE-5/2021", date(2021, 9, 10), True),
                                            ("SE-2/2027", date(2027, 1, 4), False)):
            await connection.execute(
                "INSERT INTO regimes (name, source, effective_on, rule, ladder, shipped, scheduled_by, scheduled_at)"
                " VALUES ($1, 's', $2, 'weekly:FRI@23:59', 'SE-5/2021', $3, 'ops', now())", name, effective_on, shipped)
        report_id = uuid.uuid4()
        await connection.execute(
            "INSERT INTO reports (report_id, period_id, permit_id, submitted_at, late, actor, role, payload)"
            " VALUES ($1, $2, $3, now(), false, 'budi', 'company', '{}')", report_id, uuid.uuid4(), uuid.uuid4())
        await migrate(url, schema, service_migrations(schema, "reports"))
        stated = dict(await connection.fetch("SELECT name, declaration FROM regimes"))
        assert stated == {"SE-8/2020": False, "SE-3/2021": False, "SE-5/2021": True, "SE-2/2027": True}
        # A report stored before the declaration existed was never declared.
        assert tuple(await connection.fetchrow("SELECT declared_by, declared_at FROM reports")) == (None, None)
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute("UPDATE reports SET declared_by = 'budi' WHERE report_id = $1", report_id)
    finally:
        await connection.close()


async def test_a_shipped_regime_on_a_date_an_operator_holds_is_left_out_and_the_service_still_starts(platform):
    """A release may ship a circular on the very date an operator scheduled one: the operator's entry stands (never
    overridden), the service starts, and the shipped one goes in once the operator's is withdrawn."""
    schema = "reports_shipping_held"
    url = await schema_before(platform, schema, "reports", 10_000)
    pool = await create_pool(url, schema, min_size=1, max_size=2)
    ops = Access(Principal("officer-ani", Role.OPERATOR), Scope.ALL, "regimes")
    shipped = RegimeEntry("SE-1/2027", "Surat Edaran 1/2027", date(2027, 1, 4), parse_regime("weekly:FRI@23:59"),
                          LadderName.SE_5_2021)
    try:
        clock = FakeClock(datetime(2026, 12, 1, tzinfo=UTC))
        database = Database(pool, ReportsWork)
        by_operator = ReportHandlers(database, clock, ReportsConfig())
        await by_operator.schedule_regime(ops, name="SE-2/2027", source="Surat Edaran 2/2027",
                                          effective_on=date(2027, 1, 4), rule="weekly:MON@12:00", ladder="SE-5/2021")
        releasing = ReportHandlers(database, clock, ReportsConfig(shipped=(shipped,)))
        await releasing.ship_regimes()  # does not raise: the service starts
        _, stored, _ = await releasing.regimes()
        assert {(e["name"], e["effective_on"]) for e in stored} >= {("SE-2/2027", date(2027, 1, 4))}
        assert "SE-1/2027" not in {e["name"] for e in stored}

        await by_operator.withdraw_regime(ops, "SE-2/2027")
        await releasing.ship_regimes()
        _, stored, changes = await releasing.regimes()
        assert ("SE-1/2027", date(2027, 1, 4)) in {(e["name"], e["effective_on"]) for e in stored}
        assert [(c["actor"], c["action"], c["name"]) for c in changes][:3] == [
            ("configuration", "shipped", "SE-1/2027"), ("officer-ani", "withdrawn", "SE-2/2027"),
            ("officer-ani", "scheduled", "SE-2/2027")]
    finally:
        await pool.close()
