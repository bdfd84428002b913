"""Secrets the platform keeps on disk are private from the moment they exist, whatever the process umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.permits.app import registry_signing_key
from shared import registry_tokens
from shared.settings import PlatformSettings
from shared.storage import secret_files
from shared.storage.secret_files import keep_secret_once
from tooling.launcher import development_secret


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 0: a file created with the default 0666 would come out world-readable."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_secret_is_created_0600_never_wider_even_under_umask_0(tmp_path, permissive_umask, monkeypatch):
    created: list[tuple[int, int]] = []
    real_open = os.open

    def watched_open(path, flags, mode=0o777, *args, **kwargs):  # type: ignore[no-untyped-def]
        created.append((flags, mode))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(secret_files.os, "open", watched_open)
    assert keep_secret_once(tmp_path / "data" / "jwt-secret", b"s3cret") == b"s3cret"

    assert mode(tmp_path / "data" / "jwt-secret") == 0o600
    # The only file opened is the draft, created exclusively with the private mode by open(2) itself.
    assert len(created) == 1
    flags, requested = created[0]
    assert flags & os.O_CREAT and flags & os.O_EXCL and requested == 0o600
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["jwt-secret"]  # no draft left behind


def test_a_kept_secret_is_never_overwritten(tmp_path):
    path = tmp_path / "jwt-secret"
    assert keep_secret_once(path, b"first") == b"first"
    assert keep_secret_once(path, b"second") == b"first"  # a second process starting later reads the first


def test_a_race_lost_to_another_process_returns_the_winners_secret(tmp_path, monkeypatch):
    path = tmp_path / "jwt-secret"
    real_link = os.link

    def another_process_links_first(source, target):  # type: ignore[no-untyped-def]
        Path(target).write_bytes(b"winner")
        return real_link(source, target)

    monkeypatch.setattr(secret_files.os, "link", another_process_links_first)
    assert keep_secret_once(path, b"loser") == b"winner"
    assert list(tmp_path.iterdir()) == [path]


def test_the_development_jwt_secret_and_registry_key_are_private(tmp_path, permissive_umask, monkeypatch):
    monkeypatch.delenv("IOMKI_JWT_SECRET", raising=False)
    settings = PlatformSettings(data_dir=tmp_path)
    secret = development_secret(settings)
    assert secret and development_secret(settings) == secret
    assert mode(tmp_path / "jwt-secret") == 0o600

    key = registry_signing_key(None, tmp_path)
    assert mode(tmp_path / "registry-signing-key.pem") == 0o600
    again = registry_signing_key(None, tmp_path)
    assert registry_tokens.key_id(again.public_key()) == registry_tokens.key_id(key.public_key())
