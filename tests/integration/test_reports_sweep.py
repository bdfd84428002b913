"""The deadline sweep over the real database: batches written with set-based statements, several lanes at once.

The schema is the reports service's real migrations in a schema of its own, so nothing else sweeps it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from services.reports import domain
from services.reports.domain import NextAction, PeriodStatus, ReportFigures, Schedule, Timing, parse_regime
from services.reports.handlers import SERVICE, ReportHandlers, ReportIn, ReportsConfig, _about
from services.reports.repository import DuePeriod, ReportsWork, time_ordered_ids
from shared.clock import FakeClock
from shared.web.access import Access, Principal, Role, Scope
from shared.contract import (
    CONTENT_TYPE, EVENT_TYPES, Envelope, PermitRevoked, ReportDue, ReportOverdue, decode,
)
from shared.runtime import PLATFORM_MIGRATIONS
from shared.storage.db import create_pool, migrate, migrations_in, provision
from shared.storage.unit_of_work import Database

pytestmark = pytest.mark.integration

SCHEMA = "reports_sweep"
START = datetime(2021, 8, 2, 8, tzinfo=UTC)
REGIME = parse_regime("every:3600s")
# Reminders as soon as a period opens, warnings at the deadline: one sweep walks a period through every step.
TIMING = Timing(due_lead=timedelta(hours=6), warning_delay=timedelta(0))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database(platform):
    url = await provision(platform.admin_url, SCHEMA)
    await migrate(url, SCHEMA, migrations_in("platform", PLATFORM_MIGRATIONS)
                  + migrations_in(SCHEMA, Path(__file__).parents[2] / "services" / "reports" / "migrations"))
    pool = await create_pool(url, SCHEMA)
    try:
        yield Database(pool, ReportsWork)
    finally:
        await pool.close()


def schedule() -> Schedule:
    return Schedule(permit_id=uuid.uuid4(), facility_id=uuid.uuid4(), nib="8120000123456", province_code="32",
                    regency_code="32.16", zone="Asia/Jakarta", issued_at=START)


async def add_plants(database, count: int, **changes) -> list[tuple[Schedule, domain.Period]]:
    plants = [replace(schedule(), **changes) for _ in range(count)]
    plants = [(s, domain.open_period(s, REGIME, starts_at=START, seq=1, timing=TIMING)) for s in plants]
    async with database.transaction() as work:
        for plant, period in plants:
            await work.schedules.add(plant)
            await work.periods.add(period, plant)
    return plants


def as_due(period: domain.Period, plant: Schedule) -> DuePeriod:
    return DuePeriod(period.period_id, plant.permit_id, period.seq, plant.facility_id, plant.province_code,
                     plant.regency_code, plant.zone, domain.Situation.of(period, plant))


async def test_a_batch_of_steps_and_openings_is_written_as_the_domain_decided(database):
    """Each period takes the step of its situation; only warning steps get (new, distinct) warning ids; each
    opened period is the domain's opening for its plant, with the next seq."""
    plants = await add_plants(database, 3) + await add_plants(database, 2, closed=True)
    periods = [replace(period, next_action=NextAction.DEADLINE) for _, period in plants[:4]]
    periods.append(replace(plants[4][1], status=PeriodStatus.OVERDUE, next_action=NextAction.WARN))
    situations = [domain.Situation.of(period, plant) for period, (plant, _) in zip(periods, plants, strict=True)]
    steps = [domain.step(situation, TIMING) for situation in dict.fromkeys(situations)]
    step_of = [list(dict.fromkeys(situations)).index(situation) for situation in situations]
    assert [steps[i].status for i in step_of] == [PeriodStatus.OVERDUE] * 3 + [PeriodStatus.EXCUSED,
                                                                                PeriodStatus.OVERDUE]
    now = START + timedelta(hours=2)
    opening = domain.opening(REGIME, "Asia/Jakarta", starts_at=periods[0].deadline, timing=TIMING)
    async with database.transaction() as work:
        warned = await work.periods.advance([p.period_id for p in periods], step_of, steps, now=now)
        due = [as_due(p, plant) for p, (plant, _) in zip(periods[:2], plants[:2], strict=True)]
        await work.periods.open_next(due, [0, 0], [opening])
    async with database.reading() as work:
        listings = [await work.periods.listing(plant.permit_id, 5) for plant, _ in plants]

    assert list(warned) == [periods[4].period_id] and warned[periods[4].period_id].warning_id.version == 7
    for period, index, listing in zip(periods, step_of, listings, strict=True):
        assert listing[0] == replace(steps[index].applied_to(period), warning_id=listing[0].warning_id)
        assert (listing[0].warning_id is not None) == steps[index].warn
    for (plant, _), listing in zip(plants[:2], listings[:2], strict=True):
        opened = listing[1]
        assert opened == replace(opening.period(plant.permit_id, 2), period_id=opened.period_id)
        assert opened.period_id.version == 7
    assert [len(listing) for listing in listings] == [2, 2, 1, 1, 1]


