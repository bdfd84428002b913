"""The development realm and the embedded Keycloak's pure parts: users the platform can serve, a client that only
does the code flow with PKCE, claims in the platform's formats, and the URLs the services are pointed at."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.contract import NIB_PATTERN
from shared.regions import is_region
from shared.web.access import COMPANY_ROLES, REGIONAL_ROLES, Role
from tooling import embedded_keycloak
from tooling.embedded_keycloak import EmbeddedKeycloak, development_realm, distribution, keycloak_version

pytestmark = pytest.mark.unit

REALM = development_realm()
CLAIMS = ("role", "region", "nib")


def _attributes(user: dict[str, Any]) -> dict[str, str]:
    """A user's single-valued platform attributes."""
    found = {name: values for name, values in user.get("attributes", {}).items() if name in CLAIMS}
    assert all(len(values) == 1 for values in found.values()), user["username"]
    return {name: values[0] for name, values in found.items()}


def _client() -> dict[str, Any]:
    (client,) = [client for client in REALM["clients"] if client["clientId"] == "iomki-console"]
    return client


def _user_profile() -> dict[str, Any]:
    (provider,) = REALM["components"]["org.keycloak.userprofile.UserProfileProvider"]
    profile: dict[str, Any] = json.loads(provider["config"]["kc.user.profile.config"][0])
    return profile


def test_the_pinned_server_is_a_26x_keycloak():
    assert re.fullmatch(r"26\.\d+\.\d+", keycloak_version())


def test_the_realm_is_iomki_with_five_minute_access_tokens():
    assert REALM["realm"] == "iomki" and REALM["enabled"] is True
    assert REALM["accessTokenLifespan"] == 300
    assert REALM["registrationAllowed"] is False  # accounts are given, never self-made


def test_the_sample_users_cover_every_role():
    assert {_attributes(user)["role"] for user in REALM["users"]} == {role.value for role in Role}


def test_each_sample_user_holds_the_claims_of_its_role_and_no_other():
    for user in REALM["users"]:
        attributes = _attributes(user)
        role = Role(attributes["role"])
        expected = {"role"} | ({"region"} if role in REGIONAL_ROLES else set()) | (
            {"nib"} if role in COMPANY_ROLES else set())
        assert attributes.keys() == expected, user["username"]
        if "region" in attributes:
            assert is_region(attributes["region"]), user["username"]
        if "nib" in attributes:
            assert re.fullmatch(NIB_PATTERN, attributes["nib"]), user["username"]


def test_task_forces_span_the_nation_a_province_and_a_regency_and_companies_and_the_estate_differ():
    regions = {_attributes(user).get("region") for user in REALM["users"]
               if _attributes(user)["role"] == Role.TASK_FORCE} - {None}
    assert regions == {"ID", "32", "32.16"}
    offices = {_attributes(user)["region"] for user in REALM["users"]
               if _attributes(user)["role"] == Role.REGIONAL_OFFICE}
    assert offices == {"32", "32.15"}  # a provincial and a regency office
    health = {_attributes(user)["region"] for user in REALM["users"]
              if _attributes(user)["role"] == Role.HEALTH_OFFICE}
    assert health == {"32.16"}  # Kabupaten Bekasi's, beside satgas-bekasi
    nibs = [_attributes(user)["nib"] for user in REALM["users"] if "nib" in _attributes(user)]
    assert len(nibs) == len(set(nibs)) == 3


def test_each_sample_user_can_log_in_at_once():
    usernames = [user["username"] for user in REALM["users"]]
    assert len(usernames) == len(set(usernames))
    for user in REALM["users"]:
        assert re.fullmatch(r"[a-z][a-z0-9-]*", user["username"])  # ASCII, as Keycloak stores it (lower case)
        assert user["enabled"] is True and user["emailVerified"] is True and user["requiredActions"] == []
        # What the user profile requires of a user, so that no "update your profile" page comes first.
        assert user["email"].isascii() and user["firstName"] and user["lastName"]
        (credential,) = user["credentials"]
        assert credential["type"] == "password" and credential["temporary"] is False and credential["value"]


