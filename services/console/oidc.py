"""The console as an OpenID Connect client of the identity provider: authorization code with PKCE (RFC 7636, S256),
the ID token checked against the provider's keys and the request's nonce, refresh, and RP-initiated logout."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from shared.settings import provider_url
from shared.web.access import KeyNotAtHand, ProviderKeys
from shared.web.http import Problem

KEYS_LIFESPAN = 300.0  # seconds the provider's keys are trusted before they are fetched again


class SignInFailed(Exception):
    """The provider refused the code or the refresh, or what it returned does not check out."""


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    id_token: str | None
    expires_at: float  # time.time() seconds

    @classmethod
    def from_response(cls, body: dict[str, Any], *, previous: TokenSet | None = None) -> TokenSet:
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise SignInFailed("the provider returned no access token")
        lifetime = body.get("expires_in")
        return cls(access, body.get("refresh_token") or (previous.refresh_token if previous else None),
                   body.get("id_token") or (previous.id_token if previous else None),
                   time.time() + (float(lifetime) if isinstance(lifetime, int | float) else 60.0))


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)  # 64 characters, within RFC 7636's 43 to 128
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


class Provider:
    """One identity provider, found through its discovery document (fetched once, then kept)."""

    def __init__(self, issuer: str, client_id: str, http: httpx.AsyncClient) -> None:
        self.issuer = provider_url(issuer)
        self.client_id = client_id
        self._http = http
        self._document: dict[str, Any] | None = None
        self._keys: ProviderKeys | None = None

    async def document(self) -> dict[str, Any]:
        if self._document is None:
            response = await self._http.get(f"{self.issuer.rstrip('/')}/.well-known/openid-configuration")
            response.raise_for_status()
            found = response.json()
            if not isinstance(found, dict) or found.get("issuer") != self.issuer:
                raise SignInFailed(f"the discovery document does not name the issuer {self.issuer!r}")
            for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                provider_url(str(found.get(endpoint, "")))
            self._document = found
        return self._document

    async def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, pkce: Pkce, locale: str) -> str:
        endpoint = (await self.document())["authorization_endpoint"]
        query = {"response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri,
                 "scope": "openid", "state": state, "nonce": nonce, "code_challenge": pkce.challenge,
                 "code_challenge_method": "S256", "ui_locales": locale}
        return f"{endpoint}?{urlencode(query)}"

    async def exchange(self, *, code: str, verifier: str, redirect_uri: str, nonce: str) -> TokenSet:
        tokens = await self._token_request({"grant_type": "authorization_code", "code": code,
                                            "redirect_uri": redirect_uri, "client_id": self.client_id,
                                            "code_verifier": verifier})
        if tokens.id_token is None:
            raise SignInFailed("the provider returned no ID token")
        claims = await self.id_token_claims(tokens.id_token)
        if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise SignInFailed("the ID token was issued for another sign-in (nonce)")
        return tokens

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        if tokens.refresh_token is None:
            raise SignInFailed("no refresh token")
        return await self._token_request({"grant_type": "refresh_token", "refresh_token": tokens.refresh_token,
                                          "client_id": self.client_id}, previous=tokens)

    async def id_token_claims(self, id_token: str) -> dict[str, Any]:
        """OpenID Connect Core §3.1.3.7: signed by the provider, for this client, from this issuer, unexpired. The
        provider's keys are held and refreshed as the services hold theirs (`ProviderKeys`)."""
        if self._keys is None:
            self._keys = ProviderKeys(self.issuer, (await self.document())["jwks_uri"], lifespan=KEYS_LIFESPAN)
        try:
            header = jwt.get_unverified_header(id_token)
            try:
                key, algorithm = self._keys.key_for(header)
            except KeyNotAtHand:
                await self._keys.refresh()
                key, algorithm = self._keys.key_for(header)
            claims: dict[str, Any] = jwt.decode(id_token, key, algorithms=[algorithm], audience=self.client_id,
                                                issuer=self.issuer, leeway=30,
                                                options={"require": ["sub", "exp", "iat", "iss", "aud"]})
        except (jwt.InvalidTokenError, KeyNotAtHand, Problem) as exc:
            raise SignInFailed(f"the ID token does not check out: {exc}") from None
        return claims

    async def end_session_url(self, *, id_token: str | None, post_logout_redirect_uri: str) -> str | None:
        """RP-initiated logout: where the browser goes to end the session at the provider too."""
        endpoint = (await self.document()).get("end_session_endpoint")
        if not endpoint:
            return None
        query = {"client_id": self.client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
        if id_token:
            query["id_token_hint"] = id_token
        return f"{provider_url(str(endpoint))}?{urlencode(query)}"

    async def _token_request(self, form: dict[str, str], previous: TokenSet | None = None) -> TokenSet:
        endpoint = (await self.document())["token_endpoint"]
        try:
            response = await self._http.post(endpoint, data=form)
        except httpx.HTTPError as exc:
            raise SignInFailed(f"the provider could not be reached: {exc}") from None
        if response.status_code != 200:
            raise SignInFailed(f"the provider refused ({response.status_code}): {response.text[:300]}")
        return TokenSet.from_response(response.json(), previous=previous)
