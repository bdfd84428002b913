"""Plain SQL for the reports service; no SQL anywhere else in it."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from services.reports.domain import NextAction, Period, PeriodStatus, Sanction, Schedule, SettledPeriod
from shared.unit_of_work import UnitOfWork

_SCHEDULE = ("permit_id, facility_id, nib, province_code, regency_code, zone, issued_at, frozen, freeze_count,"
             " closed, ended_at, ladder_reset_seq, revoke_recommended")
_PERIOD = "period_id, permit_id, seq, regime, starts_at, deadline, status, next_action, next_action_at, warning_id"


class ScheduleRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def get(self, permit_id: uuid.UUID, *, for_update: bool = False) -> Schedule | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._connection.fetchrow(f"SELECT {_SCHEDULE} FROM schedules WHERE permit_id = $1{lock}",
                                              permit_id)
        return _schedule(row) if row else None

    async def add(self, schedule: Schedule) -> bool:
        """False when the schedule already exists (the same permit issued twice changes nothing)."""
        status = await self._connection.execute(
            f"INSERT INTO schedules ({_SCHEDULE}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)"
            " ON CONFLICT (permit_id) DO NOTHING",
            *_schedule_values(schedule),
        )
        return status.endswith(" 1")

    async def save(self, s: Schedule) -> None:
        await self._connection.execute(
            "UPDATE schedules SET frozen = $2, freeze_count = $3, closed = $4, ended_at = $5, ladder_reset_seq = $6,"
            " revoke_recommended = $7 WHERE permit_id = $1",
            s.permit_id, s.frozen, s.freeze_count, s.closed, s.ended_at, s.ladder_reset_seq, s.revoke_recommended,
        )

    async def for_facility(self, facility_id: uuid.UUID) -> list[Schedule]:
        rows = await self._connection.fetch(
            f"SELECT {_SCHEDULE} FROM schedules WHERE facility_id = $1 ORDER BY permit_id FOR UPDATE", facility_id
        )
        return [_schedule(row) for row in rows]


class PeriodRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def add(self, period: Period, schedule: Schedule) -> None:
        await self.add_many([(period, schedule)])

    async def add_many(self, opened: list[tuple[Period, Schedule]]) -> None:
        """Insert periods in one statement (the sweep opens a whole batch's next periods at once)."""
        if not opened:
            return
        # One array per column: a single round trip whatever the batch size.
        columns = list(zip(*(_period_values(p) + (s.province_code, s.regency_code) for p, s in opened)))
        await self._connection.execute(
            f"INSERT INTO periods ({_PERIOD}, province_code, regency_code)"
            " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::timestamptz[],"
            " $6::timestamptz[], $7::text[], $8::text[], $9::timestamptz[], $10::uuid[], $11::text[], $12::text[])",
            *columns,
        )

    async def get(self, period_id: uuid.UUID, *, for_update: bool = False) -> Period | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._connection.fetchrow(f"SELECT {_PERIOD} FROM periods WHERE period_id = $1{lock}", period_id)
        return _period(row) if row else None

    async def save(self, period: Period, *, warned_at: datetime | None = None) -> None:
        await self._connection.execute(
            "UPDATE periods SET status = $2, next_action = $3, next_action_at = $4, warning_id = $5,"
            " warned_at = COALESCE($6, warned_at) WHERE period_id = $1",
            period.period_id, period.status.value, period.next_action.value if period.next_action else None,
            period.next_action_at, period.warning_id, warned_at,
        )

    async def save_many(self, periods: list[Period]) -> None:
        """Write the status and next action of many periods in one statement (a sweep batch's common steps)."""
        if not periods:
            return
        await self._connection.execute(
            "UPDATE periods p SET status = u.status, next_action = u.next_action, next_action_at = u.next_action_at,"
            " warning_id = u.warning_id"
            " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::uuid[])"
            " AS u(period_id, status, next_action, next_action_at, warning_id) WHERE p.period_id = u.period_id",
            [p.period_id for p in periods], [p.status.value for p in periods],
            [p.next_action.value if p.next_action else None for p in periods],
            [p.next_action_at for p in periods], [p.warning_id for p in periods],
        )

    async def last_seq(self, permit_id: uuid.UUID) -> int:
        return await self._connection.fetchval("SELECT coalesce(max(seq), 0) FROM periods WHERE permit_id = $1",
                                               permit_id)

    async def due(self, now: datetime, limit: int) -> list[tuple[Period, Schedule]]:
        """Periods whose next action has come, oldest first, with their schedules; both rows locked.

        SKIP LOCKED: several sweepers (replicas) share the work, and a sweeper never waits on a row that a
        request or a consumer holds, so it cannot deadlock with them.
        """
        rows = await self._connection.fetch(
            f"SELECT {', '.join('p.' + c.strip() for c in _PERIOD.split(','))},"
            f" {', '.join('s.' + c.strip() + ' AS s_' + c.strip() for c in _SCHEDULE.split(','))}"
            " FROM periods p JOIN schedules s ON s.permit_id = p.permit_id"
            " WHERE p.next_action_at <= $1 ORDER BY p.next_action_at, p.seq LIMIT $2"
            " FOR UPDATE OF p, s SKIP LOCKED",
            now, limit,
        )
        return [(_period(row), _schedule(row, prefix="s_")) for row in rows]

    async def settled(self, permit_id: uuid.UUID, through_seq: int, *, since: datetime, min_periods: int,
                      cap: int = 2000) -> list[SettledPeriod]:
        """Periods up to `through_seq` with a deadline after `since` (at least the last `min_periods`), oldest
        first, as the sanction ladder sees them."""
        rows = await self._connection.fetch(
            "SELECT period_id, seq, deadline, warning_id FROM periods WHERE permit_id = $1 AND seq <= $2"
            " AND (deadline >= $3 OR seq > $2 - $4) ORDER BY seq DESC LIMIT $5",
            permit_id, through_seq, since, min_periods, cap,
        )
        return [SettledPeriod(r["period_id"], r["seq"], r["deadline"], r["warning_id"]) for r in reversed(rows)]

    async def end_obligation(self, permit_id: uuid.UUID, now: datetime) -> int:
        """Revocation: periods still open owe nothing; pending reminders and warnings are cancelled."""
        await self._connection.execute(
            "UPDATE periods SET status = 'ended' WHERE permit_id = $1 AND status = 'open' AND deadline > $2",
            permit_id, now,
        )
        status = await self._connection.execute(
            "UPDATE periods SET next_action = NULL, next_action_at = NULL"
            " WHERE permit_id = $1 AND next_action_at IS NOT NULL",
            permit_id,
        )
        return int(status.split()[-1])

    async def listing(self, permit_id: uuid.UUID, limit: int) -> list[Period]:
        rows = await self._connection.fetch(
            f"SELECT {_PERIOD} FROM periods WHERE permit_id = $1 ORDER BY seq DESC LIMIT $2", permit_id, limit
        )
        return [_period(row) for row in reversed(rows)]


class ReportRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def add(self, *, report_id: uuid.UUID, period_id: uuid.UUID, permit_id: uuid.UUID, submitted_at: datetime,
                  late: bool, actor: str, role: str, payload: dict[str, Any]) -> uuid.UUID | None:
        """Store a report; the one it supersedes (if any) stays as history, pointing at it. Returns that one."""
        superseded = await self._connection.fetchval(
            "UPDATE reports SET superseded_by = $2, superseded_at = $3"
            " WHERE period_id = $1 AND superseded_by IS NULL RETURNING report_id",
            period_id, report_id, submitted_at,
        )
        await self._connection.execute(
            "INSERT INTO reports (report_id, period_id, permit_id, submitted_at, late, actor, role, payload)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
            report_id, period_id, permit_id, submitted_at, late, actor, role, json.dumps(payload),
        )
        return superseded

    async def listing(self, permit_id: uuid.UUID, limit: int) -> list[dict[str, Any]]:
        rows = await self._connection.fetch(
            "SELECT r.report_id, r.period_id, r.submitted_at, r.late, r.actor, r.role, r.payload, r.superseded_by,"
            " r.superseded_at, p.deadline FROM reports r JOIN periods p ON p.period_id = r.period_id"
            " WHERE r.permit_id = $1 ORDER BY r.submitted_at DESC LIMIT $2",
            permit_id, limit,
        )
        return [dict(row) | {"payload": json.loads(row["payload"])} for row in rows]


class ClosureRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def order(self, closure_id: uuid.UUID, facility_id: uuid.UUID, at: datetime) -> None:
        await self._connection.execute(
            "INSERT INTO closures (closure_id, facility_id, ordered_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (closure_id) DO NOTHING",
            closure_id, facility_id, at,
        )

    async def reopen(self, closure_id: uuid.UUID, facility_id: uuid.UUID, at: datetime) -> None:
        # A reopening that overtakes its order (different partitions never; replays might) is still recorded.
        await self._connection.execute(
            "INSERT INTO closures (closure_id, facility_id, ordered_at, reopened_at) VALUES ($1, $2, $3, $3)"
            " ON CONFLICT (closure_id) DO UPDATE SET reopened_at = EXCLUDED.reopened_at",
            closure_id, facility_id, at,
        )

    async def is_closed(self, facility_id: uuid.UUID) -> bool:
        return await self._connection.fetchval(
            "SELECT EXISTS (SELECT 1 FROM closures WHERE facility_id = $1 AND reopened_at IS NULL)", facility_id
        )


class SanctionRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def add(self, sanction_id: uuid.UUID, permit_id: uuid.UUID, sanction: Sanction, at: datetime,
                  causation_id: str | None) -> None:
        evidence = {"missed_periods": [str(p) for p in sanction.missed_periods],
                    "warnings": [str(w) for w in sanction.warnings]}
        await self._connection.execute(
            "INSERT INTO sanctions (sanction_id, permit_id, action, rule, evidence, at, causation_id)"
            " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)",
            sanction_id, permit_id, sanction.action.value, sanction.rule, json.dumps(evidence), at, causation_id,
        )


class ComplianceQueries:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def rates(self, *, province: str | None, regency: str | None, since: datetime,
                    until: datetime) -> dict[str, int]:
        """Counts over periods whose deadline fell in (since, until]; one index-only scan per region kind.

        Excused periods (the plant was closed at the deadline) count nowhere: a closed plant cannot
        report on operations. Periods ended by revocation owed nothing.
        """
        region_column, region = ("regency_code", regency) if regency else ("province_code", province)
        where = "deadline > $1 AND deadline <= $2"
        args: list[Any] = [since, until]
        if region:
            where += f" AND {region_column} = $3"
            args.append(region)
        row = await self._connection.fetchrow(
            "SELECT count(*) FILTER (WHERE status IN ('submitted', 'late', 'overdue')) AS due,"
            " count(*) FILTER (WHERE status IN ('submitted', 'late')) AS reported,"
            " count(*) FILTER (WHERE status = 'submitted') AS on_time,"
            " count(*) FILTER (WHERE status = 'overdue') AS overdue,"
            " count(*) FILTER (WHERE status = 'excused') AS excused,"
            " count(warning_id) AS warnings"
            f" FROM periods WHERE {where}",
            *args,
        )
        plants = await self._connection.fetchrow(
            "SELECT (SELECT count(*) FROM schedules WHERE frozen AND ended_at IS NULL"
            f"{_region_clause(province, regency)}) AS frozen,"
            " (SELECT count(*) FROM schedules WHERE closed AND ended_at IS NULL"
            f"{_region_clause(province, regency)}) AS closed",
            *([regency or province] if (regency or province) else []),
        )
        return dict(row) | dict(plants)


def _region_clause(province: str | None, regency: str | None) -> str:
    if regency:
        return " AND regency_code = $1"
    if province:
        return " AND province_code = $1"
    return ""


class ReportsWork(UnitOfWork):
    def __init__(self, connection: asyncpg.Connection) -> None:
        super().__init__(connection)
        self.schedules = ScheduleRepository(connection)
        self.periods = PeriodRepository(connection)
        self.reports = ReportRepository(connection)
        self.closures = ClosureRepository(connection)
        self.sanctions = SanctionRepository(connection)
        self.compliance = ComplianceQueries(connection)


def _schedule_values(s: Schedule) -> tuple[Any, ...]:
    return (s.permit_id, s.facility_id, s.nib, s.province_code, s.regency_code, s.zone, s.issued_at, s.frozen,
            s.freeze_count, s.closed, s.ended_at, s.ladder_reset_seq, s.revoke_recommended)


_SCHEDULE_KEYS = {prefix: tuple(prefix + column.strip() for column in _SCHEDULE.split(",")) for prefix in ("", "s_")}


def _schedule(row: asyncpg.Record, prefix: str = "") -> Schedule:
    # The keys are computed once: the sweep converts thousands of rows a batch.
    return Schedule(*(row[key] for key in _SCHEDULE_KEYS[prefix]))


def _period_values(p: Period) -> tuple[Any, ...]:
    return (p.period_id, p.permit_id, p.seq, p.regime, p.starts_at, p.deadline, p.status.value,
            p.next_action.value if p.next_action else None, p.next_action_at, p.warning_id)


def _period(row: asyncpg.Record) -> Period:
    return Period(row["period_id"], row["permit_id"], row["seq"], row["regime"], row["starts_at"], row["deadline"],
                  PeriodStatus(row["status"]), NextAction(row["next_action"]) if row["next_action"] else None,
                  row["next_action_at"], row["warning_id"])
