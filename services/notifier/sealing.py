"""Webhook secrets at rest: sealed with Fernet (AES-CBC and HMAC-SHA256) under keys from configuration.

The first key seals, every key opens (`MultiFernet`), so the at-rest key itself is rotated by putting a new key
first and dropping the old one once nothing sealed under it is left. Only the notifier's own process ever
holds a secret in the clear: the database, its backups and its replicas hold sealed bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from services.notifier.domain import WebhookSecrets


class SecretUnreadable(Exception):
    """No configured key opens a sealed secret: a key was dropped while something it sealed was still kept."""


@dataclass(frozen=True)
class SealedSecrets:
    """`WebhookSecrets` as a row holds them."""

    current: bytes
    previous: bytes | None = None
    rotated_at: datetime | None = None


class SecretSeal:
    def __init__(self, keys: Sequence[bytes | str]) -> None:
        if not keys:
            raise ValueError("at least one Fernet key is needed")
        self._first = Fernet(keys[0])
        self._fernet = MultiFernet([self._first, *(Fernet(key) for key in keys[1:])])

    def seal(self, held: WebhookSecrets) -> SealedSecrets:
        previous = self._fernet.encrypt(held.previous.encode()) if held.previous is not None else None
        return SealedSecrets(self._fernet.encrypt(held.current.encode()), previous, held.rotated_at)

    def open(self, sealed: SealedSecrets) -> WebhookSecrets:
        """Raises SecretUnreadable when no configured key sealed it."""
        try:
            previous = self._fernet.decrypt(sealed.previous).decode() if sealed.previous is not None else None
            return WebhookSecrets(self._fernet.decrypt(sealed.current).decode(), previous, sealed.rotated_at)
        except InvalidToken:
            raise SecretUnreadable from None

    def resealed(self, sealed: SealedSecrets) -> SealedSecrets | None:
        """`sealed` under the first key, or None when it is already: after a new key is put first, what the old
        one sealed is sealed again, so the old key can then be dropped."""
        try:
            for token in (sealed.current, sealed.previous):
                if token is not None:
                    self._first.decrypt(token)
        except InvalidToken:
            return self.seal(self.open(sealed))
        return None
