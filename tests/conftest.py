"""Session fixtures: one real database and one real broker for the integration tests of a session."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.support.platform import TestPlatform, patched_environ, start_platform, stop_platform


@pytest.fixture(scope="session")
async def platform() -> AsyncIterator[TestPlatform]:
    """The database and broker shared by the integration tests; the environment points services at them."""
    started = await start_platform("it")
    with patched_environ(started.env()):
        yield started
    # The embedded test server is left running only when another session may still use it (xdist, CI reuse).
    await stop_platform(started, stop_server=os.environ.get("IOMKI_KEEP_TEST_SERVER") != "1")
