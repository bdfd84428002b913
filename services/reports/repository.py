"""Plain SQL for the reports service; no SQL anywhere else in it."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

import asyncpg
import uuid_utils
from pydantic_core import to_json

from services.reports.domain import (
    LadderName, NextAction, Opening, Period, PeriodStatus, RegimeEntry, Sanction, Schedule, SettledPeriod, Situation,
    Step, parse_regime,
)
from services.reports.capacity import DoseChange, LatestReport, PlantsByClass
from services.reports.staffing import (
    Allowance, LevelEntry, LevelSource, PendingLevel, RecordedBreach, RuleSet, rule_set_from_mapping,
)
from shared.contract import CONTENT_TYPE, Envelope, PpkmLevel, ReportDue, ReportOverdue, SectorClass, envelope_format
from shared.storage.unit_of_work import Outbox, UnitOfWork

_SCHEDULE = ("permit_id, facility_id, nib, province_code, regency_code, zone, issued_at, frozen, freeze_count,"
             " closed, ended_at, ladder_reset_seq, revoke_recommended")
_PERIOD = ("period_id, permit_id, seq, regime, starts_at, deadline, status, next_action, next_action_at, warning_id,"
           " regime_name")
_PERIOD_WIDTH = len(_PERIOD.split(","))
_SCHEDULE_WIDTH = len(_SCHEDULE.split(","))
_PERIOD_OF_P = ", ".join(f"p.{column.strip()}" for column in _PERIOD.split(","))


class StoredReport(NamedTuple):
    """A report accepted, to be stored with its period as it now stands."""

    period: Period
    report_id: uuid.UUID
    late: bool
    actor: str
    role: str
    payload_json: str  # the report as submitted
    new_positives: int
    isolating_workers: int | None  # None: the report did not say
    declared_by: str | None = None  # who declared its data true (the caller's token subject), when they did
    declared_at: datetime | None = None


class DeclaredReport(NamedTuple):
    """A report its company declared true: what a finding in the field may contradict."""

    report_id: uuid.UUID
    period_id: uuid.UUID
    submitted_at: datetime
    declared_by: str
    declared_at: datetime
    current: bool  # not superseded by a correction
    payload: dict[str, Any]


class DuePeriod(NamedTuple):
    """A period whose next action has come, as the sweep needs it: which, whose, where, and its situation."""

    period_id: uuid.UUID
    permit_id: uuid.UUID
    seq: int
    facility_id: uuid.UUID
    province_code: str
    regency_code: str
    zone: str
    situation: Situation


class Target(NamedTuple):
    """A report's plant and period as `ReportRepository.targets` reads them, locked, with what checking the report
    needs."""

    schedule: Schedule
    period: Period | None
    declaration: bool | None  # the stored regime's rule; None when the timeline holds no regime of that name
    sector_class: SectorClass | None  # None: not classified yet
    export_oriented: bool
    level_day: date  # the day the level entries are for
    levels: tuple[LevelEntry, ...]  # for the regency and for its province, none, one or both
    latest: LatestReport | None  # the plant's latest report as the dose-1 share counts it


_LEVEL_WIDTH = 7  # region_code, level, effective_from, effective_until, instruction, source, recorded_at


def _target(row: asyncpg.Record) -> Target:
    # The columns of `targets`: the schedule's, its class, the period's, the regime's declaration, the day, the two
    # level entries, the latest report.
    at = _SCHEDULE_WIDTH
    sector_class, export_oriented = row[at], row[at + 1]
    at += 2
    period = _period(row[at:]) if row[at] is not None else None
    at += _PERIOD_WIDTH
    declaration, day = row[at], row[at + 1]
    at += 2
    levels = []
    for _ in range(2):
        region_code, level, effective_from, effective_until, instruction, source, recorded_at = row[
            at:at + _LEVEL_WIDTH]
        if region_code is not None:
            levels.append(LevelEntry(region_code, _LEVEL[level], effective_from, effective_until, instruction,
                                     _LEVEL_SOURCE[source], recorded_at))
        at += _LEVEL_WIDTH
    seq, dose1, workforce = row[at:at + 3]
    return Target(_schedule(row[:_SCHEDULE_WIDTH]), period, declaration,
                  None if sector_class is None else _SECTOR_CLASS[sector_class], export_oriented, day, tuple(levels),
                  None if seq is None else LatestReport(seq, dose1, workforce))


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

    async def classify(self, permit_id: uuid.UUID, sector_class: SectorClass, export_oriented: bool, *,
                       workforce_total: int | None = None, permit_number: str | None = None,
                       company_name: str | None = None) -> bool:
        """The plant's class as the permits service last said it (and, at issue, its workforce, what the permit is
        called and whose it is: an estate's compliance names its tenants by them); False when the permit has no
        schedule here."""
        status = await self._connection.execute(
            "UPDATE schedules SET sector_class = $2, export_oriented = $3,"
            " workforce_total = coalesce($4, workforce_total), permit_number = coalesce($5, permit_number),"
            " company_name = coalesce($6, company_name) WHERE permit_id = $1",
            permit_id, sector_class.value, export_oriented, workforce_total, permit_number, company_name)
        return status.endswith(" 1")

    async def for_facility(self, facility_id: uuid.UUID) -> list[Schedule]:
        rows = await self._connection.fetch(
            f"SELECT {_SCHEDULE} FROM schedules WHERE facility_id = $1 ORDER BY permit_id FOR UPDATE", facility_id
        )
        return [_schedule(row) for row in rows]


class PeriodRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def add(self, period: Period, schedule: Schedule) -> None:
        await self._connection.execute(
            f"INSERT INTO periods ({_PERIOD}, province_code, regency_code)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            *_period_values(period), schedule.province_code, schedule.regency_code,
        )

    async def get(self, period_id: uuid.UUID) -> Period | None:
        row = await self._connection.fetchrow(f"SELECT {_PERIOD} FROM periods WHERE period_id = $1", period_id)
        return _period(row) if row else None

    async def advance(self, period_ids: Sequence[uuid.UUID], step_of: Sequence[int], steps: Sequence[Step], *,
                      now: datetime) -> dict[uuid.UUID, Period]:
        """Apply a sweep batch's steps in one statement: period `period_ids[i]` takes `steps[step_of[i]]`. A step
        that warns gives its period a new `warning_id`, stamped `now`; the warned periods are returned, as saved."""
        warning_ids = iter(time_ordered_ids(sum(steps[index].warn for index in step_of)))
        rows = await self._connection.fetch(
            "WITH advanced AS ("
            " UPDATE periods p SET status = s.status, next_action = s.next_action, next_action_at = s.next_action_at,"
            "  warning_id = coalesce(u.warning_id, p.warning_id),"
            "  warned_at = CASE WHEN s.warn THEN $7 ELSE p.warned_at END"
            " FROM unnest($1::uuid[], $2::bigint[], $8::uuid[]) AS u(period_id, step, warning_id)"
            " JOIN unnest($3::text[], $4::text[], $5::timestamptz[], $6::bool[]) WITH ORDINALITY"
            "  AS s(status, next_action, next_action_at, warn, step) USING (step)"
            f" WHERE p.period_id = u.period_id RETURNING {_PERIOD_OF_P}, s.warn)"
            f" SELECT {_PERIOD} FROM advanced WHERE warn",
            period_ids, [index + 1 for index in step_of], [step.status.value for step in steps],
            [step.next_action.value if step.next_action else None for step in steps],
            [step.next_action_at for step in steps], [step.warn for step in steps], now,
            [next(warning_ids) if steps[index].warn else None for index in step_of],
        )
        return {row["period_id"]: _period(row) for row in rows}

    async def open_next(self, after: Sequence[DuePeriod], opening_of: Sequence[int],
                        openings: Sequence[Opening]) -> None:
        """Open each plant's next period in one statement: after period `after[i]`, with its plant, its `seq`
        plus one and a new id, opens `openings[opening_of[i]]`."""
        if not after:
            return
        await self._connection.execute(
            f"INSERT INTO periods ({_PERIOD}, province_code, regency_code)"
            " SELECT u.period_id, u.permit_id, u.seq + 1, o.regime, o.starts_at, o.deadline, $10,"
            "  o.next_action, o.next_action_at, NULL, o.regime_name, u.province_code, u.regency_code"
            " FROM unnest($12::uuid[], $1::uuid[], $2::int[], $3::text[], $4::text[], $5::bigint[])"
            "  AS u(period_id, permit_id, seq, province_code, regency_code, opening)"
            " JOIN unnest($6::text[], $7::timestamptz[], $8::timestamptz[], $9::text[], $11::timestamptz[],"
            "  $13::text[]) WITH ORDINALITY"
            "  AS o(regime, starts_at, deadline, next_action, next_action_at, regime_name, opening) USING (opening)",
            [p.permit_id for p in after], [p.seq for p in after], [p.province_code for p in after],
            [p.regency_code for p in after], [index + 1 for index in opening_of], [o.regime for o in openings],
            [o.starts_at for o in openings], [o.deadline for o in openings], [o.next_action.value for o in openings],
            PeriodStatus.OPEN.value, [o.next_action_at for o in openings], time_ordered_ids(len(after)),
            [o.regime_name for o in openings],
        )

    async def last_seq(self, permit_id: uuid.UUID) -> int:
        return await self._connection.fetchval("SELECT coalesce(max(seq), 0) FROM periods WHERE permit_id = $1",
                                               permit_id)

    async def due(self, now: datetime, limit: int) -> list[DuePeriod]:
        """Periods whose next action has come, oldest first, in their situations; periods and schedules locked.

        SKIP LOCKED: several sweepers (replicas) share the work, and a sweeper never waits on a row that a
        request or a consumer holds, so it cannot deadlock with them.
        """
        rows = await self._connection.fetch(
            "SELECT p.period_id, p.permit_id, p.seq, s.facility_id, s.province_code, s.regency_code, s.zone,"
            " p.next_action, p.status, p.deadline, s.ended_at IS NOT NULL, s.closed"
            " FROM periods p JOIN schedules s ON s.permit_id = p.permit_id"
            " WHERE p.next_action_at <= $1 ORDER BY p.next_action_at, p.seq LIMIT $2"
            " FOR UPDATE OF p, s SKIP LOCKED",
            now, limit,
        )
        # A due batch holds a few situations among thousands of periods: each is converted once.
        situations: dict[tuple[Any, ...], Situation] = {}
        due = []
        for row in rows:
            key = tuple(row[7:])
            situation = situations.get(key)
            if situation is None:
                action, status, deadline, ended, closed = key
                situation = situations[key] = Situation(_ACTION[action], _STATUS[status], deadline, ended, closed)
            due.append(DuePeriod._make((*row[:7], situation)))
        return due

    async def settled(self, permit_id: uuid.UUID, through_seq: int, *, since: datetime, min_periods: int,
                      cap: int = 2000) -> list[SettledPeriod]:
        """Periods up to `through_seq` with a deadline after `since` (at least the last `min_periods`), oldest
        first, as the sanction ladder sees them."""
        rows = await self._connection.fetch(
            "SELECT period_id, seq, deadline, warning_id, regime_name, excused_at IS NOT NULL AS excused FROM periods"
            " WHERE permit_id = $1 AND seq <= $2 AND (deadline >= $3 OR seq > $2 - $4) ORDER BY seq DESC LIMIT $5",
            permit_id, through_seq, since, min_periods, cap,
        )
        return [SettledPeriod(r["period_id"], r["seq"], r["deadline"], r["warning_id"], r["regime_name"], r["excused"])
                for r in reversed(rows)]

    async def of_permit(self, permit_id: uuid.UUID, period_ids: Sequence[uuid.UUID]) -> list[Period]:
        """The permit's periods among `period_ids` (an id of another permit's period is not among them)."""
        rows = await self._connection.fetch(
            f"SELECT {_PERIOD} FROM periods WHERE permit_id = $1 AND period_id = ANY($2::uuid[]) ORDER BY seq",
            permit_id, list(period_ids))
        return [_period(row) for row in rows]

    async def excuse(self, period_ids: Sequence[uuid.UUID], *, request_id: uuid.UUID | None, at: datetime) -> None:
        """Mark periods excused by a reactivation request; a period excused already keeps its first excuse."""
        if not period_ids:
            return
        await self._connection.execute(
            "UPDATE periods SET excused_by_request = $2, excused_at = $3"
            " WHERE period_id = ANY($1::uuid[]) AND excused_at IS NULL",
            list(period_ids), request_id, at)

    async def excused(self, permit_id: uuid.UUID,
                      period_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID | None]:
        """Of the permit's `period_ids`, those excused, each with the request that excused it."""
        rows = await self._connection.fetch(
            "SELECT period_id, excused_by_request FROM periods WHERE permit_id = $1 AND period_id = ANY($2::uuid[])"
            " AND excused_at IS NOT NULL", permit_id, list(period_ids))
        return {row["period_id"]: row["excused_by_request"] for row in rows}

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

    async def targets(self, asked: Sequence[tuple[uuid.UUID, uuid.UUID]], *,
                      levels_on: datetime) -> dict[uuid.UUID, Target]:
        """For each (permit_id, period_id) asked, the schedule and that period of it, all locked in one round trip:
        the schedules first, as every writer of a plant locks it, and in permit order, so that two batches of
        reports cannot deadlock. A permit without a schedule is not in the answer; the period is None when the
        schedule has no such period. With them, whether the stored regime the period opened under requires the
        declaration of truth (None when the timeline holds no regime of that name), the plant's sector class, and
        what checking its report needs: the day a report made at `levels_on` is checked on, the level entries for
        that day (for the regency and for its province, as `PpkmRepository.level_entries` reads them) and the
        plant's latest report as the dose-1 share counts it."""
        rows = await self._connection.fetch(
            f"WITH s AS (SELECT {_SCHEDULE}, sector_class, export_oriented FROM schedules"
            "  WHERE permit_id = ANY($1::uuid[]) ORDER BY permit_id FOR UPDATE)"
            " SELECT s.*, p.*, r.declaration, d.day,"
            "  lr.region_code, lr.level, lr.effective_from, lr.effective_until, lr.instruction, lr.source,"
            "  lr.recorded_at,"
            "  lp.region_code, lp.level, lp.effective_from, lp.effective_until, lp.instruction, lp.source,"
            "  lp.recorded_at,"
            "  v.period_seq, v.dose1, v.workforce"
            " FROM s JOIN unnest($1::uuid[], $2::uuid[]) AS u(permit_id, period_id) USING (permit_id)"
            " LEFT JOIN LATERAL"
            f" (SELECT {_PERIOD} FROM periods WHERE period_id = u.period_id AND permit_id = s.permit_id FOR UPDATE) p"
            " ON true LEFT JOIN regimes r ON r.name = p.regime_name"
            " CROSS JOIN LATERAL (SELECT (least($3::timestamptz, p.deadline) AT TIME ZONE s.zone)::date AS day) d"
            " LEFT JOIN LATERAL (SELECT * FROM ppkm_levels WHERE region_code = s.regency_code"
            "  AND effective_from <= d.day ORDER BY effective_from DESC, recorded_at DESC LIMIT 1) lr ON true"
            " LEFT JOIN LATERAL (SELECT * FROM ppkm_levels WHERE region_code = s.province_code"
            "  AND effective_from <= d.day ORDER BY effective_from DESC, recorded_at DESC LIMIT 1) lp ON true"
            # By its key, plant by plant: a plan made while the table was small (a fresh database) read all of it.
            " LEFT JOIN LATERAL (SELECT period_seq, dose1, workforce FROM latest_vaccination"
            "  WHERE permit_id = s.permit_id) v ON true",
            [permit_id for permit_id, _ in asked], [period_id for _, period_id in asked], levels_on,
        )
        return {row[0]: _target(row) for row in rows}

    async def supersede(self, superseded_by: Mapping[uuid.UUID, uuid.UUID], at: datetime) -> dict[uuid.UUID, uuid.UUID]:
        """Mark each period's current report as superseded by the report given for it (history keeps it); the
        reports superseded, by period."""
        if not superseded_by:
            return {}
        rows = await self._connection.fetch(
            "UPDATE reports r SET superseded_by = u.report_id, superseded_at = $3"
            " FROM unnest($1::uuid[], $2::uuid[]) AS u(period_id, report_id)"
            " WHERE r.period_id = u.period_id AND r.superseded_by IS NULL RETURNING r.period_id, r.report_id",
            list(superseded_by), list(superseded_by.values()), at,
        )
        return {row[0]: row[1] for row in rows}

    async def record(self, reports: Sequence[StoredReport], *, submitted_at: datetime,
                     latest: Sequence[tuple[uuid.UUID, LatestReport]] = (),
                     dose_changes: Sequence[DoseChange] = ()) -> None:
        """Store reports and their periods as they now stand, in one statement. Each report must be its period's
        only current one: `supersede` the previous ones first. In the same statement, the plants' latest reports
        that these replace (`latest`) and their regencies' dose-1 sums (`dose_changes`, in regency order, added in
        the connection's shard)."""
        if not reports:
            return
        periods = [stored.period for stored in reports]
        await self._connection.execute(
            "WITH changed AS (UPDATE periods p SET status = u.status, next_action = u.next_action,"
            "  next_action_at = u.next_action_at, warning_id = u.warning_id"
            " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::uuid[])"
            "  AS u(period_id, status, next_action, next_action_at, warning_id)"
            " WHERE p.period_id = u.period_id),"
            " latest AS (INSERT INTO latest_vaccination (permit_id, period_seq, dose1, workforce, pedulilindungi)"
            "  SELECT * FROM unnest($15::uuid[], $16::int[], $17::int[], $18::int[], $24::bool[])"
            "  ON CONFLICT (permit_id) DO UPDATE SET period_seq = EXCLUDED.period_seq, dose1 = EXCLUDED.dose1,"
            "   workforce = EXCLUDED.workforce, pedulilindungi = EXCLUDED.pedulilindungi),"
            " sums AS (INSERT INTO ppkm_region_counts AS c (regency_code, shard, province_code, critical, essential,"
            "   non_essential, unknown, export_oriented, reported, dose1, workforce)"
            "  SELECT u.regency_code, pg_backend_pid() % 16, u.province_code, 0, 0, 0, 0, 0, u.plants, u.dose1,"
            "   u.workforce"
            "  FROM unnest($19::text[], $20::text[], $21::bigint[], $22::bigint[], $23::bigint[]) WITH ORDINALITY"
            "   AS u(regency_code, province_code, plants, dose1, workforce, position)"
            "  ORDER BY u.position"
            "  ON CONFLICT (regency_code, shard) DO UPDATE SET reported = c.reported + EXCLUDED.reported,"
            "   dose1 = c.dose1 + EXCLUDED.dose1, workforce = c.workforce + EXCLUDED.workforce)"
            " INSERT INTO reports (report_id, period_id, permit_id, submitted_at, late, actor, role, payload,"
            "  declared_by, declared_at, new_positives, isolating_workers)"
            " SELECT u.report_id, u.period_id, u.permit_id, $6, u.late, u.actor, u.role, u.payload::jsonb,"
            "  u.declared_by, u.declared_at, u.new_positives, u.isolating_workers"
            " FROM unnest($7::uuid[], $1::uuid[], $8::uuid[], $9::bool[], $10::text[], $11::text[], $12::text[],"
            "  $13::text[], $14::timestamptz[], $25::int[], $26::int[])"
            "  AS u(report_id, period_id, permit_id, late, actor, role, payload, declared_by, declared_at,"
            "  new_positives, isolating_workers)",
            [p.period_id for p in periods], [p.status.value for p in periods],
            [p.next_action.value if p.next_action else None for p in periods], [p.next_action_at for p in periods],
            [p.warning_id for p in periods], submitted_at, [stored.report_id for stored in reports],
            [p.permit_id for p in periods], [stored.late for stored in reports], [stored.actor for stored in reports],
            [stored.role for stored in reports], [stored.payload_json for stored in reports],
            [stored.declared_by for stored in reports], [stored.declared_at for stored in reports],
            [permit_id for permit_id, _ in latest], [report.period_seq for _, report in latest],
            [report.dose1 for _, report in latest], [report.workforce for _, report in latest],
            [c.regency_code for c in dose_changes], [c.province_code for c in dose_changes],
            [c.plants for c in dose_changes], [c.dose1 for c in dose_changes], [c.workforce for c in dose_changes],
            [report.pedulilindungi for _, report in latest],
            [stored.new_positives for stored in reports], [stored.isolating_workers for stored in reports],
        )

    async def listing(self, permit_id: uuid.UUID, limit: int,
                      after: tuple[datetime, uuid.UUID] | None = None) -> list[dict[str, Any]]:
        """The permit's reports, the latest first, from just past `after` (the last one's submission and id)."""
        submitted, report_id = after or (None, None)
        rows = await self._connection.fetch(
            "SELECT r.report_id, r.period_id, r.submitted_at, r.late, r.actor, r.role, r.payload, r.superseded_by,"
            " r.superseded_at, r.declared_by, r.declared_at, r.new_positives, r.isolating_workers, p.deadline"
            " FROM reports r JOIN periods p ON p.period_id = r.period_id"
            " WHERE r.permit_id = $1 AND ($3::timestamptz IS NULL OR (r.submitted_at, r.report_id) < ($3, $4::uuid))"
            " ORDER BY r.submitted_at DESC, r.report_id DESC LIMIT $2",
            permit_id, limit, submitted, report_id,
        )
        return [dict(row) | {"payload": json.loads(row["payload"])} for row in rows]

    async def declared(self, permit_id: uuid.UUID, limit: int = 1000) -> list[DeclaredReport]:
        """The permit's reports its company declared true, corrections and the reports they superseded alike (each
        was declared), the latest first: what a later finding in the field may contradict (SE 3/2021 revokes a
        permit whose field data contradict the company's statement)."""
        rows = await self._connection.fetch(
            "SELECT report_id, period_id, submitted_at, declared_by, declared_at, superseded_by IS NULL AS current,"
            " payload FROM reports WHERE permit_id = $1 AND declared_at IS NOT NULL ORDER BY submitted_at DESC"
            " LIMIT $2",
            permit_id, limit,
        )
        return [DeclaredReport(r["report_id"], r["period_id"], r["submitted_at"], r["declared_by"], r["declared_at"],
                               r["current"], json.loads(r["payload"])) for r in rows]


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


    async def add_capacity(self, sanction_id: uuid.UUID, permit_id: uuid.UUID, *, rule: str,
                           warnings: Sequence[uuid.UUID], breaches: Sequence[uuid.UUID], at: datetime,
                           causation_id: str) -> None:
        """A freeze the capacity ladder recommends, with the breaches and their warnings as its evidence."""
        evidence = {"missed_periods": [], "warnings": [str(w) for w in warnings],
                    "breaches": [str(b) for b in breaches]}
        await self._connection.execute(
            "INSERT INTO sanctions (sanction_id, permit_id, action, rule, evidence, at, causation_id)"
            " VALUES ($1, $2, 'freeze', $3, $4::jsonb, $5, $6)",
            sanction_id, permit_id, rule, json.dumps(evidence), at, causation_id,
        )


