"""`make bench`, section "report ingestion": POST /reports on the real reports service, next to a bare endpoint.

The reports service runs as it is deployed, a uvicorn process, here with `WORKERS` workers ("2 cores"): several
instances of a service are safe, since one relay publishes at a time (an advisory lock elects it) and the
consumers share the work as one consumer group. Its plants arrive as they do in production: `PermitIssued`
events through an outbox, the relay and the broker, from which the service opens each plant's schedule and
first period. wrk (a C load generator, a sliver of the CPU it measures) then sends each open period a distinct
valid report with its company's token (`bench/reports.lua`): validation, access, the transaction with the
report and its `ReportSubmitted` in the outbox, and the relay publishing it, all as in production.

The plants come in two cohorts: one in a regency with no PPKM level in force (what POST /reports did before staffing
caps: the level is looked up and none is found), and one in a regency at PPKM level 4, where every report is
checked against its cap (within it: the reports are consistent with the shipped September 2021 rules' lift), in
the same run, one after the other.

Then the public's complaints: the supervision service joins (it learns every plant from the permits topic and
follows the reports' events, as deployed), and POST /reports runs twice more on fresh plants of a third regency,
quiet, then while a burst of 10,000 complaints about the plants arrives (`bench/complaints.lua`: as many people,
each from their own address, at a pace spreading them over the run). The supervision service runs at a lower CPU
priority (`nice`), and so do its database sessions during the burst, as its Deployment runs on a CPU limit of its
own (`deploy/k8s/supervision.yaml`) with a database server of its own: on two shared cores that is what stands for
the separate nodes of a deployment, where a flood of complaints cannot take the reports service's CPU at all.
Complaints it cannot take at once wait in its queue; none is refused.

The reference, in the same run on the same database: a bare FastAPI endpoint under the same uvicorn settings
and workers that parses the same JSON bodies and stores each with one asyncpg INSERT.

`python -m bench.ingestion` runs this section alone, on a database and broker of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI
from rich.console import Console
from rich.table import Table

from bench.platform import alone, process_environment, run_as_deployed
from bench.workers import MIGRATIONS
from shared.contract import Envelope, PermitIssued, SectorClass
from shared.runtime import ServiceRuntime
from shared.settings import PlatformSettings
from shared.storage.db import role_of
from shared.storage.unit_of_work import UnitOfWork
from shared.web.access import Role, mint
from tooling.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / ".data" / "bench-logs"
WRK_SCRIPT = Path(__file__).parent / "reports.lua"
COMPLAINTS_SCRIPT = Path(__file__).parent / "complaints.lua"
WORKERS = 2
PLANTS = int(os.environ.get("IOMKI_BENCH_INGESTION_PLANTS", "30000"))
WARMUP_PLANTS = 3_000  # the warm-up's own plants: the measured run sends first reports, not corrections
CONNECTIONS = 32
WARMUP_SECONDS = 3
SECONDS = 15
UNCHECKED_REGENCY = "32.16"  # no PPKM level in force
CHECKED_REGENCY = "32.15"  # PPKM level 4 from the day before the run
BURST_REGENCY = "32.04"  # no PPKM level in force: its plants report quiet, then during the complaints' burst
BURST_PLANTS = PLANTS  # each of the two runs' fresh plants: first reports only, as in the runs above
BURST_COMPLAINTS = 10_000
COMPLAINT_CONNECTIONS = 8
SUPERVISION_NICE = 10  # the supervision service's lower CPU priority on the bench's shared cores


# -- the platform's services as processes on the bench's broker and database ---------------------------------


@dataclass
class ServiceProcess:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_ready(self, path: str = "/readyz", timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
                try:
                    if (await client.get(self.url + path)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s: {self.log.read_text()[-3000:]}")
                await asyncio.sleep(0.2)

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server and its workers. Per request, it is the service's own cost, which
        a machine busy with other work inflates far less than it does wall-clock rates."""
        pids = [str(self.process.pid)]
        pids += Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return cpu_seconds_of(pids)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def cpu_seconds_of(pids: list[str]) -> float:
    ticks = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:  # it has exited since it was listed
            continue
        # Fields 14 to 17 (utime, stime, and cutime, cstime: the time of its children that ended, as a database
        # connection's process does when it closes), counted after the command name, which may hold spaces.
        fields = stat.rpartition(")")[2].split()
        ticks += sum(int(field) for field in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def command_cpu_seconds(command: str) -> float:
    """CPU time used so far by this machine's processes of that command name (the broker: `java`)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == command:
                pids.append(entry.name)
        except OSError:
            continue
    return cpu_seconds_of(pids)


def database_cpu_seconds() -> float:
    """CPU time used so far by the PostgreSQL server processes on this machine (0 when the database runs
    elsewhere). The service and its database share the machine's cores: together they bound its rate."""
    return command_cpu_seconds("postgres")


def start_uvicorn(settings: PlatformSettings, name: str, factory: str, *, workers: int = 1, nice: int = 0,
                  **environment: str) -> ServiceProcess:
    """`factory` (module:function making the app) under uvicorn as deployed: no access log, warnings only; at a
    lower CPU priority when `nice` is given."""
    LOGS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = LOGS / f"{name}.log"
    env = {**os.environ, **process_environment(settings), **environment}
    with open(log, "wb") as output:
        # This interpreter, running uvicorn on one of the bench's own app factories.
        process = subprocess.Popen(  # noqa: S603
            [*(["nice", "-n", str(nice)] if nice else []), sys.executable, "-m", "uvicorn", factory, "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level", "warning",
             "--no-access-log"],
            env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
        )
    return ServiceProcess(name, process, port, log)


# -- plants, issued as the permits service issues them ------------------------------------------------------


@dataclass(frozen=True)
class Plant:
    facility_id: uuid.UUID
    permit_id: uuid.UUID
    nib: str


@asynccontextmanager
async def event_source(settings: PlatformSettings) -> AsyncIterator[ServiceRuntime]:
    """A producer with the platform's outbox and relay, standing in for the services the bench does not run."""
    source = ServiceRuntime(name="bench_source", settings=settings, migrations=MIGRATIONS, unit_of_work=UnitOfWork)
    try:  # stopped even when it never reached the broker
        await source.start()
        await source.broker_connected.wait()
        yield source
    finally:
        await source.stop()


def new_plants(count: int) -> list[Plant]:
    return [Plant(uuid.uuid4(), uuid.uuid4(), f"81{index:011d}") for index in range(count)]


def permit_issued(plant: Plant, *, province_code: str = "32", regency_code: str = "32.16") -> Envelope:
    return Envelope.wrap(PermitIssued(
        facility_id=plant.facility_id, province_code=province_code, regency_code=regency_code,
        permit_id=plant.permit_id, nib=plant.nib, permit_number=f"IOMKI-2026-{plant.nib[-6:]}",
        company_name=f"PT Bench {plant.nib[-6:]}", sector_class=SectorClass.ESSENTIAL, workforce_total=400,
        issued_at=datetime.now(UTC),
    ), service="permits")


async def publish(source: ServiceRuntime, envelopes: list[Envelope], batch: int = 500) -> None:
    for offset in range(0, len(envelopes), batch):
        async with source.database.transaction() as work:
            await work.outbox.add(*envelopes[offset:offset + batch])


async def wait_until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 180) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}") from None


