"""Waiting a while for an event: the loops of the relay and of periodic work stop when their task is cancelled,
even when the cancellation and the event they wait for arrive together."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

from shared.clock import wait_until_set

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_CODE = ("shared", "services", "bench")


async def test_tells_whether_the_event_was_set_or_the_time_ran_out():
    event = asyncio.Event()
    assert await wait_until_set(event, 0.01) is False
    event.set()
    assert await wait_until_set(event, 10) is True


@pytest.mark.parametrize("ticks_between_wake_and_cancel", range(5))
async def test_a_loop_woken_as_its_task_is_cancelled_stops(ticks_between_wake_and_cancel):
    wake = asyncio.Event()
    rounds = 0

    async def woken_loop() -> None:  # the shape of the relay's loop: wait to be woken or for the poll interval
        nonlocal rounds
        while True:
            await wait_until_set(wake, 10)
            wake.clear()
            rounds += 1

    task = asyncio.create_task(woken_loop())
    await asyncio.sleep(0.01)
    wake.set()  # a notification arrives as the service stops
    for _ in range(ticks_between_wake_and_cancel):
        await asyncio.sleep(0)
    task.cancel()
    finished, _ = await asyncio.wait([task], timeout=5)
    if not finished:  # asyncio.wait_for on Python 3.11 lost the cancellation: the loop went on
        task.cancel()
    assert finished == {task} and task.cancelled(), f"the loop survived its cancellation ({rounds} rounds)"


def test_product_code_never_waits_with_asyncio_wait_for():
    """`asyncio.wait_for` on Python 3.11 drops a cancellation that meets its result; `asyncio.timeout` does not."""
    offenders = []
    for folder in PRODUCT_CODE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Attribute) and node.attr == "wait_for" and \
                        isinstance(node.value, ast.Name) and node.value.id == "asyncio":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"asyncio.wait_for in {offenders}: use asyncio.timeout or shared.clock.wait_until_set"
