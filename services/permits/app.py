"""The permits service's composition root: settings, runtime, handlers, routes, subscriptions."""

from __future__ import annotations

from pathlib import Path

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.permits import api
from services.permits.calendar import IndonesianHolidays
from services.permits.domain import (
    DEFAULT_SERVICE_LEVELS, OBJECTION_WORKING_DAYS, ApplicationRules, KbliSectorTable, ObjectionWindow,
    PrincipalActivity, ServiceLevels, WorkingDays, WorkKind,
)
from services.permits.handlers import (
    EstateHandlers, ObjectionHandlers, PermitHandlers, SectorHandlers, WorklistHandlers,
)
from services.permits.letters import PdfLetters
from services.permits.repository import PermitsWork
from shared import registry_tokens
from shared.regions import KemendagriRegions
from shared.clock import Clock, SystemClock
from shared.contract import (
    INCIDENTS, INTERNAL_CONTACTS, PERMITS, REPORTS, SUPERVISION, FacilityClosureOrdered, FacilityReopened,
    ReportSubmitted, SanctionRecommended, SanctionRequested, WarningIssued,
)
from shared.messaging.consumer import InBatches
from shared.runtime import ServiceRuntime, serve
from shared.settings import PlatformSettings, port_of
from shared.storage.secret_files import keep_secret_once

log = structlog.get_logger(__name__)


LETTER_SEND_INTERVAL = 5.0  # seconds: what a lost wake-up may delay a letter by
# The KBLI sector table shipped with the service (kbli_sectors.toml names its sources).
SECTOR_TABLE_FILE = Path(__file__).parent / "kbli_sectors.toml"


def sector_table(path: Path = SECTOR_TABLE_FILE) -> KbliSectorTable:
    """The KBLI sector table at `path` (the shipped one unless IOMKI_KBLI_SECTORS_FILE names another)."""
    return KbliSectorTable.from_toml(path.read_text(encoding="utf-8"))


class PermitsSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    registry_signing_key: str | None = Field(None, validation_alias="IOMKI_REGISTRY_SIGNING_KEY",
                                             description="Ed25519 private key: PEM, or base64 of the 32-byte seed")
    # A year's working days at most: a window that long is a typing error, not a policy.
    objection_working_days: int = Field(OBJECTION_WORKING_DAYS, ge=1, le=250,
                                        validation_alias="IOMKI_OBJECTION_WORKING_DAYS",
                                        description="Working days to object to a freeze or revocation "
                                                    "(UU 30/2014 Pasal 77(1): 21)")
    # Service levels of the operators' worklists, in the ministry's working days (GET /worklists).
    sla_application_working_days: int = Field(
        DEFAULT_SERVICE_LEVELS[WorkKind.APPLICATION], ge=1, le=250,
        validation_alias="IOMKI_SLA_APPLICATION_WORKING_DAYS", description="An application is decided within")
    sla_reactivation_working_days: int = Field(
        DEFAULT_SERVICE_LEVELS[WorkKind.REACTIVATION_REQUEST], ge=1, le=250,
        validation_alias="IOMKI_SLA_REACTIVATION_WORKING_DAYS", description="A reactivation request is decided within")
    sla_objection_working_days: int = Field(
        DEFAULT_SERVICE_LEVELS[WorkKind.OBJECTION], ge=1, le=250, validation_alias="IOMKI_SLA_OBJECTION_WORKING_DAYS",
        description="An objection is decided within (UU 30/2014 Pasal 77(4): 10)")
    sla_class_review_working_days: int = Field(
        DEFAULT_SERVICE_LEVELS[WorkKind.CLASS_REVIEW], ge=1, le=250,
        validation_alias="IOMKI_SLA_CLASS_REVIEW_WORKING_DAYS", description="A company's sector class claim is decided "
                                                                            "within")
    sla_sanction_request_working_days: int = Field(
        DEFAULT_SERVICE_LEVELS[WorkKind.SANCTION_REQUEST], ge=1, le=250,
        validation_alias="IOMKI_SLA_SANCTION_REQUEST_WORKING_DAYS",
        description="A regional office's sanction request is decided within")
    kbli_sectors_file: Path = Field(SECTOR_TABLE_FILE, validation_alias="IOMKI_KBLI_SECTORS_FILE",
                                    description="The KBLI sector table (a revision of the shipped kbli_sectors.toml)")

    def service_levels(self, days: WorkingDays) -> ServiceLevels:
        return ServiceLevels({WorkKind.APPLICATION: self.sla_application_working_days,
                              WorkKind.REACTIVATION_REQUEST: self.sla_reactivation_working_days,
                              WorkKind.OBJECTION: self.sla_objection_working_days,
                              WorkKind.CLASS_REVIEW: self.sla_class_review_working_days,
                              WorkKind.SANCTION_REQUEST: self.sla_sanction_request_working_days}, days)