# -- the reference endpoint ---------------------------------------------------------------------------------


def reference_app(insert: Callable[[uuid.UUID, str], Awaitable[Any]] | None = None) -> FastAPI:
    """A bare FastAPI endpoint: parse the JSON body, store it with one asyncpg INSERT, answer 201. `insert`, when
    given, stands in for the INSERT (`bench.instructions` counts the HTTP path alone)."""
    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=2, max_size=10)  # the services' size
        yield
        await pool.close()

    async def insert_row(report_id: uuid.UUID, payload: str) -> None:
        if pool is None:
            raise RuntimeError("the reference endpoint served a request before its lifespan started")
        await pool.execute("INSERT INTO bench_reference.reports (report_id, payload) VALUES ($1, $2::jsonb)",
                           report_id, payload)

    app = FastAPI(lifespan=lifespan)
    store_row = insert or insert_row

    @app.post("/reports", status_code=201)
    async def store(report: dict[str, Any]) -> dict[str, str]:
        report_id = uuid.uuid4()
        await store_row(report_id, json.dumps(report))
        return {"report_id": str(report_id)}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


# -- the load ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    failed: int
    p50_ms: float
    p99_ms: float
    cpu_ms: float = 0.0  # the service's processes' CPU time per request
    database_cpu_ms: float = 0.0  # PostgreSQL's, per request

    @property
    def ceiling(self) -> float:
        """Requests/s that two cores would carry if they ran only the service and its database."""
        return 2000 / (self.cpu_ms + self.database_cpu_ms)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed (Debian package `wrk`; `make bench` installs it)")
    return found


