"""The one access mechanism every service uses: tokens, roles, scopes, and the answers 401 / 403 / 404."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import warnings
from typing import Annotated

import httpx
import jwt
import pytest
from fastapi import FastAPI
from jwt.warnings import InsecureKeyLengthWarning

from shared.settings import PlatformSettings
from shared.web.access import (
    DEVELOPMENT_AUDIENCE,
    DEVELOPMENT_ISSUER,
    REQUIRED_CLAIMS,
    Access,
    Policy,
    Principal,
    Role,
    Rule,
    Scope,
    TokenVerifier,
    mint,
)
from shared.web.http import Problem, install_problem_handlers

pytestmark = pytest.mark.unit

SECRET = "unit-test-secret-" + "y" * 32
OP, TF, C, A = Role.OPERATOR, Role.TASK_FORCE, Role.COMPANY, Role.AGENCY
POLICY = Policy({
    "read": Rule({OP: Scope.ALL, TF: Scope.REGION, C: Scope.OWN}),
    "aggregate": Rule({OP: Scope.ALL, A: Scope.ALL, TF: Scope.REGION}),
}, verifier=TokenVerifier.development(SECRET, leeway=0))  # expiry tests need not wait out a leeway
PLANT = {"region_code": "32.16", "nib": "8120000123456"}


def app() -> FastAPI:
    application = FastAPI()
    install_problem_handlers(application)

    @application.get("/plants/bekasi")
    async def read(access: Annotated[Access, POLICY.guard("read")]) -> dict:
        access.require(what="Plant", **PLANT)
        return {"who": access.principal.sub}

    @application.get("/compliance")
    async def aggregate(access: Annotated[Access, POLICY.guard("aggregate")]) -> dict:
        return {"region_filter": access.region_filter}

    return application


async def get(path: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as client:
        return await client.get(path, headers=headers)


def token(role: Role, **claims: str) -> str:
    return mint(SECRET, role=role, **claims)


@pytest.mark.parametrize(
    ("role", "claims", "status"),
    [
        (OP, {}, 200),
        (TF, {"region": "32.16"}, 200),  # the regency itself
        (TF, {"region": "32"}, 200),  # its province covers it
        (TF, {"region": "32.15"}, 404),  # a neighbouring regency: as if it did not exist
        (TF, {"region": "3"}, 401),  # not a region code: the token itself is invalid
        (TF, {"region": "ID"}, 200),  # the national task force
        (C, {"nib": "8120000123456"}, 200),  # the plant's own company
        (C, {"nib": "8120000999999"}, 404),  # a competitor
        (A, {}, 403),  # agencies read aggregates only
    ],
)
async def test_who_may_read_a_plant_in_kabupaten_bekasi(role, claims, status):
    response = await get("/plants/bekasi", token(role, **claims))
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json") or status == 200
    if status == 403:
        assert "rule 'read'" in response.json()["detail"] and response.json()["rule"] == "read"
    if status == 404:
        assert response.json()["detail"] == "Plant not found."
    if status == 401:
        assert "region must be a province or regency code, or ID" in response.json()["detail"]


async def test_an_agency_reads_aggregates_everywhere_and_a_task_force_only_its_region():
    assert (await get("/compliance", token(A))).json() == {"region_filter": None}
    assert (await get("/compliance", token(TF, region="32"))).json() == {"region_filter": "32"}


def forged_tokens() -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": "mallory", "role": "operator", "exp": now + 600}
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    genuine = token(C, nib="8120000123456")
    head, payload, signature = genuine.split(".")
    widened = json.loads(base64.urlsafe_b64decode(payload + "=="))
    widened["role"] = "operator"
    tampered = base64.urlsafe_b64encode(json.dumps(widened).encode()).rstrip(b"=").decode()
    return {
        "expired": mint(SECRET, role=OP, ttl_seconds=-60),  # beyond any leeway
        "wrong key": mint("another-secret-" + "z" * 32, role=OP),
        "alg none": f"{header}.{body}.",
        "tampered claims": f"{head}.{tampered}.{signature}",
        "malformed": "not-a-jwt",
        "another algorithm, right key": hs512({"sub": "x", "role": "operator", "exp": now + 60}, SECRET),
        "no exp": jwt.encode({"sub": "x", "role": "operator"}, SECRET, algorithm="HS256"),
        "unknown role": jwt.encode({"sub": "x", "role": "root", "exp": now + 60}, SECRET, algorithm="HS256"),
        "task force without region": jwt.encode({"sub": "x", "role": "task_force", "exp": now + 60}, SECRET,
                                                algorithm="HS256"),
        "company without nib": jwt.encode({"sub": "x", "role": "company", "exp": now + 60}, SECRET,
                                          algorithm="HS256"),
    }


def hs512(claims: dict, secret: str) -> str:
    with warnings.catch_warnings():  # the secret is short for SHA-512, which is beside the point here
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, secret, algorithm="HS512")


@pytest.mark.parametrize("kind", list(forged_tokens()))
async def test_a_forged_expired_or_incomplete_token_is_401(kind):
    response = await get("/plants/bekasi", forged_tokens()[kind])
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["title"] == "Unauthorized"


async def test_an_expired_token_says_so():
    response = await get("/plants/bekasi", mint(SECRET, role=OP, ttl_seconds=-5))
    assert response.json()["detail"] == "The token has expired."


async def test_a_token_accepted_before_its_expiry_is_refused_after_it():
    """Verified tokens are remembered: the memory must not outlive the token."""
    short = mint(SECRET, role=OP, ttl_seconds=2)
    assert (await get("/plants/bekasi", short)).status_code == 200
    time.sleep(max(0.0, jwt.decode(short, options={"verify_signature": False})["exp"] - time.time()) + 0.05)
    response = await get("/plants/bekasi", short)
    assert response.status_code == 401
    assert response.json()["detail"] == "The token has expired."


@pytest.mark.parametrize("header", [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer   "])
async def test_a_missing_or_malformed_authorization_header_is_401(header):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as client:
        response = await client.get("/plants/bekasi", headers={"Authorization": header} if header else {})
    assert response.status_code == 401


async def test_a_development_verifier_refuses_a_token_for_another_issuer_audience_or_lifetime():
    verifier = TokenVerifier.development(SECRET, max_lifetime=3600)
    now = int(time.time())
    claims = {"sub": "x", "role": "operator", "iss": DEVELOPMENT_ISSUER, "aud": DEVELOPMENT_AUDIENCE, "iat": now,
              "exp": now + 600}
    assert (await verifier.verify(jwt.encode(claims, SECRET))).sub == "x"
    for changed, reason in [({"iss": "https://sso.example.go.id"}, "Invalid issuer"),
                            ({"aud": "another-application"}, "Audience doesn't match"),
                            ({"exp": now + 3601}, "lives longer than the 3600 seconds")]:
        with pytest.raises(Problem) as refused:
            await verifier.verify(jwt.encode(claims | changed, SECRET))
        assert refused.value.status == 401 and reason in refused.value.detail


async def test_a_token_within_the_leeway_of_its_expiry_still_verifies():
    verifier = TokenVerifier.development(SECRET, leeway=30)
    now = int(time.time())
    late = jwt.encode({"sub": "x", "role": "operator", "iss": DEVELOPMENT_ISSUER, "aud": DEVELOPMENT_AUDIENCE,
                       "iat": now - 100, "exp": now - 10}, SECRET)
    assert (await verifier.verify(late)).sub == "x"
    assert (await verifier.verify(late)).sub == "x"  # and again, from the verified tokens kept
    with pytest.raises(Problem, match="expired"):
        await TokenVerifier.development(SECRET, leeway=5).verify(late)


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({}, "set IOMKI_OIDC_ISSUER and IOMKI_OIDC_AUDIENCE"),
        ({"IOMKI_OIDC_ISSUER": "https://sso.example.go.id/realms/iomki"}, "needs IOMKI_OIDC_AUDIENCE"),
        ({"IOMKI_OIDC_ISSUER": "http://sso.example.go.id/realms/iomki", "IOMKI_OIDC_AUDIENCE": "iomki"},
         "over https"),
        ({"IOMKI_OIDC_ISSUER": "https://sso.example.go.id/realms/iomki", "IOMKI_OIDC_AUDIENCE": "iomki",
          "IOMKI_OIDC_JWKS_URL": "file:///etc/passwd"}, "not a plain http"),
    ],
)
def test_a_service_without_a_way_to_verify_refuses_to_start(environment, message, monkeypatch):
    for name in ("IOMKI_JWT_SECRET", "IOMKI_OIDC_ISSUER", "IOMKI_OIDC_AUDIENCE", "IOMKI_OIDC_JWKS_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        TokenVerifier.from_settings(PlatformSettings())


def test_a_province_covers_its_regencies_only():
    jabar = Principal(sub="satgas-jabar", role=TF, region="32")
    assert jabar.covers("32") and jabar.covers("32.16") and not jabar.covers("33.01") and not jabar.covers("321")


def signed(header: dict, claims: object, secret: str = SECRET, *, algorithm=hashlib.sha256) -> str:
    def segment(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    signing_input = f"{segment(json.dumps(header).encode())}.{segment(json.dumps(claims).encode())}"
    return f"{signing_input}.{segment(hmac.new(secret.encode(), signing_input.encode(), algorithm).digest())}"


def token_corpus() -> dict[str, str]:
    """Genuine tokens in every shape an identity provider may give them, and hostile or broken ones."""
    now = int(time.time())
    base = {"sub": "op-1", "role": "operator", "iss": DEVELOPMENT_ISSUER, "aud": DEVELOPMENT_AUDIENCE, "iat": now,
            "exp": now + 600}
    hs256 = {"alg": "HS256", "typ": "JWT"}
    genuine = token(OP)
    head, payload, signature = genuine.split(".")
    return forged_tokens() | {
        "minted": genuine,
        "with iat, nbf and jti": signed(hs256, base | {"iat": now - 5, "nbf": now - 5, "jti": "j-1"}),
        "fractional exp": signed(hs256, base | {"exp": now + 600.5}),
        "a key id": signed(hs256 | {"kid": "2026-12"}, base),
        "no typ": signed({"alg": "HS256"}, base),
        "other claims": signed(hs256, base | {"azp": "iomki-console", "scope": ["x"]}),
        "audiences, ours among them": signed(hs256, base | {"aud": ["account", DEVELOPMENT_AUDIENCE]}),
        "another issuer": signed(hs256, base | {"iss": "sso.kemenperin.go.id"}),
        "empty audience": signed(hs256, base | {"aud": ""}),
        "another audience": signed(hs256, base | {"aud": "another-service"}),
        "no issuer": signed(hs256, {k: v for k, v in base.items() if k != "iss"}),
        "no audience": signed(hs256, {k: v for k, v in base.items() if k != "aud"}),
        "no iat": signed(hs256, {k: v for k, v in base.items() if k != "iat"}),
        "a week long": signed(hs256, base | {"exp": now + 7 * 86400}),
        "not yet valid": signed(hs256, base | {"nbf": now + 600}),
        "issued in the future": signed(hs256, base | {"iat": now + 600}),
        "exp as text": signed(hs256, base | {"exp": "soon"}),
        "exp NaN": signed(hs256, base).replace(signed(hs256, base).split(".")[1], base64.urlsafe_b64encode(
            json.dumps(base).replace(str(base["exp"]), "NaN").encode()).rstrip(b"=").decode()),
        "exp true": signed(hs256, base | {"exp": True}),
        "exp null": signed(hs256, base | {"exp": None}),
        "sub a number": signed(hs256, base | {"sub": 7}),
        "jti a number": signed(hs256, base | {"jti": 7}),
        "kid a number": signed(hs256 | {"kid": 7}, base),
        "critical extension": signed(hs256 | {"crit": ["exp"]}, base),
        "b64 false": signed(hs256 | {"b64": False}, base),
        "no alg": signed({"typ": "JWT"}, base),
        "claims an array": signed(hs256, [base]),
        "header an array": f"{base64.urlsafe_b64encode(b'[1]').rstrip(b'=').decode()}.{payload}.{signature}",
        "header not JSON": f"e30x.{payload}.{signature}",
        "padded signature": f"{head}.{payload}.{signature}=",
        "stray bits in the signature": f"{head}.{payload}.{signature[:-1]}{chr(ord(signature[-1]) ^ 1)}",
        "not base64url": f"{head}.{payload}!.{signature}",
        "four segments": f"{head}.{payload}.{signature}.{signature}",
        "two segments": f"{head}.{payload}",
        "empty signature": f"{head}.{payload}.",
        "region a number": signed(hs256, base | {"role": "task_force", "region": 32}),
        "HS384 with the secret": signed({"alg": "HS384"}, base, algorithm=hashlib.sha384),
    }


# Tokens PyJWT decodes that the platform refuses: by its role rules, or by being stricter than PyJWT on purpose.
REFUSED_THOUGH_PYJWT_READS_THEM = {
    "unknown role", "task force without region", "company without nib",
    "padded signature",  # a compact JWS's segments are base64url without padding (RFC 7515 §2)
    "region a number",  # the claims a role is scoped by are compared as text
    "a week long",  # a token lives no longer than the platform's maximum
}


@pytest.mark.parametrize("kind", list(token_corpus()))
async def test_the_verifier_refuses_every_token_pyjwt_refuses_and_reads_the_rest_as_pyjwt_does(kind):
    """The verifier decodes with PyJWT and adds the platform's own rules: held to PyJWT's verdicts, token by token."""
    presented = token_corpus()[kind]
    try:
        expected = jwt.decode(presented, SECRET, algorithms=["HS256"], issuer=DEVELOPMENT_ISSUER,
                              audience=DEVELOPMENT_AUDIENCE, leeway=30, options={"require": REQUIRED_CLAIMS})
    except jwt.InvalidTokenError:
        expected = None
    try:
        principal = await TokenVerifier.development(SECRET).verify(presented)
    except Problem as refused:
        assert refused.status == 401
        assert expected is None or kind in REFUSED_THOUGH_PYJWT_READS_THEM, f"{kind!r}: {refused.detail}"
        return
    assert expected is not None, f"PyJWT refuses {kind!r}, the verifier accepted it"
    assert principal == Principal(sub=expected["sub"], role=Role(expected["role"]), region=expected.get("region"),
                                  nib=expected.get("nib"))


async def test_every_kind_of_token_is_in_the_corpus_both_ways():
    """The comparison above means something only if the corpus holds tokens of both verdicts."""
    verifier = TokenVerifier.development(SECRET)
    verdicts = {}
    for kind, presented in token_corpus().items():
        try:
            await verifier.verify(presented)
            verdicts[kind] = "accepted"
        except Problem:
            verdicts[kind] = "refused"
    assert {kind for kind, verdict in verdicts.items() if verdict == "accepted"} == {
        "minted", "with iat, nbf and jti", "fractional exp", "a key id", "no typ", "other claims",
        "audiences, ours among them"}


@pytest.mark.parametrize("role, claim", [(Role.REGIONAL_OFFICE, "region"), (Role.TASK_FORCE, "region"),
                                         (Role.ESTATE, "NIB"), (Role.COMPANY, "NIB")])
async def test_a_scoped_role_without_the_claim_it_is_scoped_by_is_401(role, claim):
    with pytest.raises(Problem) as refused:
        await TokenVerifier.development(SECRET).verify(mint(SECRET, role=role))
    assert refused.value.status == 401 and f"must carry its {claim}" in refused.value.detail


async def test_a_regional_office_and_an_estate_are_read_from_their_tokens():
    verifier = TokenVerifier.development(SECRET)
    office = await verifier.verify(mint(SECRET, role=Role.REGIONAL_OFFICE, sub="disperinaker", region="32.15"))
    estate = await verifier.verify(mint(SECRET, role=Role.ESTATE, sub="kawasan", nib="8120000700001"))
    assert office == Principal(sub="disperinaker", role=Role.REGIONAL_OFFICE, region="32.15")
    assert estate == Principal(sub="kawasan", role=Role.ESTATE, nib="8120000700001")


def test_an_estate_sees_its_own_objects_and_its_tenants_and_nothing_else():
    estate = Principal(sub="kawasan", role=Role.ESTATE, nib="8120000700001")
    tenants = Access(estate, Scope.TENANTS, "read")
    assert tenants.may_see(nib="8120000700001")  # its own estate permit
    assert tenants.may_see(nib="8120000111111", estate_nib="8120000700001")  # a tenant it confirmed
    assert not tenants.may_see(nib="8120000111111", estate_nib="8120000222222")  # another estate's tenant
    assert not tenants.may_see(nib="8120000111111")  # a plant in no estate
    assert not tenants.may_see(region_code="32.15")  # a region is not its scope
    assert tenants.tenants_filter == "8120000700001" and tenants.nib_filter is None
    own = Access(estate, Scope.OWN, "submit")  # where it acts, only as the company it is
    assert own.may_see(nib="8120000700001") and not own.may_see(nib="8120000111111", estate_nib="8120000700001")
    assert own.tenants_filter is None and own.nib_filter == "8120000700001"
