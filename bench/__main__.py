"""`make bench`: figures from one run, each next to its reference measured on the same broker and database.

1. Raw aiokafka produce → consume throughput (the reference): a producer with the relay's guarantees (acks=all,
   idempotent) and a group consumer reading as the platform's consumers do.
2. The platform's pipeline: events committed to an outbox → relay → broker → idempotent consumer with a real
   handler (recording each event in the inbox transaction), events/s and the ratio to raw, for a handler written
   one event at a time and as an `InBatches` handler (one statement per run), each with one and with two
   instances of the consuming service in one consumer group (horizontal scale).
3. Latency at a steady 1,000 events/s from the producer's commit to the consumer's commit, p50 and p99.
   1 to 3 run on one Kafka node, then again on a cluster of three brokers with replication factor 3 and
   min.insync.replicas 2, as production runs (each write waits for a second copy).
4. Alert latency (`bench/alerts.py`) and report ingestion over HTTP (`bench/ingestion.py`), on one node.
5. At 1,000,000 plants (`bench/scale.py`): bulk load, permit search, compliance, the deadline sweep, query plans.

Sizes can be lowered for a quick look (the defaults are what `make bench` reports): `IOMKI_BENCH_PIPELINE_EVENTS`
(20,000 events per throughput run) and `IOMKI_BENCH_STEADY_SECONDS` (10 s at 1,000 events/s), beside each
section's own (`IOMKI_BENCH_PLANTS`, `IOMKI_BENCH_SWEEP_PERIODS`, `IOMKI_BENCH_CLUSTERS`, ...).
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
from aiokafka.admin import NewTopic
from rich.table import Table

from bench import alerts, ingestion, scale
from bench.ingestion import event_source
from bench.platform import (
    RELAY_POLL_INTERVAL, bench_database, bench_platform, database_server, process_environment, run_as_deployed,
)
from bench.platform import console as bench_console
from shared.contract import Envelope, PermitApplied, SectorClass
from shared.messaging.bus import admin_client, connection_options
from shared.messaging.relay import RECORD_BATCH_BYTES
from shared.runtime import ServiceRuntime
from shared.settings import PlatformSettings
from shared.storage.db import quote_identifier

ROOT = Path(__file__).resolve().parent.parent
THROUGHPUT_EVENTS = int(os.environ.get("IOMKI_BENCH_PIPELINE_EVENTS", "20000"))
STEADY_RATE = 1_000
STEADY_SECONDS = int(os.environ.get("IOMKI_BENCH_STEADY_SECONDS", "10"))
RATIO_TARGETS = {1: 0.6, 3: 0.5}  # the pipeline's least share of the raw reference's rate, by number of brokers
console = bench_console()


def bench_event(facility_id: uuid.UUID, sequence: int) -> Envelope:
    return Envelope.wrap(PermitApplied(
        facility_id=facility_id, province_code="32", regency_code="32.16", permit_id=uuid.uuid4(),
        nib="8120000123456", company_name="PT Bench", facility_name="Pabrik", kbli=["24101"],
        sector_class=SectorClass.CRITICAL, workforce_total=sequence,
    ), service="permits")  # a PermitApplied: only the permits service speaks it


async def start_worker(settings: PlatformSettings, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **process_environment(settings), "IOMKI_RELAY_POLL_INTERVAL": RELAY_POLL_INTERVAL}
    # This interpreter, running the bench's own worker module with arguments the bench chose.
    worker = subprocess.Popen([sys.executable, "-m", "bench.workers", *args], env=env, cwd=ROOT,  # noqa: S603
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        async with asyncio.timeout(120):
            ready = await asyncio.to_thread(worker.stdout.readline)  # type: ignore[union-attr]
        if ready.strip() != "ready":
            raise RuntimeError(f"bench worker {' '.join(args)} failed to start")
    except BaseException:  # a failure, a timeout, or the run interrupted: the worker goes with it
        stop_worker(worker)
        raise
    return worker


def stop_worker(worker: subprocess.Popen[str]) -> None:
    if worker.poll() is None:
        worker.terminate()
    try:
        worker.wait(15)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(5)


async def raw_throughput(settings: PlatformSettings, count: int) -> float:
    """Plain aiokafka on a topic like the platform's (partitions, replication), with the relay's producer
    guarantees: every in-sync replica acknowledges, and a retried batch is never written twice."""
    topic = f"bench.raw.{uuid.uuid4().hex[:6]}"
    async with admin_client(settings) as admin:
        await admin.create_topics([NewTopic(
            topic, PermitApplied.topic.partitions, settings.kafka_replication_factor,
            topic_configs={"min.insync.replicas": str(settings.kafka_min_insync_replicas)})])
    payloads = [(event.key, event.to_bytes()) for event in bench_events(count)]
    consumer = await start_worker(settings, "raw", topic, str(count))
    try:
        await asyncio.sleep(6)  # let the group settle before the clock starts, as for the pipeline
        producer = AIOKafkaProducer(**connection_options(settings), acks="all", enable_idempotence=True, linger_ms=2,
                                    max_batch_size=RECORD_BATCH_BYTES)
        try:
            await producer.start()
            started = time.time()
            pending = [await producer.send(topic, value, key=key) for key, value in payloads]
            await asyncio.gather(*pending)
        finally:
            await producer.stop()
        async with asyncio.timeout(120):
            line = await asyncio.to_thread(consumer.stdout.readline)  # type: ignore[union-attr]
    finally:
        stop_worker(consumer)
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
    workers: list[subprocess.Popen[str]] = []
    try:
        for _ in range(sinks.instances):
            workers.append(await start_worker(settings, "sink", sinks.name, sinks.handler))
        await wait_for_count(admin, sinks.name, backlog)
        await asyncio.sleep(6)  # a second member's join rebalances the group: let it settle
        await admin.execute(f"TRUNCATE {quote_identifier(sinks.name)}.received")
        yield
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            stop_worker(worker)


@dataclass
class PipelineFigures:
    """One Kafka's figures: the raw reference, each sink configuration's throughput, latencies at a steady rate."""

    kafka: str  # which Kafka: one node, or a cluster and its replication
    target: float  # the least ratio to the raw reference
    raw: float
    throughputs: dict[Sinks, float]
    latencies: list[float]


async def event_pipeline(settings: PlatformSettings) -> PipelineFigures:
    """The raw reference, then the platform's pipeline, on the same broker and database."""
    brokers = len(settings.bootstrap.split(","))
    kafka = "one Kafka node" if brokers == 1 else (
        f"{brokers} Kafka brokers, replication factor {settings.kafka_replication_factor},"
        f" min.insync.replicas {settings.kafka_min_insync_replicas}")
    console.print(f"raw aiokafka on {kafka}: {THROUGHPUT_EVENTS} events…")
    raw = await raw_throughput(settings, THROUGHPUT_EVENTS)
    throughputs, latencies = await pipeline(settings)
    return PipelineFigures(kafka, RATIO_TARGETS[brokers], raw, throughputs, latencies)