async def run_wrk(*arguments: str) -> dict[str, Any]:
    """wrk with one thread and `arguments`; the figures its script prints as its last line (JSON)."""
    process = await asyncio.create_subprocess_exec(
        wrk_binary(), "-t1", *arguments, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    lines = output.decode().strip().splitlines()
    if process.returncode != 0 or not lines or not lines[-1].startswith("{"):
        raise RuntimeError(f"wrk failed: {output.decode()[-2000:]}")
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures


async def wrk(url: str, plants_file: Path, seconds: int) -> Load:
    figures = await run_wrk(f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s", "-s", str(WRK_SCRIPT),
                            url + "/reports", "--", str(plants_file), "1")
    return Load(figures["requests"], figures["duration_us"] / 1e6, figures["non_2xx"] + figures["socket_errors"],
                figures["p50_us"] / 1000, figures["p99_us"] / 1000)


@dataclass(frozen=True)
class Burst:
    sent: int
    accepted: int
    limited: int
    seconds: float
    p50_ms: float
    p99_ms: float
    stored: int = 0  # complaints in the supervision service's table afterwards
    cpu_ms: float = 0.0  # the supervision service's CPU time per complaint (its consumers' share included)
    # CPU seconds of the supervision service and of the broker over the quiet run and over the burst's run.
    others: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 0.0), (0.0, 0.0))


async def complaint_burst(url: str, permits_file: Path, total: int, pace_seconds: float) -> Burst:
    """`total` complaints from as many addresses over about `pace_seconds`, each connection pausing between its
    own; stopped once every one is answered."""
    pause_ms = max(int(COMPLAINT_CONNECTIONS * pace_seconds * 1000 / total), 0)
    figures = await run_wrk(f"-c{COMPLAINT_CONNECTIONS}", f"-d{int(pace_seconds * 4)}s", "--timeout", "30s", "-s",
                            str(COMPLAINTS_SCRIPT), url + "/public/complaints", "--", str(permits_file), "1",
                            str(total), str(pause_ms))
    return Burst(figures["requests"], figures["accepted"], figures["limited"], figures["duration_us"] / 1e6,
                 figures["p50_us"] / 1000, figures["p99_us"] / 1000)


async def settled(admin: asyncpg.Connection) -> None:
    """The reports tables vacuumed and analyzed before a measurement, as autovacuum would leave them, and a
    checkpoint taken: so that neither starts in the middle of one run and not of another."""
    await admin.execute("VACUUM (ANALYZE) reports.reports, reports.periods, reports.schedules,"
                        " reports.latest_vaccination, reports.outbox")
    await admin.execute("CHECKPOINT")


