"""The development identity provider, for real: Keycloak from Maven Central on loopback with the realm `iomki`.

Every sample user logs in through the authorization-code flow with PKCE and gets the claims the platform reads;
what the console client must refuse is refused; a rotated signing key signs new tokens while the old one stays
published, and a removed key leaves the JWKS.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.oidc import (
    REDIRECT_URI,
    LoginRefused,
    authorize,
    claims,
    exchange,
    header,
    log_in,
    pkce_pair,
    sample_password,
)
from tooling.embedded_keycloak import EmbeddedKeycloak

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent.parent
CLIENT = "iomki-console"


# username, then the claims the platform reads (absent ones must be absent)
SAMPLE_USERS: list[tuple[str, dict[str, str]]] = [
    ("operator", {"role": "operator"}),
    ("satgas-nasional", {"role": "task_force", "region": "ID"}),
    ("satgas-jabar", {"role": "task_force", "region": "32"}),
    ("satgas-bekasi", {"role": "task_force", "region": "32.16"}),
    ("perusahaan", {"role": "company", "nib": "8120000123456"}),
    ("perusahaan-lain", {"role": "company", "nib": "8120000654321"}),
    ("agensi", {"role": "agency"}),
    ("dinkes-bekasi", {"role": "health_office", "region": "32.16"}),
]


@pytest.fixture(scope="module")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedKeycloak]:
    # The distribution is kept in .data/ (fetched once); the instance's log lives in a temporary directory.
    server = EmbeddedKeycloak(tmp_path_factory.mktemp("keycloak"), cache_dir=ROOT / ".data")
    try:
        server.start()
        yield server
    finally:
        server.stop()


async def _authorization_request(server: EmbeddedKeycloak, **overrides: str | None) -> httpx.Response:
    """A browser's first GET of the authorization endpoint, with some parameters changed (None: left out)."""
    _, challenge = pkce_pair()
    params: dict[str, str | None] = {
        "response_type": "code", "client_id": CLIENT, "redirect_uri": REDIRECT_URI, "scope": "openid",
        "state": "s", "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256",
    }
    params.update(overrides)
    async with httpx.AsyncClient(timeout=30.0) as client:
        return await client.get(f"{server.issuer}/protocol/openid-connect/auth",
                                params={name: value for name, value in params.items() if value is not None})


def _audience(token_claims: dict[str, Any]) -> list[str]:
    aud = token_claims["aud"]
    return [aud] if isinstance(aud, str) else list(aud)


def _jwks_kids(server: EmbeddedKeycloak) -> set[str]:
    return {key["kid"] for key in httpx.get(server.jwks_url, timeout=30.0).json()["keys"]}


async def test_the_discovery_document_names_the_issuer_and_only_the_code_flow_with_s256(keycloak: EmbeddedKeycloak):
    async with httpx.AsyncClient(timeout=30.0) as client:
        document = (await client.get(keycloak.discovery_url)).json()
    assert document["issuer"] == keycloak.issuer == f"http://127.0.0.1:{keycloak.port}/realms/iomki"
    assert document["jwks_uri"] == keycloak.jwks_url
    assert "S256" in document["code_challenge_methods_supported"]


@pytest.mark.parametrize(("username", "expected"), SAMPLE_USERS)
async def test_each_sample_user_logs_in_and_carries_its_claims(
    keycloak: EmbeddedKeycloak, username: str, expected: dict[str, str],
):
    tokens = await log_in(keycloak.issuer, username, sample_password(username))
    assert {"access_token", "id_token", "refresh_token", "expires_in"} <= tokens.keys()
    access = claims(tokens["access_token"])
    assert access["iss"] == keycloak.issuer
    assert "iomki" in _audience(access)
    assert access["azp"] == CLIENT
    assert access["exp"] - access["iat"] == 300
    assert 290 <= tokens["expires_in"] <= 300  # counted from the response's moment, a second or so after iat
    assert access["sub"] and access["preferred_username"] == username
    assert {name: access[name] for name in ("role", "region", "nib") if name in access} == expected
    assert header(tokens["access_token"])["alg"] == "RS256"
    identity = claims(tokens["id_token"])
    assert identity["iss"] == keycloak.issuer and identity["aud"] == CLIENT and identity["sub"] == access["sub"]


