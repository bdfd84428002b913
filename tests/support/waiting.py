"""Waiting in tests for what happens asynchronously: a consumer applying an event, a relay publishing, a sweep
firing a timer, a service catching up after an outage.

The bounds are generous: they only decide how long a failing test takes to fail, and the machine may be shared.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

INTERVAL = 0.2


async def eventually(probe: Callable[[], Awaitable[T]], *, timeout: float = 90.0) -> T:
    """`probe()` again until it returns something truthy, and that."""
    async with asyncio.timeout(timeout):
        while not (result := await probe()):
            await asyncio.sleep(INTERVAL)
    return result


async def until(read: Callable[[], Awaitable[T]], holds: Callable[[T], Any], failure: str | None = None, *,
                timeout: float = 90.0) -> T:
    """`read()` again until `holds(value)`, and that value; on timeout an AssertionError saying `failure` and
    what was read last."""
    value: Any = None
    try:
        async with asyncio.timeout(timeout):
            while not holds(value := await read()):
                await asyncio.sleep(INTERVAL)
    except TimeoutError:
        raise AssertionError(f"{failure or 'never held'} within {timeout:.0f}s; last read: {value!r}") from None
    return value


async def poll(http: httpx.AsyncClient, url: str, headers: dict[str, str], holds: Callable[[Any], Any],
               timeout: float = 60) -> dict:
    """GET `url` again until it answers 200 with a body that `holds`, and that body."""
    answer = await until(lambda: http.get(url, headers=headers),
                         lambda answer: answer.status_code == 200 and holds(answer.json()),
                         f"GET {url}", timeout=timeout)
    return answer.json()
