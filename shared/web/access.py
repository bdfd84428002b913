"""Who may do what: bearer tokens, roles, and the scope each role gets on each action.

Every service states its rules as data, in one `Policy` (action → role → scope), and guards each route with
`policy.guard("action")`. The guard answers 401 for a missing, malformed, wrongly signed or expired token
and 403 for a role that may never perform the action (naming the rule). Whether a *particular* object is in
the caller's scope is asked of the returned `Access`; an object out of scope is reported as not found, so
its existence does not leak.
"""

from __future__ import annotations

import asyncio
import functools
import math
import re
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx
import jwt
import structlog
from fastapi import Depends, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from jwt import PyJWKClient
from jwt.algorithms import get_default_algorithms

from shared import regions
from shared.contract import NIB_PATTERN
from shared.settings import PlatformSettings, provider_url
from shared.web.http import Problem

log = structlog.get_logger(__name__)


class Role(StrEnum):
    OPERATOR = "operator"
    TASK_FORCE = "task_force"
    COMPANY = "company"
    AGENCY = "agency"
    # A province's or a regency's industry or manpower office: reads its region, inspects, and asks the ministry
    # for sanctions, never imposes one.
    REGIONAL_OFFICE = "regional_office"
    # An industrial-estate company: a company for its own estate permit, and a reader of its tenants' plants.
    ESTATE = "estate"
    # A regency's (or province's) health office (Dinas Kesehatan): confirms or corrects the cases companies enter
    # in its region and follows their close contacts. A role of its own, not a task force's: the task force decides
    # closures, the health office answers for the medical facts.
    HEALTH_OFFICE = "health_office"


# Roles whose token names the region they act in, and roles whose token names their company (NIB).
REGIONAL_ROLES = frozenset({Role.TASK_FORCE, Role.REGIONAL_OFFICE, Role.HEALTH_OFFICE})
COMPANY_ROLES = frozenset({Role.COMPANY, Role.ESTATE})


class Scope(StrEnum):
    ALL = "all"  # every object
    REGION = "region"  # objects in the caller's region (a province covers its regencies)
    OWN = "own"  # objects of the caller's company (its NIB)
    TENANTS = "tenants"  # the caller's own objects, and those of the plants its estates confirmed as tenants


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

    def may_see(self, *, region_code: str | None = None, nib: str | None = None,
                estate_nib: str | None = None) -> bool:
        """`estate_nib`: the NIB of the estate that confirmed the object's plant as its tenant, if one did."""
        if self.scope is Scope.ALL:
            return True
        if self.scope is Scope.REGION:
            return region_code is not None and self.principal.covers(region_code)
        if self.scope is Scope.TENANTS and estate_nib is not None and estate_nib == self.principal.nib:
            return True
        return nib is not None and nib == self.principal.nib

    def require(self, *, region_code: str | None = None, nib: str | None = None, estate_nib: str | None = None,
                what: str = "Resource") -> None:
        if not self.may_see(region_code=region_code, nib=nib, estate_nib=estate_nib):
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
        """The company a list is narrowed to (its own objects)."""
        return self.principal.nib if self.scope is Scope.OWN else None

    @property
    def tenants_filter(self) -> str | None:
        """The estate company a list is narrowed to: its own objects and its confirmed tenants' (`nib = $x OR
        estate_nib = $x`)."""
        return self.principal.nib if self.scope is Scope.TENANTS else None

    @property
    def actor(self) -> str:
        return self.principal.sub

    def asked_region(self, province: str | None, regency: str | None) -> tuple[str | None, str | None]:
        """The region a regional list or aggregate is about: as asked (a regency within the province, if both are),
        else the caller's own region; one the caller may not see is not found."""
        if province and regency and not regency.startswith(province + "."):
            raise Problem(422, "Invalid request", "The regency is not in the province.",
                          errors=[{"field": "regency", "message": f"not in province {province}"}])
        if self.region_filter and not (province or regency):
            own = self.region_filter
            province, regency = (None, own) if "." in own else (own, None)
        if province or regency:  # none left only for callers who see the whole country
            self.require(region_code=regency or province, what="Region")
        return province, regency


@dataclass(frozen=True)
class Rule:
    """Which roles may perform one action, and with what scope. Roles absent here get 403."""

    allow: Mapping[Role, Scope]
    summary: str = ""


class KeyNotAtHand(Exception):
    """The key a token names is not in the key set held in memory, or that set is due to be fetched again."""


class SharedSecret:
    """Development: HS256 with the secret `make run` generates; the platform's tooling signs with it too."""

    def __init__(self, secret: str) -> None:
        # Prepared once: PyJWT would otherwise prepare the key for every token.
        self._key = get_default_algorithms()["HS256"].prepare_key(secret)

    def key_for(self, header: Mapping[str, Any]) -> tuple[Any, str]:
        return self._key, "HS256"

    async def refresh(self) -> None:
        return None


