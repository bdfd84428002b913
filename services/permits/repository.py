"""Plain SQL for the permits service; no SQL anywhere else in it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from services.permits.domain import Permit, PermitStatus, Transition
from shared.unit_of_work import UnitOfWork

_COLUMNS = ("permit_id, facility_id, nib, company_name, province_code, regency_code, sector_class,"
            " workforce_total, status, permit_number, freeze_count, revoked_at")


class PermitRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def get(self, permit_id: uuid.UUID, *, for_update: bool = False) -> Permit | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._connection.fetchrow(f"SELECT {_COLUMNS} FROM permits WHERE permit_id = $1{lock}", permit_id)
        return _permit(row) if row else None

    async def add(self, permit: Permit, application: dict[str, Any], transition: Transition) -> None:
        await self._connection.execute(
            f"INSERT INTO permits ({_COLUMNS}, application) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13::jsonb)",
            *_values(permit), json.dumps(application),
        )
        await self._record(permit.permit_id, transition)

    async def save(self, permit: Permit, transition: Transition) -> None:
        """Every change of a permit comes with its history row, in the same transaction."""
        await self._connection.execute(
            "UPDATE permits SET status = $2, permit_number = $3, freeze_count = $4, revoked_at = $5"
            " WHERE permit_id = $1",
            permit.permit_id, permit.status.value, permit.permit_number, permit.freeze_count, permit.revoked_at,
        )
        await self._record(permit.permit_id, transition)

    async def next_number(self, year: int) -> int:
        """Gap-free per year: the counter row is locked until the issuing transaction ends."""
        return await self._connection.fetchval(
            "INSERT INTO permit_number_counters (year, last_used) VALUES ($1, 1)"
            " ON CONFLICT (year) DO UPDATE SET last_used = permit_number_counters.last_used + 1"
            " RETURNING last_used",
            year,
        )

    async def history(self, permit_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self._connection.fetch(
            "SELECT from_status, to_status, action, actor, role, reason, at, causation_id"
            " FROM permit_history WHERE permit_id = $1 ORDER BY seq",
            permit_id,
        )
        return [dict(row) for row in rows]

    async def _record(self, permit_id: uuid.UUID, t: Transition) -> None:
        await self._connection.execute(
            "INSERT INTO permit_history (permit_id, from_status, to_status, action, actor, role, reason, at,"
            " causation_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
            permit_id, t.from_status.value if t.from_status else None, t.to_status.value, t.action, t.actor,
            t.role, t.reason, t.at, t.causation_id,
        )


class PermitsWork(UnitOfWork):
    def __init__(self, connection: asyncpg.Connection) -> None:
        super().__init__(connection)
        self.permits = PermitRepository(connection)


def _values(p: Permit) -> tuple[Any, ...]:
    return (p.permit_id, p.facility_id, p.nib, p.company_name, p.province_code, p.regency_code, p.sector_class,
            p.workforce_total, p.status.value, p.permit_number, p.freeze_count, p.revoked_at)


def _permit(row: asyncpg.Record) -> Permit:
    return Permit(row["permit_id"], row["facility_id"], row["nib"], row["company_name"], row["province_code"],
                  row["regency_code"], row["sector_class"], row["workforce_total"], PermitStatus(row["status"]),
                  row["permit_number"], row["freeze_count"], row["revoked_at"])