@pytest.mark.parametrize("now", [START + timedelta(hours=1, seconds=1),
                                 START + timedelta(hours=1, seconds=1, microseconds=120_000)])
@pytest.mark.parametrize("microseconds", [0, 5])
async def test_a_reminder_or_overdue_built_by_the_database_is_exactly_the_wrapped_event(database, now, microseconds):
    [(plant, period)] = await add_plants(database, 1)
    async with database.transaction() as work:
        await work.connection.execute("UPDATE periods SET deadline = deadline + $2 WHERE period_id = $1",
                                      period.period_id, timedelta(microseconds=microseconds))
        period = await work.periods.get(period.period_id)
        last = await work.connection.fetchval("SELECT coalesce(max(position), 0) FROM outbox")
        due = as_due(period, plant)
        await work.outbox.add_period_events([(due, ReportDue), (due, ReportOverdue)], service=SERVICE, now=now)
        rows = await work.connection.fetch("SELECT * FROM outbox WHERE position > $1 ORDER BY position", last)

    assert len(rows) == 2 and {row["event_id"].version for row in rows} == {7}  # drawn by `time_ordered_ids`
    for row, kind in zip(rows, [ReportDue, ReportOverdue], strict=True):
        wrapped = Envelope.wrap(kind(**_about(plant), period_id=period.period_id, deadline=period.deadline),
                                service=SERVICE, time=now, event_id=row["event_id"])
        assert json.loads(row["value"]) == json.loads(wrapped.to_bytes())
        assert (row["event_type"], row["topic"], row["key"]) == (
            wrapped.type, EVENT_TYPES[wrapped.type].topic.name, wrapped.key)
        assert json.loads(row["headers"]) == {"content-type": CONTENT_TYPE, "correlation_id": wrapped.correlationid}


async def test_a_batched_sweep_emits_each_step_once_in_order_per_plant(database):
    clock = FakeClock(START)
    # Batches of two with two lanes: the seven plants take several transactions running side by side.
    handlers = ReportHandlers(database, clock, ReportsConfig(regime=REGIME, timing=TIMING, sweep_batch=2))
    schedules = [schedule() for _ in range(7)]
    async with database.transaction() as work:
        for s in schedules:
            await work.schedules.add(s)
            await work.periods.add(domain.open_period(s, REGIME, starts_at=START, seq=1, timing=TIMING), s)
        first_position = await work.connection.fetchval("SELECT coalesce(max(position), 0) FROM outbox")

    clock.set(START + REGIME.length + timedelta(seconds=1))
    while await handlers.sweep():
        pass
    assert await handlers.sweep() == 0  # nothing is left, and nothing runs twice

    async with database.reading() as work:
        rows = await work.connection.fetch("SELECT value FROM outbox WHERE position > $1 ORDER BY position",
                                           first_position)
        periods = {s.permit_id: await work.periods.listing(s.permit_id, 5) for s in schedules}
    events = [decode(row["value"]) for row in rows]
    for s in schedules:
        first, second = periods[s.permit_id]
        assert (first.status, first.next_action, second.status, second.next_action) == (
            PeriodStatus.OVERDUE, None, PeriodStatus.OPEN, NextAction.DEADLINE)
        own = [(d.envelope.type.split(".")[1], d.event.period_id) for d in events
               if d.envelope.subject == str(s.facility_id)]
        assert own == [("ReportDue", first.period_id), ("ReportOverdue", first.period_id),
                       ("WarningIssued", first.period_id), ("ReportDue", second.period_id)]
        warning = next(d.event for d in events if d.envelope.type == "iomki.WarningIssued.v1"
                       and d.event.period_id == first.period_id)
        assert warning.warning_id == first.warning_id and warning.consecutive == 1


