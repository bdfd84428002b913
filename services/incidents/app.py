"""The incidents service's composition root: settings, policy, runtime, handlers, routes, subscriptions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from pydantic import Field, PositiveInt
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.incidents import api
from services.incidents.domain import ClusterPolicy, IncidentPolicy
from services.incidents.handlers import IncidentHandlers
from services.incidents.repository import IncidentsWork
from shared.clock import Clock, SystemClock
from shared.contract import (
    INCIDENTS, PERMITS, REPORTS, EstateTenancyConfirmed, EstateTenancyEnded, PermitIssued, PermitRevoked,
    ReportSubmitted, SanctionReversed,
)
from shared.messaging.consumer import InBatches
from shared.runtime import ServiceRuntime, serve
from shared.settings import PlatformSettings, port_of

# How often due timers (isolation ends, quarantine ends, room reopenings) are looked for.
TIMER_SWEEP_SECONDS = 1.0


_NATIONAL = IncidentPolicy()


class IncidentsSettings(BaseSettings):
    """Overrides of the regulation's periods where a region rules otherwise (DKI's 3×24 h room closure:
    `IOMKI_ROOM_CLOSURE_HOURS=72`); unset, each is the national rule in `IncidentPolicy`."""

    model_config = SettingsConfigDict(extra="ignore")

    isolation_days: PositiveInt = Field(_NATIONAL.isolation_days, validation_alias="IOMKI_ISOLATION_DAYS")
    symptom_free_days: PositiveInt = Field(_NATIONAL.symptom_free_days, validation_alias="IOMKI_SYMPTOM_FREE_DAYS")
    quarantine_days: PositiveInt = Field(_NATIONAL.quarantine_days, validation_alias="IOMKI_QUARANTINE_DAYS")
    quarantine_with_exit_test_days: PositiveInt = Field(_NATIONAL.quarantine_with_exit_test_days,
                                                        validation_alias="IOMKI_QUARANTINE_WITH_EXIT_TEST_DAYS")
    room_closure_hours: PositiveInt = Field(_NATIONAL.room_closure // timedelta(hours=1),
                                            validation_alias="IOMKI_ROOM_CLOSURE_HOURS")
    plant_closure_days: PositiveInt = Field(_NATIONAL.plant_closure.days, validation_alias="IOMKI_PLANT_CLOSURE_DAYS")
    cluster_threshold: PositiveInt = Field(_NATIONAL.cluster.threshold, validation_alias="IOMKI_CLUSTER_THRESHOLD")
    cluster_window_days: PositiveInt = Field(_NATIONAL.cluster.window_days,
                                             validation_alias="IOMKI_CLUSTER_WINDOW_DAYS")

    def policy(self) -> IncidentPolicy:
        return IncidentPolicy(
            isolation_days=self.isolation_days, symptom_free_days=self.symptom_free_days,
            quarantine_days=self.quarantine_days, quarantine_with_exit_test_days=self.quarantine_with_exit_test_days,
            room_closure=timedelta(hours=self.room_closure_hours),
            plant_closure=timedelta(days=self.plant_closure_days),
            cluster=ClusterPolicy(self.cluster_threshold, self.cluster_window_days),
        )


def create_app(settings: PlatformSettings | None = None, clock: Clock | None = None,
               policy: IncidentPolicy | None = None) -> FastAPI:
    runtime = ServiceRuntime(name="incidents", settings=settings or PlatformSettings(),
                             migrations=Path(__file__).parent / "migrations", unit_of_work=IncidentsWork)
    handlers = IncidentHandlers(runtime.database, clock or SystemClock(),
                                policy or IncidentsSettings().policy())
    # Deviation from DESIGN §2 (documented in the README): incidents also consumes PermitIssued, to know each
    # plant's region and NIB for access scope and to refuse cases at plants it does not know.
    runtime.consume(PERMITS, {PermitIssued: InBatches(handlers.on_permits_issued),
                              PermitRevoked: handlers.on_permit_revoked,
                              SanctionReversed: handlers.on_sanction_reversed,
                              EstateTenancyConfirmed: handlers.on_tenancy_confirmed,
                              EstateTenancyEnded: handlers.on_tenancy_ended})
    runtime.consume(REPORTS, {ReportSubmitted: handlers.on_report_submitted})
    runtime.publishes(INCIDENTS)
    runtime.every(TIMER_SWEEP_SECONDS, "timers", handlers.fire_due_timers)
    return runtime.http_app(
        title="iomki incidents",
        description="COVID cases at plants (pseudonymous), isolation, contact quarantine, clusters and closures.",
        routers=[api.router(handlers)], problems=api.PROBLEMS,
    )


def main() -> None:
    serve(create_app(), port_of("incidents"))


if __name__ == "__main__":
    main()
