"""Work that must outlive an outage is retried through stamina: every error, logged; never a cancellation."""

from __future__ import annotations

import asyncio

import pytest
import stamina
from structlog.testing import capture_logs

from shared.observability import retried

pytestmark = pytest.mark.unit


async def test_errors_are_logged_and_retried_until_the_work_is_cancelled():
    attempts = 0

    async def work() -> None:
        nonlocal attempts
        async for attempt in stamina.retry_context(on=retried("work_retry", part="relay"), attempts=None,
                                                   timeout=None, wait_initial=0.001, wait_max=0.002, wait_jitter=0):
            with attempt:
                attempts += 1
                if attempts < 3:
                    raise OSError("database unreachable")
                await asyncio.sleep(60)  # working, until stopped

    with capture_logs() as lines:
        running = asyncio.create_task(work())
        while attempts < 3:
            await asyncio.sleep(0.01)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(running, 5)
    assert attempts == 3
    assert [(line["event"], line["part"], line["error"]) for line in lines if line["event"] == "work_retry"] == [
        ("work_retry", "relay", "OSError: database unreachable")] * 2