# -- compliance counters ---------------------------------------------------------------------------------

OPERATOR = Access(Principal("operator-1", Role.OPERATOR), Scope.ALL, "submit")
FIGURES = ReportFigures(1200, (380, 390, 290), 3, 1, 0, 12, 40, 1100, 950, 300, "")
# What GET /compliance counted before the counters: every period of the window, read directly.
DETAILED = (
    "SELECT count(*) FILTER (WHERE status IN ('submitted', 'late', 'overdue')) AS due,"
    " count(*) FILTER (WHERE status IN ('submitted', 'late')) AS reported,"
    " count(*) FILTER (WHERE status = 'submitted') AS on_time, count(*) FILTER (WHERE status = 'overdue') AS overdue,"
    " count(*) FILTER (WHERE status = 'excused') AS excused, count(warning_id) AS warnings"
    " FROM periods WHERE deadline > $1 AND deadline <= $2 AND ($3::text IS NULL OR province_code = $3)"
    " AND ($4::text IS NULL OR regency_code = $4)"
)
REGIONS = [(None, None), ("32", None), ("73", None), (None, "32.16"), (None, "32.73"), (None, "73.71")]


async def assert_counters_agree_with_periods(database, *windows: tuple[datetime, datetime]) -> None:
    async with database.reading() as work:
        for since, until in windows:
            for province, regency in REGIONS:
                counted = await work.compliance.rates(province=province, regency=regency, since=since, until=until)
                detailed = dict(await work.connection.fetchrow(DETAILED, since, until, province, regency))
                assert {key: counted[key] for key in detailed} == detailed, (province, regency, since, until)


async def test_counters_agree_with_the_periods_after_submissions_lateness_overdue_excusals_and_revocation(database):
    """Two sweepers at once, reports on time, corrected, late before and after the warning, a closed plant,
    a revoked one: the counters compliance reads say what the periods say, for every region and window."""
    timing = Timing(due_lead=timedelta(minutes=30), warning_delay=timedelta(minutes=20))
    clock = FakeClock(START)
    sweepers = [ReportHandlers(database, clock, ReportsConfig(regime=REGIME, timing=timing, sweep_batch=3))
                for _ in range(2)]
    regencies = ["32.16", "32.73", "73.71"]
    plants = [replace(schedule(), province_code=regencies[i % 3][:2], regency_code=regencies[i % 3],
                      closed=i == 4) for i in range(12)]
    async with database.transaction() as work:
        for s in plants:
            await work.schedules.add(s)
            await work.periods.add(domain.open_period(s, REGIME, starts_at=START, seq=1, timing=timing), s)

    async def sweep_at(moment: datetime) -> None:
        clock.set(moment)
        while sum(await asyncio.gather(*(sweeper.sweep() for sweeper in sweepers))):
            pass

    async def submit(plant: Schedule) -> None:
        async with database.reading() as work:
            period = (await work.periods.listing(plant.permit_id, 5))[0]  # the first
        await sweepers[0].submit(ReportIn(plant.permit_id, period.period_id, FIGURES, "{}", declared=True), OPERATOR)

    deadline = START + REGIME.length
    for plant in plants[:4]:
        await submit(plant)  # on time
    await submit(plants[3])  # a correction: still on time
    revoked = PermitRevoked(facility_id=plants[9].facility_id, province_code=plants[9].province_code,
                            regency_code=plants[9].regency_code, permit_id=plants[9].permit_id, nib=plants[9].nib,
                            permit_number=None,
                            reason="revoked before its deadline", reapply_after=START.date())
    async with database.transaction() as work:
        await sweepers[0].on_permit_revoked(work, Envelope.wrap(revoked, service="permits"), revoked)
    await sweep_at(deadline + timedelta(seconds=1))  # overdue: 5-8, 10, 11; excused: 4; ended: 9
    await submit(plants[7])  # late, before the warning: none is issued
    await sweep_at(deadline + timing.warning_delay + timedelta(seconds=1))
    await submit(plants[8])  # late, after its warning: the warning stays
    await sweep_at(deadline + timing.warning_delay + timedelta(minutes=5))

    windows = [(START - timedelta(days=1), deadline), (START, deadline - timedelta(seconds=1)),
               (START, START + 3 * REGIME.length)]
    await assert_counters_agree_with_periods(database, *windows)
    async with database.reading() as work:
        mine = [p.permit_id for p in plants]
        statuses = await work.connection.fetch(
            "SELECT status, count(*) AS n, count(warning_id) AS warned FROM periods"
            " WHERE permit_id = ANY($1) AND seq = 1 GROUP BY status", mine)
        overdue_events = await work.connection.fetchval(
            "SELECT count(*) FROM outbox WHERE event_type = 'iomki.ReportOverdue.v1'"
            " AND key = ANY($1::bytea[])", [str(p.facility_id).encode() for p in plants])
    assert {row["status"]: (row["n"], row["warned"]) for row in statuses} == {
        "submitted": (4, 0), "late": (2, 1), "overdue": (4, 4), "excused": (1, 0), "ended": (1, 0)}
    assert overdue_events == 6  # once per missed period, though two sweepers ran side by side

    # An operator deleting periods by hand (no code path deletes them) leaves the counters right too.
    async with database.transaction() as work:
        await work.connection.execute("DELETE FROM periods WHERE permit_id = ANY($1) AND status = 'overdue'",
                                      mine[5:9])
    await assert_counters_agree_with_periods(database, *windows)


