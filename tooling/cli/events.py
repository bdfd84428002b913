"""`iomki events tail`: the CloudEvents on the platform's topics, decoded, as they arrive.

Reads without a consumer group, so tailing never moves any service's offsets and needs no clean-up. With
`--json`, one event per line (JSON Lines), so a script can stream it.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from shared.contract import TOPICS, ContractViolation, decode
from shared.messaging.bus import partitions_of
from shared.settings import PlatformSettings
from tooling.cli.support import JsonOption, fail, kafka_options, out, shown

app = typer.Typer(help="Events on the platform's topics.", no_args_is_help=True)

PUBLIC_TOPICS = [t.name for t in TOPICS if t.public]
KNOWN_TOPICS = [t.name for t in TOPICS]


@app.callback()
def events() -> None:
    """Keeps `tail` a named subcommand, so more can be added without breaking scripts."""


@app.command()
def tail(
    topic: Annotated[list[str] | None, typer.Option(
        "--topic", "-t",
        help=f"Topic to read (repeatable); default the public ones: {', '.join(PUBLIC_TOPICS)}")] = None,
    event_type: Annotated[list[str] | None, typer.Option(
        "--type", help="Only this event type (repeatable): PermitIssued or iomki.PermitIssued.v1")] = None,
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest retained event, not the newest")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after this many events")] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop after this many seconds")] = None,
    as_json: JsonOption = False,
) -> None:
    """Follow events, decoded and pretty-printed (Ctrl-C stops)."""
    topics = topic or PUBLIC_TOPICS
    unknown = [name for name in topics if name not in KNOWN_TOPICS]
    if unknown:
        fail(f"unknown topic {shown(', '.join(unknown))}; the platform's topics: {', '.join(KNOWN_TOPICS)}",
             as_json=as_json)
    wanted = {_short(t) for t in event_type or []}
    try:
        asyncio.run(_tail(topics, wanted, from_beginning, limit, timeout, as_json))
    except KeyboardInterrupt:
        pass


async def _tail(topics: list[str], wanted: set[str], from_beginning: bool, limit: int | None,
                timeout: float | None, as_json: bool) -> None:
    consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                                **kafka_options())
    await consumer.start()
    try:
        partitions = await partitions_of(PlatformSettings(), topics)
        consumer.assign(partitions)
        if not from_beginning:
            await consumer.seek_to_end(*partitions)
        await _follow(consumer, wanted, limit, timeout, as_json)
    finally:
        await consumer.stop()


async def _follow(consumer: AIOKafkaConsumer, wanted: set[str], limit: int | None, timeout: float | None,
                  as_json: bool) -> None:
    shown = 0
    deadline = time.monotonic() + timeout if timeout else None
    while limit is None or shown < limit:
        if deadline is not None and time.monotonic() >= deadline:
            return
        batch = await consumer.getmany(timeout_ms=500, max_records=100)
        for record in sorted((r for rs in batch.values() for r in rs), key=lambda r: r.timestamp):
            item = _describe(record)
            if wanted and _short(item.get("type", "")) not in wanted:
                continue
            _show(item, as_json)
            shown += 1
            if limit is not None and shown >= limit:
                return


def _describe(record: ConsumerRecord) -> dict[str, Any]:
    where = {"topic": record.topic, "partition": record.partition, "offset": record.offset,
             "key": record.key.decode(errors="replace") if record.key else None}
    try:
        decoded = decode(record.value)
    except ContractViolation as exc:
        return where | {"error": str(exc)}
    envelope = decoded.envelope
    return where | {"id": str(envelope.id), "type": envelope.type, "source": envelope.source,
                    "time": envelope.time.isoformat(), "subject": envelope.subject,
                    "correlationid": envelope.correlationid, "causationid": envelope.causationid,
                    "data": decoded.event.model_dump(mode="json")}


def _show(item: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(item, ensure_ascii=False))
        return
    where = f"[dim]{shown(item['topic'])}\\[{shown(item['partition'])}]@{shown(item['offset'])}[/dim]"
    if "error" in item:
        out.print(f"{where} [bold red]not an event[/bold red]: {shown(item['error'])}")
        return
    out.print(f"{where} [cyan]{shown(item['time'])}[/cyan] [bold]{shown(item['type'])}[/bold] "
              f"subject={shown(item['subject'])} source={shown(item['source'])}")
    for name, value in item["data"].items():
        if name != "facility_id":
            out.print(f"    [dim]{shown(name)}[/dim] {shown(json.dumps(value, ensure_ascii=False))}")


def _short(event_type: str) -> str:
    """`iomki.PermitIssued.v1` and `PermitIssued` name the same type."""
    parts = event_type.split(".")
    return parts[1] if len(parts) == 3 and parts[0] == "iomki" else event_type