class ProviderKeys:
    """Production: the identity provider's signing keys, from its JWKS (fetched and parsed by PyJWKClient).

    The set is fetched when a token names a key it lacks (a rotation is no outage) and when it is older than
    its lifespan (a removed key stops verifying), at most once per cooldown, so tokens with made-up key ids
    cannot make every request call the provider. When the provider cannot be reached, the keys it last
    published keep verifying."""

    ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"})

    def __init__(self, issuer: str, jwks_url: str | None, *, lifespan: float, cooldown: float = 10.0,
                 timeout: float = 5.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._issuer = issuer
        self._monotonic = monotonic
        self._jwks_url = jwks_url
        self._lifespan = lifespan
        self._cooldown = cooldown
        self._timeout = timeout
        self._keys: dict[str, Any] = {}
        self._fetched_at = -math.inf  # the last attempt, successful or not
        self._refreshed_at = -math.inf  # the last success
        self._lock = asyncio.Lock()

    def key_for(self, header: Mapping[str, Any]) -> tuple[Any, str]:
        now = self._monotonic()
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        may_fetch = now - self._fetched_at > self._cooldown
        if may_fetch and (key is None or now - self._refreshed_at > self._lifespan):
            raise KeyNotAtHand
        if key is None and self._lock.locked():
            raise KeyNotAtHand  # a fetch is under way (another request's): wait for it rather than refuse
        if key is None:
            raise _invalid("it names a key the identity provider does not publish")
        if key.algorithm_name not in self.ALGORITHMS:
            raise _invalid(f"its key is for {key.algorithm_name}, which the platform does not accept")
        return key, key.algorithm_name

    async def refresh(self) -> None:
        async with self._lock:
            if self._monotonic() - self._fetched_at <= self._cooldown:
                return  # fetched a moment ago, perhaps for the request that waited on the lock
            self._fetched_at = self._monotonic()
            try:
                keys = await asyncio.to_thread(self._fetch)
            except (jwt.PyJWKClientError, jwt.PyJWKError, httpx.HTTPError, ValueError) as exc:
                log.warning("identity_provider_keys_unavailable", issuer=self._issuer, error=str(exc)[:300],
                            keeping=sorted(self._keys))
                return
            self._keys = {key.key_id: key for key in keys}
            self._refreshed_at = self._monotonic()
            log.info("identity_provider_keys_fetched", issuer=self._issuer, kids=sorted(self._keys))

    def _fetch(self) -> list[Any]:
        if self._jwks_url is None:
            self._jwks_url = self._discovered_jwks_url()
        return PyJWKClient(self._jwks_url, cache_jwk_set=False, timeout=self._timeout).get_signing_keys()

    def _discovered_jwks_url(self) -> str:
        """OpenID Connect Discovery §4: the document names the issuer exactly and where its keys are."""
        response = httpx.get(f"{self._issuer.rstrip('/')}/.well-known/openid-configuration", timeout=self._timeout,
                             follow_redirects=False)
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, dict) or document.get("issuer") != self._issuer:
            raise ValueError(f"the discovery document does not name the issuer {self._issuer!r}")
        return provider_url(str(document.get("jwks_uri", "")))


SigningKeys = SharedSecret | ProviderKeys


@dataclass(frozen=True)
class TokenRules:
    """What every token must show besides its signature: who issued it, for whom, and not for too long."""

    issuer: str
    audience: str
    leeway: float  # seconds
    max_lifetime: float  # seconds


# Development tokens name these, as the provider's tokens name the provider and the platform.
DEVELOPMENT_ISSUER = "iomki-development"
DEVELOPMENT_AUDIENCE = "iomki"