async def test_a_wrong_password_gets_no_code(keycloak: EmbeddedKeycloak):
    with pytest.raises(LoginRefused, match="no redirect") as refused:
        await log_in(keycloak.issuer, "operator", "not-" + sample_password("operator"))
    assert refused.value.response.status_code == 200  # the form again, with its error
    assert "location" not in refused.value.response.headers


async def test_an_unknown_user_gets_no_code(keycloak: EmbeddedKeycloak):
    with pytest.raises(LoginRefused, match="no redirect"):
        await log_in(keycloak.issuer, "nobody", "whatever")


@pytest.mark.parametrize("redirect_uri", [
    "http://evil.example/callback",
    "https://127.0.0.1.evil.example/callback",
    "http://localhost:49152/callback",
])
async def test_a_redirect_uri_not_registered_is_refused(keycloak: EmbeddedKeycloak, redirect_uri: str):
    response = await _authorization_request(keycloak, redirect_uri=redirect_uri)
    assert response.status_code == 400
    assert "location" not in response.headers  # never sent on to the unregistered address
    assert "Invalid parameter: redirect_uri" in response.text
    with pytest.raises(LoginRefused, match="refused"):
        await log_in(keycloak.issuer, "operator", sample_password("operator"), redirect_uri=redirect_uri)


async def test_any_loopback_port_and_path_is_a_registered_redirect(keycloak: EmbeddedKeycloak):
    tokens = await log_in(keycloak.issuer, "agensi", sample_password("agensi"), redirect_uri="http://127.0.0.1:8001/a/b")
    assert claims(tokens["access_token"])["role"] == "agency"


async def test_pkce_is_required(keycloak: EmbeddedKeycloak):
    response = await _authorization_request(keycloak, code_challenge=None, code_challenge_method=None)
    location = response.headers.get("location", "")
    assert response.status_code == 302 and location.startswith(REDIRECT_URI)
    assert "error=invalid_request" in location and "code=" not in location
    with pytest.raises(LoginRefused, match="no login form|refused"):
        await log_in(keycloak.issuer, "operator", sample_password("operator"), pkce=False)


async def test_plain_pkce_is_refused(keycloak: EmbeddedKeycloak):
    response = await _authorization_request(keycloak, code_challenge="a" * 43, code_challenge_method="plain")
    assert "error=invalid_request" in response.headers.get("location", "")


async def test_the_implicit_and_password_grants_are_refused(keycloak: EmbeddedKeycloak):
    implicit = await _authorization_request(keycloak, response_type="token")
    assert "error=" in implicit.headers.get("location", "") and "access_token" not in implicit.headers["location"]
    async with httpx.AsyncClient(timeout=30.0) as client:
        password = await client.post(f"{keycloak.issuer}/protocol/openid-connect/token", data={
            "grant_type": "password", "client_id": CLIENT, "username": "operator",
            "password": sample_password("operator"),
        })
    assert password.status_code in (400, 401) and "access_token" not in password.json()


async def test_a_code_is_exchanged_only_with_its_verifier(keycloak: EmbeddedKeycloak):
    authorization = await authorize(keycloak.issuer, "operator", sample_password("operator"))
    with pytest.raises(LoginRefused, match="invalid_grant"):
        await exchange(authorization, verifier=pkce_pair()[0])


async def test_a_rotated_key_signs_new_tokens_and_the_old_one_stays_published(keycloak: EmbeddedKeycloak):
    before = await log_in(keycloak.issuer, "operator", sample_password("operator"))
    old_kid = header(before["access_token"])["kid"]
    new_kid = keycloak.rotate_signing_key()
    assert new_kid != old_kid
    after = await log_in(keycloak.issuer, "operator", sample_password("operator"))
    assert header(after["access_token"])["kid"] == new_kid
    assert {old_kid, new_kid} <= _jwks_kids(keycloak)

    keycloak.remove_signing_key(old_kid)
    kids = _jwks_kids(keycloak)
    assert old_kid not in kids and new_kid in kids
    again = await log_in(keycloak.issuer, "operator", sample_password("operator"))
    assert header(again["access_token"])["kid"] == new_kid
