"""The parts every service process runs, assembled once: each service's `app.py` only says what is its own.

At start (FastAPI lifespan): provision the service's role and schema, apply the platform's and the service's
migrations under a lock, open the pool, create the topics, connect the broker, start the outbox relay and the
service's periodic work. HTTP answers from the first moment; `/readyz` says when the dependencies do.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic

import asyncpg
import stamina
import structlog
from fastapi import APIRouter, FastAPI
from faststream.specification import AsyncAPI
from prometheus_client import ProcessCollector

from shared.clock import wait_until_set
from shared.contract import BaseEvent, Topic
from shared.messaging.bus import create_broker, declare_publishers, ensure_topics
from shared.messaging.consumer import EventConsumer, Handler, InBatches
from shared.messaging.relay import Relay
from shared.observability import Metrics, configure_logging, retried
from shared.settings import PlatformSettings
from shared.storage.db import create_pool, migrate, migrations_in, provision
from shared.storage.embedded import admin_database_url
from shared.storage.unit_of_work import Database, Work
from shared.web.access import TokenVerifier
from shared.web.http import (
    BoundedBodies, ProblemTable, install_problem_handlers, install_request_logging, operations_router,
)
from shared.web.rate_limit import PublicRateLimit

log = structlog.get_logger(__name__)

PLATFORM_MIGRATIONS = Path(__file__).parent / "storage" / "migrations"


@dataclass(frozen=True)
class Periodic:
    name: str
    interval: float
    run: Callable[[], Awaitable[Any]]
    wake_on: str | None = None  # a NOTIFY channel that runs it at once, between ticks


class ServiceRuntime(Generic[Work]):
    def __init__(
        self,
        *,
        name: str,
        settings: PlatformSettings,
        migrations: Path,
        unit_of_work: Callable[[Any], Work],
        relay_linger: float = 0.0,
    ) -> None:
        configure_logging(name, settings.log_format)
        self.name = name
        self.settings = settings
        self.metrics = Metrics(name)
        # The process's memory, CPU and open files beside the service's own figures (`make soak` reads them).
        ProcessCollector(registry=self.metrics.registry)
        self.broker = create_broker(settings, name)
        self.database: Database[Work] = Database(None, unit_of_work)  # type: ignore[arg-type]  # pool at start
        self.consumer = EventConsumer(service=name, broker=self.broker, database=self.database, metrics=self.metrics,
                                      settings=settings)
        self.token_verifier = TokenVerifier.from_settings(settings)
        self.broker_connected = asyncio.Event()
        self.relay: Relay | None = None
        self._relay_linger = relay_linger  # see `Relay`
        self._migrations = migrations
        self._periodic: list[Periodic] = []
        self._at_start: list[Callable[[], Awaitable[Any]]] = []
        self.stop_grace = 10.0  # seconds a stopping service gives its own tasks, then its database connections

    # -- what a service declares ------------------------------------------------------------------

    def consume(self, topic: Topic, handlers: Mapping[type[BaseEvent], Handler | InBatches]) -> None:
        self.consumer.subscribe(topic, handlers)

    def publishes(self, topic: Topic) -> None:
        """Declare a topic this service writes (through its outbox), for the AsyncAPI document."""
        declare_publishers(self.broker, topic)

    def at_start(self, run: Callable[[], Awaitable[Any]]) -> None:
        """Run `run` once the database is migrated, before any request, consumer or periodic work: data the new
        code needs in its new shape (what SQL alone cannot do, such as sealing under a configured key)."""
        self._at_start.append(run)

    def every(self, seconds: float, name: str, run: Callable[[], Awaitable[Any]], *,
              wake_on: str | None = None) -> None:
        """Run `run` every `seconds`, and also as soon as a transaction that NOTIFYs `wake_on` commits."""
        self._periodic.append(Periodic(name, seconds, run, wake_on))

    # -- the HTTP application ---------------------------------------------------------------------

    def http_app(self, *, title: str, description: str, routers: list[APIRouter],
                 problems: ProblemTable | None = None, uploads: Mapping[str, int] | None = None) -> FastAPI:
        """`uploads`: paths (regular expressions) whose bodies may be larger than IOMKI_MAX_REQUEST_BYTES, and by
        how much (see `BoundedBodies`)."""
        # Requests are measured and logged by the platform's own middleware (Prometheus, structlog). FastAPI's
        # OpenTelemetry instrumentation, on by default, looks up the global providers on every request even when
        # none is configured.
        app = FastAPI(title=title, description=description, version="1.0.0", lifespan=self._lifespan,
                      telemetry={"tracing": False, "metrics": False, "logs": False})
        app.state.runtime = self
        app.state.token_verifier = self.token_verifier
        install_problem_handlers(app, problems)
        app.add_middleware(BoundedBodies, limit=self.settings.max_request_bytes,  # inside the request log
                           uploads=uploads)
        app.add_middleware(PublicRateLimit, per_minute=self.settings.public_rate_per_minute,
                           address_header=self.settings.client_address_header)  # logged and measured too
        install_request_logging(app, self.metrics)
        operations = operations_router(metrics=self.metrics, checks={"database": self._database_ready,
                                                                      "broker": self._broker_ready},
                                       asyncapi=self._asyncapi)
        for router in (*routers, operations):
            app.include_router(router)
        return app

    def _asyncapi(self) -> Any:
        return AsyncAPI(self.broker, title=f"iomki {self.name}", version="1.0.0").to_specification().to_jsonable()

    async def _database_ready(self) -> bool:
        if self.database.pool is None:
            return False
        async with self.database.pool.acquire(timeout=2) as connection:
            return await connection.fetchval("SELECT true")

    async def _broker_ready(self) -> bool:
        return self.broker_connected.is_set() and await self.broker.ping(timeout=2)

    # -- lifecycle --------------------------------------------------------------------------------

    @asynccontextmanager
    async def _lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        self.consumer.attach()
        database_url = await self.database_url()
        await migrate(database_url, self.name, migrations_in("platform", PLATFORM_MIGRATIONS)
                      + migrations_in(self.name, self._migrations))
        self.database.pool = await create_pool(database_url, self.name)
        self._database_url = database_url
        for run in self._at_start:
            await run()
        self.relay = Relay(schema=self.name, database_url=database_url, settings=self.settings, metrics=self.metrics,
                           linger=self._relay_linger)
        self._tasks = [asyncio.create_task(self._connect_broker(self.relay), name=f"{self.name}-broker")]
        # Periodic work (deadlines, timers) needs only the database: what it emits waits in the outbox.
        for periodic in self._periodic:
            self._tasks.append(asyncio.create_task(self._repeat(periodic), name=f"{self.name}-{periodic.name}"))
        log.info("service_started", bootstrap=self.settings.bootstrap)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            stopped, stuck = await asyncio.wait(self._tasks, timeout=self.stop_grace)
            for task in stopped:
                if not task.cancelled():
                    task.exception()  # retrieved: how it ended no longer matters
            if stuck:  # a task that ignored its cancellation must not keep the service from stopping
                log.error("tasks_did_not_stop", grace_seconds=self.stop_grace,
                          tasks={task.get_name(): _where(task) for task in stuck})
        await self.consumer.flush_offsets()
        await self.broker.stop()
        if self.database.pool is not None:
            try:  # close waits for every connection to come back: one held by a stuck task never does
                async with asyncio.timeout(self.stop_grace):
                    await self.database.pool.close()
            except TimeoutError:
                log.error("database_connections_not_returned", grace_seconds=self.stop_grace)
                self.database.pool.terminate()
        log.info("service_stopped")

    async def database_url(self) -> str:
        """`IOMKI_<SERVICE>_DATABASE_URL` as given, or this service's own role on the admin URL's server."""
        own = os.environ.get(f"IOMKI_{self.name.upper()}_DATABASE_URL")
        if own:
            return own
        return await provision(await admin_database_url(self.settings), self.name)

    async def _connect_broker(self, relay: Relay) -> None:
        """Keep trying until the broker answers; consumers, relay and periodic work start after that."""
        unreachable = retried("broker_unreachable", bootstrap=self.settings.bootstrap)
        async for attempt in stamina.retry_context(on=unreachable, attempts=None, timeout=None):
            with attempt:
                await ensure_topics(self.settings)
                await self.broker.start()
        self.broker_connected.set()
        self._tasks.append(asyncio.create_task(relay.run(), name=f"{self.name}-relay"))
        # Started: what exists now (modules, models, schemas, the broker's clients) lives as long as the service.
        # Frozen, the collector no longer walks it; it did on every full collection, and those pauses of a
        # consumer were the p99 of commit → consumer commit in `make bench`.
        gc.freeze()

    async def _repeat(self, periodic: Periodic) -> None:
        woken = asyncio.Event()
        listener: asyncpg.Connection | None = None
        try:
            while True:
                if periodic.wake_on and (listener is None or listener.is_closed()):
                    listener = await self._listen(periodic.wake_on, woken)
                woken.clear()  # before running: a notification during the run runs it again at once
                try:
                    await periodic.run()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # periodic work retries at its next tick
                    log.warning("periodic_failed", task=periodic.name, error=f"{type(exc).__name__}: {exc}")
                await wait_until_set(woken, periodic.interval)
        finally:
            if listener is not None:
                listener.terminate()

    async def _listen(self, channel: str, woken: asyncio.Event) -> asyncpg.Connection | None:
        """A connection of its own that sets `woken` on each notification; without one, the ticks carry on."""
        try:
            connection = await asyncpg.connect(self._database_url, timeout=5)
            await connection.add_listener(channel, lambda *_: woken.set())
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("listen_failed", channel=channel, error=f"{type(exc).__name__}: {exc}")
            return None
        return connection


def serve(app: FastAPI, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host=os.environ.get("IOMKI_HOST", "127.0.0.1"), port=port, access_log=False,
                log_level="warning", lifespan="on")


def _where(task: asyncio.Task[Any]) -> str:
    """The chain of awaits a task is suspended in, outermost first: where a task that will not stop is stuck."""
    lines = []
    awaited: Any = task.get_coro()
    while getattr(awaited, "cr_frame", None) is not None:
        code = awaited.cr_frame.f_code
        lines.append(f"{code.co_filename.rsplit('/', 1)[-1]}:{awaited.cr_frame.f_lineno} {code.co_name}")
        awaited = awaited.cr_await
    return " -> ".join(lines)