class TokenVerifier:
    """Services only ever verify: with the development secret, or with the identity provider's published keys."""

    def __init__(self, keys: SigningKeys, rules: TokenRules, *others: tuple[SigningKeys, TokenRules]) -> None:
        self.keys = keys
        self.rules = rules
        # Each issuer with its own keys and rules, chosen by the token's `iss`: `make run` trusts the development
        # secret beside its identity provider, and a token naming one issuer is never checked with the other's keys.
        self._issuers = {rules.issuer: (keys, rules)} | {other.issuer: (k, other) for k, other in others}

    @classmethod
    def development(cls, secret: str, *, leeway: float = 30.0, max_lifetime: float = 12 * 3600.0) -> TokenVerifier:
        return cls(SharedSecret(secret), TokenRules(DEVELOPMENT_ISSUER, DEVELOPMENT_AUDIENCE, leeway, max_lifetime))

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> TokenVerifier:
        leeway, lifetime = settings.jwt_leeway.total_seconds(), settings.token_max_lifetime.total_seconds()
        development = cls.development(settings.jwt_secret, leeway=leeway, max_lifetime=lifetime) \
            if settings.jwt_secret else None
        if settings.oidc_issuer is not None and settings.oidc_audience:  # the settings refuse one without the other
            keys = ProviderKeys(settings.oidc_issuer, settings.oidc_jwks_url,
                                lifespan=settings.oidc_keys_lifespan.total_seconds())
            also = [(development.keys, development.rules)] if development else []
            return cls(keys, TokenRules(settings.oidc_issuer, settings.oidc_audience, leeway, lifetime), *also)
        if development is None:
            raise ValueError("set IOMKI_OIDC_ISSUER and IOMKI_OIDC_AUDIENCE (production: the identity provider) or"
                             " IOMKI_JWT_SECRET (development)")
        return development

    async def verify(self, token: str) -> Principal:
        try:
            principal, expires_at = self._verified(token)
        except KeyNotAtHand:
            await self._issued_by(token)[0].refresh()
            try:
                principal, expires_at = self._verified(token)
            except KeyNotAtHand:
                raise _invalid("it names a key the identity provider does not publish") from None
        if time.time() >= expires_at + self.rules.leeway:  # expired since it was verified
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
        if role in REGIONAL_ROLES and not region:
            raise _unauthorized(f"A token for role {role.value} must carry its region.")
        if region is not None and not regions.is_region(region):
            raise _invalid(f"its region must be a province or regency code, or {regions.NATIONAL} for the country")
        if role in COMPANY_ROLES and not nib:
            raise _unauthorized(f"A token for role {role.value} must carry its NIB.")
        if nib is not None and not _NIB.fullmatch(nib):
            raise _invalid("its NIB claim must be 13 digits")
        sub = str(claims["sub"])
        if len(sub) > SUB_MAX_LENGTH:  # it is recorded as the actor of what the caller does
            raise _invalid(f"its subject is longer than {SUB_MAX_LENGTH} characters")
        return Principal(sub=sub, role=role, region=region, nib=nib), claims["exp"]

    def _claims(self, token: str) -> dict[str, Any]:
        """The claims of a compact JWS signed with one of the verifier's keys, as PyJWT decodes and checks them."""
        if "=" in token:  # a compact JWS's segments are base64url without padding (RFC 7515 §2)
            raise _invalid("its segments are padded")
        try:
            keys, rules = self._issued_by(token)
            key, algorithm = keys.key_for(jwt.get_unverified_header(token))
            claims = jwt.decode(token, key, algorithms=[algorithm], issuer=rules.issuer, audience=rules.audience,
                                leeway=rules.leeway, options={"require": REQUIRED_CLAIMS})
        except jwt.ExpiredSignatureError:
            raise _unauthorized("The token has expired.") from None
        except jwt.InvalidTokenError as exc:
            raise _invalid(str(exc).rstrip(".") or type(exc).__name__) from None
        claims["exp"] = int(claims["exp"])
        if claims["exp"] - claims["iat"] > rules.max_lifetime:
            raise _invalid(f"it lives longer than the {rules.max_lifetime:.0f} seconds a token may")
        return claims


    def _issued_by(self, token: str) -> tuple[SigningKeys, TokenRules]:
        """The keys and rules of the issuer the token names; the signature is checked with those keys only."""
        if len(self._issuers) == 1:
            return self.keys, self.rules
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.InvalidTokenError as exc:
            raise _invalid(str(exc).rstrip(".") or type(exc).__name__) from None
        found = self._issuers.get(issuer) if isinstance(issuer, str) else None
        if found is None:
            raise _invalid("it names an issuer the platform does not trust")
        return found


# OpenID Connect Core §2: a subject is at most 255 ASCII characters.
SUB_MAX_LENGTH = 255
REQUIRED_CLAIMS = ["sub", "role", "exp", "iat", "iss", "aud"]
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
) -> str:
    """Issue a development token (tooling and tests; production tokens come from the identity provider)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub or f"{role.value}-{uuid.uuid4().hex[:8]}", "role": role.value,
                              "iss": DEVELOPMENT_ISSUER, "aud": DEVELOPMENT_AUDIENCE,
                              "iat": now, "exp": now + ttl_seconds}
    if region:
        claims["region"] = region
    if nib:
        claims["nib"] = nib
    return jwt.encode(claims, key, algorithm="HS256")


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


@dataclass
class Policy:
    """A service's access rules, all in one place: action name → `Rule`."""

    rules: Mapping[str, Rule]
    verifier: TokenVerifier | None = field(default=None)

    async def authenticate(self, request: Request) -> Principal:
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
        request.state.principal = principal = await verifier.verify(token.strip())
        return principal

    def guard(self, action: str) -> Any:
        """A FastAPI dependency that yields the caller's `Access` for `action`, or refuses."""
        rule = self.rules[action]

        async def dependency(request: Request) -> Access:
            principal = await self.authenticate(request)
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
            await policy.authenticate(request)
            return await handle(request)

        return authenticated_first


def _policy_of(dependant: Dependant) -> Policy | None:
    for dependency in dependant.dependencies:
        policy = getattr(dependency.call, "policy", None) or _policy_of(dependency)
        if policy is not None:
            return policy
    return None
