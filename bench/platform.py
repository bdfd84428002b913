"""Where `make bench` runs: a database of its own (on `DATABASE_URL`'s server, else the embedded one), dropped
afterwards, and an embedded broker of its own; the same for one section run alone (`python -m bench.<section>`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvloop
from rich.console import Console

from shared.db import drop_database, ensure_database, with_database
from shared.infra import EmbeddedBroker, embedded_postgres_url, free_port
from shared.settings import PlatformSettings

ROOT = Path(__file__).resolve().parent.parent
JWT_SECRET = "bench-secret-" + "x" * 32  # HS256 wants at least 32 bytes
RELAY_POLL_INTERVAL = "PT0.05S"


def run_as_deployed(main: Coroutine[Any, Any, None]) -> None:
    """Run a bench process on the event loop the services run on (uvicorn picks uvloop), so that the platform's
    figures and the references beside them are measured on the loop production uses."""
    uvloop.run(main)


def console() -> Console:
    return Console(width=120)  # the tables stay readable when the output goes to a file or a CI log


@asynccontextmanager
async def bench_database(label: str = "bench") -> AsyncIterator[str]:
    """The URL of a fresh database, dropped when the block ends."""
    server_url = os.environ.get("DATABASE_URL") or embedded_postgres_url(ROOT / ".data" / "bench-postgres")
    database = f"iomki_{label}_{uuid.uuid4().hex[:6]}"
    await ensure_database(server_url, database)
    try:
        yield with_database(server_url, database)
    finally:
        await drop_database(server_url, database)


@asynccontextmanager
async def bench_platform() -> AsyncIterator[PlatformSettings]:
    """A fresh database and a broker of this run's own, as the services' settings."""
    async with bench_database() as database_url:
        broker = EmbeddedBroker("127.0.0.1", free_port(), ROOT / ".data" / "bench-broker.log")
        broker.start()
        try:
            yield PlatformSettings(DATABASE_URL=database_url, KAFKA_BOOTSTRAP=broker.bootstrap,
                                   IOMKI_JWT_SECRET=JWT_SECRET, IOMKI_RELAY_POLL_INTERVAL=RELAY_POLL_INTERVAL,
                                   IOMKI_LOG_FORMAT="json")
        finally:
            broker.stop()


async def alone(section: Callable[[PlatformSettings, Console], Awaitable[None]]) -> None:
    async with bench_platform() as settings:
        await section(settings, console())
