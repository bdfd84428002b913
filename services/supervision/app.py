"""The supervision service's composition root: settings, risk weights, runtime, handlers, routes, subscriptions."""

from __future__ import annotations

import functools
from pathlib import Path

from fastapi import FastAPI
from pydantic import Field, NonNegativeFloat, PositiveInt
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.supervision import api
from services.supervision.domain import RiskScore, RiskWeights
from services.supervision.handlers import SupervisionHandlers
from services.supervision.photos import PHOTO_MAX_BYTES
from services.supervision.repository import SupervisionWork
from shared.clock import Clock, SystemClock
from shared.contract import (
    INCIDENTS, PERMITS, REPORTS, SUPERVISION, CapacityBreachDetected, CaseDetected, ClusterDeclared, PermitFrozen,
    PermitIssued, PermitReactivated, PermitRevoked, ReportOverdue, ReportSubmitted, SanctionRequestDecided,
    SanctionReversed,
)
from shared.messaging.consumer import InBatches
from shared.runtime import ServiceRuntime, serve
from shared.settings import PlatformSettings, port_of

_DEFAULT = RiskWeights()
# Seconds the relay gathers events after a round: a burst of the public's complaints then reaches the broker, which
# the reports and every other service share, in a few produce requests a second rather than one per commit. None
# of this service's events is waited for within that.
RELAY_LINGER = 0.05


class SupervisionSettings(BaseSettings):
    """The risk weights (`IOMKI_RISK_*`, points per event since the last inspection, and per day since it) and the
    public's complaint limit per client address."""

    model_config = SettingsConfigDict(extra="ignore")

    missed_reports: NonNegativeFloat = Field(_DEFAULT.missed_reports, validation_alias="IOMKI_RISK_MISSED_REPORTS")
    late_reports: NonNegativeFloat = Field(_DEFAULT.late_reports, validation_alias="IOMKI_RISK_LATE_REPORTS")
    protocol_lapses: NonNegativeFloat = Field(_DEFAULT.protocol_lapses, validation_alias="IOMKI_RISK_PROTOCOL_LAPSES")
    capacity_breaches: NonNegativeFloat = Field(_DEFAULT.capacity_breaches,
                                                validation_alias="IOMKI_RISK_CAPACITY_BREACHES")
    cases: NonNegativeFloat = Field(_DEFAULT.cases, validation_alias="IOMKI_RISK_CASES")
    clusters: NonNegativeFloat = Field(_DEFAULT.clusters, validation_alias="IOMKI_RISK_CLUSTERS")
    complaints: NonNegativeFloat = Field(_DEFAULT.complaints, validation_alias="IOMKI_RISK_COMPLAINTS")
    per_day: NonNegativeFloat = Field(_DEFAULT.per_day, validation_alias="IOMKI_RISK_PER_DAY")
    complaints_per_hour: PositiveInt = Field(10, validation_alias="IOMKI_COMPLAINTS_PER_HOUR", le=1_000_000)

    def score(self) -> RiskScore:
        return RiskScore(RiskWeights(
            missed_reports=self.missed_reports, late_reports=self.late_reports, protocol_lapses=self.protocol_lapses,
            capacity_breaches=self.capacity_breaches, cases=self.cases, clusters=self.clusters,
            complaints=self.complaints, per_day=self.per_day))


def create_app(settings: PlatformSettings | None = None, clock: Clock | None = None,
               supervision: SupervisionSettings | None = None) -> FastAPI:
    supervision = supervision or SupervisionSettings()
    score = supervision.score()
    runtime = ServiceRuntime(name="supervision", settings=settings or PlatformSettings(),
                             migrations=Path(__file__).parent / "migrations",
                             unit_of_work=functools.partial(SupervisionWork, score=score), relay_linger=RELAY_LINGER)
    handlers = SupervisionHandlers(runtime.database, clock or SystemClock(), score)
    runtime.consume(PERMITS, {PermitIssued: InBatches(handlers.on_permits_issued),
                              PermitFrozen: handlers.on_permit_frozen,
                              PermitReactivated: handlers.on_permit_reactivated,
                              PermitRevoked: handlers.on_permit_revoked,
                              SanctionReversed: handlers.on_sanction_reversed,
                              SanctionRequestDecided: handlers.on_request_decided})
    runtime.consume(REPORTS, {ReportOverdue: handlers.on_report_overdue,
                              ReportSubmitted: InBatches(handlers.on_reports_submitted),
                              CapacityBreachDetected: handlers.on_capacity_breach})
    runtime.consume(INCIDENTS, {CaseDetected: handlers.on_case_detected,
                                ClusterDeclared: handlers.on_cluster_declared})
    runtime.publishes(SUPERVISION)
    rate = api.ComplaintRate(supervision.complaints_per_hour, runtime.settings.client_address_header)
    return runtime.http_app(
        title="iomki supervision",
        description="Risk-ranked inspection worklists, inspections and their photos, the public's complaints, and the "
                    "regional offices' sanction requests.",
        routers=[api.router(handlers, rate)], problems=api.PROBLEMS,
        # Photos: the route bounds them to PHOTO_MAX_BYTES again, and reads no more.
        uploads={r"/inspections/[^/]+/photos": PHOTO_MAX_BYTES + 1024},
    )


def main() -> None:
    serve(create_app(), port_of("supervision"))


if __name__ == "__main__":
    main()
