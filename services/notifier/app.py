"""The notifier's composition root: settings, runtime, handlers, channels, timers, routes, subscriptions."""

from __future__ import annotations

import random
import ssl
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import httpx
from cryptography.fernet import Fernet
from fastapi import FastAPI
from pydantic import Field, SecretStr, TypeAdapter, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.notifier import api
from services.notifier.channels import EmailChannel, GuardedTransport, SmtpServer, WebhookChannel
from services.notifier.domain import (
    LOOPBACK, ROUTED, Channel, EscalationChain, Grouping, LetterWait, OutboundPolicy, RetryPolicy,
)
from services.notifier.handlers import DeliveryWorker, NotifierConfig, NotifierHandlers
from services.notifier.repository import NotifierWork
from services.notifier.sealing import SecretSeal
from shared.clock import Clock, SystemClock
from shared.messaging.consumer import Handler, InBatches
from shared.contract import (
    ALERTS, INCIDENTS, INTERNAL_CONTACTS, PERMITS, REPORTS, SUPERVISION, BaseEvent, CompanyContactsUpdated,
    CompanyLetterIssued, EstateTenancyConfirmed, EstateTenancyEnded, Event, InspectionRecorded, events_on,
)
from shared.runtime import ServiceRuntime, serve
from shared.settings import PlatformSettings, port_of
from shared.storage.secret_files import keep_secret_once

_DURATION = TypeAdapter(timedelta)