async def test_the_migration_counts_the_periods_already_there(platform):
    """A service upgraded with periods already settled starts with counters that agree with them."""
    schema = "reports_counters_upgrade"
    url = await provision(platform.admin_url, schema)
    migrations = migrations_in("platform", PLATFORM_MIGRATIONS) + migrations_in(
        schema, Path(__file__).parents[2] / "services" / "reports" / "migrations")
    before = [m for m in migrations if not (m.component == schema and m.name.startswith("compliance_counts"))]
    await migrate(url, schema, before)
    pool = await create_pool(url, schema)
    try:
        database = Database(pool, ReportsWork)
        plants = [replace(schedule(), regency_code=regency, province_code=regency[:2])
                  for regency in ("32.16", "32.73", "73.71", "32.16")]
        statuses = [PeriodStatus.SUBMITTED, PeriodStatus.LATE, PeriodStatus.OVERDUE, PeriodStatus.EXCUSED]
        async with database.transaction() as work:
            for number, plant in enumerate(plants):
                await work.schedules.add(plant)
                for seq, status in enumerate(statuses, start=1):
                    period = domain.open_period(plant, REGIME, starts_at=START + seq * REGIME.length, seq=seq,
                                                timing=TIMING)
                    warned = status is PeriodStatus.OVERDUE or (status is PeriodStatus.LATE and number % 2)
                    await work.periods.add(replace(period, status=status, next_action=None, next_action_at=None,
                                                   warning_id=uuid.uuid4() if warned else None), plant)
        await migrate(url, schema, migrations)
        await assert_counters_agree_with_periods(database, (START, START + 6 * REGIME.length),
                                                 (START + 2 * REGIME.length, START + 3 * REGIME.length))
    finally:
        await pool.close()


async def test_ids_the_sweep_draws_are_version_7_distinct_and_grow_with_time(database):
    earlier = time_ordered_ids(1000)
    await asyncio.sleep(0.002)
    later = time_ordered_ids(1)
    async with database.reading() as work:
        stored = await work.connection.fetchval("SELECT array_agg(id ORDER BY n) FROM unnest($1::uuid[])"
                                                " WITH ORDINALITY AS u(id, n)", earlier + later)
    assert [u.hex for u in stored] == earlier + later
    assert {u.version for u in stored} == {7} and {u.variant for u in stored} == {uuid.RFC_4122}
    assert len(set(stored)) == 1001
    assert stored[0].bytes[:6] <= stored[999].bytes[:6] < stored[1000].bytes[:6]
