"""Configuration shared by every service, read from the environment (all optional; see the README)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES: tuple[str, ...] = ("permits", "reports", "incidents", "notifier")
DEFAULT_PORTS: dict[str, int] = {"permits": 8001, "reports": 8002, "incidents": 8003, "notifier": 8004}
EMBEDDED_KAFKA_BOOTSTRAP = "127.0.0.1:9092"


class PlatformSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    kafka_bootstrap: str | None = Field(None, validation_alias="KAFKA_BOOTSTRAP")
    data_dir: Path = Field(Path(".data"), validation_alias="IOMKI_DATA_DIR")

    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", validation_alias="KAFKA_SECURITY_PROTOCOL"
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = Field(
        "SCRAM-SHA-512", validation_alias="KAFKA_SASL_MECHANISM"
    )
    kafka_sasl_username: str | None = Field(None, validation_alias="KAFKA_SASL_USERNAME")
    kafka_sasl_password: str | None = Field(None, validation_alias="KAFKA_SASL_PASSWORD")
    kafka_ssl_cafile: Path | None = Field(None, validation_alias="KAFKA_SSL_CAFILE")
    # What the services create their topics with: one embedded node holds one copy; production keeps three and
    # acknowledges a write once two hold it (deploy/).
    kafka_replication_factor: int = Field(1, validation_alias="KAFKA_REPLICATION_FACTOR", ge=1, le=32)
    kafka_min_insync_replicas: int = Field(1, validation_alias="KAFKA_MIN_INSYNC_REPLICAS", ge=1, le=32)

    jwt_secret: str | None = Field(None, validation_alias="IOMKI_JWT_SECRET")
    jwt_public_key_file: Path | None = Field(None, validation_alias="IOMKI_JWT_PUBLIC_KEY_FILE")
    jwt_algorithm: Literal["HS256", "RS256", "ES256", "EdDSA"] = Field("HS256", validation_alias="IOMKI_JWT_ALGORITHM")

    outbox_retention: timedelta = Field(timedelta(hours=24), validation_alias="IOMKI_OUTBOX_RETENTION")
    relay_poll_interval: timedelta = Field(timedelta(seconds=1), validation_alias="IOMKI_RELAY_POLL_INTERVAL")
    # How long the broker may hold a consumer's fetch while it has nothing new: Kafka answers as soon as data
    # arrives, so a longer wait only spares idle requests.
    consumer_fetch_wait: timedelta = Field(timedelta(milliseconds=500), validation_alias="IOMKI_CONSUMER_FETCH_WAIT",
                                           gt=timedelta(0), le=timedelta(seconds=10))
    log_format: Literal["auto", "json", "console"] = Field("auto", validation_alias="IOMKI_LOG_FORMAT")
    # The largest request body a service reads: its largest forms take a few KiB.
    max_request_bytes: int = Field(256 * 1024, validation_alias="IOMKI_MAX_REQUEST_BYTES", ge=1024, le=64 * 1024**2)
    # Requests without a token (the public registry, /healthz, /readyz, /metrics, /asyncapi, the API documents)
    # per client address and minute, per process: far above a person's or a Prometheus scraper's pace.
    public_rate_per_minute: int = Field(1200, validation_alias="IOMKI_PUBLIC_RATE_PER_MINUTE", ge=1,
                                        le=10_000_000)
    # The header a trusted reverse proxy puts the client's address in (e.g. X-Forwarded-For; its last address is
    # read). Unset: the connection's peer. Set it only when every request comes through such a proxy.
    client_address_header: str | None = Field(None, validation_alias="IOMKI_CLIENT_ADDRESS_HEADER",
                                              pattern=r"^[A-Za-z0-9-]{1,64}$")

    @field_validator("database_url", "kafka_bootstrap", "jwt_secret", "client_address_header", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _in_sync_within_replicas(self) -> PlatformSettings:
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            raise ValueError(f"KAFKA_MIN_INSYNC_REPLICAS ({self.kafka_min_insync_replicas}) exceeds"
                             f" KAFKA_REPLICATION_FACTOR ({self.kafka_replication_factor}): no write could succeed")
        return self

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or EMBEDDED_KAFKA_BOOTSTRAP


def port_of(service: str) -> int:
    """A service's HTTP port: IOMKI_<SERVICE>_PORT or the design's default (8001–8004)."""

    class _Port(BaseSettings):
        model_config = SettingsConfigDict(extra="ignore")
        port: int = Field(DEFAULT_PORTS[service], validation_alias=f"IOMKI_{service.upper()}_PORT", ge=1, le=65535)

    return _Port().port


def local_url(service: str) -> str:
    """A service started on this machine (by `iomki up`, the demo or the tests)."""
    return f"http://127.0.0.1:{port_of(service)}"


def service_url(service: str) -> str:
    """Where a client (the CLI, the dashboard) finds a service: IOMKI_<SERVICE>_URL, or this machine."""
    return (os.environ.get(f"IOMKI_{service.upper()}_URL") or local_url(service)).rstrip("/")