class CapacityRepository:
    """The capacity breaches found in reports (migration 0013's `capacity_breaches`) and the capacity ladder's
    reckoning of them."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def record_breach(self, *, breach_id: uuid.UUID, warning_id: uuid.UUID, permit_id: uuid.UUID,
                            report_id: uuid.UUID, period_id: uuid.UUID, province_code: str, regency_code: str,
                            day: date, level: PpkmLevel, rule_set: str, rule: str,
                            excesses: Sequence[Mapping[str, Any]], at: datetime) -> None:
        await self._connection.execute(
            "INSERT INTO capacity_breaches (breach_id, permit_id, report_id, period_id, province_code, regency_code,"
            " day, level, rule_set, rule, excesses, warning_id, recorded_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13)",
            breach_id, permit_id, report_id, period_id, province_code, regency_code, day, level.value, rule_set,
            rule, json.dumps(list(excesses)), warning_id, at)

    async def of_period(self, permit_id: uuid.UUID, period_id: uuid.UUID) -> uuid.UUID | None:
        """The breach a period's report already holds, if any."""
        return await self._connection.fetchval(
            "SELECT breach_id FROM capacity_breaches WHERE permit_id = $1 AND period_id = $2"
            " ORDER BY recorded_at LIMIT 1", permit_id, period_id)

    async def unsanctioned(self, permit_id: uuid.UUID, *, since: date) -> dict[RecordedBreach, uuid.UUID]:
        """The plant's breaches on or after `since` that no capacity sanction has counted yet, each with its
        warning."""
        rows = await self._connection.fetch(
            "SELECT breach_id, day, warning_id FROM capacity_breaches"
            " WHERE permit_id = $1 AND day >= $2 AND sanction_id IS NULL ORDER BY day, recorded_at",
            permit_id, since)
        return {RecordedBreach(row["breach_id"], row["day"]): row["warning_id"] for row in rows}

    async def sanctioned(self, breach_ids: Sequence[uuid.UUID], sanction_id: uuid.UUID) -> None:
        """The breaches a sanction counted: they do not count towards another."""
        await self._connection.execute(
            "UPDATE capacity_breaches SET sanction_id = $2 WHERE breach_id = ANY($1::uuid[])",
            list(breach_ids), sanction_id)


