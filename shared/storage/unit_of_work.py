"""One database transaction per command or event: state changes and outgoing events commit together."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

import asyncpg
import pydantic_core

from shared.contract import CONTENT_TYPE, DLQ, EVENT_TYPES, MAX_EVENT_BYTES, Envelope, EventTooLarge
from shared.storage.db import ACQUIRE_TIMEOUT, Connection


# The relay's producer sends no record over aiokafka's max_request_size (1 MiB). A dead letter keeps the original
# bytes whenever they fit beside its headers (2 KiB of error at most); only a message near the broker's limit,
# which can never be an event (see MAX_EVENT_BYTES), is cut to its first bytes.
DEAD_LETTER_MAX_BYTES = 1_000_000


def _json_text(headers: Mapping[str, str]) -> str:
    """Headers as the outbox's jsonb column takes them: pydantic's serialiser, a fifth of `json.dumps`'s cost on
    every event written."""
    return pydantic_core.to_json(headers).decode()


class Outbox:
    """Adds outgoing events to the outbox table within the caller's transaction; the relay publishes them.

    Per-key order: events about one plant come from transactions that lock that plant's row first, so a
    later event always takes a later outbox position than an earlier one (see `Relay`).
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def add(self, *envelopes: Envelope) -> None:
        await self._insert([self.row(envelope) for envelope in envelopes])

    @staticmethod
    def row(envelope: Envelope) -> tuple[uuid.UUID, str, str, bytes, bytes, str]:
        """An event as the outbox stores it: (event_id, event_type, topic, key, value, headers). An event over the
        contract's limit is refused here, in the transaction that would have written it."""
        value = envelope.to_bytes()
        if len(value) > MAX_EVENT_BYTES:
            raise EventTooLarge(envelope.type, len(value))
        headers = {"content-type": CONTENT_TYPE, "correlation_id": envelope.correlationid}
        return (envelope.id, envelope.type, EVENT_TYPES[envelope.type].topic.name, envelope.key, value,
                _json_text(headers))

    async def dead_letter(self, *, key: bytes | None, value: bytes, headers: Mapping[str, str]) -> None:
        """The original bytes go to the dead-letter topic untouched, what went wrong in headers; a record too large
        for a letter is cut to its first bytes, and the letter says how long it was."""
        key, letter = key or b"", dict(headers)
        if len(key) + len(value) > DEAD_LETTER_MAX_BYTES:
            letter["iomki-dlq-truncated"] = f"key={len(key)} value={len(value)}"  # the original sizes
            key = key[:1024]
            value = value[:DEAD_LETTER_MAX_BYTES - len(key)]
        await self._insert([(uuid.uuid4(), "dead-letter", DLQ.name, key, value, _json_text(letter))])

    async def _insert(self, rows: list[tuple]) -> None:
        """One statement for the lot: one round trip, and one wake-up of the relay."""
        if not rows:
            return
        await self._insert_queued(
            "INSERT INTO outbox (event_id, event_type, topic, key, value, headers)"
            " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::jsonb[])",
            *zip(*rows, strict=True),
        )

    async def _insert_queued(self, insert: str, *arguments: Any, timeout: float | None = None) -> None:
        """Run an INSERT into the outbox that also queues the positions it took for the relay (`outbox_pending`),
        in the same statement: every writer of the outbox goes through here. (A trigger would have to capture
        the inserted rows whole, events and all: a tenth of the deadline sweep's time.) `timeout`: for a writer of
        events by the hundred thousand, a longer bound than the pool's."""
        await self._connection.execute(
            f"WITH added AS ({insert} RETURNING position) INSERT INTO outbox_pending SELECT position FROM added",
            *arguments, timeout=timeout,
        )


class Inbox:
    """Records consumed event ids in the consumer's transaction, so a redelivered event changes nothing."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def claim(self, events: list[tuple[uuid.UUID, str]]) -> set[uuid.UUID]:
        """Record these (id, type) pairs; return the ids seen for the first time."""
        if not events:
            return set()
        rows = await self._connection.fetch(
            "INSERT INTO inbox (event_id, event_type)"
            " SELECT * FROM unnest($1::uuid[], $2::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
            [event_id for event_id, _ in events],
            [event_type for _, event_type in events],
        )
        return {row["event_id"] for row in rows}

    async def release(self, event_id: uuid.UUID) -> None:
        """Forget an event that was not applied (dead-lettered), so that replaying it applies it."""
        await self._connection.execute("DELETE FROM inbox WHERE event_id = $1", event_id)


class UnitOfWork:
    """What a handler gets: one open transaction, its outbox and inbox. Services add their repositories."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.outbox = Outbox(connection)
        self.inbox = Inbox(connection)


Work = TypeVar("Work", bound=UnitOfWork)


class Database(Generic[Work]):
    """A service's pool plus the factory of its unit of work."""

    def __init__(self, pool: asyncpg.Pool, unit_of_work: Callable[[Connection], Work]) -> None:
        self.pool = pool
        self.unit_of_work = unit_of_work

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Work]:
        async with self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as connection, connection.transaction():
            yield self.unit_of_work(connection)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Work]:
        """A read-only snapshot for queries."""
        async with self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as connection, connection.transaction(readonly=True):
            yield self.unit_of_work(connection)
