"""When the services fetch the identity provider's keys: on a key they have not seen, when the set is old, never
more than once per cooldown; and what they do when the provider cannot be reached. The provider's JWKS is
replaced here by the keys a fetch would return; tests/e2e/test_identity_provider_login.py runs a real one."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from shared.web.access import Principal, ProviderKeys, Role, TokenRules, TokenVerifier
from shared.web.http import Problem

pytestmark = pytest.mark.unit

ISSUER = "https://sso.example.go.id/realms/iomki"
RULES = TokenRules(ISSUER, "iomki", leeway=30, max_lifetime=3600)
LIFESPAN, COOLDOWN = 300.0, 10.0


class Provider:
    """Signing keys by kid, the JWKS they publish, and a clock the test moves."""

    def __init__(self) -> None:
        self.private: dict[str, Ed25519PrivateKey] = {}
        self.published: list[str] = []
        self.fetches = 0
        self.reachable = True
        self.now = 1000.0

    def add(self, kid: str) -> None:
        self.private[kid] = Ed25519PrivateKey.generate()
        self.published.append(kid)

    def jwks(self) -> list[Any]:
        self.fetches += 1
        if not self.reachable:
            raise jwt.PyJWKClientConnectionError("Fail to fetch data from the url")
        keys = []
        for kid in self.published:
            jwk = json.loads(OKPAlgorithm.to_jwk(self.private[kid].public_key()))
            keys.append(jwt.PyJWK(jwk | {"kid": kid, "alg": "EdDSA", "use": "sig"}))
        return keys

    def token(self, kid: str, sub: str = "operator-1") -> str:
        now = int(time.time())
        claims = {"sub": sub, "role": "operator", "iss": ISSUER, "aud": ["iomki", "account"], "iat": now,
                  "exp": now + 300}
        return jwt.encode(claims, self.private[kid], algorithm="EdDSA", headers={"kid": kid})


@pytest.fixture
def provider() -> Provider:
    provider = Provider()
    provider.add("k1")
    return provider


@pytest.fixture
def verifier(provider: Provider, monkeypatch: pytest.MonkeyPatch) -> TokenVerifier:
    keys = ProviderKeys(ISSUER, "https://sso.example.go.id/jwks", lifespan=LIFESPAN, cooldown=COOLDOWN,
                        monotonic=lambda: provider.now)
    monkeypatch.setattr(keys, "_fetch", provider.jwks)
    return TokenVerifier(keys, RULES)


async def test_the_keys_are_fetched_for_the_first_token_and_not_again_for_the_next(provider, verifier):
    assert await verifier.verify(provider.token("k1")) == Principal(sub="operator-1", role=Role.OPERATOR)
    assert (await verifier.verify(provider.token("k1", sub="operator-2"))).sub == "operator-2"
    assert provider.fetches == 1


async def test_requests_arriving_while_the_first_fetch_is_under_way_wait_for_it_rather_than_being_refused(
        provider, verifier):
    # A page's first requests after a service starts come together (the console asks several at once).
    tokens = [provider.token("k1", sub=f"operator-{n}") for n in range(5)]
    principals = await asyncio.gather(*(verifier.verify(token) for token in tokens))
    assert [principal.sub for principal in principals] == [f"operator-{n}" for n in range(5)]
    assert provider.fetches == 1


async def test_a_rotated_key_is_fetched_when_a_token_first_names_it(provider, verifier):
    await verifier.verify(provider.token("k1"))
    provider.now += COOLDOWN + 1
    provider.add("k2")
    assert (await verifier.verify(provider.token("k2"))).sub == "operator-1"
    assert provider.fetches == 2


async def test_made_up_key_ids_fetch_at_most_once_per_cooldown(provider, verifier):
    await verifier.verify(provider.token("k1"))
    provider.now += COOLDOWN + 1
    provider.add("forged")
    provider.published.remove("forged")
    for _ in range(20):
        with pytest.raises(Problem) as refused:
            await verifier.verify(provider.token("forged"))
        assert refused.value.status == 401
        assert "names a key the identity provider does not publish" in refused.value.detail
    assert provider.fetches == 2


async def test_a_key_the_provider_removed_stops_verifying_once_the_set_is_old(provider, verifier):
    await verifier.verify(provider.token("k1"))
    provider.add("k2")
    provider.published.remove("k1")
    assert (await verifier.verify(provider.token("k1", sub="before"))).sub == "before"  # the set is still fresh
    provider.now += LIFESPAN + 1
    with pytest.raises(Problem, match="does not publish"):
        await verifier.verify(provider.token("k1", sub="after"))
    assert (await verifier.verify(provider.token("k2"))).sub == "operator-1"


async def test_when_the_provider_is_unreachable_the_keys_it_last_published_keep_verifying(provider, verifier):
    await verifier.verify(provider.token("k1"))
    provider.reachable = False
    provider.now += LIFESPAN + 1
    assert (await verifier.verify(provider.token("k1", sub="during"))).sub == "during"
    assert (await verifier.verify(provider.token("k1", sub="again"))).sub == "again"
    assert provider.fetches == 2  # one attempt; the next waits for the cooldown
    provider.reachable = True
    provider.now += COOLDOWN + 1
    assert (await verifier.verify(provider.token("k1", sub="after"))).sub == "after"
    assert provider.fetches == 3


async def test_a_token_of_another_issuer_or_audience_signed_with_the_providers_key_is_refused(provider, verifier):
    now = int(time.time())
    for changed, reason in [({"iss": "https://sso.example.go.id/realms/master"}, "Invalid issuer"),
                            ({"aud": "iomki-console"}, "Audience doesn't match"),
                            ({"exp": now + 7200}, "lives longer")]:
        claims = {"sub": "x", "role": "operator", "iss": ISSUER, "aud": "iomki", "iat": now, "exp": now + 300}
        forged = jwt.encode(claims | changed, provider.private["k1"], algorithm="EdDSA", headers={"kid": "k1"})
        with pytest.raises(Problem) as refused:
            await verifier.verify(forged)
        assert reason in refused.value.detail


async def test_the_providers_public_key_used_as_an_hmac_secret_is_refused(provider, verifier):
    """Algorithm confusion: whoever has the published key signs HS256 with it and names the provider's kid."""
    await verifier.verify(provider.token("k1"))
    public = OKPAlgorithm.to_jwk(provider.private["k1"].public_key())
    now = int(time.time())
    claims = {"sub": "x", "role": "operator", "iss": ISSUER, "aud": "iomki", "iat": now, "exp": now + 300}
    for secret in (public.encode(), json.loads(public)["x"].encode()):
        forged = hs256_by_hand({"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims, secret)
        with pytest.raises(Problem) as refused:
            await verifier.verify(forged)
        assert refused.value.status == 401


def hs256_by_hand(header: dict, claims: dict, secret: bytes) -> str:
    """PyJWT refuses to sign with a key shaped like a JWK, so the forger signs without it."""
    def segment(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    signing_input = f"{segment(json.dumps(header).encode())}.{segment(json.dumps(claims).encode())}"
    return f"{signing_input}.{segment(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


async def test_beside_the_development_secret_each_issuer_is_checked_with_its_own_keys_only(provider, monkeypatch):
    """`make run` trusts both: the console's people sign in at the provider, the CLI's tokens are the secret's. A
    token naming the provider but signed with the secret, or naming the development issuer but signed by the
    provider, is refused; so is one naming neither."""
    secret = "a-development-secret-of-some-length-0123456789"  # noqa: S105 -- the test's own
    development = TokenVerifier.development(secret)
    keys = ProviderKeys(ISSUER, "https://sso.example.go.id/jwks", lifespan=LIFESPAN, cooldown=COOLDOWN,
                        monotonic=lambda: provider.now)
    monkeypatch.setattr(keys, "_fetch", provider.jwks)
    both = TokenVerifier(keys, RULES, (development.keys, development.rules))
    now = int(time.time())
    minted = {"sub": "cli", "role": "operator", "iss": development.rules.issuer, "aud": development.rules.audience,
              "iat": now, "exp": now + 300}
    assert (await both.verify(jwt.encode(minted, secret))).sub == "cli"
    assert (await both.verify(provider.token("k1"))).sub == "operator-1"
    as_provider = jwt.encode(minted | {"iss": ISSUER, "aud": "iomki"}, secret)
    by_provider = jwt.encode(minted, provider.private["k1"], algorithm="EdDSA", headers={"kid": "k1"})
    nobody = jwt.encode(minted | {"iss": "https://elsewhere.example"}, secret)
    for forged, reason in [(as_provider, "does not publish"), (by_provider, "alg"), (nobody, "does not trust")]:
        with pytest.raises(Problem) as refused:
            await both.verify(forged)
        assert refused.value.status == 401 and reason in refused.value.detail, refused.value.detail