class RegionCounts(NamedTuple):
    """A regency's live plants by class and the sums of its dose-1 share (migration 0015's counters)."""

    regency_code: str
    province_code: str
    plants: PlantsByClass
    reported: int
    dose1: int
    workforce: int


class RegionDay(NamedTuple):
    """What compliance asks about a regency today: its level entries, and its breaches this week and in the
    window."""

    levels: tuple[LevelEntry, ...]
    breaches_this_week: int
    breaches_in_window: int


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
        if row is None or plants is None:  # queries of aggregates answer one row each
            raise LookupError("compliance counts answered no row")
        return dict(row) | dict(plants)


    async def ppkm_counts(self, *, province: str | None, regency: str | None) -> list[RegionCounts]:
        """Per regency of the scope (a regency, a province's, or every one), its plants by class and its dose-1
        sums, summed over the shards: a few rows a regency, whatever the number of plants."""
        rows = await self._connection.fetch(
            "SELECT regency_code, min(province_code), sum(critical)::bigint, sum(essential)::bigint,"
            " sum(non_essential)::bigint, sum(unknown)::bigint, sum(export_oriented)::bigint, sum(reported)::bigint,"
            " sum(dose1)::bigint, sum(workforce)::bigint"
            f" FROM ppkm_region_counts WHERE true{_region_clause(province, regency)}"
            " GROUP BY regency_code ORDER BY regency_code",
            *([regency or province] if (regency or province) else []),
        )
        return [RegionCounts(row[0], row[1], PlantsByClass(*row[2:7]), *row[7:]) for row in rows]

    async def ppkm_days(self, regions: Sequence[tuple[str, str, date, date, date]]) -> list[RegionDay]:
        """For each (regency, province, today, this week's Monday, the window's first day), in one statement: the
        level entries for today (for the regency and for its province, as `PpkmRepository.level_entries` reads
        them), and the regency's breaches from Monday to Sunday and from the window's first day to today, counted on
        the breaches' (regency_code, day) index."""
        if not regions:
            return []
        rows = await self._connection.fetch(
            "SELECT lr.region_code, lr.level, lr.effective_from, lr.effective_until, lr.instruction, lr.source,"
            "  lr.recorded_at,"
            "  lp.region_code, lp.level, lp.effective_from, lp.effective_until, lp.instruction, lp.source,"
            "  lp.recorded_at,"
            "  (SELECT count(*) FROM capacity_breaches b WHERE b.regency_code = t.regency"
            "   AND b.day BETWEEN t.monday AND t.monday + 6),"
            "  (SELECT count(*) FROM capacity_breaches b WHERE b.regency_code = t.regency"
            "   AND b.day BETWEEN t.since AND t.today)"
            " FROM unnest($1::text[], $2::text[], $3::date[], $4::date[], $5::date[]) WITH ORDINALITY"
            "  AS t(regency, province, today, monday, since, position)"
            " LEFT JOIN LATERAL (SELECT * FROM ppkm_levels WHERE region_code = t.regency"
            "  AND effective_from <= t.today ORDER BY effective_from DESC, recorded_at DESC LIMIT 1) lr ON true"
            " LEFT JOIN LATERAL (SELECT * FROM ppkm_levels WHERE region_code = t.province"
            "  AND effective_from <= t.today ORDER BY effective_from DESC, recorded_at DESC LIMIT 1) lp ON true"
            " ORDER BY t.position",
            [r[0] for r in regions], [r[1] for r in regions], [r[2] for r in regions], [r[3] for r in regions],
            [r[4] for r in regions])
        found = []
        for row in rows:
            levels = tuple(LevelEntry(row[at], _LEVEL[row[at + 1]], row[at + 2], row[at + 3], row[at + 4],
                                      _LEVEL_SOURCE[row[at + 5]], row[at + 6])
                           for at in (0, _LEVEL_WIDTH) if row[at] is not None)
            found.append(RegionDay(levels, row[2 * _LEVEL_WIDTH], row[2 * _LEVEL_WIDTH + 1]))
        return found


