"""The console's own settings (the identity provider's issuer is the platform's, IOMKI_OIDC_ISSUER)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import local_url


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    # Where browsers reach the console: the redirect URIs given to the provider are made from it.
    public_url: str = Field(default_factory=lambda: local_url("console"), validation_alias="IOMKI_CONSOLE_URL",
                            max_length=2000)
    client_id: str = Field("iomki-console", validation_alias="IOMKI_CONSOLE_CLIENT_ID", max_length=255)
    # A session ends after this long without a request, and in any case after its lifetime.
    session_idle: timedelta = Field(timedelta(minutes=30), validation_alias="IOMKI_CONSOLE_SESSION_IDLE",
                                    ge=timedelta(minutes=1), le=timedelta(hours=12))
    session_lifetime: timedelta = Field(timedelta(hours=12), validation_alias="IOMKI_CONSOLE_SESSION_LIFETIME",
                                        ge=timedelta(minutes=5), le=timedelta(days=1))
    # Sessions held in memory at most: the oldest idle one goes first when a new sign-in would exceed it.
    max_sessions: int = Field(20_000, validation_alias="IOMKI_CONSOLE_MAX_SESSIONS", ge=10, le=1_000_000)

    @field_validator("public_url")
    @classmethod
    def _plain_origin(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"IOMKI_CONSOLE_URL {value!r} is not a plain http(s) URL")
        return value.rstrip("/")

    @property
    def secure_cookies(self) -> bool:
        """Cookies are `Secure` wherever the console is served over https: everywhere but development."""
        return self.public_url.startswith("https://")
