"""Counts are never negative: each service's schema refuses a count written below zero, whichever code wrote it.

(The incidents domain also stops a plant's active counts at zero, see test_incidents_domain; the permits and
reports domains only ever add to theirs.)
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

import services.incidents
import services.permits
import services.reports
from shared.runtime import PLATFORM_MIGRATIONS
from shared.storage.db import migrate, migrations_in, provision

pytestmark = pytest.mark.integration

T0 = datetime(2021, 7, 5, 8, 0, tzinfo=UTC)
SERVICES = {"permits": services.permits, "reports": services.reports, "incidents": services.incidents}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def schemas(platform) -> AsyncIterator[dict[str, str]]:
    urls = {}
    for name, package in SERVICES.items():
        urls[name] = await provision(platform.admin_url, name)
        await migrate(urls[name], name, migrations_in("platform", PLATFORM_MIGRATIONS)
                      + migrations_in(name, Path(package.__file__).parent / "migrations"))
    yield urls


async def connect(schemas: dict[str, str], service: str) -> asyncpg.Connection:
    return await asyncpg.connect(schemas[service], server_settings={"search_path": service})


async def refused(schemas: dict[str, str], service: str, sql: str, *args: object) -> bool:
    connection = await connect(schemas, service)
    try:
        await connection.execute(sql, *args)
    except asyncpg.CheckViolationError:
        return True
    finally:
        await connection.close()
    return False


@pytest.mark.parametrize(("workforce_total", "freeze_count", "refusal"), [
    (500, -1, True), (-1, 0, True), (500, 0, False)])
async def test_a_permit_never_counts_below_zero(schemas, workforce_total, freeze_count, refusal):
    sql = ("INSERT INTO permits (permit_id, facility_id, nib, company_name, province_code, regency_code,"
           " sector_class, status, application, plant_key, workforce_total, freeze_count)"
           " VALUES ($1, $2, '8120000555000', 'PT X', '35', '35.15', 'critical', 'SUBMITTED', '{}', $3, $4, $5)")
    assert await refused(schemas, "permits", sql, uuid.uuid4(), uuid.uuid4(), uuid.uuid4().hex, workforce_total,
                         freeze_count) is refusal


async def test_a_permit_number_counter_starts_at_one(schemas):
    assert await refused(schemas, "permits", "INSERT INTO permit_number_counters (year, last_used) VALUES (1999, 0)")


@pytest.mark.parametrize("column", ["freeze_count", "ladder_reset_seq"])
async def test_a_reporting_schedule_never_counts_below_zero(schemas, column):
    sql = ("INSERT INTO schedules (permit_id, facility_id, nib, province_code, regency_code, zone, issued_at,"
           " {column}) VALUES ($1, $2, '8120000555000', '35', '35.15', 'red', $3, $4)")
    assert await refused(schemas, "reports", sql.format(column=column), uuid.uuid4(), uuid.uuid4(), T0, -1)
    assert not await refused(schemas, "reports", sql.format(column=column), uuid.uuid4(), uuid.uuid4(), T0, 0)


@pytest.mark.parametrize("column", ["active_isolations", "active_quarantines", "active_room_closures",
                                    "cases_total", "workforce_total"])
async def test_a_plant_under_monitoring_never_counts_below_zero(schemas, column):
    sql = ("INSERT INTO plants (facility_id, permit_id, province_code, regency_code, updated_at, {column})"
           " VALUES ($1, $2, '35', '35.15', $3, $4)")
    assert await refused(schemas, "incidents", sql.format(column=column), uuid.uuid4(), uuid.uuid4(), T0, -1)
    assert not await refused(schemas, "incidents", sql.format(column=column), uuid.uuid4(), uuid.uuid4(), T0, 0)


async def test_a_failing_timer_never_counts_its_attempts_below_zero(schemas):
    connection = await connect(schemas, "incidents")
    try:
        facility_id = uuid.uuid4()
        await connection.execute("INSERT INTO plants (facility_id, permit_id, province_code, regency_code, updated_at)"
                                 " VALUES ($1, $2, '35', '35.15', $3)", facility_id, uuid.uuid4(), T0)
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute(
                "INSERT INTO timers (timer_id, kind, facility_id, subject_id, due_at, attempts)"
                " VALUES ($1, 'isolation_end', $2, $3, $4, -1)", uuid.uuid4(), facility_id, uuid.uuid4(), T0)
    finally:
        await connection.close()