def _region_clause(province: str | None, regency: str | None) -> str:
    if regency:
        return " AND regency_code = $1"
    if province:
        return " AND province_code = $1"
    return ""


class TenantRow(NamedTuple):
    """One tenant of an estate as its compliance shows it: the plant, and its periods whose deadline fell in the
    window, counted by status, its warnings and its breaches of the PPKM staffing cap in the window."""

    permit_id: uuid.UUID
    facility_id: uuid.UUID
    nib: str
    permit_number: str | None
    company_name: str | None
    province_code: str
    regency_code: str
    frozen: bool
    closed: bool
    ended: bool
    due: int
    reported: int
    on_time: int
    late: int
    overdue: int
    excused: int
    warnings: int
    capacity_breaches: int


class TenancyRepository:
    """Each plant's estate, as the permits service confirmed it (migration 0016)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def confirm(self, facility_id: uuid.UUID, *, estate_facility_id: uuid.UUID, estate_nib: str,
                      confirmed_at: datetime, at: datetime) -> None:
        await self._connection.execute(
            "INSERT INTO estate_tenancies (facility_id, estate_facility_id, estate_nib, confirmed_at, recorded_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (facility_id) DO UPDATE SET"
            " estate_facility_id = $2, estate_nib = $3, confirmed_at = $4, recorded_at = $5",
            facility_id, estate_facility_id, estate_nib, confirmed_at, at)

    async def end(self, facility_id: uuid.UUID, *, estate_facility_id: uuid.UUID) -> bool:
        """The tenancy in that estate ended; one in another estate, confirmed since, stays."""
        status = await self._connection.execute(
            "DELETE FROM estate_tenancies WHERE facility_id = $1 AND estate_facility_id = $2",
            facility_id, estate_facility_id)
        return status.endswith(" 1")

    async def estate_of(self, facility_id: uuid.UUID) -> str | None:
        """The NIB of the estate company that confirmed the plant as its tenant, if one did."""
        return await self._connection.fetchval(
            "SELECT estate_nib FROM estate_tenancies WHERE facility_id = $1", facility_id)

    async def compliance(self, estate_nib: str, *, since: datetime, until: datetime,
                         since_day: date) -> list[TenantRow]:
        """The estate's tenants with their counts over deadlines in (since, until] and breaches from `since_day`,
        in one statement: each tenant's periods by (permit_id, seq) and breaches by (permit_id, day)."""
        rows = await self._connection.fetch(
            "SELECT s.permit_id, s.facility_id, s.nib, s.permit_number, s.company_name, s.province_code,"
            " s.regency_code, s.frozen, s.closed, s.ended_at IS NOT NULL, coalesce(p.due, 0), coalesce(p.reported, 0),"
            " coalesce(p.on_time, 0), coalesce(p.late, 0), coalesce(p.overdue, 0), coalesce(p.excused, 0),"
            " coalesce(p.warnings, 0),"
            " (SELECT count(*) FROM capacity_breaches b WHERE b.permit_id = s.permit_id AND b.day >= $4)"
            " FROM estate_tenancies t JOIN schedules s ON s.facility_id = t.facility_id"
            " LEFT JOIN LATERAL (SELECT count(*) FILTER (WHERE status IN ('submitted', 'late', 'overdue')) AS due,"
            "  count(*) FILTER (WHERE status IN ('submitted', 'late')) AS reported,"
            "  count(*) FILTER (WHERE status = 'submitted') AS on_time,"
            "  count(*) FILTER (WHERE status = 'late') AS late,"
            "  count(*) FILTER (WHERE status = 'overdue') AS overdue,"
            "  count(*) FILTER (WHERE status = 'excused') AS excused,"
            "  count(warning_id) AS warnings"
            "  FROM periods WHERE permit_id = s.permit_id AND deadline > $2 AND deadline <= $3) p ON true"
            " WHERE t.estate_nib = $1 ORDER BY s.regency_code, s.facility_id, s.permit_id",
            estate_nib, since, until, since_day)
        return [TenantRow(*row) for row in rows]