def registry_signing_key(configured: str | None, data_dir: Path) -> Ed25519PrivateKey:
    """The configured key, or one generated once and kept under the data directory.

    Printed QR codes must stay verifiable across restarts, so a generated key is persisted, never regenerated.
    """
    if configured:
        return registry_tokens.private_key_from_text(configured)
    path = data_dir / "registry-signing-key.pem"
    if path.exists():
        return registry_tokens.private_key_from_text(path.read_text())
    generated = registry_tokens.private_key_pem(Ed25519PrivateKey.generate())
    kept = keep_secret_once(path, generated)
    if kept == generated:
        log.warning("registry_signing_key_generated", path=str(path),
                    hint="set IOMKI_REGISTRY_SIGNING_KEY in production")
    return registry_tokens.private_key_from_text(kept.decode())


def create_app(settings: PlatformSettings | None = None, clock: Clock | None = None,
               permits_settings: PermitsSettings | None = None) -> FastAPI:
    settings = settings or PlatformSettings()
    own = permits_settings or PermitsSettings()
    clock = clock or SystemClock()
    runtime = ServiceRuntime(name="permits", settings=settings,
                             migrations=Path(__file__).parent / "migrations", unit_of_work=PermitsWork)
    activity = PrincipalActivity(sector_table(own.kbli_sectors_file))
    handlers = PermitHandlers(
        runtime.database, clock, ApplicationRules(KemendagriRegions()),
        registry_signing_key(own.registry_signing_key, settings.data_dir), activity, PdfLetters(),
    )
    sectors = SectorHandlers(runtime.database, clock, activity)
    # Before any request or event: every plant's class is the table's reading (a revision re-derives them).
    runtime.at_start(sectors.apply_table)
    working_days = WorkingDays(IndonesianHolidays())
    objections = ObjectionHandlers(runtime.database, clock, ObjectionWindow(working_days, own.objection_working_days))
    worklists = WorklistHandlers(runtime.database, clock, own.service_levels(working_days))
    runtime.publishes(PERMITS)
    runtime.publishes(INTERNAL_CONTACTS)
    # Every report of every plant: kept in a slim row each, a run at a time (the missed reports a frozen company
    # files before it asks to be reactivated, the declared reports a finding may contradict).
    runtime.consume(REPORTS, {SanctionRecommended: handlers.on_sanction_recommended,
                              ReportSubmitted: InBatches(handlers.on_reports_submitted),
                              WarningIssued: handlers.on_warning_issued})
    runtime.consume(INCIDENTS, {FacilityClosureOrdered: handlers.on_closure_ordered,
                                FacilityReopened: handlers.on_reopened})
    # The regional offices' sanction requests, into the operators' review queue (the supervision service's topic).
    runtime.consume(SUPERVISION, {SanctionRequested: handlers.on_sanction_requested})
    # Letters for companies' e-mails, printed after the transaction that issued them (migration 0006 wakes it).
    runtime.every(LETTER_SEND_INTERVAL, "letters", handlers.send_letters, wake_on="permits_letters")
    return runtime.http_app(
        title="iomki permits",
        description="Companies, plants and their IOMKI permits; the public registry.",
        routers=[api.router(handlers), api.objections_router(objections), api.worklists_router(worklists),
                 api.sectors_router(sectors), api.estates_router(EstateHandlers(runtime.database, clock)),
                 api.sanction_requests_router(handlers)], problems=api.PROBLEMS,
    )


def main() -> None:
    serve(create_app(), port_of("permits"))


if __name__ == "__main__":
    main()
