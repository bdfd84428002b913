"""The deadline sweep over the real database: batches written with set-based statements, several lanes at once.

The schema is the reports service's real migrations in a schema of its own, so nothing else sweeps it.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import pytest_asyncio

from services.reports import domain
from services.reports.domain import NextAction, PeriodStatus, Schedule, Timing, parse_regime
from services.reports.handlers import ReportHandlers, ReportsConfig
from services.reports.repository import ReportsWork
from shared.clock import FakeClock
from shared.contract import decode
from shared.db import create_pool, migrate, migrations_in, provision
from shared.runtime import PLATFORM_MIGRATIONS
from shared.unit_of_work import Database

pytestmark = pytest.mark.integration

SCHEMA = "reports_sweep"
START = datetime(2021, 8, 2, 8, tzinfo=timezone.utc)
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


async def test_add_many_and_save_many_write_every_period_as_given(database):
    schedules = [schedule() for _ in range(3)]
    opened = [(domain.open_period(s, REGIME, starts_at=START, seq=1, timing=TIMING), s) for s in schedules]
    async with database.transaction() as work:
        for s in schedules:
            await work.schedules.add(s)
        await work.periods.add_many(opened)
    async with database.reading() as work:
        assert [(await work.periods.listing(s.permit_id, 5)) for s in schedules] == [[p] for p, _ in opened]

    changed = [replace(p, status=PeriodStatus.OVERDUE, next_action=NextAction.WARN, next_action_at=p.deadline,
                       warning_id=uuid.uuid4()) for p, _ in opened[:2]]
    async with database.transaction() as work:
        await work.periods.save_many(changed)
    async with database.reading() as work:
        after = [(await work.periods.get(p.period_id)) for p, _ in opened]
    assert after == [*changed, opened[2][0]]


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
