"""Time as an argument: production reads the system clock, tests walk a plant through weeks in milliseconds.
And waiting a while for something to happen, without losing a cancellation meanwhile."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a clock tells aware UTC time")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment


async def wait_until_set(event: asyncio.Event, seconds: float) -> bool:
    """Wait for `event` at most `seconds`: True if it was set, False if the time ran out.

    Not `asyncio.wait_for`: on Python 3.11 it drops a cancellation that arrives as the event is set, and the
    loop around it then outlives its task (the relay, woken by a notification as its service stopped, kept
    publishing and the service never stopped)."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
        return True
    except TimeoutError:
        return False


@dataclass(frozen=True)
class Backoff:
    """When work whose attempt failed is due again, for work kept in tables (timers): twice as late after each
    failure, from `first`, never later than `longest`. Each service names its own, with its own bounds."""

    first: timedelta
    longest: timedelta

    def next_attempt(self, attempts: int, now: datetime) -> datetime:
        """`attempts`: failures so far, this one included (1 after the first)."""
        delay = self.first * 2 ** min(max(attempts - 1, 0), 30)  # the exponent is capped: no overflow
        return now + min(delay, self.longest)