class RegimeRepository:
    """The regime timeline and the audit of every change to it."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def timeline(self) -> tuple[RegimeEntry, ...]:
        rows = await self._connection.fetch(
            "SELECT name, source, effective_on, rule, ladder, declaration FROM regimes ORDER BY effective_on")
        return tuple(RegimeEntry(r["name"], r["source"], r["effective_on"], parse_regime(r["rule"]),
                                 LadderName(r["ladder"]), r["declaration"]) for r in rows)

    async def listing(self) -> list[dict[str, Any]]:
        rows = await self._connection.fetch(
            "SELECT name, source, effective_on, rule, ladder, declaration, shipped, scheduled_by, scheduled_at"
            " FROM regimes ORDER BY effective_on")
        return [dict(row) for row in rows]

    async def changes(self, limit: int) -> list[dict[str, Any]]:
        rows = await self._connection.fetch(
            "SELECT at, actor, action, name, entry FROM regime_changes ORDER BY change_id DESC LIMIT $1", limit)
        return [dict(row) | {"entry": json.loads(row["entry"])} for row in rows]

    async def ship(self, entries: Sequence[RegimeEntry], *, at: datetime) -> tuple[list[str], dict[str, str]]:
        """Upsert the shipped entries; the names of those inserted or changed, each change audited, and those left
        out because an operator's entry holds their date (shipped name → the operator's entry's name)."""
        changed, held = [], {}
        for entry in entries:
            holder = await self._connection.fetchval(
                "SELECT name FROM regimes WHERE effective_on = $1 AND name <> $2 AND NOT shipped",
                entry.effective_on, entry.name)
            if holder is not None:
                held[entry.name] = holder
                continue
            row = await self._connection.fetchrow(
                "INSERT INTO regimes (name, source, effective_on, rule, ladder, declaration, shipped, scheduled_by,"
                "  scheduled_at)"
                " VALUES ($1, $2, $3, $4, $5, $7, true, 'configuration', $6)"
                " ON CONFLICT (name) DO UPDATE SET source = EXCLUDED.source, effective_on = EXCLUDED.effective_on,"
                "  rule = EXCLUDED.rule, ladder = EXCLUDED.ladder, declaration = EXCLUDED.declaration, shipped = true"
                " WHERE (regimes.source, regimes.effective_on, regimes.rule, regimes.ladder, regimes.declaration,"
                "  regimes.shipped) IS DISTINCT FROM (EXCLUDED.source, EXCLUDED.effective_on, EXCLUDED.rule,"
                "  EXCLUDED.ladder, EXCLUDED.declaration, true)"
                " RETURNING name",
                entry.name, entry.source, entry.effective_on, entry.rule.text, entry.ladder.value, at,
                entry.declaration)
            if row is not None:
                await self._audit(at, "configuration", "shipped", entry)
                changed.append(entry.name)
        return changed, held

    async def schedule(self, entry: RegimeEntry, *, actor: str, at: datetime) -> None:
        await self._connection.execute(
            "INSERT INTO regimes (name, source, effective_on, rule, ladder, declaration, shipped, scheduled_by,"
            "  scheduled_at)"
            " VALUES ($1, $2, $3, $4, $5, $8, false, $6, $7)",
            entry.name, entry.source, entry.effective_on, entry.rule.text, entry.ladder.value, actor, at,
            entry.declaration)
        await self._audit(at, actor, "scheduled", entry)

    async def withdraw(self, entry: RegimeEntry, *, actor: str, at: datetime) -> None:
        await self._connection.execute("DELETE FROM regimes WHERE name = $1", entry.name)
        await self._audit(at, actor, "withdrawn", entry)

    async def lock(self) -> None:
        """One change to the timeline at a time: the checks (a unique name and date) read the whole of it."""
        await self._connection.execute("LOCK TABLE regimes IN SHARE ROW EXCLUSIVE MODE")

    async def _audit(self, at: datetime, actor: str, action: str, entry: RegimeEntry) -> None:
        await self._connection.execute(
            "INSERT INTO regime_changes (at, actor, action, name, entry) VALUES ($1, $2, $3, $4, $5::jsonb)",
            at, actor, action, entry.name, json.dumps(_entry_json(entry)))


