"""The incidents service's composition root: settings, policy, runtime, handlers, routes, subscriptions."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from services.incidents import api
from services.incidents.domain import IncidentPolicy
from services.incidents.handlers import IncidentHandlers
from services.incidents.repository import IncidentsWork
from shared.clock import Clock, SystemClock
from shared.contract import INCIDENTS, PERMITS, REPORTS, PermitIssued, PermitRevoked, ReportSubmitted
from shared.messaging.consumer import InBatches
from shared.runtime import ServiceRuntime, serve
from shared.settings import PlatformSettings, port_of

# How often due timers (isolation ends, quarantine ends, room reopenings) are looked for.
TIMER_SWEEP_SECONDS = 1.0


def create_app(settings: PlatformSettings | None = None, clock: Clock | None = None,
               policy: IncidentPolicy | None = None) -> FastAPI:
    runtime = ServiceRuntime(name="incidents", settings=settings or PlatformSettings(),
                             migrations=Path(__file__).parent / "migrations", unit_of_work=IncidentsWork)
    handlers = IncidentHandlers(runtime.database, clock or SystemClock(),
                                policy or IncidentPolicy.from_environment(os.environ))
    # Deviation from DESIGN §2 (documented in the README): incidents also consumes PermitIssued, to know each
    # plant's region and NIB for access scope and to refuse cases at plants it does not know.
    runtime.consume(PERMITS, {PermitIssued: InBatches(handlers.on_permits_issued),
                              PermitRevoked: handlers.on_permit_revoked})
    runtime.consume(REPORTS, {ReportSubmitted: handlers.on_report_submitted})
    runtime.publishes(INCIDENTS)
    runtime.every(TIMER_SWEEP_SECONDS, "timers", handlers.fire_due_timers)
    return runtime.http_app(
        title="iomki incidents",
        description="COVID cases at plants (pseudonymous), isolation, contact quarantine, clusters and closures.",
        routers=[api.router(handlers)],
    )


def main() -> None:
    serve(create_app(), port_of("incidents"))


if __name__ == "__main__":
    main()
