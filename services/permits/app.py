"""The permits service's composition root: settings, runtime, handlers, routes, subscriptions."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.permits import api
from services.permits.handlers import PermitHandlers
from services.permits.repository import PermitsWork
from shared.clock import Clock, SystemClock
from shared.contract import INTERNAL_CONTACTS, PERMITS
from shared.runtime import ServiceRuntime, serve
from shared.settings import PlatformSettings, port_of


def create_app(settings: PlatformSettings | None = None, clock: Clock | None = None) -> FastAPI:
    runtime = ServiceRuntime(name="permits", settings=settings or PlatformSettings(),
                             migrations=Path(__file__).parent / "migrations", unit_of_work=PermitsWork)
    handlers = PermitHandlers(runtime.database, clock or SystemClock())
    runtime.publishes(PERMITS)
    runtime.publishes(INTERNAL_CONTACTS)
    return runtime.http_app(
        title="iomki permits",
        description="Companies, plants and their IOMKI permits; the public registry.",
        routers=[api.router(handlers)],
    )


def main() -> None:
    serve(create_app(), port_of("permits"))


if __name__ == "__main__":
    main()