def _entry_json(entry: RegimeEntry) -> dict[str, str | bool]:
    return {"name": entry.name, "source": entry.source, "effective_on": entry.effective_on.isoformat(),
            "rule": entry.rule.text, "ladder": entry.ladder.value, "declaration": entry.declaration}


class PpkmRepository:
    """PPKM levels per region over time, and the staffing rule sets (migration 0013)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def level_entries(self, regions: Sequence[tuple[str, str, date]]) -> list[list[LevelEntry]]:
        """For each (regency, province, day): the entry that took effect last on or before the day for the regency,
        and the one for its province (none, one or both); `staffing.level_on` picks between them. Two index reads
        each, in one statement."""
        if not regions:
            return []
        rows = await self._connection.fetch(
            "SELECT t.ord, l.region_code, l.level, l.effective_from, l.effective_until, l.instruction, l.source,"
            "  l.recorded_at"
            " FROM unnest($1::text[], $2::text[], $3::date[]) WITH ORDINALITY AS t(regency, province, day, ord)"
            " CROSS JOIN LATERAL ("
            "  (SELECT * FROM ppkm_levels WHERE region_code = t.regency AND effective_from <= t.day"
            "   ORDER BY effective_from DESC, recorded_at DESC LIMIT 1)"
            "  UNION ALL"
            "  (SELECT * FROM ppkm_levels WHERE region_code = t.province AND effective_from <= t.day"
            "   ORDER BY effective_from DESC, recorded_at DESC LIMIT 1)) AS l",
            [r[0] for r in regions], [r[1] for r in regions], [r[2] for r in regions])
        found: list[list[LevelEntry]] = [[] for _ in regions]
        for row in rows:
            found[row["ord"] - 1].append(LevelEntry(
                row["region_code"], PpkmLevel(row["level"]), row["effective_from"], row["effective_until"],
                row["instruction"], LevelSource(row["source"]), row["recorded_at"]))
        return found

    async def rule_sets(self) -> tuple[RuleSet, ...]:
        rows = await self._connection.fetch("SELECT name, starts_on, source, rules FROM ppkm_rule_sets"
                                            " ORDER BY starts_on")
        return tuple(rule_set_from_mapping({"name": r["name"], "starts_on": r["starts_on"], "source": r["source"],
                                            "rules": json.loads(r["rules"])}) for r in rows)

    async def ship_rule_sets(self, sets: Sequence[tuple[RuleSet, list[dict[str, Any]]]], *,
                             at: datetime) -> list[str]:
        """Upsert the shipped rule sets (each with its rules as the file states them); the names of those inserted
        or changed. An operator's set is never replaced by a shipped one."""
        changed = []
        for rule_set, rules in sets:
            row = await self._connection.fetchrow(
                "INSERT INTO ppkm_rule_sets (name, starts_on, source, rules, shipped, published_by, published_at)"
                " VALUES ($1, $2, $3, $4::jsonb, true, 'configuration', $5)"
                " ON CONFLICT (name) DO UPDATE SET starts_on = EXCLUDED.starts_on, source = EXCLUDED.source,"
                "  rules = EXCLUDED.rules"
                " WHERE ppkm_rule_sets.shipped AND (ppkm_rule_sets.starts_on, ppkm_rule_sets.source,"
                "  ppkm_rule_sets.rules) IS DISTINCT FROM (EXCLUDED.starts_on, EXCLUDED.source, EXCLUDED.rules)"
                " RETURNING name",
                rule_set.name, rule_set.starts_on, rule_set.source, json.dumps(rules), at)
            if row is not None:
                changed.append(rule_set.name)
        return changed

    async def lock_rule_sets(self) -> None:
        """One change to the rule sets at a time: a start day is each set's own."""
        await self._connection.execute("LOCK TABLE ppkm_rule_sets IN SHARE ROW EXCLUSIVE MODE")

    async def publish_rule_set(self, rule_set: RuleSet, rules: list[dict[str, Any]], *, actor: str,
                               at: datetime) -> None:
        await self._connection.execute(
            "INSERT INTO ppkm_rule_sets (name, starts_on, source, rules, shipped, published_by, published_at)"
            " VALUES ($1, $2, $3, $4::jsonb, false, $5, $6)",
            rule_set.name, rule_set.starts_on, rule_set.source, json.dumps(rules), actor, at)

    async def rule_set_listing(self) -> list[dict[str, Any]]:
        """Every rule set as stored, with who published it and whether its plants were re-evaluated for it."""
        rows = await self._connection.fetch(
            "SELECT name, starts_on, source, rules, shipped, published_by, published_at, applied_at, applied_zones"
            " FROM ppkm_rule_sets ORDER BY starts_on")
        return [dict(row) | {"rules": json.loads(row["rules"])} for row in rows]

    async def rule_sets_to_apply(self) -> list[tuple[str, date, list[str]]]:
        """Rule sets whose first day has not yet been applied in every zone: (name, starts_on, zones done)."""
        rows = await self._connection.fetch(
            "SELECT name, starts_on, applied_zones FROM ppkm_rule_sets WHERE applied_at IS NULL ORDER BY starts_on")
        return [(row["name"], row["starts_on"], list(row["applied_zones"])) for row in rows]

    async def rule_set_applied(self, name: str, zones: Sequence[str], *, every_zone: int, at: datetime) -> None:
        """Record the zones whose plants were re-evaluated for the rule set; once every zone has been, it is done."""
        await self._connection.execute(
            "UPDATE ppkm_rule_sets SET applied_zones = z.zones,"
            "  applied_at = CASE WHEN cardinality(z.zones) >= $3 THEN $4::timestamptz END"
            " FROM (SELECT array(SELECT DISTINCT unnest(applied_zones || $2::text[]) ORDER BY 1) AS zones"
            "       FROM ppkm_rule_sets WHERE name = $1) AS z"
            " WHERE name = $1",
            name, list(zones), every_zone, at)

    async def record_level(self, entry: LevelEntry, *, level_id: uuid.UUID, province_code: str, actor: str,
                           reason: str | None, event_id: uuid.UUID | None) -> bool:
        """Append a level (an agency's event once: `event_id`), and wake the service's level sweep when it commits;
        False when that event was recorded already."""
        status = await self._connection.execute(
            "WITH added AS (INSERT INTO ppkm_levels (level_id, region_code, province_code, level, effective_from,"
            "  effective_until, instruction, source, actor, reason, event_id, recorded_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (event_id) DO NOTHING"
            " RETURNING level_id)"
            " SELECT pg_notify($13, '') FROM added",
            level_id, entry.region_code, province_code, entry.level.value, entry.effective_from,
            entry.effective_until, entry.instruction, entry.source.value, actor, reason, event_id, entry.recorded_at,
            PPKM_LEVEL_CHANNEL)
        return status.endswith(" 1")

    async def level_history(self, *, province: str | None, regency: str | None, limit: int) -> list[dict[str, Any]]:
        """Levels recorded, newest first: a regency's own and its province's, a province's and its regencies', or
        every one."""
        columns = ("level_id, region_code, province_code, level, effective_from, effective_until, instruction,"
                   " source, actor, reason, recorded_at")
        if regency:
            rows = await self._connection.fetch(
                f"SELECT {columns} FROM ppkm_levels WHERE region_code = ANY($1::text[])"
                " ORDER BY recorded_at DESC LIMIT $2", [regency, regency.split(".")[0]], limit)
        elif province:
            rows = await self._connection.fetch(
                f"SELECT {columns} FROM ppkm_levels WHERE province_code = $1 ORDER BY recorded_at DESC LIMIT $2",
                province, limit)
        else:
            rows = await self._connection.fetch(
                f"SELECT {columns} FROM ppkm_levels ORDER BY recorded_at DESC LIMIT $1", limit)
        return [dict(row) for row in rows]

    async def regencies(self, *, province: str | None, regency: str | None) -> list[str]:
        """The regencies with plants or with levels of their own, in a province (or nationwide, or the one regency
        asked): read by skipping through the schedules' region index, one probe a regency."""
        if regency:
            return [regency]
        if province:
            rows = await self._connection.fetch(
                "WITH RECURSIVE r AS ("
                " (SELECT regency_code FROM schedules WHERE province_code = $1 ORDER BY regency_code LIMIT 1)"
                " UNION ALL"
                " SELECT n.regency_code FROM r CROSS JOIN LATERAL (SELECT regency_code FROM schedules"
                "  WHERE province_code = $1 AND regency_code > r.regency_code ORDER BY regency_code LIMIT 1) AS n)"
                " SELECT regency_code FROM r"
                " UNION SELECT region_code FROM ppkm_levels WHERE province_code = $1 AND region_code <> province_code"
                " ORDER BY 1",
                province)
        else:
            rows = await self._connection.fetch(
                "WITH RECURSIVE r AS ("
                " (SELECT province_code, regency_code FROM schedules ORDER BY province_code, regency_code LIMIT 1)"
                " UNION ALL"
                " SELECT n.province_code, n.regency_code FROM r CROSS JOIN LATERAL"
                "  (SELECT province_code, regency_code FROM schedules"
                "   WHERE (province_code, regency_code) > (r.province_code, r.regency_code)"
                "   ORDER BY province_code, regency_code LIMIT 1) AS n)"
                " SELECT regency_code FROM r"
                " UNION SELECT region_code FROM ppkm_levels WHERE region_code <> province_code"
                " ORDER BY 1")
        return [row[0] for row in rows]

    async def provinces_with_levels(self) -> list[str]:
        rows = await self._connection.fetch("SELECT DISTINCT province_code FROM ppkm_levels ORDER BY 1")
        return [row[0] for row in rows]

    async def pending_levels(self, through: date) -> list[PendingLevel]:
        """Levels not yet applied whose first day is `through` or earlier, and applied levels whose last day is
        before `through` and whose passing was not applied yet (`through`: the latest day any zone has reached)."""
        rows = await self._connection.fetch(
            "SELECT level_id, region_code, effective_from, effective_until, applied_at IS NOT NULL AS applied"
            " FROM ppkm_levels WHERE applied_at IS NULL AND effective_from <= $1"
            " UNION ALL"
            " SELECT level_id, region_code, effective_from, effective_until, true FROM ppkm_levels"
            " WHERE effective_until IS NOT NULL AND lapse_applied_at IS NULL AND effective_until < $1"
            "  AND applied_at IS NOT NULL",
            through)
        return [PendingLevel(*row) for row in rows]

    async def levels_applied(self, applied: Sequence[uuid.UUID], lapsed: Sequence[uuid.UUID], *,
                             at: datetime) -> None:
        await self._connection.execute(
            "UPDATE ppkm_levels SET applied_at = coalesce(applied_at, $3::timestamptz),"
            "  lapse_applied_at = CASE WHEN level_id = ANY($2::uuid[]) THEN $3 ELSE lapse_applied_at END"
            " WHERE level_id = ANY($1::uuid[]) OR level_id = ANY($2::uuid[])",
            list(applied), list(lapsed), at)

    async def try_lock_sweep(self) -> bool:
        """Whether this transaction holds the level sweep: one replica applies levels at a time."""
        return await self._connection.fetchval("SELECT pg_try_advisory_xact_lock(hashtext('reports.ppkm-sweep'))")


