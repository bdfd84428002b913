"""The four services verifying tokens from a real identity provider: Keycloak on loopback with the development
realm, the services configured as in production (issuer, audience, keys from the JWKS, no shared secret).

People log in through the authorization-code flow with PKCE and call the services with the access token; a token
the provider issued for something else, or a forged one, is refused; the provider rotates its signing key and
the services follow without a restart; a key it removes stops verifying.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from shared.settings import SERVICES
from tests.support.issued_permits import APPLICATION
from tests.support.oidc import claims, header, log_in, sample_password
from tests.support.platform import ROOT
from tests.support.processes import RunningServices, running_platform
from tooling.embedded_keycloak import EmbeddedKeycloak

pytestmark = pytest.mark.e2e

KEYS_LIFESPAN = 10  # seconds (IOMKI_OIDC_KEYS_LIFESPAN): a removed key is refused this long after removal
FETCH_COOLDOWN = 10  # seconds between two fetches of the provider's keys (shared.web.access.ProviderKeys)
READS = {"permits": "/permits", "reports": "/compliance", "incidents": "/incidents", "notifier": "/alerts",
         "supervision": "/worklist"}


@dataclass
class Scene:
    keycloak: EmbeddedKeycloak
    services: RunningServices
    http: httpx.AsyncClient

    def url(self, service: str, path: str) -> str:
        return f"{self.services.url(service)}{path}"

    async def token(self, username: str) -> str:
        tokens = await log_in(self.keycloak.issuer, username, sample_password(username))
        access: str = tokens["access_token"]
        return access

    async def get(self, service: str, path: str, token: str) -> httpx.Response:
        return await self.http.get(self.url(service, path), headers={"Authorization": f"Bearer {token}"})


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def scene(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scene]:
    keycloak = EmbeddedKeycloak(tmp_path_factory.mktemp("keycloak"), cache_dir=ROOT / ".data")
    try:
        await asyncio.to_thread(keycloak.start)
        production = {"IOMKI_JWT_SECRET": "", "IOMKI_OIDC_ISSUER": keycloak.issuer, "IOMKI_OIDC_AUDIENCE": "iomki",
                      "IOMKI_OIDC_KEYS_LIFESPAN": f"PT{KEYS_LIFESPAN}S"}
        async with running_platform("oidc", production) as services, httpx.AsyncClient(timeout=30) as http:
            yield Scene(keycloak, services, http)
    finally:
        await asyncio.to_thread(keycloak.stop)


async def test_people_log_in_at_the_provider_and_each_sees_what_their_role_and_scope_allow(scene: Scene):
    company = await scene.token("perusahaan-lain")  # NIB 8120000654321, the application's company
    applied = await scene.http.post(scene.url("permits", "/permits"), json=APPLICATION,
                                    headers={"Authorization": f"Bearer {company}"})
    assert applied.status_code == 201, applied.text
    permit = f"/permits/{applied.json()['permit_id']}"

    operator = await scene.token("operator")
    decided = await scene.http.post(scene.url("permits", f"{permit}/decision"),
                                    headers={"Authorization": f"Bearer {operator}"},
                                    json={"decision": "issue", "reason": "dokumen lengkap"})
    assert decided.status_code == 200, decided.text
    history = (await scene.get("permits", f"{permit}/history", operator)).json()["transitions"]
    # The actor recorded is the provider's subject for the person: stable, whatever their username becomes.
    assert history[-1]["actor"] == claims(operator)["sub"]

    assert (await scene.get("permits", permit, company)).status_code == 200
    assert (await scene.get("permits", permit, await scene.token("satgas-bekasi"))).status_code == 200
    assert (await scene.get("permits", permit, await scene.token("satgas-jabar"))).status_code == 200
    assert (await scene.get("permits", permit, await scene.token("perusahaan"))).status_code == 404  # a competitor
    forbidden = await scene.get("permits", permit, await scene.token("agensi"))
    assert forbidden.status_code == 403, forbidden.text
    for service, path in READS.items():
        answer = await scene.get(service, path, operator)
        assert answer.status_code == 200, (service, answer.text)


async def test_a_token_the_provider_issued_for_something_else_or_a_forged_one_is_refused(scene: Scene):
    tokens = await log_in(scene.keycloak.issuer, "operator", sample_password("operator"))
    jwk = next(key for key in (await scene.http.get(scene.keycloak.jwks_url)).json()["keys"]
               if key["kid"] == header(tokens["access_token"])["kid"])
    now = int(time.time())
    genuine = claims(tokens["access_token"])
    refused = {
        # The ID token is the console's (aud iomki-console): proof of a login, not a right to call the platform.
        "the id token": (tokens["id_token"], "Audience doesn't match"),
        "signed with the provider's public key as an HMAC secret": (
            _hs256({"alg": "HS256", "typ": "JWT", "kid": jwk["kid"]}, genuine | {"role": "operator"},
                   json.dumps(jwk).encode()), "not allowed"),
        "a key id the provider never published": (
            _hs256({"alg": "RS256", "typ": "JWT", "kid": "made-up"}, genuine | {"iat": now}, b"x"),
            "does not publish"),
        "claims changed, signature kept": (_with_claims(tokens["access_token"], {"sub": "someone-else"}),
                                           "Signature verification failed"),
    }
    for kind, (token, reason) in refused.items():
        for service, path in READS.items():
            answer = await scene.get(service, path, token)
            assert answer.status_code == 401, (kind, service, answer.text)
            assert reason in answer.json()["detail"], (kind, service, answer.json()["detail"])


async def test_the_services_follow_a_key_rotation_without_a_restart_and_drop_a_removed_key(scene: Scene):
    before = await scene.token("satgas-jabar")  # signed with the key in use, not yet shown to any service
    kept = await scene.token("operator")
    for service, path in READS.items():
        assert (await scene.get(service, path, kept)).status_code == 200
    old_kid = header(before)["kid"]
    await asyncio.sleep(FETCH_COOLDOWN + 1)  # the services fetched the keys a moment ago; the next may fetch again

    new_kid = await asyncio.to_thread(scene.keycloak.rotate_signing_key)
    after = await scene.token("satgas-bekasi")
    assert header(after)["kid"] == new_kid != old_kid
    for service, path in READS.items():
        answer = await scene.get(service, path, after)
        assert answer.status_code == 200, (service, answer.text)

    await asyncio.to_thread(scene.keycloak.remove_signing_key, old_kid)
    await asyncio.sleep(KEYS_LIFESPAN + FETCH_COOLDOWN + 1)
    for service, path in READS.items():
        answer = await scene.get(service, path, before)
        assert answer.status_code == 401, (service, answer.text)
        assert "does not publish" in answer.json()["detail"]
        # A token verified before the removal is remembered until it expires, as every verified token is.
        assert (await scene.get(service, path, kept)).status_code == 200


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256(head: dict[str, Any], body: dict[str, Any], secret: bytes) -> str:
    """Signed by hand: PyJWT refuses to sign with a key that looks like a public key."""
    signing_input = f"{_segment(json.dumps(head).encode())}.{_segment(json.dumps(body).encode())}"
    return f"{signing_input}.{_segment(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def _with_claims(token: str, changes: dict[str, Any]) -> str:
    head, _, signature = token.split(".")
    body = {k: v for k, v in (claims(token) | changes).items() if v is not None}
    return f"{head}.{_segment(json.dumps(body).encode())}.{signature}"


def test_every_service_is_read():
    assert set(READS) == set(SERVICES)
