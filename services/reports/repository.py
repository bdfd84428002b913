"""Plain SQL for the reports service; no SQL anywhere else in it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from itertools import groupby
from typing import Any, NamedTuple

import asyncpg

from services.reports.domain import NextAction, Period, PeriodStatus, Sanction, Schedule, SettledPeriod
from shared.contract import Envelope
from shared.unit_of_work import Outbox, UnitOfWork

_SCHEDULE = ("permit_id, facility_id, nib, province_code, regency_code, zone, issued_at, frozen, freeze_count,"
             " closed, ended_at, ladder_reset_seq, revoke_recommended")
_PERIOD = "period_id, permit_id, seq, regime, starts_at, deadline, status, next_action, next_action_at, warning_id"
_PERIOD_WIDTH = len(_PERIOD.split(","))
_SCHEDULE_WIDTH = len(_SCHEDULE.split(","))
_PERIOD_COLUMNS = [*(column.strip() for column in _PERIOD.split(",")), "province_code", "regency_code"]


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
        """Insert periods with one COPY (the sweep opens a whole batch's next periods at once): one round trip
        whatever the batch size, and cheaper to encode than array parameters, whose every element asyncpg
        inspects."""
        if not opened:
            return
        await self._connection.copy_records_to_table(
            "periods", columns=_PERIOD_COLUMNS,
            records=[_period_values(p) + (s.province_code, s.regency_code) for p, s in opened])

    async def get(self, period_id: uuid.UUID) -> Period | None:
        row = await self._connection.fetchrow(f"SELECT {_PERIOD} FROM periods WHERE period_id = $1", period_id)
        return _period(row) if row else None

    async def save_many(self, periods: list[Period], *, warned_at: datetime | None = None) -> None:
        """Write the status, next action and warning of many periods in one statement (a sweep batch's steps).

        A period whose warning this write sets is stamped `warned_at`.
        """
        if not periods:
            return
        await self._connection.execute(
            "UPDATE periods p SET status = u.status, next_action = u.next_action, next_action_at = u.next_action_at,"
            " warning_id = u.warning_id,"
            " warned_at = CASE WHEN p.warning_id IS NULL AND u.warning_id IS NOT NULL THEN $6 ELSE p.warned_at END"
            " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::uuid[])"
            " AS u(period_id, status, next_action, next_action_at, warning_id) WHERE p.period_id = u.period_id",
            [p.period_id for p in periods], [p.status.value for p in periods],
            [p.next_action.value if p.next_action else None for p in periods],
            [p.next_action_at for p in periods], [p.warning_id for p in periods], warned_at,
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
        # The schedule's columns follow the period's, in the order of its fields: a slice makes it.
        return [(_period(row), Schedule(*row[_PERIOD_WIDTH:])) for row in rows]

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

    async def target(self, permit_id: uuid.UUID, period_id: uuid.UUID) -> tuple[Schedule | None, Period | None]:
        """The schedule and that period of it a report is for, both locked in one round trip: the schedule
        first, as every writer of a plant locks it. The period is None when the schedule has no such period."""
        row = await self._connection.fetchrow(
            f"WITH s AS (SELECT {_SCHEDULE} FROM schedules WHERE permit_id = $1 FOR UPDATE)"
            " SELECT * FROM s LEFT JOIN LATERAL"
            f" (SELECT {_PERIOD} FROM periods WHERE period_id = $2 AND permit_id = s.permit_id FOR UPDATE) p ON true",
            permit_id, period_id,
        )
        if row is None:
            return None, None
        period = row[_SCHEDULE_WIDTH:]
        return _schedule(row[:_SCHEDULE_WIDTH]), _period(period) if period[0] is not None else None

    async def supersede(self, period_id: uuid.UUID, by: uuid.UUID, at: datetime) -> uuid.UUID | None:
        """Mark the period's current report as superseded by `by` (history keeps it); returns its id."""
        return await self._connection.fetchval(
            "UPDATE reports SET superseded_by = $2, superseded_at = $3"
            " WHERE period_id = $1 AND superseded_by IS NULL RETURNING report_id",
            period_id, by, at,
        )

    async def record(self, period: Period, *, report_id: uuid.UUID, submitted_at: datetime, late: bool, actor: str,
                     role: str, payload: dict[str, Any], event: Envelope) -> None:
        """Store a report, the period as it now stands and the report's event, in one statement (one round trip).

        The report must be the period's only current one: `supersede` the previous one first."""
        await self._connection.execute(
            "WITH changed AS (UPDATE periods SET status = $2, next_action = $3, next_action_at = $4, warning_id = $5"
            " WHERE period_id = $1),"
            " stored AS (INSERT INTO reports (report_id, period_id, permit_id, submitted_at, late, actor, role, payload)"
            " VALUES ($6, $1, $7, $8, $9, $10, $11, $12::jsonb))"
            " INSERT INTO outbox (event_id, event_type, topic, key, value, headers)"
            " VALUES ($13, $14, $15, $16, $17, $18::jsonb)",
            period.period_id, period.status.value, period.next_action.value if period.next_action else None,
            period.next_action_at, period.warning_id,
            report_id, period.permit_id, submitted_at, late, actor, role, json.dumps(payload),
            *Outbox.row(event),
        )

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
        """Counts over periods whose deadline fell in (since, until], read from the counters the periods'
        trigger keeps (migration 0003): a few rows per regency and deadline, however many plants.

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
            "SELECT coalesce(sum(periods) FILTER (WHERE status IN ('submitted', 'late', 'overdue')), 0)::bigint"
            " AS due,"
            " coalesce(sum(periods) FILTER (WHERE status IN ('submitted', 'late')), 0)::bigint AS reported,"
            " coalesce(sum(periods) FILTER (WHERE status = 'submitted'), 0)::bigint AS on_time,"
            " coalesce(sum(periods) FILTER (WHERE status = 'overdue'), 0)::bigint AS overdue,"
            " coalesce(sum(periods) FILTER (WHERE status = 'excused'), 0)::bigint AS excused,"
            " coalesce(sum(warnings), 0)::bigint AS warnings"
            f" FROM compliance_counts WHERE {where}",
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


class OutboxRow(NamedTuple):
    """An event encoded as the outbox stores it (the sweep encodes its reminders and overdues itself)."""

    event_id: uuid.UUID
    event_type: str
    topic: str
    key: bytes
    value: bytes
    headers: str


class ReportsOutbox(Outbox):
    async def add_in_order(self, events: Sequence[Envelope | OutboxRow]) -> None:
        """Envelopes and encoded rows in the order given: a statement per run of one kind (rows of a later
        statement take later positions, so order is kept). Encoded rows go in with one COPY."""
        for encoded, run in groupby(events, key=lambda event: isinstance(event, OutboxRow)):
            if encoded:
                await self._connection.copy_records_to_table("outbox", records=list(run), columns=OutboxRow._fields)
            else:
                await self.add(*run)


class ReportsWork(UnitOfWork):
    def __init__(self, connection: asyncpg.Connection) -> None:
        super().__init__(connection)
        self.outbox: ReportsOutbox = ReportsOutbox(connection)
        self.schedules = ScheduleRepository(connection)
        self.periods = PeriodRepository(connection)
        self.reports = ReportRepository(connection)
        self.closures = ClosureRepository(connection)
        self.sanctions = SanctionRepository(connection)
        self.compliance = ComplianceQueries(connection)


def _schedule_values(s: Schedule) -> tuple[Any, ...]:
    return (s.permit_id, s.facility_id, s.nib, s.province_code, s.regency_code, s.zone, s.issued_at, s.frozen,
            s.freeze_count, s.closed, s.ended_at, s.ladder_reset_seq, s.revoke_recommended)


def _schedule(row: asyncpg.Record) -> Schedule:
    return Schedule(*row)  # the columns of `_SCHEDULE`, in the order of the fields


def _period_values(p: Period) -> tuple[Any, ...]:
    return (p.period_id, p.permit_id, p.seq, p.regime, p.starts_at, p.deadline, p.status.value,
            p.next_action.value if p.next_action else None, p.next_action_at, p.warning_id)


# Enum members by value, looked up directly: calling the enum costs more than the rest of a row (the sweep
# converts a million rows when a deadline falls for every plant).
_STATUS = {status.value: status for status in PeriodStatus}
_ACTION = {None: None} | {action.value: action for action in NextAction}


def _period(row: asyncpg.Record) -> Period:
    values = row[:_PERIOD_WIDTH]  # the columns of `_PERIOD`, in the order of the fields
    return Period(*values[:6], _STATUS[values[6]], _ACTION[values[7]], *values[8:])
