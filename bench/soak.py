"""`make soak`: a steady mixed load on the running platform for a long while, and what it did to the processes.

Against the platform at `IOMKI_<SERVICE>_URL` when all five are given (authenticated with `IOMKI_TOKEN`, or an
operator token minted with the platform's development secret); otherwise it brings up a platform of its own,
like `iomki up` (embedded PostgreSQL under `.data/soak`, fresh each run, or a fresh database on
`DATABASE_URL`'s server; an Apache Kafka node; the five services as processes), on free ports so that a
running `make run` is left alone, and stops all of it at the end, on failure and on Ctrl-C too.

A few dozen plants are issued first and seen by the other services; then, at `IOMKI_SOAK_RATE` actions per
second for `IOMKI_SOAK_SECONDS`, new plants apply and are issued, plants report, cases are reported (clusters
close plants and raise alerts) and the APIs are read. It prints, per kind of request, the rate achieved,
p50/p99 latency and the answers by status; the events that went through the pipeline (from /metrics); and
each process's memory at start, half-time and end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import os
import random
import shutil
import statistics
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from bench.platform import bench_kafka, run_as_deployed
from shared.observability import configure_logging
from shared.settings import SERVICES, PlatformSettings, local_url
from shared.storage.db import drop_database, ensure_database, with_database
from shared.storage.embedded import stop_embedded_postgres
from shared.web.access import Role, mint
from tooling.demo.runner import DemoPlatform
from tooling.demo.scenario import Plant, Scenario, cast
from tooling.launcher import development_secret
from tooling.ports import free_ports

SECONDS = float(os.environ.get("IOMKI_SOAK_SECONDS", "600"))
RATE = float(os.environ.get("IOMKI_SOAK_RATE", "20"))
DATA_DIR = Path(".data") / "soak"
REPORTING_PLANTS = 30  # issued before the clock starts; they file reports
CASE_PLANTS = 10  # issued before the clock starts; they get cases, so clusters close them and raise alerts
IN_FLIGHT = 64  # the load is open (requests start on schedule) but bounded
# One round of the mix, in actions: one application (apply, then issue), three reports, one case, ten reads.
MIX = ("apply", "report", "read", "read", "read", "report", "read", "case", "read", "read", "report", "read",
       "read", "read", "read")
console = Console()


# ------------------------------------------------------------------------------------------ the platform


@dataclasses.dataclass
class Target:
    """Where the services answer, and the processes behind them that this machine can see."""

    urls: dict[str, str]
    token: str
    database_url: str | None
    broker_pid: int | None


@asynccontextmanager
async def target() -> AsyncIterator[Target]:
    given = {service: os.environ.get(f"IOMKI_{service.upper()}_URL") for service in SERVICES}
    if all(given.values()):
        settings = PlatformSettings()
        token = os.environ.get("IOMKI_TOKEN") or operator_token(development_secret(settings))
        host, _, port = settings.bootstrap.rpartition(":")
        broker_pid = listening_pid(int(port)) if host in ("127.0.0.1", "localhost") else None
        yield Target({s: url.rstrip("/") for s, url in given.items()}, token, settings.database_url, broker_pid)
        return
    if any(given.values()):
        raise SystemExit("give every IOMKI_<SERVICE>_URL to soak a running platform, or none to start one")
    async with own_platform() as started:
        yield started


@asynccontextmanager
async def own_platform() -> AsyncIterator[Target]:
    os.environ["IOMKI_DATA_DIR"] = str(DATA_DIR)
    os.environ["IOMKI_LOG_FORMAT"] = "json"
    os.environ.update({f"IOMKI_{service.upper()}_PORT": str(port)
                       for service, port in zip(SERVICES, free_ports(len(SERVICES)), strict=True)})
    server_url = os.environ.get("DATABASE_URL")
    stop_embedded_postgres(DATA_DIR / "postgres")
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    database = f"iomki_soak_{uuid.uuid4().hex[:6]}"
    if server_url:  # a database of its own on that server, dropped at the end
        await ensure_database(server_url, database)
        os.environ["DATABASE_URL"] = with_database(server_url, database)
    try:
        async with bench_kafka() as kafka:
            os.environ["KAFKA_BOOTSTRAP"] = kafka.bootstrap
            platform = DemoPlatform(PlatformSettings())
            try:
                console.print(f"Starting the platform (logs in {DATA_DIR}/<service>.log)…")
                await platform.prepare()
                for service in SERVICES:
                    platform.start_service(service)
                ready = await platform.wait_ready()
                if not all(ready.values()):
                    raise SystemExit(f"not ready: {[s for s, up in ready.items() if not up]};"
                                     f" see {DATA_DIR}/<service>.log")
                yield Target({service: local_url(service) for service in SERVICES},
                             operator_token(development_secret(platform.settings)),
                             platform.environment["DATABASE_URL"], kafka.nodes[0].pid)
            finally:
                platform.stop()  # the services, and the embedded PostgreSQL if it started one
    finally:
        if server_url:
            await drop_database(server_url, database)
            os.environ["DATABASE_URL"] = server_url


def operator_token(secret: str) -> str:
    return mint(secret, role=Role.OPERATOR, sub="soak", ttl_seconds=int(SECONDS) + 3600)


# ------------------------------------------------------------------------------------------ memory


def rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def pss_bytes(pid: int) -> int:
    """Proportional set size: shared pages (PostgreSQL's shared buffers) split among the processes sharing them."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def children_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


def listening_pid(port: int) -> int | None:
    """The local process listening on a TCP port (to measure a broker the soak did not start)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                    return int(entry.name)
            except OSError:
                continue
    return None


async def postmaster_pid(database_url: str | None) -> int | None:
    """The PostgreSQL server's main process, when it runs on this machine (its data directory is readable):
    the server at `database_url`, else the embedded one of `make run`."""
    try:
        if database_url:
            connection = await asyncpg.connect(database_url, timeout=5)
            try:
                directory = Path(await connection.fetchval("SHOW data_directory"))
            finally:
                await connection.close()
        else:
            directory = PlatformSettings().data_dir / "postgres"
        return int((directory / "postmaster.pid").read_text().split()[0])
    except (OSError, asyncpg.PostgresError, ValueError):
        return None


async def memory(http: httpx.AsyncClient, site: Target, postmaster: int | None) -> dict[str, int | None]:
    """Each service's resident memory (from its /metrics), the broker's, and PostgreSQL's (all its processes)."""
    found: dict[str, int | None] = {}
    for service, url in site.urls.items():
        value = (await totals(http, url)).get("process_resident_memory_bytes")
        found[service] = int(value) if value is not None else None
    found["broker"] = rss_bytes(site.broker_pid) if site.broker_pid else None
    found["postgres"] = (pss_bytes(postmaster) + sum(map(pss_bytes, children_of(postmaster)))) if postmaster else None
    return found


async def totals(http: httpx.AsyncClient, url: str) -> dict[str, float]:
    """A service's /metrics, each sample name summed over its labels."""
    summed: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families((await http.get(f"{url}/metrics")).text):
        for sample in family.samples:
            summed[sample.name] += sample.value
    return summed


async def pipeline(http: httpx.AsyncClient, site: Target) -> Counter[str]:
    figures: Counter[str] = Counter()
    for url in site.urls.values():
        found = await totals(http, url)
        for name in ("iomki_events_published_total", "iomki_events_consumed_total", "iomki_events_duplicate_total",
                     "iomki_events_failed_total", "iomki_events_dead_lettered_total", "iomki_outbox_backlog"):
            figures[name] += int(found.get(name, 0))
    return figures


# ------------------------------------------------------------------------------------------ the load


@dataclasses.dataclass(frozen=True)
class Issued:
    plant: Plant
    permit_id: str
    facility_id: str


@dataclasses.dataclass
class Load:
    http: httpx.AsyncClient
    urls: dict[str, str]
    plants: list[Plant]
    latencies: dict[str, list[float]] = dataclasses.field(default_factory=lambda: defaultdict(list))
    answers: dict[str, Counter[str]] = dataclasses.field(default_factory=lambda: defaultdict(Counter))
    issued: list[Issued] = dataclasses.field(default_factory=list)
    known: list[Issued] = dataclasses.field(default_factory=list)  # seen by every service, so reads find them
    reporting: list[tuple[Issued, str]] = dataclasses.field(default_factory=list)  # with its open period's id
    rng: random.Random = dataclasses.field(default_factory=lambda: random.Random(2021))  # noqa: S311 -- a repeatable load mix
    _next_plant: itertools.count = dataclasses.field(default_factory=itertools.count)
    _cases: itertools.count = dataclasses.field(default_factory=lambda: itertools.count(1))

    async def call(self, kind: str, method: str, service: str, path: str, body: object = None) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await self.http.request(method, f"{self.urls[service]}{path}", json=body)
        except httpx.HTTPError as exc:
            self.answers[kind][type(exc).__name__] += 1
            return None
        self.latencies[kind].append((time.perf_counter() - started) * 1000)
        self.answers[kind][str(response.status_code)] += 1
        return response

    async def apply(self) -> None:
        plant = self.plants[next(self._next_plant)]
        applied = await self.call("apply", "POST", "permits", "/permits", plant.application())
        if applied is None or applied.status_code != 201:
            return
        permit_id, facility_id = applied.json()["permit_id"], applied.json()["facility_id"]
        issued = await self.call("issue", "POST", "permits", f"/permits/{permit_id}/decision",
                                 {"decision": "issue", "reason": "documents complete"})
        if issued is not None and issued.status_code == 200:
            self.issued.append(Issued(plant, permit_id, facility_id))

    async def report(self) -> None:
        issued, period_id = self.rng.choice(self.reporting)
        await self.call("report", "POST", "reports", "/reports",
                        issued.plant.report(issued.permit_id, period_id, self.rng))

    async def case(self, facility_id: str) -> None:
        today, symptomatic = date.today(), self.rng.random() < 0.5
        # A symptomatic case isolates from its symptom onset, which the service requires.
        onset = today - timedelta(days=self.rng.randint(0, 3)) if symptomatic else None
        await self.call("case", "POST", "incidents", "/cases", {
            "facility_id": facility_id, "case_ref": f"SOAK-{next(self._cases)}", "confirmed_on": today.isoformat(),
            "symptomatic": symptomatic, "symptom_onset_on": onset.isoformat() if onset else None,
            "close_contacts": self.rng.randint(0, 12)})

    async def read(self) -> None:
        permit_id, facility_id = (known := self.rng.choice(self.known)).permit_id, known.facility_id
        service, path = self.rng.choice((
            ("permits", f"/permits/{self.rng.choice(self.issued).permit_id}"),
            ("permits", "/permits?province=32&limit=50"),
            ("permits", "/permits/summary"), ("reports", f"/schedules/{permit_id}?limit=5"),
            ("reports", "/compliance?province=32"), ("incidents", f"/facilities/{facility_id}/status"),
            ("incidents", "/incidents?limit=50"), ("notifier", "/alerts?status=open&limit=50"),
        ))
        await self.call("read", "GET", service, path)


async def seed(load: Load) -> list[str]:
    """Plants issued before the clock starts, once reports and incidents know them: the reporting plants' open
    periods, and the facilities that will get cases."""
    for _ in range(REPORTING_PLANTS + CASE_PLANTS):
        await load.apply()
    async with asyncio.timeout(180):
        for issued in load.issued:
            schedule = await found(load.http, f"{load.urls['reports']}/schedules/{issued.permit_id}?limit=1")
            await found(load.http, f"{load.urls['incidents']}/facilities/{issued.facility_id}/status")
            load.known.append(issued)
            if len(load.reporting) < REPORTING_PLANTS:
                load.reporting.append((issued, schedule["periods"][-1]["period_id"]))
    load.latencies.clear()
    load.answers.clear()
    return [issued.facility_id for issued in load.known[REPORTING_PLANTS:]]


async def found(http: httpx.AsyncClient, url: str) -> dict:
    """The resource once the service has learned of it from the events."""
    while not (answer := await http.get(url)).is_success:
        await asyncio.sleep(0.5)
    return answer.json()


async def drive(load: Load, case_facilities: list[str], seconds: float, rate: float,
                at_half_time: Callable[[], Awaitable[None]]) -> float:
    """Start one action every 1/rate s (at most IN_FLIGHT at once) for `seconds`, and `at_half_time` once
    half-way; return the time it took."""
    slots = asyncio.Semaphore(IN_FLIGHT)
    running: set[asyncio.Task[None]] = set()
    actions = {"apply": load.apply, "report": load.report, "read": load.read,
               "case": lambda: load.case(load.rng.choice(case_facilities))}

    async def run(action: Callable[[], Awaitable[None]]) -> None:
        try:
            await action()
        finally:
            slots.release()

    started = time.perf_counter()
    next_start = started
    half_way = False
    for kind in itertools.cycle(MIX):
        if next_start - started >= seconds:
            break
        if not half_way and next_start - started >= seconds / 2:
            half_way = True
            running.add(asyncio.create_task(at_half_time()))
        await slots.acquire()
        task = asyncio.create_task(run(actions[kind]))
        running.add(task)
        task.add_done_callback(running.discard)
        next_start += 1 / rate
        await asyncio.sleep(max(0.0, next_start - time.perf_counter()))
    await asyncio.gather(*list(running))
    return time.perf_counter() - started


async def drained(http: httpx.AsyncClient, site: Target, timeout: float = 120) -> None:
    """Wait until every outbox is empty, so the end figures count what the load caused."""
    deadline = time.monotonic() + timeout
    while (await pipeline(http, site))["iomki_outbox_backlog"] and time.monotonic() < deadline:
        await asyncio.sleep(1)
    await asyncio.sleep(3)  # the consumers' last batches


# ------------------------------------------------------------------------------------------ the figures


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1] if len(values) > 1 \
        else (values[0] if values else float("nan"))


