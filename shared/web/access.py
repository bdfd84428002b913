"""Who may do what: bearer tokens, roles, and the scope each role gets on each action.

Every service states its rules as data, in one `Policy` (action → role → scope), and guards each route with
`policy.guard("action")`. The guard answers 401 for a missing, malformed, wrongly signed or expired token
and 403 for a role that may never perform the action (naming the rule). Whether a *particular* object is in
the caller's scope is asked of the returned `Access`; an object out of scope is reported as not found, so
its existence does not leak.
"""

from __future__ import annotations

import functools
import re
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import jwt
from fastapi import Depends, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from jwt.algorithms import get_default_algorithms

from shared import regions
from shared.contract import NIB_PATTERN
from shared.settings import PlatformSettings
from shared.web.http import Problem


class Role(StrEnum):
    OPERATOR = "operator"
    TASK_FORCE = "task_force"
    COMPANY = "company"
    AGENCY = "agency"


class Scope(StrEnum):
    ALL = "all"  # every object
    REGION = "region"  # objects in the caller's region (a province covers its regencies)
    OWN = "own"  # objects of the caller's company (its NIB)


@dataclass(frozen=True)
class Principal:
    sub: str
    role: Role
    region: str | None = None
    nib: str | None = None

    def covers(self, region_code: str) -> bool:
        """The caller's region covers the code (`shared.regions.covers`); a caller without a region, none."""
        return self.region is not None and regions.covers(self.region, region_code)


@dataclass(frozen=True)
class Access:
    """A caller allowed to perform an action, and the scope within which they may perform it."""

    principal: Principal
    scope: Scope
    action: str

    def may_see(self, *, region_code: str | None = None, nib: str | None = None) -> bool:
        if self.scope is Scope.ALL:
            return True
        if self.scope is Scope.REGION:
            return region_code is not None and self.principal.covers(region_code)
        return nib is not None and nib == self.principal.nib

    def require(self, *, region_code: str | None = None, nib: str | None = None, what: str = "Resource") -> None:
        if not self.may_see(region_code=region_code, nib=nib):
            raise Problem(404, "Not found", f"{what} not found.")

    @property
    def region_filter(self) -> str | None:
        """The region a list is narrowed to: none for an unscoped caller or the national task force, whose
        region (the country) is not a code any row carries."""
        if self.scope is not Scope.REGION or self.principal.region == regions.NATIONAL:
            return None
        return self.principal.region

    @property
    def nib_filter(self) -> str | None:
        return self.principal.nib if self.scope is Scope.OWN else None

    @property
    def actor(self) -> str:
        return self.principal.sub


@dataclass(frozen=True)
class Rule:
    """Which roles may perform one action, and with what scope. Roles absent here get 403."""

    allow: Mapping[Role, Scope]
    summary: str = ""


@dataclass(frozen=True)
class TokenVerifier:
    """Services only ever verify: HS256 with a shared secret in development, a public key in production."""

    key: Any
    algorithm: str

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> TokenVerifier:
        if settings.jwt_public_key_file is not None:
            if settings.jwt_algorithm == "HS256":
                raise ValueError("IOMKI_JWT_PUBLIC_KEY_FILE needs IOMKI_JWT_ALGORITHM=RS256, ES256 or EdDSA")
            return cls(settings.jwt_public_key_file.read_text(), settings.jwt_algorithm)
        if not settings.jwt_secret:
            raise ValueError("set IOMKI_JWT_SECRET (development) or IOMKI_JWT_PUBLIC_KEY_FILE (production)")
        if settings.jwt_algorithm != "HS256":
            raise ValueError(f"IOMKI_JWT_ALGORITHM={settings.jwt_algorithm} needs IOMKI_JWT_PUBLIC_KEY_FILE")
        return cls(settings.jwt_secret, "HS256")

    @functools.cached_property
    def _key(self) -> Any:
        """The key as PyJWT's algorithm prepares it, once: PyJWT would otherwise parse a PEM text for every token."""
        return get_default_algorithms()[self.algorithm].prepare_key(self.key)

    def verify(self, token: str) -> Principal:
        principal, expires_at = self._verified(token)
        if time.time() >= expires_at:  # expired since it was verified
            raise _unauthorized("The token has expired.")
        return principal

    # A client sends the same token with every request until it expires. A token verified once holds until its
    # expiry (the signature cannot change), so its principal is kept with that expiry; bounded, so that distinct
    # tokens cannot grow it without limit. Failures raise and are never kept.
    @functools.lru_cache(maxsize=4096)  # noqa: B019 -- one verifier a process, living as long as its cache
    def _verified(self, token: str) -> tuple[Principal, int]:
        claims = self._claims(token)
        try:
            role = Role(claims["role"])
        except ValueError:
            raise _unauthorized(f"Unknown role {claims['role']!r}.") from None
        region, nib = claims.get("region"), claims.get("nib")
        if not isinstance(region, str | None) or not isinstance(nib, str | None):
            raise _invalid("its region and NIB claims must be text")
        if role is Role.TASK_FORCE and not region:
            raise _unauthorized("A task-force token must carry its region.")
        if region is not None and not regions.is_region(region):
            raise _invalid(f"its region must be a province or regency code, or {regions.NATIONAL} for the country")
        if role is Role.COMPANY and not nib:
            raise _unauthorized("A company token must carry its NIB.")
        if nib is not None and not _NIB.fullmatch(nib):
            raise _invalid("its NIB claim must be 13 digits")
        sub = str(claims["sub"])
        if len(sub) > SUB_MAX_LENGTH:  # it is recorded as the actor of what the caller does
            raise _invalid(f"its subject is longer than {SUB_MAX_LENGTH} characters")
        return Principal(sub=sub, role=role, region=region, nib=nib), claims["exp"]

    def _claims(self, token: str) -> dict[str, Any]:
        """The claims of a compact JWS signed with this verifier's algorithm and key, as PyJWT decodes them."""
        if "=" in token:  # a compact JWS's segments are base64url without padding (RFC 7515 §2)
            raise _invalid("its segments are padded")
        try:
            claims = jwt.decode(token, self._key, algorithms=[self.algorithm],
                                options={"require": ["sub", "role", "exp"]})
        except jwt.ExpiredSignatureError:
            raise _unauthorized("The token has expired.") from None
        except jwt.InvalidTokenError as exc:
            raise _invalid(str(exc).rstrip(".") or type(exc).__name__) from None
        claims["exp"] = int(claims["exp"])
        return claims


