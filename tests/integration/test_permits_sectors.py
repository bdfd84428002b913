"""Sector classes against the real database and broker.

Over HTTP: a company claims a class the KBLI table does not read in its plant; the claim waits for review (listed
for the operators, the region's task force and the company itself), the table's class applies meanwhile, and an
operator's acceptance changes the plant's class and announces it (SectorClassChanged, basis operator).

In a schema of its own: permits recorded before the table (migration 0010) are derived at the first start, the
declared class that the table reads otherwise kept as a claim in review; a table revision re-derives every plant
whose class the table gives, set-based in SQL, and announces exactly the operating permits whose class changed, each
event built by the database byte for byte as `Envelope.wrap` writes it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from services.permits.app import create_app, sector_table
from services.permits.domain import (
    Classing, KbliSectorTable, PrincipalActivity, ReviewDecision, SectorRow, first_reading_reason, revision_reason,
)
from services.permits import handlers as handlers_module
from services.permits.handlers import SectorHandlers
from services.permits.repository import PermitsWork
from shared.clock import FakeClock
from shared.contract import (
    CONTENT_TYPE, EVENT_TYPES, ClassBasis, Envelope, SectorClass, SectorClassChanged, decode,
)
from shared.storage.db import create_pool, migrate
from shared.storage.unit_of_work import Database
from shared.web.access import Access, Principal, Role, Scope
from tests.support.kafka import read_topic
from tests.support.platform import bearer, running_service, schema_before, service_migrations

pytestmark = pytest.mark.integration

NIB, COMPETITOR = "8120000424242", "8120000535353"
OPERATOR = bearer("operator", sub="officer-ani")
COMPANY = bearer("company", nib=NIB, sub="k3-admin")
SHIPPED = sector_table()
T0 = datetime(2021, 7, 21, 2, 0, tzinfo=UTC)


def application(kbli: list[str], regency: str = "32.16", **claim: Any) -> dict[str, Any]:
    return {
        "company": {"nib": NIB, "npwp": "01.234.567.8-901.000", "name": "PT Garmen Bekasi"},
        "facility": {"name": "Pabrik", "address": f"Jl. Industri {uuid.uuid4().hex[:8]}",
                     "province_code": regency[:2], "regency_code": regency},
        "kbli": kbli, "workforce": {"total": 500, "on_site_per_shift": [250]},
        "health_protocol_commitment": True, **claim,
    }


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def permits(platform) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(create_app()) as client:
        yield client


async def applied(permits: httpx.AsyncClient, body: dict[str, Any]) -> str:
    answer = await permits.post("/permits", json=body, headers=COMPANY)
    assert answer.status_code == 201, answer.text
    return answer.json()["permit_id"]


# -- over HTTP -------------------------------------------------------------------------------------------------


async def test_without_a_claim_the_plant_is_read_from_its_principal_kbli_code(permits):
    pid = await applied(permits, application(["14111", "10110"]))  # apparel first: that is its principal activity
    shown = (await permits.get(f"/permits/{pid}", headers=COMPANY)).json()
    assert (shown["sector_class"], shown["export_oriented"]) == ("essential", True)
    assert shown["sector"] == {"class": "essential", "export_oriented": True, "basis": "kbli_table",
                               "table_version": SHIPPED.version, "open_review": None}
    table = (await permits.get("/kbli-sectors", headers=bearer("agency"))).json()
    assert (table["version"], table["row_count"]) == (SHIPPED.version, len(SHIPPED.rows))
    assert "22/2021" in table["source"] and {"prefix": "14", "name": "Industri pakaian jadi", "class": "essential",
                                             "export_oriented": True} in table["rows"]


async def test_a_claim_is_reviewed_and_accepted_the_plants_class_is_the_claim_and_it_is_announced(permits, platform):
    # A garment maker that says it makes hospital gowns: critical, it claims; the table reads apparel.
    pid = await applied(permits, application(["14111"], sector_class="critical", export_oriented=False))
    shown = (await permits.get(f"/permits/{pid}", headers=COMPANY)).json()
    assert (shown["sector_class"], shown["sector"]["basis"]) == ("essential", "kbli_table")  # meanwhile
    review = shown["sector"]["open_review"]
    assert (review["status"], review["claimed"], review["derived"], review["origin"], review["table_version"]) == (
        "pending", {"class": "critical", "export_oriented": False}, {"class": "essential", "export_oriented": True},
        "application", SHIPPED.version)

    # The company, the operators and Jawa Barat's task force find it; a competitor and Jawa Tengah's do not.
    for headers in (COMPANY, OPERATOR, bearer("task_force", region="32.16")):  # other tests' claims wait too
        listed = await permits.get("/class-reviews", params={"permit_id": pid}, headers=headers)
        assert review["review_id"] in [r["review_id"] for r in listed.json()["items"]], headers
    for headers in (bearer("company", nib=COMPETITOR), bearer("task_force", region="33")):
        listed = await permits.get("/class-reviews", params={"limit": 200}, headers=headers)
        assert review["review_id"] not in [r["review_id"] for r in listed.json()["items"]], headers
        assert (await permits.get("/class-reviews", params={"permit_id": pid}, headers=headers)).status_code == 404
    mine = (await permits.get("/class-reviews", params={"permit_id": pid}, headers=COMPANY)).json()["items"]
    assert [(r["review_id"], r["permit"]["permit_id"], r["regency_code"]) for r in mine] == [
        (review["review_id"], pid, "32.16")]

    issued = await permits.post(f"/permits/{pid}/decision", json={"decision": "issue", "reason": "lengkap"},
                                headers=OPERATOR)
    number = issued.json()["permit_number"]
    decided = await permits.post(f"/class-reviews/{review['review_id']}/decision", headers=OPERATOR | {
        "x-request-id": f"req-accept-{pid}"}, json={"decision": "accept", "reason": "izin edar alkes terlampir"})
    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert (body["status"], body["decision"]["by"], body["decision"]["reason"]) == (
        "accepted", {"sub": "officer-ani", "role": "operator"}, "izin edar alkes terlampir")
    assert (body["permit"]["sector_class"], body["permit"]["export_oriented"], body["permit"]["class_basis"]) == (
        "critical", False, "operator")
    shown = (await permits.get(f"/permits/{pid}", headers=COMPANY)).json()
    assert shown["sector"] == {"class": "critical", "export_oriented": False, "basis": "operator",
                               "table_version": SHIPPED.version, "open_review": None}
    assert (await permits.get(f"/registry/{number}")).json()["sector_class"] == "critical"

    again = await permits.post(f"/class-reviews/{review['review_id']}/decision", headers=OPERATOR,
                               json={"decision": "reject", "reason": "salah"})
    assert again.status_code == 409 and again.json()["review_status"] == "accepted"
    done = (await permits.get("/class-reviews", params={"permit_id": pid, "status": "accepted"},
                              headers=OPERATOR)).json()["items"]
    assert [r["review_id"] for r in done] == [review["review_id"]]

    messages = await read_topic(platform.bootstrap, "iomki.permits", until=lambda ms: any(
        b"SectorClassChanged" in m.value and pid.encode() in m.value for m in ms))
    [event] = [decode(m.value) for m in messages if b"SectorClassChanged" in m.value and pid.encode() in m.value]
    assert event.envelope.correlationid == f"req-accept-{pid}"
    assert event.event == SectorClassChanged(
        facility_id=shown["facility_id"], province_code="32", regency_code="32.16", permit_id=pid, nib=NIB,
        permit_number=number, sector_class=SectorClass.CRITICAL, export_oriented=False, basis=ClassBasis.OPERATOR,
        table_version=SHIPPED.version, reason=event.event.reason)  # type: ignore[attr-defined]
    issued_event = next(decode(m.value) for m in messages if b"PermitIssued" in m.value and pid.encode() in m.value)
    assert (issued_event.event.sector_class, issued_event.event.export_oriented) == (  # type: ignore[attr-defined]
        SectorClass.ESSENTIAL, True)  # the class in force when it was issued


async def test_a_rejected_claim_leaves_the_tables_class_and_the_worklist(permits):
    pid = await applied(permits, application(["24101"], sector_class="critical"))
    review = (await permits.get(f"/permits/{pid}", headers=OPERATOR)).json()["sector"]["open_review"]
    refused = await permits.post(f"/class-reviews/{review['review_id']}/decision", headers=OPERATOR,
                                 json={"decision": "reject", "reason": "KBLI utama industri besi dan baja"})
    assert refused.status_code == 200 and refused.json()["permit"]["sector_class"] == "non_essential"
    waiting = (await permits.get("/worklists", params={"kind": "class_review", "limit": 200},
                                 headers=OPERATOR)).json()["worklists"][0]
    assert review["review_id"] not in [item["item_id"] for item in waiting["items"]]


async def test_what_a_claim_or_a_decision_may_hold_is_bounded_and_named(permits):
    for claim, field in (({"sector_class": "vital"}, "sector_class"), ({"sector_class": "x" * 33}, "sector_class"),
                         ({"export_oriented": "maybe"}, "export_oriented")):
        answer = await permits.post("/permits", json=application(["14111"], **claim), headers=COMPANY)
        assert answer.status_code == 422, answer.text
        assert [e["field"] for e in answer.json()["errors"]][-1].endswith(field)
    pid = await applied(permits, application(["14111"], sector_class="non_essential"))
    review = (await permits.get(f"/permits/{pid}", headers=OPERATOR)).json()["sector"]["open_review"]
    for body in ({"decision": "maybe", "reason": "x"}, {"decision": "accept", "reason": ""},
                 {"decision": "accept", "reason": "x" * 1001}, {"decision": "accept"}):
        answer = await permits.post(f"/class-reviews/{review['review_id']}/decision", json=body, headers=OPERATOR)
        assert answer.status_code == 422, (body, answer.text)
    blank = await permits.post(f"/class-reviews/{review['review_id']}/decision", headers=OPERATOR,
                               json={"decision": "accept", "reason": " . "})
    assert blank.status_code == 422 and blank.json()["errors"][0]["field"] == "reason"
    unknown = await permits.post(f"/class-reviews/{uuid.uuid4()}/decision", headers=OPERATOR,
                                 json={"decision": "accept", "reason": "ok"})
    assert unknown.status_code == 404
    for params in ({"status": "open"}, {"limit": 0}, {"limit": 201}, {"province": "３２"}, {"cursor": "x" * 65},
                   {"permit_id": "not-a-uuid"}, {"province": "32", "regency": "33.74"}):
        assert (await permits.get("/class-reviews", params=params, headers=OPERATOR)).status_code == 422, params


async def test_the_review_queue_pages_by_cursor(permits):
    ids = [await applied(permits, application(["13112"], regency="32.04", sector_class="critical"))
           for _ in range(3)]
    seen, cursor = [], None
    while True:
        page = (await permits.get("/class-reviews", params={"regency": "32.04", "limit": 2} | (
            {"cursor": cursor} if cursor else {}), headers=OPERATOR)).json()
        seen += [item["permit_id"] for item in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert [p for p in seen if p in ids] == ids  # oldest first, each once


# -- the table applied at start, and revised ---------------------------------------------------------------------

SCHEMA = "permits_sectors"


@pytest_asyncio.fixture(loop_scope="session")
async def upgraded(platform) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    url = await schema_before(platform, SCHEMA, "permits", 10)
    pool = await create_pool(url, SCHEMA)
    try:
        yield url, pool
    finally:
        await pool.close()


async def recorded_before_the_table(connection: asyncpg.Connection, status: str, kbli: list[str] | None,
                                    declared: str, number: str | None) -> uuid.UUID:
    """A permit as the code before migration 0010 wrote it: its class as the company declared it."""
    permit_id = uuid.uuid4()
    document = {} if kbli is None else {"kbli": kbli, "sector_class": declared}
    await connection.execute(
        "INSERT INTO permits (permit_id, facility_id, nib, company_name, province_code, regency_code, sector_class,"
        " workforce_total, status, permit_number, application, plant_key)"
        " VALUES ($1, $2, $3, 'PT Lama', '32', '32.16', $4, 100, $5, $6, $7::jsonb, $8)",
        permit_id, uuid.uuid4(), NIB, declared, status, number, json.dumps(document), uuid.uuid4().hex)
    return permit_id


def revised(table: KbliSectorTable, version: str, **rows: tuple[SectorClass, bool]) -> KbliSectorTable:
    """`table` with these prefixes' rows replaced or added."""
    kept = [row for row in table.rows if row.prefix not in rows]
    return KbliSectorTable(version, table.source, tuple(kept) + tuple(
        SectorRow(prefix, Classing(*classing), "revised") for prefix, classing in rows.items()))


