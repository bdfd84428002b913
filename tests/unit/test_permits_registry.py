"""Registry tokens: an officer's device verifies a printed permit offline with the published public key."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from services.permits.app import registry_signing_key
from shared import registry_tokens
from tooling.cli.app import app as cli

pytestmark = pytest.mark.unit

ISSUED = datetime(2021, 7, 5, 8, 0, tzinfo=UTC)


def claims(key: Ed25519PrivateKey) -> registry_tokens.RegistryClaims:
    return registry_tokens.claims_for(permit_number="IOMKI-2021-000123", company_name="PT Baja Nusantara",
                               regency_code="32.16", sector_class="critical", issued_at=ISSUED,
                               public_key=key.public_key())


def test_a_signed_token_verifies_with_the_public_key_and_is_deterministic():
    key = Ed25519PrivateKey.generate()
    token = registry_tokens.sign(claims(key), key)
    assert registry_tokens.verify(token, key.public_key()) == claims(key)
    assert registry_tokens.sign(claims(key), key) == token


def test_another_key_or_an_altered_payload_is_refused():
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    token = registry_tokens.sign(claims(key), key)
    with pytest.raises(registry_tokens.InvalidRegistryToken):
        registry_tokens.verify(token, other.public_key())
    prefix, payload, signature = token.split(".")
    forged = json.dumps(dataclasses.asdict(claims(key)) | {"permit_number": "IOMKI-2021-000999"}).encode()
    forged_payload = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    with pytest.raises(registry_tokens.InvalidRegistryToken):
        registry_tokens.verify(f"{prefix}.{forged_payload}.{signature}", key.public_key())
    with pytest.raises(registry_tokens.InvalidRegistryToken):
        registry_tokens.verify("not-a-token", key.public_key())


def test_a_token_carries_no_personal_data():
    key = Ed25519PrivateKey.generate()
    payload = json.loads(base64.urlsafe_b64decode(registry_tokens.sign(claims(key), key).split(".")[1] + "=="))
    assert set(payload) == {"permit_number", "company_name", "regency_code", "sector_class", "issued_at", "kid"}


def test_the_configured_key_is_read_as_pem_or_raw_seed():
    key = Ed25519PrivateKey.generate()
    pem = registry_tokens.private_key_pem(key).decode()
    seed = base64.b64encode(key.private_bytes_raw()).decode()
    for text in (pem, seed):
        loaded = registry_tokens.private_key_from_text(text)
        assert registry_tokens.key_id(loaded.public_key()) == registry_tokens.key_id(key.public_key())
    with pytest.raises(ValueError):
        registry_tokens.private_key_from_text(base64.b64encode(b"short").decode())


def test_a_generated_key_is_persisted_so_a_restart_keeps_it(tmp_path):
    first = registry_signing_key(None, tmp_path)
    again = registry_signing_key(None, tmp_path)
    assert registry_tokens.key_id(first.public_key()) == registry_tokens.key_id(again.public_key())
    assert (tmp_path / "registry-signing-key.pem").stat().st_mode & 0o077 == 0


def test_the_cli_verifies_a_token_against_a_public_key_file(tmp_path):
    key = Ed25519PrivateKey.generate()
    token = registry_tokens.sign(claims(key), key)
    public = tmp_path / "registry.pub"
    public.write_text(registry_tokens.public_jwk(key.public_key())["pem"])
    ok = CliRunner().invoke(cli, ["verify", token, "--public-key", str(public), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output) == {"valid_signature": True, "claims": json.loads(json.dumps(
        dataclasses.asdict(registry_tokens.verify(token, key.public_key()))))}
    assert json.loads(ok.output)["claims"]["permit_number"] == "IOMKI-2021-000123"

    public.write_text(registry_tokens.public_jwk(Ed25519PrivateKey.generate().public_key())["x"])
    refused = CliRunner().invoke(cli, ["verify", token, "--public-key", str(public), "--json"])
    assert refused.exit_code == 1
    assert json.loads(refused.output)["valid_signature"] is False