async def measure(service: ServiceProcess, warmup_file: Path, plants_file: Path,
                  alongside: Callable[[], Awaitable[Any]] | None = None) -> tuple[Load, Any]:
    """POST /reports for `SECONDS` after a warm-up, with `alongside` (another load) running from the same moment;
    its result is returned with the figures."""
    await wrk(service.url, warmup_file, WARMUP_SECONDS)
    cpu, database_cpu = service.cpu_seconds(), database_cpu_seconds()
    other = asyncio.create_task(alongside()) if alongside is not None else None
    load = await wrk(service.url, plants_file, SECONDS)
    if other is not None:
        await other
    per_request = 1000 / max(load.requests, 1)
    return replace(load, cpu_ms=(service.cpu_seconds() - cpu) * per_request,
                   database_cpu_ms=(database_cpu_seconds() - database_cpu) * per_request), (
        other.result() if other is not None else None)


def write_plants(path: Path, rows: list[asyncpg.Record], secret: str) -> None:
    """One line per open period: its permit, the period, and a token of the plant's company."""
    with open(path, "w") as out:
        for row in rows:
            token = mint(secret, role=Role.COMPANY, nib=row["nib"], ttl_seconds=3600)
            out.write(f"{row['permit_id']} {row['period_id']} {token}\n")


# -- the section -------------------------------------------------------------------------------------------


async def run(settings: PlatformSettings, console: Console) -> None:
    console.print(f"report ingestion: {PLANTS:,} plants issued through the pipeline, POST /reports for "
                  f"{SECONDS}s at {CONNECTIONS} connections, {WORKERS} uvicorn workers, then the reference…")
    admin = await asyncpg.connect(settings.database_url)  # the bench reads the services' tables as the operator
    work_dir = Path(tempfile.mkdtemp(prefix="iomki-bench-"))
    reports = start_uvicorn(settings, "reports", "services.reports.app:create_app", workers=WORKERS)
    try:
        await reports.wait_ready()
        plants = new_plants(PLANTS + WARMUP_PLANTS)
        checked_plants = new_plants(PLANTS + WARMUP_PLANTS)
        burst_plants = new_plants(2 * BURST_PLANTS + WARMUP_PLANTS)
        started = time.perf_counter()
        async with event_source(settings) as source:
            await publish(source, [permit_issued(plant, regency_code=UNCHECKED_REGENCY) for plant in plants]
                          + [permit_issued(plant, regency_code=CHECKED_REGENCY) for plant in checked_plants])
            await wait_until(lambda: _counted(admin, "SELECT count(*) FROM reports.periods", 2 * len(plants)),
                             "the reports service to open every plant's first period")
            seeded = time.perf_counter() - started
            await publish(source, [permit_issued(plant, regency_code=BURST_REGENCY) for plant in burst_plants])
            await wait_until(lambda: _counted(admin, "SELECT count(*) FROM reports.periods",
                                              2 * len(plants) + len(burst_plants)),
                             "the reports service to open the burst regency's first periods")
        await admin.execute(
            "INSERT INTO reports.ppkm_levels (level_id, region_code, province_code, level, effective_from,"
            " instruction, source, actor, recorded_at) VALUES ($1, $2, '32', '4', $3, 'bench', 'operator', 'bench',"
            " now())", uuid.uuid4(), CHECKED_REGENCY, date.today() - timedelta(days=1))
        for regency, name in ((UNCHECKED_REGENCY, "unchecked"), (CHECKED_REGENCY, "checked")):
            rows = await admin.fetch(
                "SELECT p.permit_id, p.period_id, s.nib FROM reports.periods p JOIN reports.schedules s"
                " USING (permit_id) WHERE s.regency_code = $1 ORDER BY p.permit_id", regency)
            write_plants(work_dir / f"{name}-warmup.txt", rows[:WARMUP_PLANTS], settings.jwt_secret or "")
            write_plants(work_dir / f"{name}.txt", rows[WARMUP_PLANTS:], settings.jwt_secret or "")
        await settled(admin)
        ours, _ = await measure(reports, work_dir / "unchecked-warmup.txt", work_dir / "unchecked.txt")
        await settled(admin)
        checked, _ = await measure(reports, work_dir / "checked-warmup.txt", work_dir / "checked.txt")
        breaches = await admin.fetchval("SELECT count(*) FROM reports.capacity_breaches")
        quiet, loud, burst = await complaints_section(settings, admin, reports, work_dir)
        stored = await admin.fetchval("SELECT count(*) FROM reports.reports")
    finally:
        reports.stop()

    await admin.execute("CREATE SCHEMA IF NOT EXISTS bench_reference;"
                        " CREATE TABLE IF NOT EXISTS bench_reference.reports"
                        " (report_id uuid PRIMARY KEY, payload jsonb NOT NULL)")
    reference = start_uvicorn(settings, "reference", "bench.ingestion:reference_app", workers=WORKERS)
    try:
        await reference.wait_ready("/healthz")
        bare, _ = await measure(reference, work_dir / "unchecked-warmup.txt", work_dir / "unchecked.txt")
    finally:
        reference.stop()
        await admin.close()
        shutil.rmtree(work_dir, ignore_errors=True)
    print_ingestion(console, 2 * len(plants), seeded, ours, bare, stored)
    print_check(console, ours, checked, breaches)
    print_burst(console, quiet, loud, burst)


