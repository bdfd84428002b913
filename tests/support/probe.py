"""A probe service for the spine's tests: it writes PermitApplied events to its outbox and consumes them back
(as a consumer group of its own), recording each handled event and which instance handled it;
`workforce_total` carries a per-plant sequence number to check ordering."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from shared.contract import Envelope, PermitApplied, SectorClass
from shared.runtime import ServiceRuntime
from shared.settings import PlatformSettings
from shared.storage.unit_of_work import UnitOfWork

EXPLODES = "explodes"


def applied_event(facility_id: uuid.UUID, sequence: int, name: str = "Pabrik") -> Envelope:
    return Envelope.wrap(PermitApplied(
        facility_id=facility_id, province_code="32", regency_code="32.16", permit_id=uuid.uuid4(),
        nib="8120000123456", company_name="PT Probe", facility_name=name, kbli=["24101"],
        sector_class=SectorClass.CRITICAL, workforce_total=sequence,
    ), service="permits")  # the probe consumes permits' topic: it accepts only what permits says


def recorder(instance: str):
    async def record(work: UnitOfWork, envelope: Envelope, event: PermitApplied) -> None:
        if event.facility_name == EXPLODES:
            raise RuntimeError("this plant's events always fail")
        await work.connection.execute(
            "INSERT INTO applied (event_id, facility_id, sequence, instance) VALUES ($1, $2, $3, $4)",
            envelope.id, event.facility_id, event.workforce_total, instance,
        )
    return record


# The probe service's own schema: the table its handler records into.
PROBE_MIGRATIONS = Path(__file__).parent / "probe_migrations"


class Probe:
    """One instance of the probe service; instances created with the same name share its schema and group."""

    def __init__(self, settings: PlatformSettings, name: str = "probe", instance: str = "a") -> None:
        self.runtime = ServiceRuntime(name=name, settings=settings,
                                      migrations=PROBE_MIGRATIONS,
                                      unit_of_work=UnitOfWork)
        self.runtime.consume(PermitApplied.topic, {PermitApplied: recorder(instance)})
        self.running = False

    async def start(self) -> None:
        await self.runtime.start()
        self.running = True
        await asyncio.wait_for(self.runtime.broker_connected.wait(), 30)

    async def stop(self) -> None:
        if self.running:
            self.running = False
            await self.runtime.stop()

    async def emit(self, *envelopes: Envelope) -> None:
        async with self.runtime.database.transaction() as work:
            await work.outbox.add(*envelopes)

    async def applied(self, facility_ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, uuid.UUID, int]]:
        return [(r["event_id"], r["facility_id"], r["sequence"]) for r in await self.applied_rows(facility_ids)]

    async def applied_rows(self, facility_ids: list[uuid.UUID]) -> list:
        return await self.runtime.database.pool.fetch(
            "SELECT event_id, facility_id, sequence, instance FROM applied WHERE facility_id = ANY($1::uuid[])"
            " ORDER BY position",
            facility_ids,
        )

    async def wait_applied(self, facility_ids: list[uuid.UUID], count: int, timeout: float = 60) -> list:
        async with asyncio.timeout(timeout):
            while len(await self.applied(facility_ids)) < count:
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # anything applied twice would show up now
        return await self.applied(facility_ids)