def test_the_console_client_does_the_code_flow_with_s256_pkce_and_nothing_else():
    client = _client()
    assert client["publicClient"] is True and client["standardFlowEnabled"] is True
    assert client["implicitFlowEnabled"] is False
    assert client["directAccessGrantsEnabled"] is False
    assert client["serviceAccountsEnabled"] is False
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    assert client["redirectUris"] == ["http://127.0.0.1/*"]  # any loopback port (RFC 8252's 7.3), nowhere else
    assert client["attributes"]["post.logout.redirect.uris"] == "http://127.0.0.1/*"


def test_access_tokens_carry_the_audience_and_the_platform_claims_as_plain_strings():
    mappers = {mapper["name"]: mapper for mapper in _client()["protocolMappers"]}
    audience = next(mapper for mapper in mappers.values() if mapper["protocolMapper"] == "oidc-audience-mapper")
    assert audience["config"]["included.custom.audience"] == "iomki"
    assert audience["config"]["access.token.claim"] == "true"
    for claim in CLAIMS:
        config = mappers[claim]["config"]
        assert mappers[claim]["protocolMapper"] == "oidc-usermodel-attribute-mapper"
        assert (config["user.attribute"], config["claim.name"]) == (claim, claim)
        assert config["jsonType.label"] == "String" and config["multivalued"] == "false"
        assert config["access.token.claim"] == "true"


def test_the_platform_attributes_are_declared_and_only_an_admin_may_change_them():
    attributes = {attribute["name"]: attribute for attribute in _user_profile()["attributes"]}
    for claim in CLAIMS:
        assert attributes[claim]["permissions"]["edit"] == ["admin"], claim  # a user never grants themself a role
        assert attributes[claim]["multivalued"] is False
    assert set(attributes["role"]["validations"]["options"]["options"]) == {role.value for role in Role}
    region = attributes["region"]["validations"]["pattern"]["pattern"]
    assert all(re.fullmatch(region, code) for code in ("ID", "32", "32.16"))
    assert not any(re.fullmatch(region, code) for code in ("3", "32.1", "id", "32.16.01", "٣٢"))
    assert attributes["nib"]["validations"]["pattern"]["pattern"] == NIB_PATTERN


def test_the_provider_is_addressed_on_loopback(tmp_path: Path):
    keycloak = EmbeddedKeycloak(tmp_path / "keycloak", port=18180)
    assert keycloak.issuer == "http://127.0.0.1:18180/realms/iomki"
    assert keycloak.discovery_url == "http://127.0.0.1:18180/realms/iomki/.well-known/openid-configuration"
    assert keycloak.jwks_url == "http://127.0.0.1:18180/realms/iomki/protocol/openid-connect/certs"
    assert keycloak.admin_url == "http://127.0.0.1:18180/admin/realms/iomki"
    assert keycloak.log_path == (tmp_path / "keycloak" / "keycloak.log").resolve()


def test_an_unset_port_is_a_free_one_and_each_instance_gets_its_own_admin_secret(tmp_path: Path):
    one, other = EmbeddedKeycloak(tmp_path / "a"), EmbeddedKeycloak(tmp_path / "b")
    assert one.port and other.port and 1024 <= one.port <= 65535
    assert one.admin_secret != other.admin_secret and len(one.admin_secret) >= 32
    assert one.admin_secret not in repr(one)


def test_without_java_or_maven_the_fetch_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(embedded_keycloak.shutil, "which", lambda name: None if name == "mvn" else f"/usr/bin/{name}")
    with pytest.raises(RuntimeError, match=r"needs mvn \(Java 17\+ and Maven\)"):
        distribution(tmp_path)
    assert not (tmp_path / f"keycloak-{keycloak_version()}").exists()