def render(load: Load, elapsed: float, before: Counter[str], after: Counter[str],
           samples: list[dict[str, int | None]]) -> None:
    requests = Table(title=f"iomki soak: {elapsed:.0f} s at {RATE:g} actions/s (target)")
    for column in ("kind", "requests", "per s", "p50 ms", "p99 ms", "answers"):
        requests.add_column(column, justify="left" if column in ("kind", "answers") else "right")
    for kind in ("apply", "issue", "report", "case", "read"):
        latencies = load.latencies.get(kind, [])
        count = sum(load.answers[kind].values())
        requests.add_row(kind, str(count), f"{count / elapsed:.1f}", f"{percentile(latencies, 0.50):.1f}",
                         f"{percentile(latencies, 0.99):.1f}",
                         ", ".join(f"{status}: {n}" for status, n in sorted(load.answers[kind].items())))
    console.print(requests)

    events = Table(title="events through the pipeline (all services, from /metrics)")
    events.add_column("figure")
    events.add_column("during the soak", justify="right")
    events.add_column("per s", justify="right")
    for name in ("iomki_events_published_total", "iomki_events_consumed_total", "iomki_events_duplicate_total",
                 "iomki_events_failed_total", "iomki_events_dead_lettered_total"):
        delta = after[name] - before[name]
        events.add_row(name.removeprefix("iomki_").removesuffix("_total"), str(delta), f"{delta / elapsed:.1f}")
    events.add_row("outbox backlog at the end", str(after["iomki_outbox_backlog"]), "")
    console.print(events)

    processes = Table(title="memory (MiB): services and broker resident; PostgreSQL proportional, all its processes")
    for column in ("process", "start", "half-time", "end", "growth", "growth in 2nd half"):
        processes.add_column(column, justify="left" if column == "process" else "right")
    start, half, end = samples
    for name in start:
        if start[name] is None or end[name] is None:
            processes.add_row(name, "n/a", "", "", "", "")
            continue
        mib = [value / 2**20 if value is not None else float("nan") for value in (start[name], half[name], end[name])]
        processes.add_row(name, f"{mib[0]:.1f}", f"{mib[1]:.1f}", f"{mib[2]:.1f}", f"{mib[2] - mib[0]:+.1f}",
                          f"{mib[2] - mib[1]:+.1f}")
    console.print(processes)
    console.print("PostgreSQL's figure rises while its shared buffers fill and the pools open connections; "
                  "the second half shows the trend.")


