"""Real infrastructure for the tests: a PostgreSQL database of their own and an Apache Kafka of their own.

A test session creates a fresh database (on `DATABASE_URL`'s server, or the embedded server under
`.data/test-postgres`) and starts an Apache Kafka node (or a cluster of three, for the fault tests) on free
loopback ports with fresh data, so it never disturbs a running `make run`, and two sessions never share state.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from fastapi import FastAPI

from shared.messaging.bus import ensure_topics
from shared.settings import PlatformSettings
from shared.runtime import PLATFORM_MIGRATIONS
from shared.storage.db import (
    Migration,
    drop_database,
    ensure_database,
    migrate,
    migrations_in,
    provision,
    with_database,
)
from shared.storage.embedded import embedded_postgres_url, stop_embedded_postgres
from shared.web.access import Role, mint
from tooling.embedded_kafka import EmbeddedKafka

ROOT = Path(__file__).resolve().parents[2]
# What the machine provides, read before any fixture points the environment at a test platform.
OUTSIDE_DATABASE_URL = os.environ.get("DATABASE_URL", "")
OUTSIDE_KAFKA_BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "")
JWT_SECRET = "test-secret-" + "x" * 32


@dataclass
class TestPlatform:
    __test__ = False  # not a test class, despite its name

    server_url: str
    database: str
    broker: EmbeddedKafka | None
    bootstrap: str
    pgdata: Path | None
    environment: dict[str, str] = field(default_factory=dict)
    owns_server: bool = False

    @property
    def admin_url(self) -> str:
        return with_database(self.server_url, self.database)

    def env(self, **overrides: str) -> dict[str, str]:
        """Environment for a service under test: this platform's database, broker and secret."""
        values = {
            "DATABASE_URL": self.admin_url,
            "KAFKA_BOOTSTRAP": self.bootstrap,
            "IOMKI_JWT_SECRET": JWT_SECRET,
            "IOMKI_LOG_FORMAT": "json",
            "IOMKI_RELAY_POLL_INTERVAL": "PT0.2S",
        }
        if self.broker is not None:
            values["KAFKA_REPLICATION_FACTOR"] = str(self.broker.replication_factor)
            values["KAFKA_MIN_INSYNC_REPLICAS"] = str(self.broker.min_insync_replicas)
        values.update(self.environment)
        values.update(overrides)
        return values

    def stop_database(self) -> None:
        """Stop the platform's own PostgreSQL server (fast shutdown: clients are cut off)."""
        assert self.owns_server and self.pgdata is not None, "only a server of the platform's own can be stopped"
        stop_embedded_postgres(self.pgdata)

    def start_database(self) -> None:
        assert self.owns_server and self.pgdata is not None
        self.server_url = embedded_postgres_url(self.pgdata)

    def settings(self, **overrides: str) -> PlatformSettings:
        with patched_environ(self.env(**overrides)):
            return PlatformSettings()


def token(role: Role | str, *, region: str | None = None, nib: str | None = None, sub: str | None = None,
          ttl_seconds: int = 3600) -> str:
    return mint(JWT_SECRET, role=Role(role), region=region, nib=nib, sub=sub, ttl_seconds=ttl_seconds)


def bearer(role: Role | str, **claims: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, **claims)}"}


@contextlib.contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


async def start_platform(
    label: str, *, own_broker: bool = False, own_database: bool = False, brokers: int = 1
) -> TestPlatform:
    """A fresh database, and an Apache Kafka of its own unless KAFKA_BOOTSTRAP names one (and `own_broker` is
    not asked for: a test that restarts the broker needs one nobody else uses); `brokers` nodes of it, topics
    replicated on up to three. With `own_database`, the database lives on an embedded server of its own, which
    the test may stop and restart (never the machine's server, which other tests use)."""
    external = OUTSIDE_DATABASE_URL
    pgdata = None
    if own_database:
        pgdata = ROOT / ".data" / f"test-postgres-{label}-{uuid.uuid4().hex[:6]}"
        server_url = embedded_postgres_url(pgdata)
    elif external:
        server_url = external
    else:
        pgdata = ROOT / ".data" / "test-postgres"
        server_url = embedded_postgres_url(pgdata)
    database = f"iomki_{label}_{uuid.uuid4().hex[:8]}"
    await ensure_database(server_url, database)
    broker = None
    bootstrap = "" if own_broker else OUTSIDE_KAFKA_BOOTSTRAP
    if not bootstrap:
        broker = EmbeddedKafka(ROOT / ".data" / f"test-kafka-{label}-{uuid.uuid4().hex[:6]}", size=brokers,
                               cache_dir=ROOT / ".data")
        await asyncio.to_thread(broker.start)
        bootstrap = broker.bootstrap
    platform = TestPlatform(server_url, database, broker, bootstrap, pgdata, owns_server=own_database)
    await ensure_topics(platform.settings())
    return platform


async def stop_platform(platform: TestPlatform, *, stop_server: bool) -> None:
    if platform.broker is not None:
        await asyncio.to_thread(platform.broker.stop)
        shutil.rmtree(platform.broker.directory, ignore_errors=True)
    if platform.owns_server and platform.pgdata is not None:
        stop_embedded_postgres(platform.pgdata)
        shutil.rmtree(platform.pgdata, ignore_errors=True)
        return
    await drop_database(platform.server_url, platform.database)
    if stop_server and platform.pgdata is not None:
        stop_embedded_postgres(platform.pgdata)


@contextlib.asynccontextmanager
async def running_service(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A service app started in-process (its lifespan: migrations, broker, relay) with an HTTP client."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def schema_before(platform: TestPlatform, schema: str, service: str, version: int) -> str:
    """A service's schema of its own, from nothing, migrated up to (not including) `version`: the data an upgrade
    test stores in an earlier shape. Returns the URL of the schema's role."""
    admin = await asyncpg.connect(platform.admin_url)
    try:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await admin.close()
    url = await provision(platform.admin_url, schema)
    await migrate(url, schema, [m for m in service_migrations(schema, service)
                                if m.component != schema or m.version < version])
    return url


def service_migrations(schema: str, service: str) -> list[Migration]:
    """Every migration a service's schema runs, the platform's first, as the service runs them at start."""
    return migrations_in("platform", PLATFORM_MIGRATIONS) + migrations_in(schema, ROOT / "services" / service
                                                                          / "migrations")
