"""`iomki up`: the whole platform on one machine, as separate processes, stopped cleanly on Ctrl-C.

Starts what is not configured (the embedded PostgreSQL unless `DATABASE_URL`, an Apache Kafka node unless
`KAFKA_BOOTSTRAP`, the development Keycloak unless `IOMKI_OIDC_ISSUER`), creates the topics, applies every
service's migrations, then runs the five services and the console as OS processes and restarts any that dies. On
SIGINT/SIGTERM it stops them, then the identity provider, the broker and the database it started itself.

The services trust the development Keycloak's tokens (people signed in at the console) beside the development
secret's (the CLI's and the printed operator token).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import structlog

from shared.messaging.bus import ensure_topics
from shared.runtime import PLATFORM_MIGRATIONS
from shared.settings import SERVICES, PlatformSettings, local_url, port_of
from shared.storage.db import describe, migrate, migrations_in, provision
from shared.storage.embedded import admin_database_url, stop_embedded_postgres
from shared.storage.secret_files import keep_secret_once
from tooling.embedded_kafka import EMBEDDED_CONTROLLER_PORT, EmbeddedKafka
from tooling.embedded_keycloak import EmbeddedKeycloak

log = structlog.get_logger(__name__)

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"
PROCESSES = (*SERVICES, "console")  # what `iomki up` runs and restarts


def development_secret(settings: PlatformSettings) -> str:
    """IOMKI_JWT_SECRET, or a development secret kept under the data directory so tokens survive restarts."""
    if settings.jwt_secret:
        return settings.jwt_secret
    return keep_secret_once(settings.data_dir / "jwt-secret", secrets.token_urlsafe(48).encode()).decode().strip()


@dataclass
class Platform:
    settings: PlatformSettings
    environment: dict[str, str] = field(default_factory=dict)
    broker: EmbeddedKafka | None = None
    identity_provider: EmbeddedKeycloak | None = None
    started_database: bool = False
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    async def prepare(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.started_database = not settings.database_url
        admin_url = await admin_database_url(settings)
        bootstrap = settings.kafka_bootstrap
        starting = []
        if not bootstrap:
            host, port = settings.bootstrap.rsplit(":", 1)
            self.broker = EmbeddedKafka(settings.data_dir / "kafka", host=host,
                                        ports=[(int(port), EMBEDDED_CONTROLLER_PORT)], cache_dir=settings.data_dir)
            starting.append(asyncio.to_thread(self.broker.start))
        if settings.oidc_issuer is None:
            self.identity_provider = EmbeddedKeycloak(settings.data_dir / "keycloak", port=port_of("keycloak"),
                                                      cache_dir=settings.data_dir)
            starting.append(asyncio.to_thread(self.identity_provider.start))
        await asyncio.gather(*starting)  # the broker and the provider start side by side
        bootstrap = self.broker.bootstrap if self.broker else bootstrap
        self.environment = {
            "DATABASE_URL": admin_url,
            "KAFKA_BOOTSTRAP": bootstrap or "",
            "IOMKI_JWT_SECRET": development_secret(settings),
        }
        if self.identity_provider is not None:
            self.environment |= {"IOMKI_OIDC_ISSUER": self.identity_provider.issuer, "IOMKI_OIDC_AUDIENCE": "iomki"}
        resolved = PlatformSettings(**{**settings.model_dump(), "database_url": admin_url,
                                       "kafka_bootstrap": bootstrap})
        await ensure_topics(resolved)
        for service in SERVICES:
            url = os.environ.get(f"IOMKI_{service.upper()}_DATABASE_URL") or await provision(admin_url, service)
            await migrate(url, service, migrations_in("platform", PLATFORM_MIGRATIONS)
                          + migrations_in(service, SERVICES_DIR / service / "migrations"))
        log.info("platform_prepared", database=describe(admin_url), broker=bootstrap)

    def start_service(self, service: str) -> None:
        env = {**os.environ, **self.environment}
        # This interpreter, running one of the platform's own services by its fixed name.
        self.processes[service] = subprocess.Popen([sys.executable, "-m", f"services.{service}"], env=env)  # noqa: S603

    async def wait_ready(self, timeout: float = 60.0) -> dict[str, bool]:
        ready: dict[str, bool] = {}
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            for service in PROCESSES:
                url = f"{local_url(service)}/readyz"
                ready[service] = False
                while time.monotonic() < deadline:
                    try:
                        if (await client.get(url)).status_code == 200:
                            ready[service] = True
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.25)
        return ready

    def stop(self) -> None:
        """Stop the services, then the broker and the database this platform started. A second Ctrl-C, or the
        SIGTERM a supervisor sends the whole process group, must not cut it short and leave them running."""
        unheeded = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._stop_all()
        finally:
            for sig, handler in unheeded.items():
                signal.signal(sig, handler)

    def _stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for service, process in self.processes.items():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                log.warning("service_killed", service=service)
                process.kill()
                process.wait(5)
        if self.identity_provider is not None:
            self.identity_provider.stop()
        if self.broker is not None:
            self.broker.stop()
        if self.started_database:
            stop_embedded_postgres(self.settings.data_dir / "postgres")
