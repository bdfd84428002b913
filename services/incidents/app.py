"""The incidents service's composition root: settings, policy, runtime, handlers, routes, subscriptions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI
from pydantic import Field, PositiveInt, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.incidents import api
from services.incidents.domain import MAX_CLOSURE_DAYS, ClusterRule, IncidentPolicy
from services.incidents.handlers import IncidentHandlers
from services.incidents.repository import IncidentsWork
from shared.clock import Clock, SystemClock
from shared.contract import (
    INCIDENTS, PERMITS, REPORTS, EstateTenancyConfirmed, EstateTenancyEnded, PermitIssued, PermitRevoked,
    ReportSubmitted, SanctionReversed,
)
from shared.messaging.consumer import InBatches
from shared.regions import is_province
from shared.runtime import ServiceRuntime, serve
from shared.settings import PlatformSettings, port_of

# How often due timers (isolation ends, quarantine ends, room reopenings, recommendations' answers) are looked for.
TIMER_SWEEP_SECONDS = 1.0


_NATIONAL = IncidentPolicy()


class IncidentsSettings(BaseSettings):
    """Overrides of the regulation's periods; unset, each is the national rule in `IncidentPolicy`. Where a
    province rules otherwise, per province: room closure hours as `31=72,81=72` (DKI's and Maluku's 3×24 h, the
    default), the provinces that close a cluster's plant automatically as `31,81` (none by default)."""

    model_config = SettingsConfigDict(extra="ignore")

    isolation_days: PositiveInt = Field(_NATIONAL.isolation_days, validation_alias="IOMKI_ISOLATION_DAYS")
    symptom_free_days: PositiveInt = Field(_NATIONAL.symptom_free_days, validation_alias="IOMKI_SYMPTOM_FREE_DAYS")
    quarantine_days: PositiveInt = Field(_NATIONAL.quarantine_days, validation_alias="IOMKI_QUARANTINE_DAYS")
    quarantine_with_exit_test_days: PositiveInt = Field(_NATIONAL.quarantine_with_exit_test_days,
                                                        validation_alias="IOMKI_QUARANTINE_WITH_EXIT_TEST_DAYS")
    trace_back_days: PositiveInt = Field(_NATIONAL.trace_back_days, validation_alias="IOMKI_TRACE_BACK_DAYS")
    contacts_per_case_target: PositiveInt = Field(_NATIONAL.contacts_per_case_target,
                                                  validation_alias="IOMKI_CONTACTS_PER_CASE_TARGET")
    room_closure_hours: PositiveInt = Field(_NATIONAL.room_closure // timedelta(hours=1),
                                            validation_alias="IOMKI_ROOM_CLOSURE_HOURS")
    room_closure_hours_by_province: Annotated[dict[str, PositiveInt], NoDecode] = Field(
        {code: hours // timedelta(hours=1) for code, hours in _NATIONAL.room_closure_by_province.items()},
        validation_alias="IOMKI_ROOM_CLOSURE_HOURS_BY_PROVINCE")
    plant_closure_days: PositiveInt = Field(_NATIONAL.plant_closure.days, le=MAX_CLOSURE_DAYS,
                                            validation_alias="IOMKI_PLANT_CLOSURE_DAYS")
    cluster_more_than: PositiveInt = Field(_NATIONAL.cluster.more_than, validation_alias="IOMKI_CLUSTER_MORE_THAN")
    cluster_window_days: PositiveInt = Field(_NATIONAL.cluster.window_days,
                                             validation_alias="IOMKI_CLUSTER_WINDOW_DAYS")
    possible_cluster_more_than: PositiveInt = Field(_NATIONAL.cluster.possible_more_than,
                                                    validation_alias="IOMKI_POSSIBLE_CLUSTER_MORE_THAN")
    # A duration (ISO 8601, e.g. PT24H), as the platform's other timings are.
    recommendation_answer: timedelta = Field(_NATIONAL.recommendation_answer, gt=timedelta(0),
                                             validation_alias="IOMKI_RECOMMENDATION_ANSWER_WITHIN")
    automatic_closure_provinces: Annotated[frozenset[str], NoDecode] = Field(
        _NATIONAL.automatic_closure_provinces, validation_alias="IOMKI_AUTOMATIC_CLOSURE_PROVINCES")

    @field_validator("room_closure_hours_by_province", mode="before")
    @classmethod
    def _hours_by_province(cls, value: object) -> object:
        """`31=72,81=72`: a province code and its hours, comma-separated; empty for none."""
        if not isinstance(value, str):
            return value
        pairs = [item.partition("=") for item in value.split(",") if item.strip()]
        if any(not separator or not is_province(code.strip()) for code, separator, _ in pairs):
            raise ValueError("expected province=hours, comma-separated, e.g. 31=72,81=72")
        return {code.strip(): hours.strip() for code, _, hours in pairs}

    @field_validator("automatic_closure_provinces", mode="before")
    @classmethod
    def _provinces(cls, value: object) -> object:
        """`31,81`: province codes, comma-separated; empty for none."""
        if not isinstance(value, str):
            return value
        codes = frozenset(code.strip() for code in value.split(",") if code.strip())
        if not all(is_province(code) for code in codes):
            raise ValueError("expected two-digit province codes, comma-separated, e.g. 31,81")
        return codes

    def policy(self) -> IncidentPolicy:
        return IncidentPolicy(
            isolation_days=self.isolation_days, symptom_free_days=self.symptom_free_days,
            quarantine_days=self.quarantine_days, quarantine_with_exit_test_days=self.quarantine_with_exit_test_days,
            trace_back_days=self.trace_back_days, contacts_per_case_target=self.contacts_per_case_target,
            room_closure=timedelta(hours=self.room_closure_hours),
            room_closure_by_province={code: timedelta(hours=hours)
                                      for code, hours in self.room_closure_hours_by_province.items()},
            plant_closure=timedelta(days=self.plant_closure_days),
            cluster=ClusterRule(self.cluster_more_than, self.cluster_window_days, self.possible_cluster_more_than),
            recommendation_answer=self.recommendation_answer,
            automatic_closure_provinces=self.automatic_closure_provinces,
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
