"""Cases recorded before migration 0007 (close contacts as a count, one quarantine for them all), upgraded.

Each counted contact becomes a listed one, exposed (assumed) on its case's confirmation and out on the case's
quarantine end: still quarantining, with a timer of its own, where the case's quarantine timer was pending (that
timer cancelled); released on that end where it had fired. A plant's active quarantines then count contacts, and
the timers carried over fire as any contact's do.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from services.incidents.domain import IncidentPolicy, start_of_day
from services.incidents.handlers import IncidentHandlers
from services.incidents.repository import IncidentsWork
from shared.clock import FakeClock
from shared.regions import local_zone
from shared.storage.db import create_pool, migrate
from shared.storage.unit_of_work import Database
from tests.support.platform import schema_before, service_migrations

pytestmark = pytest.mark.integration

SCHEMA = "incidents_upgrade"
REGENCY = "64.72"
CONFIRMED = date(2021, 7, 1)  # the pending case's; the other's quarantine ended before it
RECORDED_AT = datetime(2021, 7, 1, 3, tzinfo=UTC)


def midnight(day: date) -> datetime:
    return start_of_day(day, local_zone(REGENCY))


async def test_counted_contacts_become_listed_contacts_with_timers_of_their_own(platform):
    url = await schema_before(platform, SCHEMA, "incidents", 7)
    pool = await create_pool(url, SCHEMA)
    plant, pending, ended = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    quarantine_ends_on = CONFIRMED + timedelta(days=14)
    try:
        async with pool.acquire() as connection:
            # As the code before 0007 left them: a plant counting one quarantine (the pending case's), two cases.
            await connection.execute(
                "INSERT INTO plants (facility_id, permit_id, nib, province_code, regency_code, workforce_total,"
                " active_isolations, active_quarantines, status, cases_total, updated_at)"
                " VALUES ($1, $2, '8120006472009', '64', $3, 300, 1, 1, 'monitoring', 2, $4)",
                plant, uuid.uuid4(), REGENCY, RECORDED_AT)
            for case_id, ref, confirmed_on, contacts, status in (
                    (pending, "SMD-OLD-1", CONFIRMED, 3, "isolating"),
                    (ended, "SMD-OLD-2", CONFIRMED - timedelta(days=20), 2, "closed")):
                await connection.execute(
                    "INSERT INTO cases (case_id, facility_id, case_ref, confirmed_on, symptomatic, close_contacts,"
                    " source, contacts_exit_test_negative, isolation_starts_on, isolation_ends_on, quarantine_ends_on,"
                    " status, recorded_by, recorded_role, recorded_at)"
                    " VALUES ($1, $2, $3, $4, false, $5, 'direct', false, $4, $6, $7, $8, 'k3-officer', 'company', $9)",
                    case_id, plant, ref, confirmed_on, contacts, confirmed_on + timedelta(days=10),
                    confirmed_on + timedelta(days=14), status, RECORDED_AT)
            timers = {name: uuid.uuid4() for name in ("quarantine", "isolation", "fired")}
            for timer_id, kind, subject, due_on, fired_at in (
                    (timers["quarantine"], "quarantine_end", pending, quarantine_ends_on, None),
                    (timers["isolation"], "isolation_end", pending, CONFIRMED + timedelta(days=10), None),
                    (timers["fired"], "quarantine_end", ended, CONFIRMED - timedelta(days=6),
                     midnight(CONFIRMED - timedelta(days=6)))):
                await connection.execute(
                    "INSERT INTO timers (timer_id, kind, facility_id, subject_id, due_at, fired_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6)", timer_id, kind, plant, subject, midnight(due_on), fired_at)

        await migrate(url, SCHEMA, service_migrations(SCHEMA, "incidents"))

        async with pool.acquire() as connection:
            repository = IncidentsWork(connection).incidents
            listed = await repository.contacts_of(pending)
            assert [(c.number, c.last_exposure_on, c.exposure_assumed, c.quarantine_ends_on, c.status.value,
                     c.left_on) for c in listed] == [
                (n, CONFIRMED, True, quarantine_ends_on, "quarantining", None) for n in (1, 2, 3)]
            released = await repository.contacts_of(ended)
            assert [(c.status.value, c.left_on) for c in released] == [("released", CONFIRMED - timedelta(days=6))] * 2

            rows = {row["timer_id"]: row for row in await connection.fetch("SELECT * FROM timers")}
            assert rows[timers["quarantine"]]["cancelled_at"] is not None
            assert rows[timers["isolation"]]["cancelled_at"] is None
            assert (rows[timers["fired"]]["fired_at"], rows[timers["fired"]]["cancelled_at"]) == (
                midnight(CONFIRMED - timedelta(days=6)), None)
            carried = [row for timer_id, row in rows.items() if timer_id not in timers.values()]
            assert sorted(row["subject_id"] for row in carried) == sorted(c.contact_id for c in listed)
            assert {(row["kind"], row["due_at"], row["cancelled_at"], row["fired_at"]) for row in carried} == {
                ("quarantine_end", midnight(quarantine_ends_on), None, None)}

            counts = await connection.fetchrow(
                "SELECT active_quarantines, contacts_total FROM plants WHERE facility_id = $1", plant)
            assert (counts["active_quarantines"], counts["contacts_total"]) == (3, 5)

        # The carried-over timers fire as a contact's own: each contact released on the case's old end.
        clock = FakeClock(midnight(quarantine_ends_on) + timedelta(hours=1))
        handlers = IncidentHandlers(Database(pool, IncidentsWork), clock, IncidentPolicy())
        assert await handlers.fire_due_timers() == 4  # three quarantines and the isolation
        async with pool.acquire() as connection:
            repository = IncidentsWork(connection).incidents
            assert [(c.status.value, c.left_on) for c in await repository.contacts_of(pending)] == [
                ("released", quarantine_ends_on)] * 3
            assert (await repository.plant(plant)).active_quarantines == 0
    finally:
        await pool.close()