# OpenID Connect Core §2: a subject is at most 255 ASCII characters.
SUB_MAX_LENGTH = 255
_NIB = re.compile(NIB_PATTERN)  # fullmatch: `$` also matches before a final newline


def _invalid(reason: str) -> Problem:
    return _unauthorized(f"The token is not valid: {reason}.")


def mint(
    key: Any,
    *,
    role: Role,
    sub: str | None = None,
    region: str | None = None,
    nib: str | None = None,
    ttl_seconds: int = 3600,
    algorithm: str = "HS256",
) -> str:
    """Issue a token (development tooling and tests; production tokens come from the identity provider)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub or f"{role.value}-{uuid.uuid4().hex[:8]}", "role": role.value,
                              "iat": now, "exp": now + ttl_seconds}
    if region:
        claims["region"] = region
    if nib:
        claims["nib"] = nib
    return jwt.encode(claims, key, algorithm=algorithm)


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


@dataclass
class Policy:
    """A service's access rules, all in one place: action name → `Rule`."""

    rules: Mapping[str, Rule]
    verifier: TokenVerifier | None = field(default=None)

    def authenticate(self, request: Request) -> Principal:
        """The caller the request's bearer token names, or 401; verified once a request."""
        known = getattr(request.state, "principal", None)
        if known is not None:
            return known
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise _unauthorized("An Authorization: Bearer token is required.")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("The Authorization header must be 'Bearer <token>'.")
        verifier = self.verifier or request.app.state.token_verifier
        request.state.principal = principal = verifier.verify(token.strip())
        return principal

    def guard(self, action: str) -> Any:
        """A FastAPI dependency that yields the caller's `Access` for `action`, or refuses."""
        rule = self.rules[action]

        async def dependency(request: Request) -> Access:
            principal = self.authenticate(request)
            scope = rule.allow.get(principal.role)
            if scope is None:
                allowed = ", ".join(role.value for role in rule.allow)
                raise Problem(403, "Forbidden", f"Role {principal.role.value} may not {action}; rule {action!r} "
                              f"allows: {allowed}.", rule=action)
            return Access(principal=principal, scope=scope, action=action)

        dependency.policy = self  # type: ignore[attr-defined]  # how `AuthenticatedFirst` finds a route's guard
        return Depends(dependency)


class AuthenticatedFirst(APIRoute):
    """A route class whose guarded routes check the bearer token before the request's body is read: a caller without
    a valid token gets 401, never an answer about a body it had no right to send (FastAPI reads and validates the
    body before it runs any dependency)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        policy = _policy_of(self.dependant)
        if policy is None:
            return handle

        async def authenticated_first(request: Request) -> Response:
            policy.authenticate(request)
            return await handle(request)

        return authenticated_first


def _policy_of(dependant: Dependant) -> Policy | None:
    for dependency in dependant.dependencies:
        policy = getattr(dependency.call, "policy", None) or _policy_of(dependency)
        if policy is not None:
            return policy
    return None
