"""`make bench`: figures from one run on one broker and one database, each next to its reference.

1. Raw aiokafka produce → consume throughput (the reference).
2. The platform's pipeline: events committed to an outbox → relay → broker → idempotent consumer with a real
   handler (one insert in the inbox transaction), events/s, and the ratio to raw.
3. Latency at a steady 1,000 events/s from the producer's commit to the consumer's commit, p50 and p99.
4. At 1,000,000 plants (`bench/scale.py`): bulk load, permit search, compliance, the deadline sweep, query plans.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.console import Console
from rich.table import Table

from bench import scale
from shared.contract import Envelope, PermitApplied, SectorClass
from shared.db import drop_database, ensure_database, with_database
from shared.infra import EmbeddedBroker, embedded_postgres_url, free_port
from shared.runtime import ServiceRuntime
from shared.settings import PlatformSettings
from shared.unit_of_work import UnitOfWork

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = Path(__file__).parent / "migrations"
THROUGHPUT_EVENTS = 20_000
STEADY_RATE = 1_000
STEADY_SECONDS = 10
console = Console()


def bench_event(facility_id: uuid.UUID, sequence: int) -> Envelope:
    return Envelope.wrap(PermitApplied(
        facility_id=facility_id, province_code="32", regency_code="32.16", permit_id=uuid.uuid4(),
        nib="8120000123456", company_name="PT Bench", facility_name="Pabrik", kbli=["24101"],
        sector_class=SectorClass.CRITICAL, workforce_total=sequence,
    ), service="bench")


def start_worker(settings: PlatformSettings, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": settings.database_url or "", "KAFKA_BOOTSTRAP": settings.bootstrap,
           "IOMKI_JWT_SECRET": "bench", "IOMKI_LOG_FORMAT": "json", "IOMKI_RELAY_POLL_INTERVAL": "PT0.05S"}
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
    plants = [uuid.uuid4() for _ in range(200)]
    payloads = [(str(plants[i % 200]).encode(), bench_event(plants[i % 200], i).to_bytes()) for i in range(count)]
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


async def pipeline(settings: PlatformSettings) -> tuple[float, list[float]]:
    source = ServiceRuntime(name="bench_source", settings=settings, migrations=MIGRATIONS, unit_of_work=UnitOfWork)
    await source.start()
    await source.broker_connected.wait()
    sink = await asyncio.to_thread(start_worker, settings, "sink")
    admin = await asyncpg.connect(settings.database_url)  # the bench reads the sink's table, as its operator
    await asyncio.sleep(6)  # the consumer group's first join
    plants = [uuid.uuid4() for _ in range(200)]
    try:
        started = time.perf_counter()
        for offset in range(0, THROUGHPUT_EVENTS, 100):
            async with source.database.transaction() as work:
                await work.outbox.add(*(bench_event(plants[i % 200], i) for i in range(offset, offset + 100)))
        await wait_for_count(admin, THROUGHPUT_EVENTS)
        throughput = THROUGHPUT_EVENTS / (time.perf_counter() - started)

        await admin.execute("TRUNCATE bench_sink.received")
        total = STEADY_RATE * STEADY_SECONDS
        tick = 0.01  # ten events every 10 ms: a steady 1,000 events/s
        next_tick = time.perf_counter()
        for offset in range(0, total, 10):
            async with source.database.transaction() as work:
                await work.outbox.add(*(bench_event(plants[i % 200], i) for i in range(offset, offset + 10)))
            next_tick += tick
            await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
        await wait_for_count(admin, total)
        rows = await admin.fetch(
            "SELECT extract(epoch FROM received_at - emitted_at) * 1000 AS ms FROM bench_sink.received")
        return throughput, [row["ms"] for row in rows]
    finally:
        sink.terminate()
        sink.wait(15)
        await admin.close()
        await source.stop()


async def wait_for_count(admin: asyncpg.Connection, count: int, timeout: float = 300) -> None:
    async with asyncio.timeout(timeout):
        while await admin.fetchval("SELECT count(*) FROM bench_sink.received") < count:
            await asyncio.sleep(0.05)


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=1000)[int(fraction * 1000) - 1]


async def main() -> None:
    server_url = os.environ.get("DATABASE_URL") or embedded_postgres_url(ROOT / ".data" / "bench-postgres")
    database = f"iomki_bench_{uuid.uuid4().hex[:6]}"
    await ensure_database(server_url, database)
    broker = EmbeddedBroker("127.0.0.1", free_port(), ROOT / ".data" / "bench-broker.log")
    broker.start()
    settings = PlatformSettings(DATABASE_URL=with_database(server_url, database), KAFKA_BOOTSTRAP=broker.bootstrap,
                                IOMKI_JWT_SECRET="bench", IOMKI_RELAY_POLL_INTERVAL="PT0.05S", IOMKI_LOG_FORMAT="json")
    try:
        try:
            console.print(f"raw aiokafka: {THROUGHPUT_EVENTS} events…")
            raw = await raw_throughput(settings, THROUGHPUT_EVENTS)
            console.print(f"pipeline: {THROUGHPUT_EVENTS} events, then {STEADY_RATE}/s for {STEADY_SECONDS}s…")
            ours, latencies = await pipeline(settings)
        finally:
            broker.stop()
        print_pipeline(raw, ours, latencies)
        await scale.run(with_database(server_url, database), console)  # needs the database only
    finally:
        await drop_database(server_url, database)


def print_pipeline(raw: float, ours: float, latencies: list[float]) -> None:
    table = Table(title="iomki bench (same broker, same database, one run)")
    table.add_column("measure")
    table.add_column("figure", justify="right")
    table.add_column("reference", justify="right")
    table.add_column("ratio / target", justify="right")
    table.add_row("raw aiokafka produce→consume", f"{raw:,.0f} events/s", "—", "reference")
    table.add_row("outbox→relay→broker→inbox+handler", f"{ours:,.0f} events/s", f"{raw:,.0f} events/s",
                  f"{ours / raw:.2f} (target ≥ 0.50)")
    table.add_row(f"commit→consumer commit at {STEADY_RATE}/s, p50", f"{percentile(latencies, 0.5):.1f} ms", "", "")
    table.add_row(f"commit→consumer commit at {STEADY_RATE}/s, p99", f"{percentile(latencies, 0.99):.1f} ms", "",
                  "target < 50 ms")
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main())
