"""The reports service's composition root: settings, runtime, handlers, routes, subscriptions, the sweep."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.reports import api
from services.reports.domain import Timing, parse_regime, timeline_from_toml
from services.reports.handlers import ReportHandlers, ReportsConfig
from services.reports.repository import PPKM_LEVEL_CHANNEL, ReportsWork
from services.reports.staffing import RepeatedCapacityBreaches, shipped_rule_sets
from shared.clock import Clock, SystemClock
from shared.contract import (
    INCIDENTS, PERMITS, PPKM, REPORTS, EstateTenancyConfirmed, EstateTenancyEnded, FacilityClosureOrdered,
    FacilityReopened, PermitFrozen, PermitIssued, PermitReactivated, PermitRevoked, PpkmLevelSet, SanctionReversed,
    SectorClassChanged,
)
from shared.runtime import ServiceRuntime, serve
from shared.settings import PlatformSettings, port_of


class ReportsSettings(BaseSettings):
    """The reporting regimes and their timing (DESIGN §5): all optional, read from the environment. The timeline is
    shipped in regimes.toml; IOMKI_REPORT_REGIME, for demonstrations and tests only, replaces it with one rule."""

    model_config = SettingsConfigDict(extra="ignore")

    regime: str | None = Field(None, validation_alias="IOMKI_REPORT_REGIME")
    warning_delay: timedelta = Field(timedelta(hours=9), validation_alias="IOMKI_WARNING_DELAY")
    due_lead: timedelta = Field(timedelta(hours=6), validation_alias="IOMKI_REPORT_DUE_LEAD")
    sweep_interval: float = Field(1.0, validation_alias="IOMKI_REPORT_SWEEP_SECONDS", gt=0)
    # PPKM: how often the level sweep looks for levels and rule sets whose day has come (a level recorded for today
    # wakes it at once), and how long a replica keeps the staffing rule sets in memory.
    ppkm_sweep_interval: float = Field(5.0, validation_alias="IOMKI_PPKM_SWEEP_SECONDS", gt=0)
    ppkm_rules_refresh: float = Field(5.0, validation_alias="IOMKI_PPKM_RULES_REFRESH_SECONDS", ge=0)
    # The capacity ladder: this many breaches of the PPKM staffing cap within this many days recommend a freeze.
    capacity_breaches: int = Field(3, validation_alias="IOMKI_CAPACITY_BREACHES", ge=1, le=100)
    capacity_window_days: int = Field(30, validation_alias="IOMKI_CAPACITY_WINDOW_DAYS", ge=1, le=366)

    def config(self) -> ReportsConfig:
        shipped = timeline_from_toml(tomllib.loads(REGIMES_FILE.read_text(encoding="utf-8")))
        rule_sets = shipped_rule_sets(tomllib.loads(PPKM_RULES_FILE.read_text(encoding="utf-8")))
        return ReportsConfig(regime=parse_regime(self.regime) if self.regime else None,
                             timing=Timing(due_lead=self.due_lead, warning_delay=self.warning_delay), shipped=shipped,
                             shipped_rule_sets=rule_sets, rules_refresh=self.ppkm_rules_refresh,
                             capacity_ladder=RepeatedCapacityBreaches(
                                 count=self.capacity_breaches, window=timedelta(days=self.capacity_window_days)))


REGIMES_FILE = Path(__file__).parent / "regimes.toml"
PPKM_RULES_FILE = Path(__file__).parent / "ppkm_rules.toml"


def create_app(settings: PlatformSettings | None = None, clock: Clock | None = None,
               reports_settings: ReportsSettings | None = None) -> FastAPI:
    own = reports_settings or ReportsSettings()
    runtime = ServiceRuntime(name="reports", settings=settings or PlatformSettings(),
                             migrations=Path(__file__).parent / "migrations", unit_of_work=ReportsWork)
    handlers = ReportHandlers(runtime.database, clock or SystemClock(), own.config())
    runtime.consume(PERMITS, {
        PermitIssued: handlers.on_permit_issued,
        PermitFrozen: handlers.on_permit_frozen,
        PermitReactivated: handlers.on_permit_reactivated,
        PermitRevoked: handlers.on_permit_revoked,
        SanctionReversed: handlers.on_sanction_reversed,
        SectorClassChanged: handlers.on_sector_class_changed,
        EstateTenancyConfirmed: handlers.on_tenancy_confirmed,
        EstateTenancyEnded: handlers.on_tenancy_ended,
    })
    runtime.consume(INCIDENTS, {
        FacilityClosureOrdered: handlers.on_closure_ordered,
        FacilityReopened: handlers.on_facility_reopened,
    })
    # The agency's PPKM levels: its topic is created with every other at start (`ensure_topics`).
    runtime.consume(PPKM, {PpkmLevelSet: handlers.on_ppkm_level_set})
    runtime.publishes(REPORTS)
    runtime.at_start(handlers.ship_regimes)
    runtime.at_start(handlers.ship_rule_sets)
    runtime.every(own.sweep_interval, "deadline-sweep", handlers.sweep)
    runtime.every(own.ppkm_sweep_interval, "ppkm-sweep", handlers.sweep_ppkm, wake_on=PPKM_LEVEL_CHANNEL)
    return runtime.http_app(
        title="iomki reports",
        description="Reporting schedules by regulation, submissions, overdue periods, warnings and compliance.",
        routers=[api.router(handlers)], problems=api.PROBLEMS,
    )


def main() -> None:
    serve(create_app(), port_of("reports"))


if __name__ == "__main__":
    main()
