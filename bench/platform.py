"""Where `make bench` runs: a PostgreSQL server (`DATABASE_URL`'s, else the embedded one under `.data/bench-postgres`,
which the bench starts and stops), a database of its own on it for each part, dropped afterwards, and an Apache
Kafka of its own (one node, or a cluster of three) on free loopback ports, stopped and its directory removed
afterwards; the same for one section run alone (`python -m bench.<section>`). All of it ends with the run, whether
the run finishes, fails or is interrupted (Ctrl-C or SIGTERM)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvloop
from rich.console import Console

from shared.settings import PlatformSettings
from shared.storage.db import drop_database, ensure_database, with_database
from shared.storage.embedded import embedded_postgres_url, stop_embedded_postgres
from tooling.embedded_kafka import EmbeddedKafka

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
JWT_SECRET = "bench-secret-" + "x" * 32  # HS256 wants at least 32 bytes
RELAY_POLL_INTERVAL = "PT0.05S"


def run_as_deployed(main: Coroutine[Any, Any, None]) -> None:
    """Run a bench process on the event loop the services run on (uvicorn picks uvloop), so that the platform's
    figures and the references beside them are measured on the loop production uses. SIGTERM cancels the run as
    Ctrl-C does, so that its clean-up (brokers, databases, processes) runs either way."""

    async def cancelled_by_sigterm() -> None:
        task = asyncio.current_task()
        if task is None:  # uvloop.run runs this as a task
            raise RuntimeError("not running in a task")
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await main

    try:
        uvloop.run(cancelled_by_sigterm())
    except KeyboardInterrupt:
        raise SystemExit(128 + signal.SIGINT) from None
    except asyncio.CancelledError:
        raise SystemExit(128 + signal.SIGTERM) from None


def console() -> Console:
    return Console(width=120)  # the tables stay readable when the output goes to a file or a CI log


@asynccontextmanager
async def database_server() -> AsyncIterator[str]:
    """The URL of the server the bench's databases live on: `DATABASE_URL`'s, left running, or the embedded one,
    stopped when the block ends."""
    given = os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    pgdata = DATA / "bench-postgres"
    try:
        yield embedded_postgres_url(pgdata)
    finally:
        stop_embedded_postgres(pgdata)


@asynccontextmanager
async def bench_database(server_url: str, label: str = "bench") -> AsyncIterator[str]:
    """The URL of a fresh database on the server, dropped when the block ends."""
    database = f"iomki_{label}_{uuid.uuid4().hex[:6]}"
    await ensure_database(server_url, database)
    try:
        yield with_database(server_url, database)
    finally:
        await drop_database(server_url, database)


@asynccontextmanager
async def bench_kafka(brokers: int = 1) -> AsyncIterator[EmbeddedKafka]:
    """Apache Kafka of this run's own, `brokers` nodes on free ports and fresh data, stopped and removed when the
    block ends."""
    kafka = EmbeddedKafka(DATA / f"bench-kafka-{brokers}-{uuid.uuid4().hex[:6]}", size=brokers, cache_dir=DATA)
    try:
        # Started on the loop's own thread, not in a worker thread: a Ctrl-C meanwhile takes effect once the start
        # returns, so the stop below sees every node it launched.
        kafka.start()
        yield kafka
    finally:
        kafka.stop()
        shutil.rmtree(kafka.directory, ignore_errors=True)


def platform_settings(database_url: str, kafka: EmbeddedKafka) -> PlatformSettings:
    """The services' settings on the bench's database and broker, topics replicated as the broker allows."""
    return PlatformSettings(DATABASE_URL=database_url, KAFKA_BOOTSTRAP=kafka.bootstrap,
                            KAFKA_REPLICATION_FACTOR=kafka.replication_factor,
                            KAFKA_MIN_INSYNC_REPLICAS=kafka.min_insync_replicas,
                            IOMKI_JWT_SECRET=JWT_SECRET, IOMKI_RELAY_POLL_INTERVAL=RELAY_POLL_INTERVAL,
                            IOMKI_LOG_FORMAT="json")


def process_environment(settings: PlatformSettings) -> dict[str, str]:
    """What a process the bench starts (a service, a worker) needs to find the bench's database and broker."""
    return {"DATABASE_URL": settings.database_url or "", "KAFKA_BOOTSTRAP": settings.bootstrap,
            "KAFKA_REPLICATION_FACTOR": str(settings.kafka_replication_factor),
            "KAFKA_MIN_INSYNC_REPLICAS": str(settings.kafka_min_insync_replicas),
            "IOMKI_JWT_SECRET": settings.jwt_secret or "", "IOMKI_LOG_FORMAT": "json"}


@asynccontextmanager
async def bench_platform(server_url: str, brokers: int = 1) -> AsyncIterator[PlatformSettings]:
    """A fresh database on the server and a Kafka of this run's own, as the services' settings."""
    async with bench_database(server_url) as database_url, bench_kafka(brokers) as kafka:
        yield platform_settings(database_url, kafka)


async def alone(section: Callable[[PlatformSettings, Console], Awaitable[None]]) -> None:
    async with database_server() as server_url, bench_platform(server_url) as settings:
        await section(settings, console())
