"""Every service as a real OS process on a free port, over a test platform's database and broker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from click.testing import Result
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from shared.settings import SERVICES
from tests.support.platform import JWT_SECRET, ROOT, TestPlatform, start_platform, stop_platform
from tooling.cli.app import app
from tooling.ports import free_ports

ARTIFACTS = ROOT / ".data" / "test-artifacts"


@dataclass
class RunningServices:
    platform: TestPlatform
    overrides: dict[str, str]
    ports: dict[str, int] = field(default_factory=lambda: dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True)))
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # The notifier seals webhook secrets with a configured key, as deployed (production will not start without
    # one); the same key across restarts, so a restarted notifier opens what it sealed before.
    webhook_secret_keys: str = field(default_factory=lambda: Fernet.generate_key().decode())

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def log_path(self, service: str) -> Path:
        return ARTIFACTS / f"{self.platform.database}-{service}.log"

    def start(self, service: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        ports = {f"IOMKI_{name.upper()}_PORT": str(port) for name, port in self.ports.items()}
        env = {**os.environ, **self.platform.env(IOMKI_WEBHOOK_SECRET_KEYS=self.webhook_secret_keys, **ports,
                                                 **self.overrides)}
        with open(self.log_path(service), "ab") as log:
            self.processes[service] = subprocess.Popen(  # noqa: S603 -- this interpreter, the platform's own module
                [sys.executable, "-m", f"services.{service}"], env=env, cwd=ROOT, stdout=log, stderr=log,
            )

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            for service in self.processes:
                while True:
                    if self.processes[service].poll() is not None:
                        raise AssertionError(f"{service} exited: {self.log_path(service).read_text()[-3000:]}")
                    try:
                        if (await client.get(f"{self.url(service)}/readyz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise AssertionError(f"{service} not ready: {self.log_path(service).read_text()[-3000:]}")
                    await asyncio.sleep(0.2)

    def kill(self, service: str) -> None:
        process = self.processes[service]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@contextlib.asynccontextmanager
async def running_platform(
    label: str, overrides: dict[str, str] | None = None, *, own_database: bool = False, brokers: int = 1
) -> AsyncIterator[RunningServices]:
    """A database and broker of their own, and every service on them as processes, until the block ends.
    With `own_database` the PostgreSQL server is the platform's own too, so the test may restart it; with
    `brokers` of 3 the broker is a KRaft cluster, and every topic has three replicas, two of them in sync."""
    platform = await start_platform(label, own_broker=True, own_database=own_database, brokers=brokers)
    running = RunningServices(platform, overrides or {})
    try:
        for service in SERVICES:
            running.start(service)
        await running.wait_ready()
        yield running
    finally:
        running.stop()
        await stop_platform(platform, stop_server=False)


def cli_invoker(services: RunningServices) -> Callable[..., Awaitable[Result]]:
    """`iomki …` run in-process against these services and their broker, as an operator's shell would."""
    env = {f"IOMKI_{service.upper()}_URL": services.url(service) for service in SERVICES}
    env |= {"KAFKA_BOOTSTRAP": services.platform.bootstrap, "IOMKI_JWT_SECRET": JWT_SECRET, "IOMKI_TOKEN": None,
            "COLUMNS": "200"}
    runner = CliRunner()

    async def invoke(*args: str) -> Result:
        return await asyncio.to_thread(runner.invoke, app, list(args), env=env)

    return invoke