async def complaints_section(settings: PlatformSettings, admin: asyncpg.Connection, reports: ServiceProcess,
                             work_dir: Path) -> tuple[Load, Load, Burst]:
    """The supervision service up and caught up with the pipeline; then POST /reports quiet, and during the burst."""
    supervision = start_uvicorn(settings, "supervision", "services.supervision.app:create_app", nice=SUPERVISION_NICE,
                                IOMKI_CLIENT_ADDRESS_HEADER="X-Forwarded-For")
    try:
        await supervision.wait_ready()
        issued = await admin.fetchval("SELECT count(*) FROM reports.schedules")
        await wait_until(lambda: _counted(admin, "SELECT count(*) FROM supervision.plants", issued),
                         "the supervision service to learn every plant")
        declared = await admin.fetchval("SELECT count(*) FROM reports.reports")
        await wait_until(lambda: _counted(admin, "SELECT count(*) FROM supervision.declared_reports", declared),
                         "the supervision service to follow the reports already made")
        rows = await admin.fetch(
            "SELECT p.permit_id, p.period_id, s.nib, s.permit_number FROM reports.periods p JOIN reports.schedules s"
            " USING (permit_id) WHERE s.regency_code = $1 ORDER BY p.permit_id", BURST_REGENCY)
        secret = settings.jwt_secret or ""
        write_plants(work_dir / "burst-warmup.txt", rows[:WARMUP_PLANTS], secret)
        write_plants(work_dir / "quiet.txt", rows[WARMUP_PLANTS:WARMUP_PLANTS + BURST_PLANTS], secret)
        write_plants(work_dir / "burst.txt", rows[WARMUP_PLANTS + BURST_PLANTS:], secret)
        (work_dir / "complained.txt").write_text("".join(f"{row['permit_number']}\n" for row in rows[:2_000]))
        await settled(admin)
        before = cpu_of_others(supervision)
        quiet, _ = await measure(reports, work_dir / "burst-warmup.txt", work_dir / "quiet.txt")
        quiet_others = cpu_of_others(supervision, since=before)
        await settled(admin)
        cpu = supervision.cpu_seconds()
        before = cpu_of_others(supervision)

        async def burst_at_its_priority() -> Burst:
            lowering = asyncio.create_task(keep_sessions_lowered(admin, role_of("supervision")))
            try:
                return await complaint_burst(supervision.url, work_dir / "complained.txt", BURST_COMPLAINTS, SECONDS)
            finally:
                lowering.cancel()
        loud, burst = await measure(reports, work_dir / "burst-warmup.txt", work_dir / "burst.txt",
                                    burst_at_its_priority)
        loud_others = cpu_of_others(supervision, since=before)
        # wrk stops a connection once its share is answered: a few more may have been sent and stored meanwhile.
        stored, first, last = await admin.fetchrow(
            "SELECT count(*), min(filed_at), max(filed_at) FROM supervision.complaints")
        if stored < burst.accepted:
            raise RuntimeError(f"{burst.accepted:,} complaints answered 201 but {stored:,} are stored")
        return quiet, loud, replace(burst, stored=stored, seconds=(last - first).total_seconds(),
                                    cpu_ms=(supervision.cpu_seconds() - cpu) * 1000 / max(stored, 1),
                                    others=(quiet_others, loud_others))
    finally:
        supervision.stop()


