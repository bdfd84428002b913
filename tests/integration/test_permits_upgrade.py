"""Permits recorded before migration 0005 (sanctions with a reason and no ground), upgraded.

The ladder's sanctions (recorded as the reports system, reason `<rule>: …`) become missed reports under that rule;
an officer's become `other`, in the officer's own words. Each is counted by its region, its month in Jakarta time,
its action and that ground, so the ministry's summary holds the sanctions of before the upgrade too.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime

import asyncpg
import pytest

from shared.storage.db import migrate
from tests.support.platform import schema_before, service_migrations

pytestmark = pytest.mark.integration

SCHEMA = "permits_upgrade"


async def test_sanctions_of_before_get_a_ground_and_are_counted(platform):
    url = await schema_before(platform, SCHEMA, "permits", 5)
    permit = uuid.uuid4()
    connection = await asyncpg.connect(url, server_settings={"search_path": SCHEMA})
    try:
        await connection.execute(
            "INSERT INTO permits (permit_id, facility_id, nib, company_name, province_code, regency_code,"
            " sector_class, workforce_total, status, permit_number, freeze_count, revoked_at, application)"
            " VALUES ($1, $2, '8120000123456', 'PT Baja', '32', '32.16', 'critical', 100, 'REVOKED',"
            " 'IOMKI-2021-000001', 1, now(), '{}')", permit, uuid.uuid4())
        for action, role, reason, at in (
                ("issue", "operator", "documents complete", datetime(2021, 6, 1, 3, tzinfo=UTC)),
                ("freeze", "system", "ThreeWarningsInARow: 3 missed period(s), 3 warning(s)",
                 datetime(2021, 7, 31, 17, 30, tzinfo=UTC)),  # 1 August, 00:30 in Jakarta
                ("revoke", "operator", "false data found on inspection", datetime(2021, 8, 20, 3, tzinfo=UTC))):
            await connection.execute(
                "INSERT INTO permit_history (permit_id, from_status, to_status, action, actor, role, reason, at)"
                " VALUES ($1, NULL, 'X', $2, 'someone', $3, $4, $5)", permit, action, role, reason, at)

        await migrate(url, SCHEMA, service_migrations(SCHEMA, "permits"))

        rows = await connection.fetch("SELECT action, ground FROM permit_history WHERE permit_id = $1 ORDER BY seq",
                                      permit)
        grounds = [(row["action"], json.loads(row["ground"]) if row["ground"] else None) for row in rows]
        assert grounds == [
            ("issue", None),
            ("freeze", {"code": "missed_reports", "rule": "ThreeWarningsInARow", "evidence": {}}),
            ("revoke", {"code": "other", "text": "false data found on inspection", "evidence": {}}),
        ]
        counts = {tuple(row.values()) for row in await connection.fetch(
            "SELECT province_code, regency_code, month, action, ground, sanctions FROM sanction_counts")}
        assert counts == {("32", "32.16", date(2021, 8, 1), "freeze", "missed_reports", 1),
                          ("32", "32.16", date(2021, 8, 1), "revoke", "other", 1)}
    finally:
        await connection.close()
