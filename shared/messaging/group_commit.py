"""Group commit: concurrent requests share one transaction, and its round trips and WAL flush.

A transaction costs the same few round trips and one flush of the WAL to disk whether it writes one request's
rows or fifty. Under load, requests arriving while a transaction commits wait for the next one and go in it
together; an idle service still commits each request at once, on its own.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

import structlog

from shared.storage.db import DATABASE_UNREACHABLE

Item = TypeVar("Item")
Result = TypeVar("Result")
log = structlog.get_logger(__name__)
_EVERY_ITEM_WOULD_FAIL = (*DATABASE_UNREACHABLE, TimeoutError)


class GroupCommit(Generic[Item, Result]):
    """Runs `apply` on the items submitted while earlier batches were busy, at most `max_batch` at a time, in
    `lanes` batches at once (each holds a database connection).

    `apply` answers each item in order: its result, or the exception that refused it (a domain rule). An
    exception raised by `apply` itself rolled the whole batch back: each item is then applied alone, so that
    one culprit fails its own request only, unless the database was unreachable or no connection came in time,
    which every item would meet again: then they all get that error at once, none waiting its turn to fail.
    Items with the same `key` (reports of one plant) are applied one after the other, in the order they arrived:
    never two in one batch, nor in two batches at once.

    One lane by default. A second lane starts a batch while the first commits, so under load batches are smaller
    and each item pays a larger share of the transaction's round trips and statements. Instances of a service
    (uvicorn workers) already commit side by side: one lane made larger batches for less CPU a report, and more
    reports a second, than two (`python -m bench.ingestion`, docs/performance.md).

    Under load a lane lingers: after a batch of at least `busy_batch` items it waits `linger` seconds before it
    takes the next one (unless a full batch is already waiting), so that the requests still on their way join it.
    A transaction's round trips and statements cost the same for two items or twenty. After a smaller batch, and
    on an idle service, the next items are applied at once.
    """

    def __init__(self, apply: Callable[[list[Item]], Awaitable[Sequence[Result | Exception]]], *,
                 key: Callable[[Item], Hashable], max_batch: int = 64, lanes: int = 1, linger: float = 0.0,
                 busy_batch: int = 4) -> None:
        self._apply = apply
        self._key = key
        self._max_batch = max_batch
        self._lanes = lanes
        self._linger = linger
        self._busy_batch = busy_batch
        self._pending: deque[tuple[Item, asyncio.Future[Result]]] = deque()
        self._workers: set[asyncio.Task[None]] = set()
        self._busy_keys: set[Hashable] = set()  # the keys of the batches being applied

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._workers) < self._lanes:
            # In a context of its own: a worker serves many requests, and must not log as the one that started it.
            self._workers.add(asyncio.create_task(self._drain(), context=contextvars.Context()))
        return await future

    async def _drain(self) -> None:
        try:
            while batch := self._next_batch():
                await self._apply_batch(batch)
                if self._linger and len(batch) >= self._busy_batch and len(self._pending) < self._max_batch:
                    await asyncio.sleep(self._linger)
        finally:
            # In the step that found nothing left to do: an item submitted after it starts a new worker.
            self._workers.discard(asyncio.current_task())

    async def _apply_batch(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        keys = {self._key(item) for item, _ in batch}
        self._busy_keys |= keys  # before any await: no other lane may take these keys meanwhile
        try:
            results = await self._apply_each_alone_on_failure([item for item, _ in batch])
        except asyncio.CancelledError:  # shutting down: no caller may wait for ever
            for _, future in batch:
                future.cancel()
            raise
        finally:
            self._busy_keys -= keys
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # its caller went away (a client disconnected)
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _next_batch(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        taken = set(self._busy_keys)
        later: list[tuple[Item, asyncio.Future[Result]]] = []
        while self._pending and len(batch) < self._max_batch:
            item, future = entry = self._pending.popleft()
            if future.done():  # cancelled before it was applied: nothing to do
                continue
            key = self._key(item)
            if key in taken:  # waits for the batch that holds its key; the lane of that batch comes back for it
                later.append(entry)
            else:
                taken.add(key)
                batch.append(entry)
        self._pending.extendleft(reversed(later))
        return batch

    async def _apply_each_alone_on_failure(self, items: list[Item]) -> Sequence[Result | Exception]:
        try:
            return await self._apply(items)
        except _EVERY_ITEM_WOULD_FAIL as exc:
            return [exc] * len(items)
        except Exception as exc:
            if len(items) == 1:
                return [exc]
            log.warning("group_commit_split", items=len(items), error=f"{type(exc).__name__}: {exc}")
        return [result for item in items for result in await self._apply_each_alone_on_failure([item])]