async def class_changes(connection: asyncpg.Connection, after: int) -> list[asyncpg.Record]:
    return await connection.fetch(
        "SELECT o.*, p.position IS NOT NULL AS queued FROM outbox o LEFT JOIN outbox_pending p USING (position)"
        " WHERE o.position > $1 AND o.event_type = $2 ORDER BY o.position", after, SectorClassChanged.type_name())


async def test_plants_of_before_are_derived_their_claims_kept_and_a_revision_announces_exactly_what_changed(
        upgraded, monkeypatch):
    url, pool = upgraded
    # Plants recorded before the table are derived a few per transaction (thousands in production).
    monkeypatch.setattr(handlers_module, "DECLARED_PER_TRANSACTION", 2)
    async with pool.acquire() as connection:
        numbers = iter(f"IOMKI-2021-{n:06d}" for n in range(1, 100))
        plants = {name: await recorded_before_the_table(connection, status, kbli, declared,
                                                        next(numbers) if status != "SUBMITTED" else None)
                  for name, status, kbli, declared in (
                      ("weaver", "ISSUED", ["13112"], "essential"),  # the table adds export orientation
                      ("bakery", "FROZEN", ["10710"], "essential"),  # the table reads it critical
                      ("smelter", "SUBMITTED", ["24101"], "critical"),  # an application: in review, not announced
                      ("ended", "REVOKED", ["24101"], "critical"),  # revoked: derived, no review, not announced
                      # As declared: announced all the same, the table's first reading of an operating plant.
                      ("steel", "ISSUED", ["24101", "10110"], "non_essential"),
                      ("nameless", "ISSUED", None, "critical"),  # no KBLI code recorded: not listed
                  )}
    await migrate(url, SCHEMA, service_migrations(SCHEMA, "permits"))

    clock = FakeClock(T0)
    database = Database(pool, PermitsWork)
    # A first start stopped after its first transaction keeps what that one did; the next start goes on.
    async with database.transaction() as work:
        stopped = await work.sector_tables.apply(SHIPPED, service="permits", now=T0, actor="permits", declared=2)
    assert (stopped.previous, stopped.declared) == (None, 2)
    async with pool.acquire() as connection:
        assert await connection.fetchval("SELECT count(*) FROM permits WHERE class_basis = 'declared'") == 4
    sectors = SectorHandlers(database, clock, PrincipalActivity(SHIPPED))  # type: ignore[arg-type]
    rest = await sectors.apply_table()
    first = stopped + rest

    assert (rest.previous, rest.declared) == (SHIPPED.version, 4)
    assert (first.previous, first.version, first.changed, first.reviews, first.events, first.declared) == (
        None, SHIPPED.version, 6, 3, 4, 6)
    async with pool.acquire() as connection:
        classes = {name: tuple((await connection.fetchrow(
            "SELECT sector_class, export_oriented, class_basis FROM permits WHERE permit_id = $1", pid)).values())
            for name, pid in plants.items()}
        assert classes == {
            "weaver": ("essential", True, "kbli_table"), "bakery": ("critical", False, "kbli_table"),
            "smelter": ("non_essential", False, "kbli_table"), "ended": ("non_essential", False, "kbli_table"),
            "steel": ("non_essential", False, "kbli_table"), "nameless": ("non_essential", False, "kbli_table")}
        reviews = {row["permit_id"]: row for row in await connection.fetch("SELECT * FROM class_reviews")}
        assert {pid: (r["claimed_class"], r["claimed_export"], r["derived_class"], r["origin"], r["status"],
                      r["table_version"], r["opened_at"], r["province_code"], r["nib"])
                for pid, r in reviews.items()} == {
            plants["bakery"]: ("essential", False, "critical", "upgrade", "pending", "2021.1", T0, "32", NIB),
            plants["smelter"]: ("critical", False, "non_essential", "upgrade", "pending", "2021.1", T0, "32", NIB),
            plants["nameless"]: ("critical", False, "non_essential", "upgrade", "pending", "2021.1", T0, "32", NIB)}
        events = await class_changes(connection, 0)
        assert sorted(uuid.UUID(json.loads(e["value"])["data"]["permit_id"]) for e in events) == sorted(
            plants[name] for name in ("weaver", "bakery", "nameless", "steel"))
        for row in events:
            await exactly_the_wrapped_event(connection, row, first_reading_reason(SHIPPED.version))

        # Started again, or by a second replica: nothing left to do.
        last = await connection.fetchval("SELECT max(position) FROM outbox")
    again = await sectors.apply_table()
    assert (again.previous, again.changed, again.reviews, again.events, again.declared) == (
        SHIPPED.version, 0, 0, 0, 0)

    # An operator accepts the bakery's claim: essential by the operator now, which no revision touches.
    async with pool.acquire() as connection:
        bakery_review = await connection.fetchval("SELECT review_id FROM class_reviews WHERE permit_id = $1",
                                                  plants["bakery"])
    operator = Access(Principal("officer-ani", Role.OPERATOR), Scope.ALL, "decide_class_review")
    await sectors.decide(bakery_review, ReviewDecision.ACCEPT, "roti untuk ekspor", operator)
    async with pool.acquire() as connection:
        [accepted] = await class_changes(connection, last)
        assert json.loads(accepted["value"])["data"]["basis"] == "operator"
        last = accepted["position"]

    # The table is revised: basic metals become essential and export-oriented, food essential.
    clock.set(T0 + timedelta(days=30))
    revision = revised(SHIPPED, "2021.2", **{"24": (SectorClass.ESSENTIAL, True), "10": (SectorClass.ESSENTIAL,
                                                                                         False)})
    sectors = SectorHandlers(database, clock, PrincipalActivity(revision))  # type: ignore[arg-type]
    applied = await sectors.apply_table()

    assert (applied.previous, applied.version, applied.reviews) == ("2021.1", "2021.2", 0)
    async with pool.acquire() as connection:
        events = await class_changes(connection, last)
        # The issued steel works (24 first) is announced; the application and the revoked plant change silently; the
        # bakery is the operator's; the weaver and the nameless plant read as before.
        assert [uuid.UUID(json.loads(e["value"])["data"]["permit_id"]) for e in events] == [plants["steel"]]
        assert applied.events == 1 and applied.changed == 3
        await exactly_the_wrapped_event(connection, events[0], revision_reason("2021.2"))
        changed = {name: tuple((await connection.fetchrow(
            "SELECT sector_class, export_oriented, class_basis FROM permits WHERE permit_id = $1", pid)).values())
            for name, pid in plants.items()}
        assert changed == classes | {
            "steel": ("essential", True, "kbli_table"), "smelter": ("essential", True, "kbli_table"),
            "ended": ("essential", True, "kbli_table"), "bakery": ("essential", False, "operator")}
        assert [tuple(r.values()) for r in await connection.fetch(
            "SELECT version, rows, applied_at, changed, reviews, events FROM kbli_table_revisions ORDER BY seq")] == [
            ("2021.1", len(SHIPPED.rows), T0, 6, 3, 4), ("2021.2", len(revision.rows), T0 + timedelta(days=30), 3, 0,
                                                         1)]
        assert await connection.fetchval("SELECT count(*) FROM kbli_sectors") == len(revision.rows)

        # A row written meanwhile by a replica still on the code of before (its class declared) is derived at the
        # next start, even when the table is the same.
        late = await recorded_before_the_table(connection, "ISSUED", ["31001"], "non_essential", "IOMKI-2021-000099")
    later = await sectors.apply_table()
    assert (later.previous, later.changed, later.reviews, later.events) == ("2021.2", 1, 1, 1)
    async with pool.acquire() as connection:  # counted with the revision in force
        assert tuple((await connection.fetchrow(
            "SELECT version, changed, reviews, events FROM kbli_table_revisions ORDER BY seq DESC LIMIT 1")).values(
        )) == ("2021.2", 4, 1, 2)
    async with pool.acquire() as connection:
        assert tuple((await connection.fetchrow(
            "SELECT sector_class, export_oriented, class_basis FROM permits WHERE permit_id = $1", late)).values()) == (
            "essential", True, "kbli_table")


