"""Offline-verifiable registry tokens: what the QR code on a printed permit carries. Pure: no I/O. The permits
service signs them; anyone holding the public key (the CLI, an officer's device) verifies them.

A token is `IOMKI1.<payload>.<signature>` (base64url, no padding): the payload is compact JSON naming the
permit number, company, plant regency, sector class and issue time — never personal data or contacts —
and the signature is Ed25519 over `IOMKI1.<payload>`. An officer's device holding the public key (published at
`/registry/keys`) verifies it without a network; online, it then asks `/registry/{permit_number}` for the
live status, because a token proves only that the permit was issued, not that it is still valid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PREFIX = "IOMKI1"


class InvalidRegistryToken(Exception):
    """The token is malformed, signed by another key, or altered."""


@dataclass(frozen=True)
class RegistryClaims:
    permit_number: str
    company_name: str
    regency_code: str
    sector_class: str
    issued_at: str
    kid: str


def sign(claims: RegistryClaims, private_key: Ed25519PrivateKey) -> str:
    """Deterministic: the same permit always yields the same token (Ed25519 signatures are deterministic)."""
    payload = _b64(json.dumps(asdict(claims), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
    signed = f"{PREFIX}.{payload}"
    return f"{signed}.{_b64(private_key.sign(signed.encode()))}"


def verify(token: str, public_key: Ed25519PublicKey) -> RegistryClaims:
    """The claims of a token signed by the holder of `public_key`, or InvalidRegistryToken saying why."""
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise InvalidRegistryToken(f"not an {PREFIX} registry token")
    signed = f"{parts[0]}.{parts[1]}"
    try:
        signature = _unb64(parts[2])
        public_key.verify(signature, signed.encode())
    except (InvalidSignature, ValueError, binascii.Error):
        raise InvalidRegistryToken("the signature does not match this public key") from None
    try:
        document = json.loads(_unb64(parts[1]))
        claims = RegistryClaims(**document)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidRegistryToken(f"signed but unreadable payload: {exc}") from None
    if claims.kid != key_id(public_key):
        raise InvalidRegistryToken("the token names another key id")
    return claims


def named_key_id(token: str) -> str | None:
    """The key id a token's payload names, read before its signature is checked, only to choose the key."""
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    try:
        kid = json.loads(_unb64(parts[1])).get("kid")
    except (ValueError, AttributeError, binascii.Error):
        return None
    return kid if isinstance(kid, str) else None


def claims_for(*, permit_number: str, company_name: str, regency_code: str, sector_class: str,
               issued_at: datetime, public_key: Ed25519PublicKey) -> RegistryClaims:
    return RegistryClaims(permit_number, company_name, regency_code, sector_class,
                          issued_at.isoformat(), key_id(public_key))


def key_id(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw(public_key)).hexdigest()[:16]


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """RFC 8037 OKP key, plus the PEM for tools that prefer it."""
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": key_id(public_key),
            "x": _b64(_raw(public_key)), "pem": pem.decode()}


def private_key_from_text(text: str) -> Ed25519PrivateKey:
    """A PEM (PKCS#8) Ed25519 private key, or the base64 of its raw 32-byte seed."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the registry signing key must be an Ed25519 key")
        return key
    seed = _any_b64(text)
    if len(seed) != 32:
        raise ValueError("a raw Ed25519 seed is 32 bytes (base64)")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """A PEM Ed25519 public key, or the base64/base64url of its raw 32 bytes (the JWK `x`)."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the registry public key must be an Ed25519 key")
        return key
    raw = _any_b64(text)
    if len(raw) != 32:
        raise ValueError("a raw Ed25519 public key is 32 bytes (base64)")
    return Ed25519PublicKey.from_public_bytes(raw)


def private_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _any_b64(text: str) -> bytes:
    try:
        return _unb64(text.replace("+", "-").replace("/", "_").rstrip("="))
    except (ValueError, binascii.Error):
        raise ValueError("not base64") from None
