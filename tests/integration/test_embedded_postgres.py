"""The embedded PostgreSQL runs with the platform's settings, applied once per data directory."""

from __future__ import annotations

import shutil
import uuid

import asyncpg
import pytest

from shared.storage.embedded import EMBEDDED_POSTGRES_SETTINGS, embedded_postgres_url, stop_embedded_postgres
from tests.support.platform import ROOT

pytestmark = pytest.mark.integration


async def test_a_new_embedded_server_runs_with_the_platforms_settings_and_keeps_running_when_asked_again():
    pgdata = ROOT / ".data" / f"test-postgres-settings-{uuid.uuid4().hex[:6]}"
    try:
        url = embedded_postgres_url(pgdata)
        connection = await asyncpg.connect(url)
        try:
            shown = {name: await connection.fetchval(f"SHOW {name}") for name in EMBEDDED_POSTGRES_SETTINGS}
            started = await connection.fetchval("SELECT pg_postmaster_start_time()")
        finally:
            await connection.close()
        assert shown == EMBEDDED_POSTGRES_SETTINGS

        # A second process asking for the same server (a service beside the launcher) neither restarts it nor
        # writes its settings again.
        settings_file = (pgdata / "iomki.conf").stat().st_mtime_ns
        assert embedded_postgres_url(pgdata) == url
        connection = await asyncpg.connect(url)
        try:
            assert await connection.fetchval("SELECT pg_postmaster_start_time()") == started
        finally:
            await connection.close()
        assert (pgdata / "iomki.conf").stat().st_mtime_ns == settings_file
    finally:
        stop_embedded_postgres(pgdata)
        shutil.rmtree(pgdata, ignore_errors=True)