class NotifierSettings(BaseSettings):
    """The notifier's own configuration (all optional), read when the app is created."""

    model_config = SettingsConfigDict(extra="ignore")

    escalation_after: Annotated[tuple[timedelta, ...], NoDecode] = Field((timedelta(hours=1), timedelta(hours=4)),
                                                    validation_alias="IOMKI_ESCALATION_AFTER")
    group_window: timedelta = Field(timedelta(hours=1), validation_alias="IOMKI_ALERT_GROUP_WINDOW")
    delivery_backoff: timedelta = Field(timedelta(seconds=5), validation_alias="IOMKI_DELIVERY_BACKOFF")
    delivery_max_attempts: int = Field(8, ge=1, le=50, validation_alias="IOMKI_DELIVERY_MAX_ATTEMPTS")
    tick: timedelta = Field(timedelta(seconds=1), validation_alias="IOMKI_NOTIFIER_TICK")
    # How long a company's e-mail about a warning or sanction waits for its letter (`domain.LetterWait`).
    letter_wait: timedelta = Field(timedelta(minutes=30), gt=timedelta(0), validation_alias="IOMKI_LETTER_WAIT")
    webhook_timeout: timedelta = Field(timedelta(seconds=10), validation_alias="IOMKI_WEBHOOK_TIMEOUT")
    # How long an attempt holds its delivery: a notifier that dies mid-attempt delays the notice this long.
    delivery_lease: timedelta = Field(timedelta(minutes=2), validation_alias="IOMKI_DELIVERY_LEASE")
    smtp_host: str = Field("127.0.0.1", validation_alias="IOMKI_SMTP_HOST")
    smtp_port: int = Field(25, ge=1, le=65535, validation_alias="IOMKI_SMTP_PORT")
    smtp_from: str = Field("iomki-notifier@localhost", validation_alias="IOMKI_SMTP_FROM")
    smtp_starttls: bool = Field(False, validation_alias="IOMKI_SMTP_STARTTLS")
    # Unset: development when tokens are signed with a shared secret (IOMKI_JWT_SECRET, as `make run`, the demo
    # and the tests do) and no identity provider's public key is configured, production otherwise (deploy/).
    # Development takes http:// webhooks and may call loopback receivers.
    environment: Literal["development", "production"] | None = Field(None, validation_alias="IOMKI_ENVIRONMENT")
    # Networks a webhook may reach although not public (CIDRs, comma-separated; empty: none). Unset: loopback in
    # development, none in production.
    outbound_allow: str | None = Field(None, validation_alias="IOMKI_OUTBOUND_ALLOW")
    # Fernet keys sealing webhook secrets at rest, comma-separated: the first seals, every one opens, so the key is
    # rotated by putting a new one first. Unset: a key kept under the data directory in development; production
    # refuses to start without it (a key on a pod's disk would be lost with the pod, and every secret with it).
    webhook_secret_keys: SecretStr | None = Field(None, validation_alias="IOMKI_WEBHOOK_SECRET_KEYS")
    # How long a rotated-out webhook secret still signs beside the new one (`domain.signing_secrets`).
    webhook_secret_grace: timedelta = Field(timedelta(hours=24), ge=timedelta(0),
                                            validation_alias="IOMKI_WEBHOOK_SECRET_GRACE")

    @field_validator("webhook_secret_keys")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:  # a typo fails at start, not when the first secret is sealed
                SecretSeal(_keys(value))
            except ValueError:
                raise ValueError("IOMKI_WEBHOOK_SECRET_KEYS must be comma-separated Fernet keys "
                                 "(Fernet.generate_key(): 32 bytes, url-safe base64)") from None
        return value

    @field_validator("environment", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("outbound_allow")
    @classmethod
    def _networks(cls, value: str | None) -> str | None:
        if value is not None:
            OutboundPolicy.parse(value)  # a typo fails at start, not at the first delivery
        return value

    def development(self, platform: PlatformSettings) -> bool:
        if self.environment is not None:
            return self.environment == "development"
        return platform.development_tokens

    def secret_seal(self, platform: PlatformSettings) -> SecretSeal:
        if self.webhook_secret_keys is not None:
            return SecretSeal(_keys(self.webhook_secret_keys))
        if not self.development(platform):
            raise ValueError("set IOMKI_WEBHOOK_SECRET_KEYS (comma-separated Fernet keys) in production: the "
                             "notifier seals webhook secrets with it")
        # Like the development JWT secret: made once, kept (0600) so that sealed secrets survive restarts.
        kept = keep_secret_once(platform.data_dir / "notifier-webhook-secret-key", Fernet.generate_key())
        return SecretSeal([kept.strip()])

    def outbound(self, platform: PlatformSettings) -> OutboundPolicy:
        if self.outbound_allow is not None:
            return OutboundPolicy.parse(self.outbound_allow)
        return OutboundPolicy(LOOPBACK if self.development(platform) else ())

    @field_validator("escalation_after", mode="before")
    @classmethod
    def _durations(cls, value: object) -> object:
        """`PT1H,PT4H`: the wait at regency, then at province, as ISO 8601 durations."""
        if isinstance(value, str):
            return tuple(_DURATION.validate_python(part.strip()) for part in value.split(",") if part.strip())
        return value

    def config(self, platform: PlatformSettings) -> NotifierConfig:
        return NotifierConfig(
            allow_http_webhooks=self.development(platform),
            chain=EscalationChain.parse(list(self.escalation_after)),
            grouping=Grouping(self.group_window),
            retry=RetryPolicy(base=self.delivery_backoff, max_attempts=self.delivery_max_attempts),
            lease=max(self.delivery_lease, self.webhook_timeout * 3),
            secret_grace=self.webhook_secret_grace,
            letter_wait=LetterWait(self.letter_wait),
        )


def _keys(value: SecretStr) -> list[str]:
    return [key.strip() for key in value.get_secret_value().split(",") if key.strip()]


def create_app(settings: PlatformSettings | None = None, clock: Clock | None = None,
               notifier: NotifierSettings | None = None) -> FastAPI:
    platform = settings or PlatformSettings()
    runtime = ServiceRuntime(name="notifier", settings=platform,
                             migrations=Path(__file__).parent / "migrations", unit_of_work=NotifierWork)
    own = notifier or NotifierSettings()
    config = own.config(platform)
    outbound = own.outbound(platform)
    seal = own.secret_seal(platform)
    clock = clock or SystemClock()
    handlers = NotifierHandlers(runtime.database, clock, config, seal)
    worker = DeliveryWorker(runtime.database, clock, config, random.Random(), seal)  # noqa: S311 -- retry jitter
    email = EmailChannel(SmtpServer(own.smtp_host, own.smtp_port, own.smtp_from, own.smtp_starttls,
                                    own.webhook_timeout.total_seconds()))

    # Built once: a TLS context costs milliseconds of CPU, and deliveries now run whenever one is planned.
    tls = ssl.create_default_context()

    async def deliver() -> None:
        # No proxy from the environment: the address check must see the receiver's address, not a proxy's.
        async with httpx.AsyncClient(timeout=own.webhook_timeout.total_seconds(), trust_env=False,
                                     transport=GuardedTransport(tls, outbound)) as client:
            webhook = WebhookChannel(client, allow_http=config.allow_http_webhooks)
            await worker.deliver_due({Channel.WEBHOOK: webhook, Channel.EMAIL: email})

    # Some event types are taken in by a handler of their own: the estates' tenancies, which alert nobody, and the
    # inspections, which alert only when they found the protocol violated.
    own_handlers: dict[type[BaseEvent], Handler] = {
        EstateTenancyConfirmed: handlers.on_tenancy_confirmed, EstateTenancyEnded: handlers.on_tenancy_ended,
        InspectionRecorded: handlers.on_inspection_recorded}
    # The supervision topic is created with every other at start (`ensure_topics`), like the PPKM topic reports reads.
    for topic in (PERMITS, REPORTS, INCIDENTS, SUPERVISION):
        runtime.consume(topic, {event_type: own_handlers.get(event_type) or (
            handlers.on_event if event_type.__name__ in ROUTED else InBatches(handlers.on_unrouted_events))
            for event_type in events_on(topic) if issubclass(event_type, Event)})
    runtime.at_start(handlers.keep_secrets_sealed)  # migration 0005, and a new key put first
    runtime.consume(INTERNAL_CONTACTS, {CompanyContactsUpdated: handlers.on_contacts_updated,
                                        CompanyLetterIssued: handlers.on_letter})
    runtime.publishes(ALERTS)
    tick = own.tick.total_seconds()
    runtime.every(tick, "escalations", handlers.escalate_due)
    runtime.every(tick, "digests", handlers.close_digests)
    runtime.every(tick, "letters", handlers.send_unlettered)
    runtime.every(tick, "deliveries", deliver, wake_on="notifier_deliveries")  # migration 0002
    return runtime.http_app(
        title="iomki notifier",
        description="Task-force directory, routing, webhooks signed per Standard Webhooks and email, escalation "
                    "until acknowledged.",
        routers=[api.router(handlers)], problems=api.PROBLEMS,
    )


def main() -> None:
    serve(create_app(), port_of("notifier"))


if __name__ == "__main__":
    main()