async def main() -> None:
    configure_logging("soak", "console", level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    run_tag = uuid.uuid4().int % 10_000  # new NIBs each run, so a platform may be soaked again
    plants = [dataclasses.replace(plant, nib=f"9{run_tag:04d}{plant.index:08d}")
              for plant in cast(Scenario(plants=int(RATE * SECONDS / len(MIX)) + REPORTING_PLANTS + CASE_PLANTS + 10))]
    async with target() as site, httpx.AsyncClient(
            timeout=30, headers={"Authorization": f"Bearer {site.token}"},
            # Idle connections are dropped before the services' keep-alive timeout (5 s) could close one under
            # a request about to be sent on it.
            limits=httpx.Limits(max_connections=IN_FLIGHT, keepalive_expiry=2)) as http:
        load = Load(http, site.urls, plants)
        console.print(f"Issuing {REPORTING_PLANTS + CASE_PLANTS} plants and waiting for the services to know them…")
        case_facilities = await seed(load)
        await drained(http, site)
        postmaster = await postmaster_pid(site.database_url)
        samples = [await memory(http, site, postmaster)]
        before = await pipeline(http, site)

        async def sample() -> None:
            samples.append(await memory(http, site, postmaster))

        console.print(f"Load: {RATE:g} actions/s for {SECONDS:g} s…")
        elapsed = await drive(load, case_facilities, SECONDS, RATE, sample)
        await drained(http, site)
        samples.append(await memory(http, site, postmaster))
        after = await pipeline(http, site)
    render(load, elapsed, before, after, samples)


if __name__ == "__main__":
    run_as_deployed(main())
