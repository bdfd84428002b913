"""`make bench`: figures from one run on one broker and one database, each next to its reference.

1. Raw aiokafka produce → consume throughput (the reference).
2. The platform's pipeline: events committed to an outbox → relay → broker → idempotent consumer with a real
   handler (recording each event in the inbox transaction), events/s and the ratio to raw, for a handler written
   one event at a time and as an `InBatches` handler (one statement per run), each with one and with two
   instances of the consuming service in one consumer group (horizontal scale).
3. Latency at a steady 1,000 events/s from the producer's commit to the consumer's commit, p50 and p99.
4. At 1,000,000 plants (`bench/scale.py`): bulk load, permit search, compliance, the deadline sweep, query plans.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.table import Table

from bench import alerts, ingestion, scale
from bench.platform import RELAY_POLL_INTERVAL, bench_platform, run_as_deployed
from bench.platform import console as bench_console
from shared.contract import Envelope, PermitApplied, SectorClass
from shared.db import quote_identifier
from shared.runtime import ServiceRuntime
from shared.settings import PlatformSettings
from shared.unit_of_work import UnitOfWork

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = Path(__file__).parent / "migrations"
THROUGHPUT_EVENTS = 20_000
STEADY_RATE = 1_000
STEADY_SECONDS = 10
console = bench_console()


def bench_event(facility_id: uuid.UUID, sequence: int) -> Envelope:
    return Envelope.wrap(PermitApplied(
        facility_id=facility_id, province_code="32", regency_code="32.16", permit_id=uuid.uuid4(),
        nib="8120000123456", company_name="PT Bench", facility_name="Pabrik", kbli=["24101"],
        sector_class=SectorClass.CRITICAL, workforce_total=sequence,
    ), service="bench")


def start_worker(settings: PlatformSettings, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": settings.database_url or "", "KAFKA_BOOTSTRAP": settings.bootstrap,
           "IOMKI_JWT_SECRET": settings.jwt_secret or "", "IOMKI_LOG_FORMAT": "json",
           "IOMKI_RELAY_POLL_INTERVAL": RELAY_POLL_INTERVAL}
    worker = subprocess.Popen([sys.executable, "-m", "bench.workers", *args], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert worker.stdout is not None and worker.stdout.readline().strip() == "ready", "bench worker failed"
    return worker


async def raw_throughput(settings: PlatformSettings, count: int) -> float:
    topic = f"bench.raw.{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 6, 1)])
    await admin.close()
    payloads = [(event.key, event.to_bytes()) for event in bench_events(count)]
    consumer = await asyncio.to_thread(start_worker, settings, "raw", topic, str(count))
    await asyncio.sleep(6)  # let the group settle before the clock starts, as for the pipeline
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all", linger_ms=2)
    await producer.start()
    started = time.time()
    pending = [await producer.send(topic, value, key=key) for key, value in payloads]
    await asyncio.gather(*pending)
    await producer.stop()
    line = await asyncio.to_thread(consumer.stdout.readline)  # type: ignore[union-attr]
    consumer.wait(10)
    return count / (float(line.split()[1]) - started)


@dataclass(frozen=True)
class Sinks:
    """A consuming service for one pipeline run: `instances` processes in one consumer group, one schema."""

    handler: str  # "per-event" or "in-batches" (see bench/workers.py)
    instances: int
    purpose: str = "throughput"

    @property
    def name(self) -> str:
        return f"bench_sink_{self.purpose}_{self.handler.replace('-', '_')}_{self.instances}"

    @property
    def label(self) -> str:
        return f"{self.handler} handler, {self.instances} instance{'s' if self.instances > 1 else ''}"


PIPELINES = (Sinks("per-event", 1), Sinks("in-batches", 1), Sinks("per-event", 2), Sinks("in-batches", 2))
LATENCY_SINKS = Sinks("in-batches", 1, "latency")


PLANTS = [uuid.uuid4() for _ in range(200)]


def bench_events(count: int) -> list[Envelope]:
    return [bench_event(PLANTS[i % len(PLANTS)], i) for i in range(count)]


@dataclass
class Source:
    """The producing service: commits events to its outbox, 100 (or 10) per transaction; its relay publishes."""

    runtime: ServiceRuntime
    emitted: int = 0

    async def emit(self, events: list[Envelope], per_transaction: int) -> None:
        for offset in range(0, len(events), per_transaction):
            async with self.runtime.database.transaction() as work:
                await work.outbox.add(*events[offset:offset + per_transaction])
        self.emitted += len(events)


@contextlib.asynccontextmanager
async def running_sinks(settings: PlatformSettings, sinks: Sinks, admin: asyncpg.Connection,
                        backlog: int) -> AsyncIterator[None]:
    """Start the sink processes; return once their group has settled and caught up with the topic's backlog
    (a new group reads the topic from the start), with an empty table, so the clock measures only new events."""
    workers = [await asyncio.to_thread(start_worker, settings, "sink", sinks.name, sinks.handler)
               for _ in range(sinks.instances)]
    try:
        await wait_for_count(admin, sinks.name, backlog)
        await asyncio.sleep(6)  # a second member's join rebalances the group: let it settle
        await admin.execute(f"TRUNCATE {quote_identifier(sinks.name)}.received")
        yield
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(15)


async def pipeline(settings: PlatformSettings) -> tuple[dict[Sinks, float], list[float]]:
    """Throughput of each sink configuration, then latency at a steady rate on the platform's usual one."""
    runtime = ServiceRuntime(name="bench_source", settings=settings, migrations=MIGRATIONS, unit_of_work=UnitOfWork)
    await runtime.start()
    await runtime.broker_connected.wait()
    source = Source(runtime)
    admin = await asyncpg.connect(settings.database_url)  # the bench reads the sinks' tables, as their operator
    throughputs = {}
    try:
        for sinks in PIPELINES:
            console.print(f"pipeline, {sinks.label}: {THROUGHPUT_EVENTS} events…")
            # Made before the clock starts, as the raw reference's messages are: the pipeline begins at the outbox.
            events = bench_events(THROUGHPUT_EVENTS)
            async with running_sinks(settings, sinks, admin, source.emitted):
                started = time.time()
                await source.emit(events, 100)
                await wait_for_count(admin, sinks.name, THROUGHPUT_EVENTS)
                # The moment the handler recorded the last event, as the raw reference's consumer reports its own
                # moment: the bench's polling (every 50 ms) noticed it up to 50 ms later, 3% of a 1.5 s run.
                finished = await admin.fetchval("SELECT extract(epoch FROM max(received_at))"
                                                f" FROM {quote_identifier(sinks.name)}.received")
                throughputs[sinks] = THROUGHPUT_EVENTS / (float(finished) - started)

        console.print(f"latency, {LATENCY_SINKS.label}: {STEADY_RATE}/s for {STEADY_SECONDS}s…")
        async with running_sinks(settings, LATENCY_SINKS, admin, source.emitted):
            total = STEADY_RATE * STEADY_SECONDS
            tick = 0.01  # ten events every 10 ms: a steady 1,000 events/s
            next_tick = time.perf_counter()
            for _ in range(0, total, 10):
                await source.emit(bench_events(10), 10)  # each stamped with the moment it is committed
                next_tick += tick
                await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
            await wait_for_count(admin, LATENCY_SINKS.name, total)
            rows = await admin.fetch("SELECT extract(epoch FROM received_at - emitted_at) * 1000 AS ms"
                                     f" FROM {quote_identifier(LATENCY_SINKS.name)}.received")
        return throughputs, [row["ms"] for row in rows]
    finally:
        await admin.close()
        await runtime.stop()


