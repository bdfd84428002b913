"""Plain SQL for the permits service; no SQL anywhere else in it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.permits.domain import (
    SANCTIONS, Action, Closure, OperatingStatus, Permit, PermitStatus, Transition, counting_month,
)
from shared.storage.db import Connection
from shared.storage.unit_of_work import UnitOfWork

_COLUMNS = ("permit_id, facility_id, nib, company_name, province_code, regency_code, sector_class,"
            " workforce_total, status, permit_number, freeze_count, revoked_at, issued_at, plant_key")


@dataclass(frozen=True)
class PermitSearch:
    """Filters of `GET /permits`, the caller's scope, and the keyset position (the last `seq` seen)."""

    status: str | None = None
    province: str | None = None
    regency: str | None = None
    nib: str | None = None
    sector: str | None = None
    region_scope: str | None = None
    nib_scope: str | None = None
    after: int = 0
    limit: int = 50


class PermitRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def get(self, permit_id: uuid.UUID, *, for_update: bool = False) -> Permit | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._connection.fetchrow(f"SELECT {_COLUMNS} FROM permits WHERE permit_id = $1{lock}", permit_id)
        return _permit(row) if row else None

    async def by_number(self, number: str) -> Permit | None:
        row = await self._connection.fetchrow(f"SELECT {_COLUMNS} FROM permits WHERE permit_number = $1", number)
        return _permit(row) if row else None

    async def application(self, permit_id: uuid.UUID) -> dict[str, Any]:
        return json.loads(await self._connection.fetchval(
            "SELECT application FROM permits WHERE permit_id = $1", permit_id))

    async def lock_plant(self, plant_key: str) -> None:
        """Serialises applications for one plant until the transaction ends, so the one-permit check holds."""
        await self._connection.execute("SELECT pg_advisory_xact_lock(hashtext('permits.plant'), hashtext($1))",
                                       plant_key)

    async def of_plant(self, plant_key: str) -> list[Permit]:
        """Every permit the plant ever had, newest first."""
        rows = await self._connection.fetch(
            f"SELECT {_COLUMNS} FROM permits WHERE plant_key = $1 ORDER BY seq DESC", plant_key)
        return [_permit(row) for row in rows]

    async def add(self, permit: Permit, application: dict[str, Any], transition: Transition) -> None:
        await self._connection.execute(
            f"INSERT INTO permits ({_COLUMNS}, application)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15::jsonb)",
            *_values(permit), json.dumps(application),
        )
        await self._record(permit, transition)

    async def save(self, permit: Permit, transition: Transition) -> None:
        """Every change of a permit comes with its history row, in the same transaction."""
        await self._connection.execute(
            "UPDATE permits SET status = $2, permit_number = $3, freeze_count = $4, revoked_at = $5, issued_at = $6"
            " WHERE permit_id = $1",
            permit.permit_id, permit.status.value, permit.permit_number, permit.freeze_count, permit.revoked_at,
            permit.issued_at,
        )
        await self._record(permit, transition)

    async def next_number(self, year: int) -> int:
        """Gap-free per year: the counter row is locked until the issuing transaction ends."""
        return await self._connection.fetchval(
            "INSERT INTO permit_number_counters (year, last_used) VALUES ($1, 1)"
            " ON CONFLICT (year) DO UPDATE SET last_used = permit_number_counters.last_used + 1"
            " RETURNING last_used",
            year,
        )

    async def numbers_of_year(self, year: int) -> list[str]:
        return [row["permit_number"] for row in await self._connection.fetch(
            "SELECT permit_number FROM permits WHERE starts_with(permit_number, $1) ORDER BY permit_number",
            f"IOMKI-{year}-")]

    async def search(self, q: PermitSearch) -> list[tuple[int, Permit]]:
        """One page, in application order, after the keyset position.

        Only the filters given become conditions, so the planner sees e.g. `status = $2 AND seq > $1 ORDER BY
        seq` and walks the (status, seq) index instead of a generic plan that fits every combination.
        """
        conditions = ["seq > $1"]
        values: list[object] = [q.after]  # the statement's parameters, of several types
        for column, value in (("status", q.status), ("province_code", q.province), ("regency_code", q.regency),
                              ("nib", q.nib), ("sector_class", q.sector), ("nib", q.nib_scope)):
            if value is not None:
                values.append(value)
                conditions.append(f"{column} = ${len(values)}")
        if q.region_scope is not None:  # a task force's province covers its regencies
            values.append(q.region_scope)
            column = "province_code" if "." not in q.region_scope else "regency_code"
            conditions.append(f"{column} = ${len(values)}")
        values.append(q.limit)
        rows = await self._connection.fetch(
            f"SELECT seq, {_COLUMNS} FROM permits WHERE {' AND '.join(conditions)} ORDER BY seq LIMIT ${len(values)}",
            *values,
        )
        return [(row["seq"], _permit(row)) for row in rows]

    async def count_by_province_and_status(self, *, province: str | None,
                                           regency: str | None) -> list[asyncpg.Record]:
        """The dashboard's and agencies' aggregate: permits per (province, status), one GROUP BY."""
        return await self._connection.fetch(
            "SELECT province_code, status, count(*) AS permits FROM permits"
            " WHERE ($1::text IS NULL OR province_code = $1) AND ($2::text IS NULL OR regency_code = $2)"
            " GROUP BY province_code, status ORDER BY province_code, status",
            province, regency,
        )

    async def sanction_counts(self, *, province: str | None, regency: str | None) -> list[asyncpg.Record]:
        """Freezes and revocations per (province, month, action, ground), from the counts kept as they happen."""
        return await self._connection.fetch(
            "SELECT province_code, month, action, ground, sum(sanctions)::int AS sanctions FROM sanction_counts"
            " WHERE ($1::text IS NULL OR province_code = $1) AND ($2::text IS NULL OR regency_code = $2)"
            " GROUP BY province_code, month, action, ground ORDER BY province_code, month, action, ground",
            province, regency,
        )

    async def history(self, permit_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self._connection.fetch(
            "SELECT from_status, to_status, action, actor, role, reason, at, causation_id, ground"
            " FROM permit_history WHERE permit_id = $1 ORDER BY seq",
            permit_id,
        )
        return [dict(row) | {"ground": json.loads(row["ground"]) if row["ground"] else None} for row in rows]

    async def _record(self, permit: Permit, t: Transition) -> None:
        await self._connection.execute(
            "INSERT INTO permit_history (permit_id, from_status, to_status, action, actor, role, reason, at,"
            " causation_id, ground) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10::jsonb)",
            permit.permit_id, t.from_status.value if t.from_status else None, t.to_status.value, t.action, t.actor,
            t.role, t.reason, t.at, t.causation_id, t.ground.model_dump_json() if t.ground else None,
        )
        if t.ground is not None and Action(t.action) in SANCTIONS:
            await self._connection.execute(
                "INSERT INTO sanction_counts (province_code, regency_code, month, action, ground, sanctions)"
                " VALUES ($1,$2,$3,$4,$5,1) ON CONFLICT (province_code, regency_code, month, action, ground)"
                " DO UPDATE SET sanctions = sanction_counts.sanctions + 1",
                permit.province_code, permit.regency_code, counting_month(t.at), t.action, t.ground.code.value,
            )


class ClosureRepository:
    """Closures ordered by incidents, per plant (facility)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def ordered(self, facility_id: uuid.UUID, closure: Closure, cause: uuid.UUID) -> None:
        """A later order for the same closure extends it (DESIGN: `ends_at` is the earliest reopening)."""
        await self._connection.execute(
            "INSERT INTO facility_closures (closure_id, facility_id, scope, reason, starts_at, ends_at, cause_event)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7)"
            " ON CONFLICT (closure_id) DO UPDATE SET ends_at = GREATEST(facility_closures.ends_at, EXCLUDED.ends_at),"
            " reason = EXCLUDED.reason, cause_event = EXCLUDED.cause_event",
            closure.closure_id, facility_id, closure.scope, closure.reason, closure.starts_at, closure.ends_at, cause,
        )

    async def reopened(self, closure_id: uuid.UUID, at: datetime) -> bool:
        status = await self._connection.execute(
            "UPDATE facility_closures SET reopened_at = $2 WHERE closure_id = $1 AND reopened_at IS NULL",
            closure_id, at)
        return status != "UPDATE 0"

    async def of_facility(self, facility_id: uuid.UUID, closure_id: uuid.UUID) -> bool:
        return await self._connection.fetchval(
            "SELECT EXISTS (SELECT 1 FROM facility_closures WHERE closure_id = $1 AND facility_id = $2)",
            closure_id, facility_id)

    async def operating_status(self, facility_id: uuid.UUID) -> OperatingStatus:
        rows = await self._connection.fetch(
            "SELECT closure_id, scope, reason, starts_at, ends_at, reopened_at FROM facility_closures"
            " WHERE facility_id = $1 AND reopened_at IS NULL ORDER BY starts_at",
            facility_id,
        )
        return OperatingStatus(tuple(Closure(r["closure_id"], r["scope"], r["reason"], r["starts_at"], r["ends_at"],
                                             r["reopened_at"]) for r in rows))


class PermitsWork(UnitOfWork):
    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.permits = PermitRepository(connection)
        self.closures = ClosureRepository(connection)


def _values(p: Permit) -> tuple[Any, ...]:
    return (p.permit_id, p.facility_id, p.nib, p.company_name, p.province_code, p.regency_code, p.sector_class,
            p.workforce_total, p.status.value, p.permit_number, p.freeze_count, p.revoked_at, p.issued_at,
            p.plant_key)


def _permit(row: asyncpg.Record) -> Permit:
    return Permit(row["permit_id"], row["facility_id"], row["nib"], row["company_name"], row["province_code"],
                  row["regency_code"], row["sector_class"], row["workforce_total"], PermitStatus(row["status"]),
                  row["permit_number"], row["freeze_count"], row["revoked_at"], row["issued_at"], row["plant_key"])