def cpu_of_others(supervision: ServiceProcess, since: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
    """CPU seconds so far (or since `since`) of the supervision service and of the broker (Java)."""
    return supervision.cpu_seconds() - since[0], command_cpu_seconds("java") - since[1]


async def keep_sessions_lowered(admin: asyncpg.Connection, role: str) -> None:
    """The database sessions of `role` at the same lower CPU priority as its service: each PostgreSQL backend is a
    session of its own (its own autogroup, which `nice` does not reach), and here it stands for that service's own
    database server. Checked every second, for the sessions its pool opens meanwhile."""
    lowered: set[int] = set()
    while True:
        for row in await admin.fetch("SELECT pid FROM pg_stat_activity WHERE usename = $1", role):
            if row["pid"] not in lowered:
                with contextlib.suppress(OSError):  # gone meanwhile, or not ours to lower: it runs as it is
                    Path(f"/proc/{row['pid']}/autogroup").write_text(str(SUPERVISION_NICE))
                    lowered.add(row["pid"])
        await asyncio.sleep(1)


async def _counted(admin: asyncpg.Connection, query: str, expected: int) -> bool:
    return await admin.fetchval(query) >= expected


def _comparison(title: str, first: str, second: str) -> Table:
    """A table of measures, each in two runs side by side, with their ratio or target."""
    table = Table(title=title)
    table.add_column("measure")
    table.add_column(first, justify="right")
    table.add_column(second, justify="right")
    table.add_column("ratio / target", justify="right")
    return table


def print_ingestion(console: Console, plants: int, seeded: float, ours: Load, bare: Load, stored: int) -> None:
    table = _comparison(f"report ingestion over HTTP ({WORKERS} uvicorn workers, {CONNECTIONS} connections, wrk)",
                        "figure", "reference")
    table.add_row("PermitIssued → schedule and first period (seeding)", f"{plants / seeded:,.0f} plants/s", "", "")
    table.add_row("POST /reports (validation, access, transaction, outbox)", f"{ours.rate:,.0f} requests/s",
                  f"{bare.rate:,.0f} requests/s", f"{ours.rate / bare.rate:.2f} (target ≥ 2,000/s)")
    table.add_row("POST /reports, p50", f"{ours.p50_ms:.1f} ms", f"{bare.p50_ms:.1f} ms", "")
    table.add_row("POST /reports, p99", f"{ours.p99_ms:.1f} ms", f"{bare.p99_ms:.1f} ms", "")
    table.add_row("CPU of the service's processes per request", f"{ours.cpu_ms:.2f} ms", f"{bare.cpu_ms:.2f} ms",
                  f"{ours.cpu_ms / bare.cpu_ms:.2f}")
    if ours.database_cpu_ms and bare.database_cpu_ms:  # measured only when PostgreSQL runs on this machine
        table.add_row("CPU of PostgreSQL per request", f"{ours.database_cpu_ms:.2f} ms",
                      f"{bare.database_cpu_ms:.2f} ms", f"{ours.database_cpu_ms / bare.database_cpu_ms:.2f}")
        table.add_row("2 cores ÷ (service + PostgreSQL CPU per request): the rate with wrk and the broker elsewhere",
                      f"{ours.ceiling:,.0f} requests/s",
                      f"{bare.ceiling:,.0f} requests/s", f"{ours.ceiling / bare.ceiling:.2f}")
    table.add_row("answers other than 201 / socket errors", f"{ours.failed:,}", f"{bare.failed:,}", "")
    table.add_row("reports stored (warm-up included)", f"{stored:,}", "", "")
    console.print(table)


def print_burst(console: Console, quiet: Load, loud: Load, burst: Burst) -> None:
    table = _comparison(f"POST /reports while {BURST_COMPLAINTS:,} public complaints arrive (same service, same run)",
                        "quiet", "during the burst")
    table.add_row("POST /reports", f"{quiet.rate:,.0f} requests/s", f"{loud.rate:,.0f} requests/s",
                  f"{loud.rate / quiet.rate:.2f} (target ≥ 0.90)")
    table.add_row("POST /reports, p50 / p99", f"{quiet.p50_ms:.1f} / {quiet.p99_ms:.1f} ms",
                  f"{loud.p50_ms:.1f} / {loud.p99_ms:.1f} ms", "")
    table.add_row("answers other than 201 / socket errors", f"{quiet.failed:,}", f"{loud.failed:,}", "")
    table.add_row(f"complaints ({COMPLAINT_CONNECTIONS} connections, one address each, paced over {SECONDS} s):"
                  " sent, and the first to the last filed", "", f"{burst.sent:,} in {burst.seconds:.1f} s", "")
    table.add_row("  answered 201 / refused for their rate (429) / stored", "",
                  f"{burst.accepted:,} / {burst.limited:,} / {burst.stored:,}", f"{BURST_COMPLAINTS:,} / 0 / all")
    table.add_row("  POST /public/complaints, p50 / p99", "", f"{burst.p50_ms:.1f} / {burst.p99_ms:.1f} ms", "")
    table.add_row(f"  CPU of the supervision service (nice {SUPERVISION_NICE}) per complaint", "",
                  f"{burst.cpu_ms:.2f} ms", "")
    (quiet_supervision, quiet_broker), (loud_supervision, loud_broker) = burst.others
    table.add_row("CPU over the run, warm-up included: the supervision service / the broker",
                  f"{quiet_supervision:.1f} / {quiet_broker:.1f} s", f"{loud_supervision:.1f} / {loud_broker:.1f} s",
                  "")
    table.add_row("CPU per report: the reports service / PostgreSQL (all of it, complaints' too)",
                  f"{quiet.cpu_ms:.2f} / {quiet.database_cpu_ms:.2f} ms",
                  f"{loud.cpu_ms:.2f} / {loud.database_cpu_ms:.2f} ms", "")
    console.print(table)


def print_check(console: Console, unchecked: Load, checked: Load, breaches: int) -> None:
    table = _comparison("POST /reports checked against the PPKM staffing cap (same service, same run)",
                        "no level in force", "PPKM level 4, checked")
    table.add_row("POST /reports", f"{unchecked.rate:,.0f} requests/s", f"{checked.rate:,.0f} requests/s",
                  f"{checked.rate / unchecked.rate:.2f} (target ≥ 0.90: the check adds under 10 %)")
    table.add_row("POST /reports, p50 / p99", f"{unchecked.p50_ms:.1f} / {unchecked.p99_ms:.1f} ms",
                  f"{checked.p50_ms:.1f} / {checked.p99_ms:.1f} ms", "")
    table.add_row("CPU of the service's processes per request", f"{unchecked.cpu_ms:.2f} ms",
                  f"{checked.cpu_ms:.2f} ms", f"{checked.cpu_ms / unchecked.cpu_ms:.2f}")
    table.add_row("answers other than 201 / socket errors", f"{unchecked.failed:,}", f"{checked.failed:,}", "")
    table.add_row("capacity breaches found (the reports are within the lifted cap)", "", f"{breaches:,}", "0")
    console.print(table)


if __name__ == "__main__":
    run_as_deployed(alone(run))
