"""The services as the console reaches them: their public HTTP APIs, with the signed-in person's access token.

A refusal comes back as `Refused`, with the service's own message and, for a 422, each field's message under the
field's dotted name (`company.nib`), so that a page shows it beside that field. An access token about to expire is
refreshed at the provider first; one the provider will not refresh ends the session (`SignedOut`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.console.oidc import Provider, SignInFailed
from services.console.sessions import Session
from shared.settings import SERVICES, service_url

REFRESH_BEFORE_SECONDS = 30.0


@dataclass(frozen=True)
class FieldRefusal:
    """One field's refusal: the service's message, and its kind and bound for the console to word it."""

    message: str
    kind: str | None = None
    limit: int | float | None = None


@dataclass
class Refused(Exception):
    status: int
    message: str  # the service's detail, or the console's own message (marked for the catalogue)
    fields: dict[str, FieldRefusal] = field(default_factory=dict)
    title: str | None = None  # the service's problem title

    @property
    def errors(self) -> dict[str, str]:
        """Each field's message as the service wrote it."""
        return {name: refusal.message for name, refusal in self.fields.items()}

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"


class SignedOut(Exception):
    """The session's tokens can no longer be refreshed: the person signs in again."""


class ServiceDown(Exception):
    def __init__(self, service: str) -> None:
        super().__init__(service)
        self.service = service


class Backend:
    def __init__(self, http: httpx.AsyncClient, provider: Provider | None) -> None:
        self._http = http
        self._provider = provider
        self._urls = {service: service_url(service) for service in SERVICES}

    async def call(self, session: Session | None, service: str, method: str, path: str, *,
                   params: dict[str, Any] | None = None, json: Any = None) -> Any:
        """The service's JSON answer to a 2xx, `Refused` otherwise."""
        response = await self.raw(session, service, method, path, params=params, json=json)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def raw(self, session: Session | None, service: str, method: str, path: str, *,
                  params: dict[str, Any] | None = None, json: Any = None) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if session is not None:
            headers["Authorization"] = f"Bearer {await self._access_token(session)}"
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            response = await self._http.request(method, f"{self._urls[service]}{path}", params=clean, json=json,
                                                headers=headers)
        except httpx.HTTPError:
            raise ServiceDown(service) from None
        if response.status_code >= 500:
            raise ServiceDown(service)
        if response.status_code == 401 and session is not None:
            raise SignedOut
        if response.status_code >= 400:
            raise refusal(response)
        return response

    async def _access_token(self, session: Session) -> str:
        if session.tokens.expires_at - REFRESH_BEFORE_SECONDS > time.time():
            return session.tokens.access_token
        if self._provider is None:
            raise SignedOut
        try:
            session.tokens = await self._provider.refresh(session.tokens)
        except SignInFailed:
            raise SignedOut from None
        return session.tokens.access_token


def refusal(response: httpx.Response) -> Refused:
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    message = str(body.get("detail") or body.get("title") or response.reason_phrase)[:500]
    fields: dict[str, FieldRefusal] = {}
    for error in body.get("errors") or []:
        if isinstance(error, dict) and error.get("field"):
            limit = error.get("limit")
            fields.setdefault(str(error["field"])[:200], FieldRefusal(
                str(error.get("message", ""))[:300], str(error["type"])[:80] if error.get("type") else None,
                limit if isinstance(limit, int | float) and not isinstance(limit, bool) else None))
    title = body.get("title")
    return Refused(response.status_code, message, fields, str(title)[:200] if title else None)
