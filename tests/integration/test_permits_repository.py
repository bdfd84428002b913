"""The permits repository against real PostgreSQL: what the SQL and the schema guarantee on their own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

import services.permits
from services.permits.domain import Action, Closure, Permit, PermitStatus, Sanction, Transition, plant_key
from services.permits.repository import PermitSearch, PermitsWork
from shared.contract import GroundCode, GroundEvidence, SanctionGround
from shared.runtime import PLATFORM_MIGRATIONS
from shared.storage.db import create_pool, migrate, migrations_in, provision
from shared.storage.unit_of_work import Database

pytestmark = pytest.mark.integration

T0 = datetime(2021, 7, 5, 8, 0, tzinfo=UTC)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database(platform) -> AsyncIterator[Database[PermitsWork]]:
    url = await provision(platform.admin_url, "permits")
    await migrate(url, "permits", migrations_in("platform", PLATFORM_MIGRATIONS)
                  + migrations_in("permits", Path(services.permits.__file__).parent / "migrations"))
    pool = await create_pool(url, "permits")
    yield Database(pool, PermitsWork)
    await pool.close()


def a_permit(regency: str = "35.15", nib: str = "8120000555000", sector: str = "critical") -> Permit:
    permit, _ = Permit.apply(facility_id=uuid.uuid4(), nib=nib, company_name="PT Rokok Sidoarjo",
                             province_code=regency[:2], regency_code=regency, sector_class=sector,
                             workforce_total=500, actor="c", role="company", now=T0,
                             plant_key=plant_key(nib, f"Jl. Industri {uuid.uuid4().hex}", regency))
    return permit


async def store(database: Database[PermitsWork], permit: Permit) -> None:
    transition = Transition(None, PermitStatus.SUBMITTED, "apply", "c", "company", "application submitted", T0)
    async with database.transaction() as work:
        await work.permits.add(permit, {"address": "x"}, transition)


async def test_a_saved_permit_reads_back_with_its_history_in_order(database):
    permit = a_permit()
    await store(database, permit)
    issued, transition = permit.act(Action.ISSUE, actor="op", role="operator", reason="ok", now=T0,
                                    permit_number=f"IOMKI-1990-{uuid.uuid4().int % 10**6:06d}", causation_id="req-1")
    async with database.transaction() as work:
        await work.permits.save(issued, transition)
    async with database.reading() as work:
        assert await work.permits.get(permit.permit_id) == issued
        assert await work.permits.by_number(issued.permit_number) == issued
        history = await work.permits.history(permit.permit_id)
    assert [(h["to_status"], h["causation_id"]) for h in history] == [("SUBMITTED", None), ("ISSUED", "req-1")]


async def test_the_schema_itself_refuses_a_second_active_permit_for_a_plant(database):
    first = a_permit()
    await store(database, first)
    second = replace(a_permit(), plant_key=first.plant_key)
    with pytest.raises(asyncpg.UniqueViolationError):
        await store(database, second)
    # A rejected application leaves the plant free.
    rejected, transition = first.act(Action.REJECT, actor="op", role="operator", reason="no", now=T0)
    async with database.transaction() as work:
        await work.permits.save(rejected, transition)
    await store(database, second)
    async with database.reading() as work:
        assert [p.permit_id for p in await work.permits.of_plant(first.plant_key)] == [second.permit_id,
                                                                                      first.permit_id]


async def test_counters_are_gap_free_under_concurrent_transactions_even_when_one_rolls_back(database):
    year = 1900 + uuid.uuid4().int % 90  # a year no other test uses

    async def draw(fail: bool) -> int | None:
        try:
            async with database.transaction() as work:
                number = await work.permits.next_number(year)
                if fail:
                    raise RuntimeError("issuing failed after drawing")
                return number
        except RuntimeError:
            return None

    drawn = await asyncio.gather(*(draw(fail=i % 7 == 0) for i in range(40)))
    kept = sorted(n for n in drawn if n is not None)
    assert kept == list(range(1, len(kept) + 1))  # a rolled-back draw returns its number


async def test_search_uses_only_the_given_filters_and_the_callers_scope(database):
    nib = f"81200{uuid.uuid4().int % 10**8:08d}"
    bekasi = [a_permit("32.16", nib, "critical"), a_permit("32.16", nib, "essential")]
    surabaya = [a_permit("35.78", nib, "critical")]
    for permit in bekasi + surabaya:
        await store(database, permit)
    async with database.reading() as work:
        async def ids(**filters) -> list[uuid.UUID]:
            return [p.permit_id for _, p in await work.permits.search(PermitSearch(nib=nib, **filters))]

        assert await ids() == [p.permit_id for p in bekasi + surabaya]
        assert await ids(region_scope="32") == [p.permit_id for p in bekasi]
        assert await ids(region_scope="35.78", sector="critical") == [surabaya[0].permit_id]
        assert await ids(province="35", regency="35.78", status="SUBMITTED") == [surabaya[0].permit_id]
        assert await ids(nib_scope="8120000000000") == []
        first_page = await work.permits.search(PermitSearch(nib=nib, limit=2))
        rest = await work.permits.search(PermitSearch(nib=nib, after=first_page[-1][0]))
        assert [p.permit_id for _, p in rest] == [surabaya[0].permit_id]


async def test_search_by_a_whole_number_and_by_the_start_of_a_company_name_pages_with_the_keyset(database):
    """The name's start in any case and however its words are spaced, in name order, on migration 0012's index; `%`
    and `_` are characters like any other; the number whole, on its unique index. Pages follow the keyset."""
    tag = uuid.uuid4().hex[:10]
    named = [replace(a_permit(), company_name=name) for name in (
        f"PT  Maju{tag} Jaya", f"pt maju{tag} jaya abadi", f"CV Maju{tag} Jaya", f"PT Maju{tag}_Jaya",
        f"PT Maju{tag}\tJaya Sentosa")]
    for permit in named:
        await store(database, permit)
    number = f"IOMKI-1991-{uuid.uuid4().int % 10**6:06d}"
    issued, transition = named[2].act(Action.ISSUE, actor="op", role="operator", reason="ok", now=T0,
                                      permit_number=number, causation_id=None)
    async with database.transaction() as work:
        await work.permits.save(issued, transition)
    async with database.reading() as work:
        async def ids(**filters) -> list[uuid.UUID]:
            return [p.permit_id for _, p in await work.permits.search(PermitSearch(**filters))]

        jaya = [named[i].permit_id for i in (0, 1, 4)]
        assert await ids(company=f"PT MAJU{tag} JAYA") == jaya
        assert await ids(company=f"pt maju{tag} jaya a") == [named[1].permit_id]
        assert await ids(company=f"pt maju{tag}_") == [named[3].permit_id]  # `_` is no wildcard
        assert await ids(company=f"pt maju{tag}%") == []
        assert await ids(company=f"maju{tag}") == []  # the start of the name, not a word within it
        # In name order, then application order: a space sorts before `_`.
        assert await ids(company=f"PT Maju{tag}", status="SUBMITTED", regency="35.15") == [
            named[i].permit_id for i in (0, 1, 4, 3)]
        first = await work.permits.search(PermitSearch(company=f"pt maju{tag} jaya", limit=2))
        rest = await work.permits.search(PermitSearch(company=f"pt maju{tag} jaya", after=first[-1][0]))
        assert [p.permit_id for _, p in first + rest] == jaya
        paged, after = [], 0
        while page := await work.permits.search(PermitSearch(company=f"pt maju{tag}", after=after, limit=1)):
            paged.append(page[0][1].permit_id)
            after = page[0][0]
        assert paged == [named[i].permit_id for i in (0, 1, 4, 3)]  # name order, not the order they came in
        assert await ids(number=number) == [named[2].permit_id]
        assert await ids(number=number, status="SUBMITTED") == []
        assert await ids(number=number, after=first[-1][0] + 10**9) == []


async def test_a_repeated_closure_order_extends_it_and_reopening_ends_it(database):
    facility, closure_id = uuid.uuid4(), uuid.uuid4()
    closure = Closure(closure_id, "plant", "cluster", T0, T0.replace(day=10))
    async with database.transaction() as work:
        await work.closures.ordered(facility, closure, uuid.uuid4())
        await work.closures.ordered(facility, replace(closure, ends_at=T0.replace(day=12)), uuid.uuid4())
        status = await work.closures.operating_status(facility)
        assert status.plant_closed and status.closures[0].ends_at == T0.replace(day=12)
        assert await work.closures.reopened(closure_id, T0.replace(day=12))
        assert not await work.closures.reopened(closure_id, T0.replace(day=13))
        assert (await work.closures.operating_status(facility)).label == "operating"


async def test_the_freeze_in_force_after_a_revocation_reduced_to_a_freeze_rests_on_the_revocations_ground(database):
    """Reactivation reads the ground of the freeze in force: after `reduce_to_freeze` that is the revocation's
    (its missed periods are what the company must file), not the earlier freeze's."""
    permit = a_permit()
    await store(database, permit)
    first, second = ([uuid.uuid4()] for _ in range(2))
    steps = [(Action.ISSUE, None), (Action.FREEZE, missed_reports(first)), (Action.REVOKE, missed_reports(second)),
             (Action.REDUCE_TO_FREEZE, None)]
    revocation = Sanction(seq=4, action=Action.REVOKE, from_status=PermitStatus.FROZEN, at=T0)
    for action, ground in steps:
        permit, transition = permit.act(action, actor="op", role="operator", reason="r", now=T0, ground=ground,
                                        permit_number=f"IOMKI-1991-{uuid.uuid4().int % 10**6:06d}",
                                        reversing=revocation if action is Action.REDUCE_TO_FREEZE else None)
        async with database.transaction() as work:
            await work.permits.save(permit, transition)
        if action is Action.FREEZE:
            async with database.reading() as work:
                assert await work.permits.latest_freeze_ground(permit.permit_id) == ground
    assert permit.status is PermitStatus.FROZEN
    async with database.reading() as work:
        assert await work.permits.latest_freeze_ground(permit.permit_id) == missed_reports(second)


def missed_reports(periods: list[uuid.UUID]) -> SanctionGround:
    return SanctionGround(code=GroundCode.MISSED_REPORTS, ladder="SE-3/2021", rule="ThreeWarningsInARow",
                          evidence=GroundEvidence(missed_periods=periods))