async def exactly_the_wrapped_event(connection: asyncpg.Connection, row: asyncpg.Record, reason: str) -> None:
    """The event the database built is, byte for byte, the one `Envelope.wrap` writes of the permit as it now is."""
    permit = await connection.fetchrow(
        "SELECT facility_id, province_code, regency_code, permit_id, nib, permit_number, sector_class,"
        " export_oriented FROM permits WHERE permit_id = $1", uuid.UUID(json.loads(row["value"])["data"]["permit_id"]))
    written = json.loads(row["value"])
    wrapped = Envelope.wrap(SectorClassChanged(
        **dict(permit), basis=ClassBasis.KBLI_TABLE, table_version=written["data"]["table_version"], reason=reason),
        service="permits", time=datetime.fromisoformat(written["time"]), event_id=row["event_id"])
    assert row["value"] == wrapped.to_bytes()
    assert (row["event_type"], row["topic"], row["key"]) == (
        wrapped.type, EVENT_TYPES[wrapped.type].topic.name, wrapped.key)
    assert json.loads(row["headers"]) == {"content-type": CONTENT_TYPE, "correlation_id": wrapped.correlationid}
    assert row["queued"]  # for the relay


async def test_the_databases_reading_of_every_code_is_the_domains(upgraded):
    """The set-based derivation in SQL reads each code as `PrincipalActivity` does: for every row's prefix, the
    codes at its edges and beside it."""
    url, pool = upgraded
    await migrate(url, SCHEMA, service_migrations(SCHEMA, "permits"))
    codes = sorted({code for row in SHIPPED.rows for code in (
        row.prefix.ljust(5, "0"), row.prefix.ljust(5, "9"), str(int(row.prefix) + 1).zfill(len(row.prefix)).ljust(
            5, "0"))} | {"01111", "99999", "1"})
    async with pool.acquire() as connection:
        ids = {code: await recorded_before_the_table(connection, "REJECTED", [code], "critical", None)
               for code in codes}
    sectors = SectorHandlers(Database(pool, PermitsWork), FakeClock(T0), PrincipalActivity(SHIPPED))  # type: ignore[arg-type]
    await sectors.apply_table()
    async with pool.acquire() as connection:
        read = {row["permit_id"]: Classing(SectorClass(row["sector_class"]), row["export_oriented"])
                for row in await connection.fetch("SELECT permit_id, sector_class, export_oriented FROM permits")}
    assert {code: read[pid] for code, pid in ids.items()} == {
        code: PrincipalActivity(SHIPPED).derive([code]).classing for code in codes}