async def pipeline(settings: PlatformSettings) -> tuple[dict[Sinks, float], list[float]]:
    """Throughput of each sink configuration, then latency at a steady rate on the platform's usual one."""
    async with event_source(settings) as runtime:
        admin = await asyncpg.connect(settings.database_url)  # the bench reads the sinks' tables, as their operator
        try:
            return await measure_pipeline(settings, Source(runtime), admin)
        finally:
            await admin.close()


async def measure_pipeline(settings: PlatformSettings, source: Source,
                           admin: asyncpg.Connection) -> tuple[dict[Sinks, float], list[float]]:
    throughputs = {}
    for sinks in PIPELINES:
        console.print(f"pipeline, {sinks.label}: {THROUGHPUT_EVENTS} events…")
        # Made before the clock starts, as the raw reference's messages are: the pipeline begins at the outbox.
        events = bench_events(THROUGHPUT_EVENTS)
        async with running_sinks(settings, sinks, admin, source.emitted):
            started = time.time()
            await source.emit(events, 100)
            await wait_for_count(admin, sinks.name, THROUGHPUT_EVENTS)
            # The moment the handler recorded the last event, as the raw reference's consumer reports its own
            # moment, rather than when the bench's polling noticed it.
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


async def wait_for_count(admin: asyncpg.Connection, schema: str, count: int, timeout: float = 300) -> None:
    async with asyncio.timeout(timeout):
        while await admin.fetchval(f"SELECT count(*) FROM {quote_identifier(schema)}.received") < count:
            await asyncio.sleep(0.05)


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=1000)[int(fraction * 1000) - 1]


async def main() -> None:
    async with database_server() as server_url:
        for brokers in (1, 3):  # one node, then the cluster, each with a database of its own
            async with bench_platform(server_url, brokers) as settings:
                figures = await event_pipeline(settings)
            print_pipeline(figures)
        async with bench_platform(server_url) as settings:
            await alerts.run(settings, console)
            await ingestion.run(settings, console)
        async with bench_database(server_url, "scale") as database_url:  # needs the database only
            await scale.run(database_url, console)


def print_pipeline(figures: PipelineFigures) -> None:
    raw, target = figures.raw, figures.target
    table = Table(title=f"iomki bench: the event pipeline on {figures.kafka} (same Kafka, same database, one run)")
    table.add_column("measure")
    table.add_column("figure", justify="right")
    table.add_column("reference", justify="right")
    table.add_column("ratio / target", justify="right")
    table.add_row("raw aiokafka produce→consume (acks=all, idempotent)", f"{raw:,.0f} events/s", "—", "reference")
    for sinks, throughput in figures.throughputs.items():
        table.add_row(f"outbox→relay→broker→inbox+handler, {sinks.label}", f"{throughput:,.0f} events/s",
                      f"{raw:,.0f} events/s", f"{throughput / raw:.2f} (target ≥ {target:.2f})")
    label = f"commit→consumer commit at {STEADY_RATE}/s ({LATENCY_SINKS.label})"
    table.add_row(f"{label}, p50", f"{percentile(figures.latencies, 0.5):.1f} ms", "", "")
    table.add_row(f"{label}, p99", f"{percentile(figures.latencies, 0.99):.1f} ms", "", "target < 50 ms")
    console.print(table)


if __name__ == "__main__":
    run_as_deployed(main())
