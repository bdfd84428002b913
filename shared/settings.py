"""Configuration shared by every service, read from the environment (all optional; see the README)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES: tuple[str, ...] = ("permits", "reports", "incidents", "notifier", "supervision")
# The console is no service of the domain (it owns no data and meets the services through their HTTP APIs), but it
# is started and found beside them; so is the development identity provider `make run` starts.
DEFAULT_PORTS: dict[str, int] = {"permits": 8001, "reports": 8002, "incidents": 8003, "notifier": 8004,
                                 "supervision": 8005, "console": 8006, "keycloak": 8007}
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

    # Development signs tokens with a shared secret; production verifies the identity provider's (OpenID Connect):
    # its issuer and the platform's audience are required then, its keys come from its JWKS. `make run` sets both:
    # the console's people sign in at the development provider, and the CLI's tokens keep working.
    jwt_secret: str | None = Field(None, validation_alias="IOMKI_JWT_SECRET")
    oidc_issuer: str | None = Field(None, validation_alias="IOMKI_OIDC_ISSUER", max_length=2000)
    oidc_audience: str | None = Field(None, validation_alias="IOMKI_OIDC_AUDIENCE", max_length=255)
    # Unset: the `jwks_uri` of the issuer's discovery document (/.well-known/openid-configuration).
    oidc_jwks_url: str | None = Field(None, validation_alias="IOMKI_OIDC_JWKS_URL", max_length=2000)
    # How long the provider's key set is trusted before it is fetched again (a removed key is refused after it).
    oidc_keys_lifespan: timedelta = Field(timedelta(minutes=5), validation_alias="IOMKI_OIDC_KEYS_LIFESPAN",
                                          ge=timedelta(seconds=10), le=timedelta(days=1))
    # The clock skew allowed between the provider and a service, on exp, nbf and iat.
    jwt_leeway: timedelta = Field(timedelta(seconds=30), validation_alias="IOMKI_JWT_LEEWAY",
                                  ge=timedelta(0), le=timedelta(minutes=5))
    # The longest a token may live (exp − iat). Unset: 12 h in development (`make run` prints a 12 h token), 1 h
    # in production, where the provider's access tokens live minutes.
    jwt_max_lifetime: timedelta | None = Field(None, validation_alias="IOMKI_JWT_MAX_LIFETIME",
                                               gt=timedelta(0), le=timedelta(days=7))

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

    @field_validator("database_url", "kafka_bootstrap", "jwt_secret", "client_address_header", "oidc_issuer",
                     "oidc_audience", "oidc_jwks_url", "jwt_max_lifetime", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _in_sync_within_replicas(self) -> PlatformSettings:
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            raise ValueError(f"KAFKA_MIN_INSYNC_REPLICAS ({self.kafka_min_insync_replicas}) exceeds"
                             f" KAFKA_REPLICATION_FACTOR ({self.kafka_replication_factor}): no write could succeed")
        return self

    @field_validator("oidc_issuer", "oidc_jwks_url")
    @classmethod
    def _provider_url(cls, value: str | None) -> str | None:
        if value is not None:
            provider_url(value)
        return value

    @model_validator(mode="after")
    def _provider_names_its_audience(self) -> PlatformSettings:
        if self.oidc_issuer is not None and not self.oidc_audience:
            raise ValueError("IOMKI_OIDC_ISSUER needs IOMKI_OIDC_AUDIENCE: the audience this platform's tokens name")
        return self

    @property
    def development_tokens(self) -> bool:
        """Tokens signed with the shared development secret are accepted (alone, or beside the identity provider's
        under `make run`): a development platform. Production sets only the provider."""
        return self.jwt_secret is not None

    @property
    def token_max_lifetime(self) -> timedelta:
        if self.jwt_max_lifetime is not None:
            return self.jwt_max_lifetime
        return timedelta(hours=12) if self.development_tokens else timedelta(hours=1)

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or EMBEDDED_KAFKA_BOOTSTRAP


def provider_url(url: str) -> str:
    """An identity provider's URL: https, or http to this machine only (development and tests)."""
    parts = urlsplit(url)
    if not parts.hostname or parts.username or parts.password or parts.fragment or not url.isascii():
        raise ValueError(f"{url!r} is not a plain http(s) URL")
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost")):
        return url
    raise ValueError(f"{url!r}: an identity provider is reached over https (http only on this machine)")


def port_of(service: str) -> int:
    """A service's HTTP port: IOMKI_<SERVICE>_PORT or the design's default (8001–8005)."""

    class _Port(BaseSettings):
        model_config = SettingsConfigDict(extra="ignore")
        port: int = Field(DEFAULT_PORTS[service], validation_alias=f"IOMKI_{service.upper()}_PORT", ge=1, le=65535)

    return _Port().port


def local_url(service: str) -> str:
    """A service started on this machine (by `iomki up`, the demo or the tests)."""
    return f"http://127.0.0.1:{port_of(service)}"


def service_url(service: str) -> str:
    """Where a client (the CLI, the console) finds a service: IOMKI_<SERVICE>_URL, or this machine."""
    return (os.environ.get(f"IOMKI_{service.upper()}_URL") or local_url(service)).rstrip("/")
