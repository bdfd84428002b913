"""`iomki dlq …`: what the consumers dead-lettered, and replaying it.

A dead-lettered message is the original bytes and key, with what went wrong in `iomki-dlq-*` headers (see
shared/messaging/consumer.py). Replay re-publishes exactly those bytes and key to the original topic, with the original
headers but not the dlq ones; every group reading that topic sees it again, and the inbox of a group that had
already handled it skips it. Replaying goes to the broker directly: the DLQ is the operator's, no service owns it.
Only valid events go back, only to the contract topic that owns them, and each carries who replayed it.
"""

from __future__ import annotations

import asyncio
import getpass
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.progress import Progress

from shared.contract import DLQ, TOPICS, ContractViolation, decode_record
from shared.messaging.bus import partitions_of
from shared.settings import PlatformSettings
from tooling.cli.support import JsonOption, emit, err, fail, kafka_options, shown, table

app = typer.Typer(help="The dead-letter topic: list, replay.", no_args_is_help=True)

HEADER_PREFIX = "iomki-dlq-"
READ_TIMEOUT = 30.0  # seconds to read the DLQ to its end


@dataclass(frozen=True)
class DeadLetter:
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        found = next((v for k, v in self.headers if k == HEADER_PREFIX + name), None)
        return found.decode(errors="replace") if found is not None else None

    @property
    def id(self) -> str:
        # Messages dead-lettered before ids existed are still addressable, by their DLQ offset.
        return self.header("id") or f"offset-{self.offset}"

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if not k.startswith(HEADER_PREFIX)]

    def summary(self) -> dict[str, Any]:
        partition, offset = self.header("partition"), self.header("offset")
        return {
            "id": self.id, "dlq_offset": self.offset, "reason": self.header("reason"), "error": self.header("error"),
            "topic": self.header("topic"), "partition": int(partition) if partition else None,
            "offset": int(offset) if offset else None, "consumer_group": self.header("consumer-group"),
            "key": self.key.decode(errors="replace") if self.key else None,
            "value": self.value.decode(errors="replace"), "size": len(self.value),
        }


async def read_dead_letters(timeout: float = READ_TIMEOUT) -> list[DeadLetter]:
    """Everything on the DLQ, oldest first: read until the end offsets the broker reported as the read began.

    Raises TimeoutError when the broker has not handed that much over within `timeout` seconds."""
    consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                                **kafka_options())
    await consumer.start()
    try:
        partitions = await partitions_of(PlatformSettings(), [DLQ.name])
        if not partitions:  # no service has started on this broker yet
            return []
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[DeadLetter] = []
        async with asyncio.timeout(timeout):
            while unread := [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(*unread, timeout_ms=500)
                for records in batch.values():
                    found.extend(DeadLetter(r.offset, r.key, r.value or b"", tuple(r.headers)) for r in records)
        return found
    finally:
        await consumer.stop()


def _all_dead_letters(as_json: bool) -> list[DeadLetter]:
    try:
        return asyncio.run(read_dead_letters())
    except TimeoutError:
        fail(f"{DLQ.name} was not read to its end within {READ_TIMEOUT:g} s", as_json=as_json)


@app.command("list")
def list_dead_letters(as_json: JsonOption = False) -> None:
    """Dead-lettered messages: why, where from (topic/partition/offset), and which consumer group gave up."""
    letters = [letter.summary() for letter in _all_dead_letters(as_json)]

    def render(items: list[dict[str, Any]]) -> None:
        table(f"Dead letters on {DLQ.name} ({len(items)})",
              ["id", "reason", "error", "from", "group", "key"],
              [[i["id"], i["reason"], _clip(i["error"], 80), f"{i['topic']}[{i['partition']}]@{i['offset']}",
                i["consumer_group"], i["key"]] for i in items])

    emit(letters, as_json, render)


@app.command()
def replay(
    ids: Annotated[list[str] | None, typer.Option("--id", help="A dead letter's id, as `dlq list` shows "
                                                              "(repeatable)")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every dead letter that is a valid event")] = False,
    actor: Annotated[str | None, typer.Option(help="Who replays, recorded on each replayed message "
                                                   "(default: the operating-system user)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Re-publish dead letters to their original topics, original key and bytes (fix the cause first)."""
    if bool(ids) == replay_all:
        fail("name what to replay: --id ID (repeatable) or --all", as_json=as_json)
    letters = _all_dead_letters(as_json)
    if not replay_all:
        by_id = {letter.id: letter for letter in letters}
        unknown = [i for i in ids or [] if i not in by_id]
        if unknown:
            fail(f"no dead letter {shown(', '.join(unknown))} on {DLQ.name} (see `iomki dlq list`)", as_json=as_json)
        letters = [by_id[i] for i in dict.fromkeys(ids or [])]
    refused = {letter.id: why for letter in letters if (why := _why_not_replayable(letter))}
    if refused and not replay_all:
        fail("cannot replay " + "; ".join(f"{shown(i)}: {shown(why)}" for i, why in refused.items()), as_json=as_json)
    for letter_id, why in refused.items():
        err.print(f"skipped {shown(letter_id)}: {shown(why)}")
    by = (actor or getpass.getuser()).strip()[:200]
    if not by:
        fail("--actor must name who replays", as_json=as_json)
    letters = [letter for letter in letters if letter.id not in refused]
    replayed = asyncio.run(_republish(letters, by=by, show_progress=not as_json))
    emit(replayed, as_json, lambda items: err.print(f"replayed {len(items)} dead letter(s)"))


_REPLAYABLE_TOPICS = frozenset(topic.name for topic in TOPICS if topic is not DLQ)


def _why_not_replayable(letter: DeadLetter) -> str | None:
    """A letter goes back only as a valid event, to the contract topic its type belongs on (its owner's source)."""
    topic = letter.header("topic")
    if topic not in _REPLAYABLE_TOPICS:
        return f"its topic {topic!r} is not one of the contract's" if topic else "no original topic recorded"
    try:
        decode_record(topic, letter.key, letter.value)
    except ContractViolation as exc:
        return f"not a valid event for {topic} ({exc.reason}): {exc}"
    return None


async def _republish(letters: list[DeadLetter], *, by: str, show_progress: bool) -> list[dict[str, Any]]:
    producer = AIOKafkaProducer(acks="all", client_id="iomki-cli-dlq-replay", **kafka_options())
    await producer.start()
    replayed = []
    try:
        with Progress(console=err, disable=not show_progress, transient=True) as progress:
            task = progress.add_task("replaying", total=len(letters))
            for letter in letters:
                topic = letter.header("topic") or ""
                record = [("iomki-replayed-by", by.encode()), ("iomki-replayed-letter", letter.id.encode()),
                          ("iomki-replayed-at", datetime.now(UTC).isoformat().encode())]
                headers = [(k, v) for k, v in letter.original_headers if not k.startswith("iomki-replayed-")]
                sent = await producer.send_and_wait(topic, letter.value, key=letter.key or None,
                                                    headers=headers + record)
                replayed.append({"id": letter.id, "topic": topic, "partition": sent.partition,
                                 "offset": sent.offset, "by": by})
                progress.advance(task)
    finally:
        await producer.stop()
    return replayed


def _clip(text: str | None, width: int) -> str:
    text = text or ""
    return text if len(text) <= width else text[: width - 1] + "…"
