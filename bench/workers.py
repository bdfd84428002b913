"""The consuming side of each benchmark, in a process of its own, as a consuming service would be.

`python -m bench.workers raw TOPIC COUNT`: a plain aiokafka group consumer; prints the wall-clock time at which
it had consumed (and committed) COUNT messages. `python -m bench.workers sink NAME per-event|in-batches`: the platform's
consumer with a real handler (recording each event in a table), written one event at a time or as an `InBatches`
handler (one statement per run), running until terminated.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from bench.platform import run_as_deployed
from shared.contract import Decoded, Envelope, PermitApplied
from shared.messaging.bus import connection_options
from shared.messaging.consumer import OFFSET_COMMIT_INTERVAL, InBatches
from shared.runtime import ServiceRuntime
from shared.settings import PlatformSettings
from shared.storage.unit_of_work import UnitOfWork

MIGRATIONS = Path(__file__).parent / "migrations"


async def raw(topic: str, count: int) -> None:
    settings = PlatformSettings()
    # Read as the platform's consumers read (shared/messaging/consumer.py): the same fetch wait and batch size, offsets
    # committed as often, so that the reference differs from the pipeline only by what the platform adds.
    consumer = AIOKafkaConsumer(topic, **connection_options(settings), group_id=topic, auto_offset_reset="earliest",
                                enable_auto_commit=False, max_poll_records=500,
                                fetch_max_wait_ms=max(1, round(settings.consumer_fetch_wait.total_seconds() * 1000)))
    await consumer.start()
    print("ready", flush=True)
    received = 0
    committed = 0.0
    while received < count:
        batch = await consumer.getmany(timeout_ms=500, max_records=500)
        received += sum(len(records) for records in batch.values())
        if batch and (received >= count or time.monotonic() - committed >= OFFSET_COMMIT_INTERVAL):
            committed = time.monotonic()
            await consumer.commit()
    print(f"done {time.time()}", flush=True)
    await consumer.stop()


async def record(work: UnitOfWork, envelope: Envelope, event: PermitApplied) -> None:
    await work.connection.execute(
        "INSERT INTO received (event_id, facility_id, emitted_at) VALUES ($1, $2, $3)",
        envelope.id, event.facility_id, envelope.time,
    )


async def record_all(work: UnitOfWork, run: list[Decoded]) -> None:
    await work.connection.execute(
        "INSERT INTO received (event_id, facility_id, emitted_at)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[])",
        [d.envelope.id for d in run], [d.event.facility_id for d in run], [d.envelope.time for d in run],
    )


HANDLERS = {"per-event": record, "in-batches": InBatches(record_all)}


def sink_runtime(settings: PlatformSettings, name: str, handler: str) -> ServiceRuntime:
    """Instances started with the same name share one schema and one consumer group."""
    runtime = ServiceRuntime(name=name, settings=settings, migrations=MIGRATIONS, unit_of_work=UnitOfWork)
    runtime.consume(PermitApplied.topic, {PermitApplied: HANDLERS[handler]})
    return runtime


async def sink(name: str, handler: str) -> None:
    runtime = sink_runtime(PlatformSettings(), name, handler)
    await runtime.start()
    await runtime.broker_connected.wait()
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runtime.stop()


if __name__ == "__main__":
    if sys.argv[1] == "raw":
        run_as_deployed(raw(sys.argv[2], int(sys.argv[3])))
    else:
        run_as_deployed(sink(sys.argv[2], sys.argv[3]))
