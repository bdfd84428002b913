"""The worklist at a million plants is an index scan: each shape of GET /worklist (a regency, a province, the country,
a later page) reads its partial index backwards from the highest rank and stops at the page's LIMIT, with no sort.

A quarter of a million plants are written in a transaction that is rolled back, so no other test sees them; the
planner is asked about the statements the repository itself sends."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import pytest_asyncio

from services.supervision.app import create_app
from services.supervision.domain import RiskScore
from services.supervision.repository import SupervisionRepository
from tests.support.platform import running_service

pytestmark = pytest.mark.integration


class Explaining:
    """A connection that answers each query with its plan (EXPLAIN), and keeps the plans."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self.plans: list[list[dict[str, Any]]] = []

    async def fetch(self, statement: str, *args: Any) -> list:
        plan = await self._connection.fetchval(f"EXPLAIN (FORMAT JSON) {statement}", *args)
        self.plans.append(list(_nodes((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])))
        return []


def _nodes(node: dict[str, Any]) -> Any:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database(platform):
    app = create_app()
    async with running_service(app):
        yield app.state.runtime.database


async def test_every_worklist_shape_is_a_backward_index_scan_without_a_sort(database):
    async with database.pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        try:
            await _assert_index_scans(connection)
        finally:
            await transaction.rollback()  # the plants were only for the planner


async def _assert_index_scans(connection: Any) -> None:
    await connection.execute(
        "INSERT INTO plants (facility_id, permit_id, permit_number, nib, company_name, province_code, regency_code,"
        " status, issued_on, updated_at)"
        " SELECT gen_random_uuid(), gen_random_uuid(), 'IOMKI-2026-' || lpad(n::text, 9, '0'), '8120000000000',"
        " 'PT Uji ' || n, lpad((11 + n % 80)::text, 2, '0'),"
        " lpad((11 + n % 80)::text, 2, '0') || '.' || lpad((n % 60 + 1)::text, 2, '0'), 'issued',"
        " date '2026-01-01' + (n % 300), now() FROM generate_series(1, 250000) AS n")
    await connection.execute(
        "INSERT INTO plant_risk (facility_id, province_code, regency_code, listed, since_on, rank_key)"
        " SELECT facility_id, province_code, regency_code, random() > 0.02, issued_on, random() * 100 - 74000"
        " FROM plants WHERE company_name LIKE 'PT Uji %'")  # only this test's: other tests' plants have theirs
    await connection.execute("ANALYZE plants, plant_risk")
    explaining = Explaining(connection)
    repository = SupervisionRepository(explaining, RiskScore())  # type: ignore[arg-type]
    for province, regency in ((None, "32.16"), ("32", None), (None, None)):
        for after in (None, (-73950.0, uuid.uuid4())):
            await repository.worklist(province=province, regency=regency, after=after, limit=50)
    assert len(explaining.plans) == 6
    for number, plan in enumerate(explaining.plans):
        risk = [node for node in plan if node.get("Relation Name") == "plant_risk"]
        shape = (number, [(n["Node Type"], n.get("Index Cond")) for n in plan])
        assert [(n["Node Type"], n.get("Scan Direction"), n.get("Index Name", "")[:11]) for n in risk] == [
            ("Index Scan", "Backward", "plant_risk_")], shape
        assert not {"Sort", "Incremental Sort", "Seq Scan", "Bitmap Heap Scan"} & {n["Node Type"] for n in plan}
        assert plan[0]["Node Type"] == "Limit"