# The notification a recorded level sends: the level sweep applies one that takes effect today at once.
PPKM_LEVEL_CHANNEL = "reports_ppkm_levels"


class PlantRow(NamedTuple):
    """A plant as its allowance is evaluated: where it is, its class, its state, and what its latest report (as
    latest_vaccination keeps it) says of its workforce, first doses and PeduliLindungi (None: no report yet)."""

    permit_id: uuid.UUID
    facility_id: uuid.UUID
    nib: str
    province_code: str
    regency_code: str
    zone: str
    sector_class: str | None
    export_oriented: bool
    frozen: bool
    ended: bool
    workforce_total: int | None
    dose1: int | None
    pedulilindungi: bool | None


_PLANT = (
    "SELECT s.permit_id, s.facility_id, s.nib, s.province_code, s.regency_code, s.zone, s.sector_class,"
    " s.export_oriented, s.frozen, s.ended_at IS NOT NULL,"
    " coalesce(v.workforce, s.workforce_total), v.dose1, v.pedulilindungi"
    # The plant's latest report as the dose-1 share counts it (migration 0015): one definition of "latest".
    " FROM schedules s LEFT JOIN latest_vaccination v ON v.permit_id = s.permit_id")


class AllowanceRepository:
    """Each plant's allowance as last evaluated (plant_allowances), and the plants it is evaluated from."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def plants(self, province: str, *, after: tuple[str, uuid.UUID], through_regency: str,
                     limit: int) -> list[PlantRow]:
        """A chunk of a province's plants in (regency, permit) order, from after `after` to the regency
        `through_regency` inclusive."""
        rows = await self._connection.fetch(
            f"{_PLANT} WHERE s.province_code = $1 AND (s.regency_code, s.permit_id) > ($2, $3)"
            " AND s.regency_code <= $4 ORDER BY s.regency_code, s.permit_id LIMIT $5",
            province, after[0], after[1], through_regency, limit)
        return [PlantRow(*row) for row in rows]

    async def plant(self, permit_id: uuid.UUID) -> PlantRow | None:
        row = await self._connection.fetchrow(f"{_PLANT} WHERE s.permit_id = $1", permit_id)
        return PlantRow(*row) if row else None

    async def plant_of_facility(self, facility_id: uuid.UUID) -> PlantRow | None:
        """The facility's permit in force (the latest issued that has not ended), else its latest."""
        row = await self._connection.fetchrow(
            f"{_PLANT} WHERE s.permit_id = (SELECT permit_id FROM schedules WHERE facility_id = $1"
            " ORDER BY ended_at IS NULL DESC, issued_at DESC LIMIT 1)", facility_id)
        return PlantRow(*row) if row else None

    async def save(self, evaluated: Sequence[tuple[PlantRow, Allowance]], *, ended: Sequence[uuid.UUID],
                   at: datetime) -> int:
        """Write a chunk's allowances in one statement, and forget those of plants whose permit has ended. An
        allowance evaluated later (one plant's, by a consumer, while its region's chunks were read) is kept."""
        rows = list(evaluated)
        await self._connection.execute(
            "WITH gone AS (DELETE FROM plant_allowances WHERE permit_id = ANY($14::uuid[]))"
            " INSERT INTO plant_allowances (permit_id, province_code, regency_code, day, level, rule_set, rule,"
            "  lifted, production_share, shift_share, max_shifts, office_share, workforce_total, evaluated_at)"
            " SELECT u.*, $13::timestamptz FROM unnest($1::uuid[], $2::text[], $3::text[], $4::date[], $5::text[],"
            "  $6::text[], $7::text[], $8::bool[], $9::int[], $10::int[], $11::int[], $12::int[], $15::int[]) AS u"
            " ON CONFLICT (permit_id) DO UPDATE SET province_code = EXCLUDED.province_code,"
            "  regency_code = EXCLUDED.regency_code, day = EXCLUDED.day, level = EXCLUDED.level,"
            "  rule_set = EXCLUDED.rule_set, rule = EXCLUDED.rule, lifted = EXCLUDED.lifted,"
            "  production_share = EXCLUDED.production_share, shift_share = EXCLUDED.shift_share,"
            "  max_shifts = EXCLUDED.max_shifts, office_share = EXCLUDED.office_share,"
            "  workforce_total = EXCLUDED.workforce_total, evaluated_at = EXCLUDED.evaluated_at"
            " WHERE plant_allowances.evaluated_at <= EXCLUDED.evaluated_at",
            [p.permit_id for p, _ in rows], [p.province_code for p, _ in rows], [p.regency_code for p, _ in rows],
            [a.day for _, a in rows], [a.level.value if a.level else None for _, a in rows],
            [a.rule_set for _, a in rows], [a.rule for _, a in rows], [a.lifted for _, a in rows],
            [a.capacity.production_share for _, a in rows], [a.capacity.shift_share for _, a in rows],
            [a.capacity.max_shifts for _, a in rows], [a.capacity.office_share for _, a in rows], at, list(ended),
            [a.workforce_total for _, a in rows])
        return len(rows)