async def wait_for_count(admin: asyncpg.Connection, schema: str, count: int, timeout: float = 300) -> None:
    async with asyncio.timeout(timeout):
        while await admin.fetchval(f"SELECT count(*) FROM {quote_identifier(schema)}.received") < count:
            await asyncio.sleep(0.05)


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=1000)[int(fraction * 1000) - 1]


async def main() -> None:
    async with bench_platform() as settings:
        console.print(f"raw aiokafka: {THROUGHPUT_EVENTS} events…")
        raw = await raw_throughput(settings, THROUGHPUT_EVENTS)
        ours, latencies = await pipeline(settings)
        print_pipeline(raw, ours, latencies)
        await alerts.run(settings, console)
        await ingestion.run(settings, console)
        await scale.run(settings.database_url or "", console)  # needs the database only


def print_pipeline(raw: float, ours: dict[Sinks, float], latencies: list[float]) -> None:
    table = Table(title="iomki bench: the event pipeline (same broker, same database, one run)")
    table.add_column("measure")
    table.add_column("figure", justify="right")
    table.add_column("reference", justify="right")
    table.add_column("ratio / target", justify="right")
    table.add_row("raw aiokafka produce→consume", f"{raw:,.0f} events/s", "—", "reference")
    for sinks, throughput in ours.items():
        table.add_row(f"outbox→relay→broker→inbox+handler, {sinks.label}", f"{throughput:,.0f} events/s",
                      f"{raw:,.0f} events/s", f"{throughput / raw:.2f} (target ≥ 0.50)")
    label = f"commit→consumer commit at {STEADY_RATE}/s ({LATENCY_SINKS.label})"
    table.add_row(f"{label}, p50", f"{percentile(latencies, 0.5):.1f} ms", "", "")
    table.add_row(f"{label}, p99", f"{percentile(latencies, 0.99):.1f} ms", "", "target < 50 ms")
    console.print(table)


if __name__ == "__main__":
    run_as_deployed(main())
