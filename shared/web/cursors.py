"""Keyset cursors: a list's last position handed to the client as one opaque URL-safe token, and read back whole.

A token that does not read back into the position's parts was not given by the list, and is refused with a 422
naming the query field, never taken as the list's start.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import Query

from shared.web.http import Problem

Position = TypeVar("Position")

CURSOR_MAX_LENGTH = 200
After = Annotated[str | None, Query(max_length=CURSOR_MAX_LENGTH, description="The `next` of the previous page")]


def cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode("|".join(str(part) for part in parts).encode()).decode().rstrip("=")


def position(token: str | None, read: Callable[[list[str]], Position], *, field: str = "after") -> Position | None:
    """The position `token` stands for, read by `read` from its parts (raising ValueError when they do not fit)."""
    if token is None:
        return None
    try:
        return read(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split("|"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Problem(422, "Invalid request", f"{field}: not a cursor this list gave",
                      errors=[{"field": field, "message": "not a cursor this list gave"}]) from None


def moment_and_id(parts: list[str]) -> tuple[datetime, uuid.UUID]:
    """A position of a list ordered by a time and then an id: both whole, the time with its zone."""
    moment, identifier = parts
    at = datetime.fromisoformat(moment)
    if at.tzinfo is None:
        raise ValueError(moment)
    return at, uuid.UUID(identifier)
