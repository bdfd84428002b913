"""PostgreSQL plumbing: one schema and one role per service, versioned migrations, a pool.

Each service connects as its own role (`iomki_<service>`) whose search path is its own schema; no role is
granted another's schema, so "no service reads another's tables" is enforced by the database itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import structlog
import hashlib
from dataclasses import dataclass

log = structlog.get_logger(__name__)

# Matched with `fullmatch`: `$` alone also matches before a final newline.
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_MIGRATION = re.compile(r"^(?P<version>[0-9]{4})_(?P<name>[a-z0-9_]+)\.sql$")
# Advisory-lock namespace for provisioning and migrations (an arbitrary constant, shared by all services).
_LOCK_NAMESPACE = 0x10_4B_1

# Bounds on every wait for the database, so that a server that is down or stuck makes a request fail (503)
# within seconds instead of hanging: opening a connection, getting one from the pool (which may include
# opening it), and any one statement.
CONNECT_TIMEOUT = 5.0
ACQUIRE_TIMEOUT = 8.0
COMMAND_TIMEOUT = 15.0

# What statements run on: a connection of its own, or one lent by a pool (a proxy, not a subclass, of it).
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

# What the database raises when it cannot be reached or is going away (the last: the server is shutting down):
# worth retrying later, and no fault of the work that met it.
DATABASE_UNREACHABLE = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
                        asyncpg.CannotConnectNowError, asyncpg.OperatorInterventionError)


def role_of(service: str) -> str:
    return f"iomki_{service}"


def with_user(url: str, user: str, database: str | None = None) -> str:
    """The same server as `url`, as another role (and optionally another database)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    path = f"/{database}" if database else parts.path
    return urlunsplit((parts.scheme, f"{user}@{host}", path, parts.query, parts.fragment))


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def describe(url: str) -> str:
    """A URL fit for logs and error messages: no password."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        credentials, host = netloc.rsplit("@", 1)
        netloc = f"{credentials.split(':', 1)[0]}@{host}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


async def ensure_database(admin_url: str, database: str) -> None:
    _check_identifier(database)
    connection = await asyncpg.connect(with_database(admin_url, "postgres"))
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            try:
                await connection.execute(f"CREATE DATABASE {quote_identifier(database)}")
            except asyncpg.DuplicateDatabaseError:
                pass
    finally:
        await connection.close()


async def drop_database(admin_url: str, database: str) -> None:
    _check_identifier(database)
    connection = await asyncpg.connect(with_database(admin_url, "postgres"))
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {quote_identifier(database)} WITH (FORCE)")
    finally:
        await connection.close()


async def provision(admin_url: str, service: str) -> str:
    """Create the service's role and schema if missing; return the URL the service connects with."""
    _check_identifier(service)
    role = role_of(service)
    connection = await asyncpg.connect(admin_url)
    try:
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1, 0)", _LOCK_NAMESPACE)
            if not await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                await connection.execute(f"CREATE ROLE {quote_identifier(role)} LOGIN")
            await connection.execute(
                f"GRANT CONNECT ON DATABASE {quote_identifier(database_of(admin_url))} TO {quote_identifier(role)}")
            await connection.execute(
                f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(service)} AUTHORIZATION {quote_identifier(role)}")
    finally:
        await connection.close()
    return with_user(admin_url, role)


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    pass


def migrations_in(component: str, directory: Path) -> list[Migration]:
    """A component's migrations, `NNNN_what_it_does.sql`, applied in version order."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION.fullmatch(path.name)
        if match is None:
            raise MigrationError(f"{path}: migrations are named NNNN_what_it_does.sql")
        found.append(Migration(component, int(match["version"]), match["name"], path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{directory}: two migrations share a version number")
    return found


async def migrate(url: str, schema: str, migrations: list[Migration]) -> int:
    """Apply what is not applied yet, each migration in its own transaction, under a lock per schema.

    Concurrent starts (two replicas, or a test and a service) wait on the lock and find nothing to do.
    A migration that was edited after it was applied is refused rather than silently skipped.
    """
    connection = await asyncpg.connect(url, server_settings={"search_path": schema})
    applied_now = 0
    try:
        await connection.execute("SELECT pg_advisory_lock($1, hashtext($2))", _LOCK_NAMESPACE, schema)
        try:
            await connection.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       component text NOT NULL, version int NOT NULL, name text NOT NULL,
                       checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),
                       PRIMARY KEY (component, version))"""
            )
            rows = await connection.fetch("SELECT component, version, checksum FROM schema_migrations")
            applied = {(row["component"], row["version"]): row["checksum"] for row in rows}
            for migration in migrations:
                known = applied.get((migration.component, migration.version))
                if known is not None:
                    if known != migration.checksum:
                        raise MigrationError(
                            f"{migration.component} migration {migration.version:04d}_{migration.name} "
                            "changed after it was applied; add a new migration instead"
                        )
                    continue
                async with connection.transaction():
                    await connection.execute(migration.sql)
                    await connection.execute(
                        "INSERT INTO schema_migrations (component, version, name, checksum) VALUES ($1, $2, $3, $4)",
                        migration.component, migration.version, migration.name, migration.checksum,
                    )
                applied_now += 1
                log.info("migration_applied", schema=schema, component=migration.component,
                         version=migration.version, name=migration.name)
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1, hashtext($2))", _LOCK_NAMESPACE, schema)
    finally:
        await connection.close()
    return applied_now


async def create_pool(url: str, schema: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": schema, "application_name": f"iomki-{schema}"},
        timeout=CONNECT_TIMEOUT,
        command_timeout=COMMAND_TIMEOUT,
        reset=_no_session_state_to_reset,
    )


async def _no_session_state_to_reset(connection: asyncpg.Connection) -> None:
    """Pooled connections carry no session state: LISTEN, session advisory locks and SET happen only on
    connections of their own (relay, wake-ups, migrations). So a connection going back to the pool needs only
    asyncpg's own clean-up (rolling back an unfinished transaction), not the default reset statement, which
    would cost every request and every consumed batch one more round trip to the server."""


def quote_identifier(name: str) -> str:
    """A database, role or schema name in a statement (identifiers cannot be `$n` parameters), quoted the way
    PostgreSQL quotes them, so that no name can end the identifier and start SQL of its own."""
    return '"' + name.replace('"', '""') + '"'


def _check_identifier(name: str) -> None:
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain lower-case identifier")