class ReportsOutbox(Outbox):
    async def add_period_events(self, events: Sequence[tuple[DuePeriod, type[ReportDue | ReportOverdue]]], *,
                                service: str, now: datetime) -> None:
        """The sweep's reminders and overdues, in order, written by one statement that builds each envelope from
        the period and its schedule by the contract's own pattern (`envelope_format`), as `Outbox.add(Envelope.wrap(
        ...))` would. When a deadline falls for every plant at once the sweep emits a million of these."""
        if not events:
            return
        await self._insert_queued(
            "INSERT INTO outbox (event_id, event_type, topic, key, value, headers)"
            " SELECT e.event_id, e.event_type, e.topic, convert_to(e.facility_id::text, 'UTF8'),"
            "  convert_to(format($13::text, e.event_id, $9::text, e.event_type, $10::text, e.facility_id,"
            "   to_json(e.province_code), to_json(e.regency_code), e.permit_id, e.period_id, e.deadline), 'UTF8'),"
            "  jsonb_build_object('content-type', $11::text, 'correlation_id', e.event_id)"
            " FROM unnest($12::uuid[], $1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],"
            "  $7::text[], $8::text[]) WITH ORDINALITY"
            "  AS e(event_id, period_id, permit_id, facility_id, province_code, regency_code, deadline, event_type,"
            "   topic, position)"
            " ORDER BY e.position",
            [p.period_id for p, _ in events], [p.permit_id for p, _ in events], [p.facility_id for p, _ in events],
            [p.province_code for p, _ in events], [p.regency_code for p, _ in events],
            [_moment(p.situation.deadline) for p, _ in events], [kind.type_name() for _, kind in events],
            [kind.topic.name for _, kind in events], Envelope.source_of(service), _moment(now), CONTENT_TYPE,
            time_ordered_ids(len(events)), _PERIOD_EVENT_FORMAT,
        )


# ReportDue and ReportOverdue carry the same fields: one pattern writes both (the type is an argument).
_PERIOD_EVENT_FORMAT = envelope_format(ReportDue)


def time_ordered_ids(count: int) -> list[str]:
    """`count` new ids for rows the sweep writes by the thousand, as UUIDs of version 7 (RFC 9562): ids that grow
    with time land on the last pages of their unique index, where random ones would land on as many random pages,
    most not in memory."""
    return [uuid_utils.uuid7().hex for _ in range(count)]


@functools.lru_cache(maxsize=64)
def _moment(moment: datetime) -> str:
    """A moment as the event contract writes it (a batch's periods share a few deadlines: each is written once)."""
    return to_json(moment).decode().strip('"')


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
        self.regimes = RegimeRepository(connection)
        self.ppkm = PpkmRepository(connection)
        self.allowances = AllowanceRepository(connection)
        self.capacity = CapacityRepository(connection)
        self.tenancies = TenancyRepository(connection)


def _schedule_values(s: Schedule) -> tuple[Any, ...]:
    return (s.permit_id, s.facility_id, s.nib, s.province_code, s.regency_code, s.zone, s.issued_at, s.frozen,
            s.freeze_count, s.closed, s.ended_at, s.ladder_reset_seq, s.revoke_recommended)


def _schedule(row: asyncpg.Record | tuple[Any, ...]) -> Schedule:
    return Schedule(*row)  # the columns of `_SCHEDULE`, in the order of the fields


def _period_values(p: Period) -> tuple[Any, ...]:
    return (p.period_id, p.permit_id, p.seq, p.regime, p.starts_at, p.deadline, p.status.value,
            p.next_action.value if p.next_action else None, p.next_action_at, p.warning_id, p.regime_name)


# Enum members by value, looked up directly: calling the enum costs more than the rest of a row (the sweep
# converts a million rows when a deadline falls for every plant).
_STATUS = {status.value: status for status in PeriodStatus}
_ACTION = {None: None} | {action.value: action for action in NextAction}
_LEVEL = {level.value: level for level in PpkmLevel}
_LEVEL_SOURCE = {source.value: source for source in LevelSource}
_SECTOR_CLASS = {sector_class.value: sector_class for sector_class in SectorClass}


def _period(row: asyncpg.Record | tuple[Any, ...]) -> Period:
    # the columns of `_PERIOD`, in the order of the fields
    (period_id, permit_id, seq, regime, starts_at, deadline, status, action, action_at, warning_id,
     regime_name) = row[:_PERIOD_WIDTH]
    return Period(period_id, permit_id, seq, regime, starts_at, deadline, _STATUS[status], _ACTION[action], action_at,
                  warning_id, regime_name)
