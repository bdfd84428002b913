"""Secrets the platform generates once and keeps on disk (the development JWT secret, the registry signing key)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

# Owner read/write only. Passed to open(2) itself: a file written and then chmod-ed is readable by anyone
# between the two calls, and a process umask of 0 would even leave it so.
SECRET_FILE_MODE = 0o600


def keep_secret_once(path: Path, content: bytes) -> bytes:
    """Store `content` at `path` unless a secret is already there; return what `path` holds afterwards.

    The content is written to a private temporary file beside `path` and linked into place: a reader never sees
    a half-written secret, and when two processes start together on a fresh data directory, the first link wins
    and both go on with the same secret.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path.read_bytes()
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}.draft")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, SECRET_FILE_MODE)
    try:
        os.fchmod(descriptor, SECRET_FILE_MODE)  # O_CREAT's mode is narrowed by the umask, never widened: exact
        with os.fdopen(descriptor, "wb") as draft_file:
            draft_file.write(content)
            draft_file.flush()
            os.fsync(draft_file.fileno())
        try:
            os.link(draft, path)  # unlike os.replace, never overwrites a secret another process kept first
        except FileExistsError:
            pass
    finally:
        draft.unlink(missing_ok=True)
    return path.read_bytes()
