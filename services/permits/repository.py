"""Plain SQL for the permits service; no SQL anywhere else in it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg
from pydantic_core import to_json

from services.permits.domain import (
    SANCTIONS, Action, ClassReview, Classing, Closure, ConditionCheck, FiledReport, KbliSectorTable, Letter,
    LetterGround, LetterPeriod, Objection, ObjectionOutcome, OperatingStatus, Permit, PermitStatus,
    ReactivationRequest, Recount, RequestStatus, ReviewOrigin, ReviewStatus, Sanction, SanctionRequest,
    SanctionRequestStatus, Tenancy, TenancyStatus, Transition, WorkItem, WorkKind,
    counting_month, first_reading_reason, revision_reason,
)
from shared.contract import (
    CONTENT_TYPE, ClassBasis, Envelope, GroundCode, LetterKind, PermitKind, SanctionGround, SectorClass,
    SectorClassChanged, TenancyEndCause, WarningCause, envelope_format,
)
from shared.storage.db import Connection
from shared.storage.unit_of_work import Outbox, UnitOfWork

_COLUMNS = ("permit_id, facility_id, nib, company_name, province_code, regency_code, sector_class,"
            " workforce_total, status, permit_number, freeze_count, revoked_at, issued_at, plant_key,"
            " export_oriented, class_basis, class_table_version, kind, estate_nib")


@dataclass(frozen=True)
class PermitSearch:
    """Filters of `GET /permits`, the caller's scope, and the keyset position (the last `seq` seen)."""

    status: str | None = None
    province: str | None = None
    regency: str | None = None
    nib: str | None = None
    sector: str | None = None
    number: str | None = None  # a whole permit number
    company: str | None = None  # the start of the company's name, in any case, however its words are spaced
    region_scope: str | None = None
    nib_scope: str | None = None
    tenants_scope: str | None = None  # an estate company's NIB: its own permits and its confirmed tenants'
    after: int = 0
    limit: int = 50


# A company's name as it is searched: case folded by the database's lower(), runs of whitespace one space, compared
# code point by code point (migration 0012 indexes exactly this expression; the query must repeat it verbatim).
_NAME_KEY = "(lower(btrim(regexp_replace({}, '\\s+', ' ', 'g'))) COLLATE \"C\")"
_COMPANY_KEY = _NAME_KEY.format("company_name")
# U+10FFFF, the last code point (a noncharacter no name holds): every name that starts with a prefix sorts before
# the prefix followed by it.
_AFTER_EVERY_CHARACTER = "chr(1114111)"


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
            f"INSERT INTO permits ({_COLUMNS}, application, created_at)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20::jsonb,$21)",
            *_values(permit), json.dumps(application), transition.at,  # received when the service's clock says
        )
        await self._record(permit, transition)

    async def set_estate(self, permit_id: uuid.UUID, estate_nib: str | None) -> None:
        """The estate that reads the plant's permit, as its tenant (None: none does)."""
        await self._connection.execute("UPDATE permits SET estate_nib = $2 WHERE permit_id = $1", permit_id,
                                       estate_nib)

    async def save_class(self, permit: Permit) -> None:
        """The plant's class, as an operator set it (its status and history are not touched)."""
        await self._connection.execute(
            "UPDATE permits SET sector_class = $2, export_oriented = $3, class_basis = $4, class_table_version = $5"
            " WHERE permit_id = $1",
            permit.permit_id, permit.sector_class, permit.export_oriented,
            permit.class_basis.value if permit.class_basis else _DECLARED, permit.class_table_version)

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
        """One page, in application order (by a company's name: in name order), after the keyset position.

        Only the filters given become conditions, so the planner sees e.g. `status = $2 AND seq > $1 ORDER BY
        seq` and walks the (status, seq) index instead of a generic plan that fits every combination.
        """
        conditions = [] if q.company is not None else ["seq > $1"]
        values: list[object] = [q.after]  # the statement's parameters, of several types
        for column, value in (("status", q.status), ("province_code", q.province), ("regency_code", q.regency),
                              ("nib", q.nib), ("sector_class", q.sector), ("permit_number", q.number),
                              ("nib", q.nib_scope)):
            if value is not None:
                values.append(value)
                conditions.append(f"{column} = ${len(values)}")
        order = "seq"
        if q.company is not None:
            # By a company's name, the page is in name order, then application order: one range of migration 0012's
            # index (name key, seq), from the keyset position (the key of the row at the `seq` given, none before the
            # first page) or the prefix, whichever is further, to the prefix's end: never more than the page is
            # read when nothing else is asked. starts_with gives the exact answer: a `%` or `_` in the name asked is
            # a character like any other.
            values.append(q.company)
            start = _NAME_KEY.format(f"${len(values)}::text")  # the name asked, keyed as the names are
            conditions.append(f"({_COMPANY_KEY}, seq) > (GREATEST((SELECT {_COMPANY_KEY} FROM permits WHERE seq = $1),"
                              f" {start}), $1) AND {_COMPANY_KEY} < ({start} || {_AFTER_EVERY_CHARACTER})"
                              f" AND starts_with({_COMPANY_KEY}, {start})")
            order = f"{_COMPANY_KEY}, seq"
        if q.region_scope is not None:  # a task force's province covers its regencies
            values.append(q.region_scope)
            column = "province_code" if "." not in q.region_scope else "regency_code"
            conditions.append(f"{column} = ${len(values)}")
        if q.tenants_scope is not None:  # each side on its own index (nib, seq) and (estate_nib, seq)
            values.append(q.tenants_scope)
            conditions.append(f"(nib = ${len(values)} OR estate_nib = ${len(values)})")
        values.append(q.limit)
        rows = await self._connection.fetch(
            f"SELECT seq, {_COLUMNS} FROM permits WHERE {' AND '.join(conditions)} ORDER BY {order}"
            f" LIMIT ${len(values)}",
            *values,
        )
        return [(row["seq"], _permit(row)) for row in rows]

    async def count_by_province_and_status(self, *, province: str | None,
                                           regency: str | None) -> list[asyncpg.Record]:
        """The console dashboard's and agencies' aggregate: permits per (province, status), one GROUP BY."""
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

    async def latest_freeze_ground(self, permit_id: uuid.UUID) -> SanctionGround | None:
        """The ground of the freeze in force: the latest sanction's (a freeze, or a revocation an objection reduced
        to a freeze). None when there was none, or when its history row names no ground."""
        ground = await self._connection.fetchval(
            "SELECT ground FROM permit_history WHERE permit_id = $1 AND action IN ('freeze', 'revoke')"
            " ORDER BY seq DESC LIMIT 1",
            permit_id)
        return SanctionGround.model_validate_json(ground) if ground else None

    async def latest_transition(self, permit_id: uuid.UUID) -> tuple[int, Transition] | None:
        """The permit's latest history row, with its position: what a sanction in force is read from."""
        row = await self._connection.fetchrow(
            "SELECT seq, from_status, to_status, action, actor, role, reason, at, causation_id, ground"
            " FROM permit_history WHERE permit_id = $1 ORDER BY seq DESC LIMIT 1",
            permit_id,
        )
        if row is None:
            return None
        return row["seq"], Transition(
            PermitStatus(row["from_status"]) if row["from_status"] else None, PermitStatus(row["to_status"]),
            row["action"], row["actor"], row["role"], row["reason"], row["at"], row["causation_id"],
            SanctionGround.model_validate_json(row["ground"]) if row["ground"] else None)

    async def recount(self, permit: Permit, recount: Recount) -> None:
        """A reversed sanction counted no more (and, reduced to a freeze, counted as one), where it was counted."""
        month = counting_month(recount.at)
        await self._connection.execute(
            "UPDATE sanction_counts SET sanctions = sanctions - 1 WHERE province_code = $1 AND regency_code = $2"
            " AND month = $3 AND action = $4 AND ground = $5",
            permit.province_code, permit.regency_code, month, recount.removed.value, recount.ground.code.value,
        )
        if recount.added is not None:
            await self._connection.execute(
                "INSERT INTO sanction_counts (province_code, regency_code, month, action, ground, sanctions)"
                " VALUES ($1,$2,$3,$4,$5,1) ON CONFLICT (province_code, regency_code, month, action, ground)"
                " DO UPDATE SET sanctions = sanction_counts.sanctions + 1",
                permit.province_code, permit.regency_code, month, recount.added.value, recount.ground.code.value,
            )

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


class FiledReports:
    """The reports filed for our permits, as ReportSubmitted announced them: one slim row per report."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def record(self, reports: Sequence[FiledReport]) -> None:
        """A run of reports in one statement; a report announced again (redelivery, a replayed topic) is kept once."""
        if not reports:
            return
        await self._connection.execute(
            "INSERT INTO reports_filed (report_id, permit_id, period_id, late, declared, at)"
            " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bool[], $5::bool[], $6::timestamptz[])"
            " ON CONFLICT (report_id) DO NOTHING",
            [r.report_id for r in reports], [r.permit_id for r in reports], [r.period_id for r in reports],
            [r.late for r in reports], [r.declared for r in reports], [r.at for r in reports],
        )

    async def periods_filed(self, permit_id: uuid.UUID, period_ids: Sequence[uuid.UUID]) -> frozenset[uuid.UUID]:
        """Of `period_ids`, those with at least one report filed for the permit."""
        if not period_ids:
            return frozenset()
        rows = await self._connection.fetch(
            "SELECT DISTINCT period_id FROM reports_filed WHERE permit_id = $1 AND period_id = ANY($2::uuid[])",
            permit_id, list(period_ids))
        return frozenset(row["period_id"] for row in rows)

    async def declared(self, permit_id: uuid.UUID, report_id: uuid.UUID) -> FiledReport | None:
        """The report, if it was filed for this permit and declared true by the company: what a finding may
        contradict (the ground of a false declaration)."""
        row = await self._connection.fetchrow(
            "SELECT report_id, permit_id, period_id, late, declared, at FROM reports_filed"
            " WHERE report_id = $1 AND permit_id = $2 AND declared", report_id, permit_id)
        return FiledReport(*row) if row else None


_REQUEST = ("request_id, permit_id, status, corrective_action, missed_periods, freeze_count, conditions, requested_by,"
            " requested_at, decided_by, decided_role, decided_at, decision_reason")


@dataclass(frozen=True)
class QueuedRequest:
    """A reactivation request in the operators' review queue, with the permit it is about."""

    seq: int
    request: ReactivationRequest
    permit: Permit


class ReactivationRequests:
    """Companies' reactivation requests, one awaiting a decision per permit at most."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def add(self, request: ReactivationRequest) -> None:
        await self._connection.execute(
            f"INSERT INTO reactivation_requests ({_REQUEST}, province_code, regency_code)"
            " SELECT $1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13, p.province_code, p.regency_code"
            " FROM permits p WHERE p.permit_id = $2",  # its permit's region, for a region's worklist
            *_request_values(request))

    async def save(self, request: ReactivationRequest) -> None:
        """The decision on a request (who, when, why, and the outcome)."""
        await self._connection.execute(
            "UPDATE reactivation_requests SET status = $2, decided_by = $3, decided_role = $4, decided_at = $5,"
            " decision_reason = $6 WHERE request_id = $1",
            request.request_id, request.status.value, request.decided_by, request.decided_role, request.decided_at,
            request.decision_reason)

    async def get(self, request_id: uuid.UUID, *, for_update: bool = False) -> ReactivationRequest | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._connection.fetchrow(
            f"SELECT {_REQUEST} FROM reactivation_requests WHERE request_id = $1{lock}", request_id)
        return _request(row) if row else None

    async def open_request(self, permit_id: uuid.UUID) -> uuid.UUID | None:
        return await self._connection.fetchval(
            "SELECT request_id FROM reactivation_requests WHERE permit_id = $1 AND status = 'pending'", permit_id)

    async def of_permit(self, permit_id: uuid.UUID, limit: int) -> list[ReactivationRequest]:
        """The permit's requests, the latest first."""
        rows = await self._connection.fetch(
            f"SELECT {_REQUEST} FROM reactivation_requests WHERE permit_id = $1 ORDER BY seq DESC LIMIT $2",
            permit_id, limit)
        return [_request(row) for row in rows]

    async def queue(self, *, status: RequestStatus, region: str | None, after: int, limit: int) -> list[QueuedRequest]:
        """Requests in one status, the oldest first (the review queue), after the keyset position; a task force's
        region narrows it to the plants there."""
        values: list[object] = [status.value, after, limit]
        condition = ""
        if region is not None:
            values.append(region)
            condition = f" AND p.{'regency_code' if '.' in region else 'province_code'} = $4"
        rows = await self._connection.fetch(
            f"SELECT r.seq, {', '.join(f'r.{c.strip()}' for c in _REQUEST.split(','))},"
            f" {', '.join(f'p.{c.strip()}' for c in _COLUMNS.split(','))}"
            " FROM reactivation_requests r JOIN permits p USING (permit_id)"
            f" WHERE r.status = $1 AND r.seq > $2{condition} ORDER BY r.seq LIMIT $3", *values)
        width = len(_REQUEST.split(","))
        return [QueuedRequest(row[0], _request(row[1:width + 1]), _permit_in_order(row[width + 1:])) for row in rows]


_OBJECTION = ("objection_id, permit_id, sanction_seq, sanction, sanction_from, sanctioned_at, last_day, statement,"
              " filed_by, filed_role, filed_at, outcome, reason, decided_by, decided_role, decided_at")


class ObjectionRepository:
    """Objections to freezes and revocations, and their decisions."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def add(self, o: Objection) -> None:
        await self._connection.execute(
            f"INSERT INTO objections ({_OBJECTION}, province_code, regency_code)"
            " SELECT $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16, p.province_code, p.regency_code"
            " FROM permits p WHERE p.permit_id = $2",  # its permit's region, for a region's worklist
            *_objection_values(o),
        )

    async def get(self, objection_id: uuid.UUID, *, for_update: bool = False) -> Objection | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._connection.fetchrow(
            f"SELECT {_OBJECTION} FROM objections WHERE objection_id = $1{lock}", objection_id)
        return _objection(row) if row else None

    async def of_permit(self, permit_id: uuid.UUID) -> list[Objection]:
        """The permit's objections, in the order they were filed."""
        rows = await self._connection.fetch(
            f"SELECT {_OBJECTION} FROM objections WHERE permit_id = $1 ORDER BY seq", permit_id)
        return [_objection(row) for row in rows]

    async def decided(self, o: Objection) -> None:
        """The decision, once: a decided objection is the record and is never written again."""
        status = await self._connection.execute(
            "UPDATE objections SET outcome = $2, reason = $3, decided_by = $4, decided_role = $5, decided_at = $6"
            " WHERE objection_id = $1 AND outcome IS NULL",
            o.objection_id, o.outcome.value if o.outcome else None, o.reason, o.decided_by, o.decided_role,
            o.decided_at,
        )
        if status != "UPDATE 1":
            raise LookupError(f"objection {o.objection_id} is not pending")


# Each kind of work, written out: the page of its pending rows (oldest first) with the permit each concerns, and
# their count. Requests and objections carry their permit's region on their own rows, and every kind has partial
# indexes on its pending rows in arrival order, by region too (migration 0009): the pending are few beside the
# permits. A region's condition goes on the rows' own columns (`_ALIAS`), before the order.
_PAGE: dict[WorkKind, str] = {
    WorkKind.APPLICATION:
        "SELECT p.permit_id AS item_id, p.permit_id, p.permit_number, p.company_name, p.province_code, p.regency_code,"
        " p.created_at AS received_at FROM permits p WHERE p.status = 'SUBMITTED'",
    WorkKind.REACTIVATION_REQUEST:
        "SELECT w.request_id AS item_id, p.permit_id, p.permit_number, p.company_name, p.province_code,"
        " p.regency_code, w.requested_at AS received_at FROM reactivation_requests w JOIN permits p USING (permit_id)"
        " WHERE w.status = 'pending'",
    WorkKind.OBJECTION:
        "SELECT w.objection_id AS item_id, p.permit_id, p.permit_number, p.company_name, p.province_code,"
        " p.regency_code, w.filed_at AS received_at FROM objections w JOIN permits p USING (permit_id)"
        " WHERE w.outcome IS NULL",
    WorkKind.CLASS_REVIEW:
        "SELECT w.review_id AS item_id, p.permit_id, p.permit_number, p.company_name, p.province_code,"
        " p.regency_code, w.opened_at AS received_at FROM class_reviews w JOIN permits p USING (permit_id)"
        " WHERE w.status = 'pending'",
    WorkKind.SANCTION_REQUEST:
        "SELECT w.request_id AS item_id, p.permit_id, p.permit_number, p.company_name, p.province_code,"
        " p.regency_code, w.received_at FROM sanction_requests w JOIN permits p USING (permit_id)"
        " WHERE w.status = 'pending'",
}
# Each list's order, which its cursor continues: arrival, then the item's own id for arrivals in the same instant.
_ARRIVAL: dict[WorkKind, str] = {
    WorkKind.APPLICATION: "p.created_at, p.permit_id",
    WorkKind.REACTIVATION_REQUEST: "w.requested_at, w.request_id",
    WorkKind.OBJECTION: "w.filed_at, w.objection_id",
    WorkKind.CLASS_REVIEW: "w.opened_at, w.review_id",
    WorkKind.SANCTION_REQUEST: "w.received_at, w.request_id",
}
_COUNT: dict[WorkKind, str] = {
    WorkKind.APPLICATION: "SELECT count(*) AS total, count(*) FILTER (WHERE p.created_at < $1) AS overdue"
                          " FROM permits p WHERE p.status = 'SUBMITTED'",
    WorkKind.REACTIVATION_REQUEST: "SELECT count(*) AS total, count(*) FILTER (WHERE w.requested_at < $1) AS overdue"
                                   " FROM reactivation_requests w WHERE w.status = 'pending'",
    WorkKind.OBJECTION: "SELECT count(*) AS total, count(*) FILTER (WHERE w.filed_at < $1) AS overdue"
                        " FROM objections w WHERE w.outcome IS NULL",
    WorkKind.CLASS_REVIEW: "SELECT count(*) AS total, count(*) FILTER (WHERE w.opened_at < $1) AS overdue"
                           " FROM class_reviews w WHERE w.status = 'pending'",
    WorkKind.SANCTION_REQUEST: "SELECT count(*) AS total, count(*) FILTER (WHERE w.received_at < $1) AS overdue"
                               " FROM sanction_requests w WHERE w.status = 'pending'",
}
_ALIAS: dict[WorkKind, str] = {WorkKind.APPLICATION: "p", WorkKind.REACTIVATION_REQUEST: "w", WorkKind.OBJECTION: "w",
                               WorkKind.CLASS_REVIEW: "w", WorkKind.SANCTION_REQUEST: "w"}


class Worklists:
    """Applications, reactivation requests, objections, class reviews and sanction requests waiting for an operator,
    oldest first."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def waiting(self, kind: WorkKind, *, region: str | None, after: tuple[datetime, uuid.UUID] | None,
                      limit: int) -> list[WorkItem]:
        """The oldest first, from just past `after` (the last item's arrival and id) when given."""
        values: list[object] = [limit]
        past = ""
        if after is not None:
            values.append(after[0])
            arrived = f"${len(values)}"
            values.append(after[1])
            past = f" AND ({_ARRIVAL[kind]}) > ({arrived}, ${len(values)})"
        rows = await self._connection.fetch(
            _PAGE[kind] + _in_region(region, values, _ALIAS[kind]) + past + f" ORDER BY {_ARRIVAL[kind]} LIMIT $1",
            *values)
        return [WorkItem(kind, r["item_id"], r["permit_id"], r["permit_number"], r["company_name"],
                         r["province_code"], r["regency_code"], r["received_at"]) for r in rows]

    async def count(self, kind: WorkKind, *, region: str | None, overdue_before: datetime) -> tuple[int, int]:
        """How many wait, and how many of them came in before `overdue_before` (the overdue ones)."""
        values: list[object] = [overdue_before]
        row = await self._connection.fetchrow(_COUNT[kind] + _in_region(region, values, _ALIAS[kind]), *values)
        if row is None:  # an aggregate without GROUP BY always answers one row
            raise LookupError(f"no count of the {kind.value} worklist")
        return row["total"], row["overdue"]


def _in_region(region: str | None, values: list[object], alias: str) -> str:
    """A region (a province covers its regencies) as a condition on the rows' own columns, its value appended."""
    if region is None:
        return ""
    values.append(region)
    column = "regency_code" if "." in region else "province_code"
    return f" AND {alias}.{column} = ${len(values)}"

_REVIEW = ("review_id, permit_id, status, claimed_class, claimed_export, derived_class, derived_export, table_version,"
           " origin, opened_by, opened_at, decided_by, decided_role, decided_at, decision_reason")


@dataclass(frozen=True)
class ListedReview:
    """A class review as listed, with the permit it is about."""

    seq: int
    review: ClassReview
    permit: Permit


@dataclass(frozen=True)
class ReviewSearch:
    """Filters of `GET /class-reviews`, the caller's scope, and the keyset position (the last `seq` seen)."""

    status: ReviewStatus = ReviewStatus.PENDING
    permit_id: uuid.UUID | None = None
    region: str | None = None
    nib: str | None = None
    after: int = 0
    limit: int = 50


class ClassReviews:
    """Companies' claims against the KBLI table's reading of their plants, one awaiting a decision per permit."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def add(self, review: ClassReview) -> None:
        await self._connection.execute(
            f"INSERT INTO class_reviews ({_REVIEW}, nib, province_code, regency_code)"
            " SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, p.nib, p.province_code,"
            " p.regency_code FROM permits p WHERE p.permit_id = $2",  # its permit's company and region, to list by
            *_review_values(review))

    async def get(self, review_id: uuid.UUID, *, for_update: bool = False) -> ClassReview | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._connection.fetchrow(f"SELECT {_REVIEW} FROM class_reviews WHERE review_id = $1{lock}",
                                              review_id)
        return _review(row) if row else None

    async def open_of(self, permit_id: uuid.UUID) -> ClassReview | None:
        row = await self._connection.fetchrow(
            f"SELECT {_REVIEW} FROM class_reviews WHERE permit_id = $1 AND status = 'pending'", permit_id)
        return _review(row) if row else None

    async def decided(self, review: ClassReview) -> None:
        """The decision, once: a decided review is the record and is never written again."""
        status = await self._connection.execute(
            "UPDATE class_reviews SET status = $2, decided_by = $3, decided_role = $4, decided_at = $5,"
            " decision_reason = $6 WHERE review_id = $1 AND status = 'pending'",
            review.review_id, review.status.value, review.decided_by, review.decided_role, review.decided_at,
            review.decision_reason)
        if status != "UPDATE 1":
            raise LookupError(f"class review {review.review_id} is not pending")

    async def listed(self, q: ReviewSearch) -> list[ListedReview]:
        """Reviews in one status, the oldest first, after the keyset position; narrowed to a permit, a region (a
        province covers its regencies) or a company, as given."""
        conditions = ["r.status = $1", "r.seq > $2"]
        values: list[object] = [q.status.value, q.after]
        for column, value in (("r.permit_id", q.permit_id), ("r.nib", q.nib)):
            if value is not None:
                values.append(value)
                conditions.append(f"{column} = ${len(values)}")
        if q.region is not None:
            values.append(q.region)
            conditions.append(f"r.{'regency_code' if '.' in q.region else 'province_code'} = ${len(values)}")
        values.append(q.limit)
        rows = await self._connection.fetch(
            f"SELECT r.seq, {', '.join(f'r.{c.strip()}' for c in _REVIEW.split(','))},"
            f" {', '.join(f'p.{c.strip()}' for c in _COLUMNS.split(','))}"
            " FROM class_reviews r JOIN permits p USING (permit_id)"
            f" WHERE {' AND '.join(conditions)} ORDER BY r.seq LIMIT ${len(values)}", *values)
        width = len(_REVIEW.split(","))
        return [ListedReview(row[0], _review(row[1:width + 1]), _permit_in_order(row[width + 1:])) for row in rows]


@dataclass(frozen=True)
class TableApplied:
    """What applying a KBLI sector table did: the version before, the plants whose class or basis it changed, the
    plants recorded before the table it derived, the reviews it opened for them, and the SectorClassChanged events it
    wrote."""

    previous: str | None
    version: str
    changed: int = 0
    reviews: int = 0
    events: int = 0
    declared: int = 0

    @property
    def revised(self) -> bool:
        return self.previous != self.version

    def __add__(self, later: TableApplied) -> TableApplied:
        """This and a later transaction's work, as one."""
        return replace(self, changed=self.changed + later.changed, reviews=self.reviews + later.reviews,
                       events=self.events + later.events, declared=self.declared + later.declared)


# A table revision touches every plant at once (a million of them): its statements get a longer bound than one
# request's (COMMAND_TIMEOUT).
REDERIVE_TIMEOUT = 600.0
# SectorClassChanged as the contract's own pattern writes it, so the database builds the events of a revision.
_CLASS_CHANGED_FORMAT = envelope_format(SectorClassChanged)


class SectorTables:
    """The KBLI sector table applied here: its rows (for deriving every plant at once, in SQL), its versions."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def applied(self) -> tuple[str, str, int] | None:
        """The table in force here: (version, source, rows), None before the first."""
        row = await self._connection.fetchrow(
            "SELECT version, source, rows FROM kbli_table_revisions ORDER BY seq DESC LIMIT 1")
        return (row["version"], row["source"], row["rows"]) if row else None

    async def apply(self, table: KbliSectorTable, *, service: str, now: datetime, actor: str,
                    declared: int) -> TableApplied:
        """Bring plants to `table`'s reading of their principal KBLI code, in SQL, in this transaction: when the
        table is not the one applied here, every plant whose class the table gives; and at most `declared` plants
        recorded before the table (their class declared), the first by id, whose declared class becomes a claim in
        review where the table reads them otherwise. Each issued or frozen permit whose class or export orientation
        changed, or that the table read for the first time, is announced (SectorClassChanged, basis kbli_table), its
        envelope built here."""
        # One replica at a time: a second waits, then finds the version applied.
        await self._connection.execute("LOCK TABLE kbli_table_revisions IN SHARE ROW EXCLUSIVE MODE")
        applied = await self.applied()
        previous = applied[0] if applied else None
        revised = previous != table.version
        if revised:
            await self._connection.execute("DELETE FROM kbli_sectors")
            await self._connection.execute(
                "INSERT INTO kbli_sectors (prefix, sector_class, export_oriented, name)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::bool[], $4::text[])",
                [r.prefix for r in table.rows], [r.classing.sector_class.value for r in table.rows],
                [r.classing.export_oriented for r in table.rows], [r.name for r in table.rows])
        # The plants in scope, each with its reading, in one pass: the longest prefix of the principal code that
        # the table names (`KbliSectorTable.read`), found by equality on the code's first 5, 4, 3 and 2 digits.
        await self._connection.execute(
            "CREATE TEMPORARY TABLE class_changes (permit_id uuid, facility_id uuid, nib text, province_code text,"
            " regency_code text, permit_number text, status text, old_basis text, old_class text, old_export bool,"
            " new_class text, new_export bool) ON COMMIT DROP")
        await self._connection.execute(
            "INSERT INTO class_changes SELECT * FROM ("
            " SELECT p.permit_id, p.facility_id, p.nib, p.province_code, p.regency_code, p.permit_number, p.status,"
            "  p.class_basis AS old_basis, p.sector_class AS old_class, p.export_oriented AS old_export,"
            "  coalesce(s5.sector_class, s4.sector_class, s3.sector_class, s2.sector_class, 'non_essential')"
            "   AS new_class,"
            "  coalesce(s5.export_oriented, s4.export_oriented, s3.export_oriented, s2.export_oriented, false)"
            "   AS new_export"
            " FROM (SELECT permit_id, facility_id, nib, province_code, regency_code, permit_number, status,"
            "   class_basis, sector_class, export_oriented, coalesce(application->'kbli'->>0, '') AS code"
            "  FROM permits WHERE $1 AND class_basis = 'kbli_table'"
            "  UNION ALL"
            "  SELECT permit_id, facility_id, nib, province_code, regency_code, permit_number, status,"
            "   class_basis, sector_class, export_oriented, coalesce(application->'kbli'->>0, '') AS code"
            "  FROM permits WHERE permit_id IN (SELECT permit_id FROM permits WHERE class_basis = 'declared'"
            "   ORDER BY permit_id LIMIT $2)) p"
            " LEFT JOIN kbli_sectors s5 ON s5.prefix = left(p.code, 5)"
            " LEFT JOIN kbli_sectors s4 ON s4.prefix = left(p.code, 4)"
            " LEFT JOIN kbli_sectors s3 ON s3.prefix = left(p.code, 3)"
            " LEFT JOIN kbli_sectors s2 ON s2.prefix = left(p.code, 2)) d"
            " WHERE d.old_basis = 'declared' OR d.old_class <> d.new_class OR d.old_export <> d.new_export",
            revised, declared, timeout=REDERIVE_TIMEOUT)
        await self._connection.execute("ANALYZE class_changes")  # what it holds decides how it is joined next
        # Nothing a company said is lost: an active plant whose declared class the table reads otherwise has that
        # class as its claim, in review.
        reviews = await self._connection.fetchval(
            "WITH opened AS (INSERT INTO class_reviews (review_id, permit_id, status, claimed_class, claimed_export,"
            "  derived_class, derived_export, table_version, origin, opened_by, opened_at, nib, province_code,"
            "  regency_code)"
            " SELECT gen_random_uuid(), c.permit_id, 'pending', c.old_class, c.new_export, c.new_class, c.new_export,"
            "  $1, 'upgrade', $2, $3, c.nib, c.province_code, c.regency_code FROM class_changes c"
            " WHERE c.old_basis = 'declared' AND c.old_class <> c.new_class"
            "  AND c.status IN ('SUBMITTED', 'ISSUED', 'FROZEN')"
            "  AND NOT EXISTS (SELECT 1 FROM class_reviews o WHERE o.permit_id = c.permit_id AND o.status = 'pending')"
            " RETURNING 1) SELECT count(*) FROM opened",
            table.version, actor, now, timeout=REDERIVE_TIMEOUT)
        changed = await self._connection.execute(
            "UPDATE permits p SET sector_class = c.new_class, export_oriented = c.new_export,"
            " class_basis = 'kbli_table' FROM class_changes c WHERE p.permit_id = c.permit_id",
            timeout=REDERIVE_TIMEOUT)
        events = await ClassChangeOutbox(self._connection).add_table_changes(
            table.version, service=service, now=now)
        derived = await self._connection.fetchval("SELECT count(*) FROM class_changes WHERE old_basis = 'declared'")
        done = TableApplied(previous, table.version, int(changed.split()[-1]), reviews, events, derived)
        if revised:
            await self._connection.execute(
                "INSERT INTO kbli_table_revisions (version, source, rows, applied_at, changed, reviews, events)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                table.version, table.source, len(table.rows), now, done.changed, done.reviews, done.events)
        elif done.changed:  # plants recorded before the table, derived after its revision was recorded
            await self._connection.execute(
                "UPDATE kbli_table_revisions SET changed = changed + $1, reviews = reviews + $2, events = events + $3"
                " WHERE seq = (SELECT max(seq) FROM kbli_table_revisions)", done.changed, done.reviews, done.events)
        return done


class ClassChangeOutbox(Outbox):
    async def add_table_changes(self, version: str, *, service: str, now: datetime) -> int:
        """SectorClassChanged for each issued or frozen permit in `class_changes` whose class or export orientation
        changed or was read for the first time, written by one statement by the contract's own pattern
        (`envelope_format`), as `Outbox.add(Envelope.wrap(...))` would; returns how many."""
        await self._insert_queued(
            "INSERT INTO outbox (event_id, event_type, topic, key, value, headers)"
            " SELECT e.event_id, $1::text, $2::text, convert_to(e.facility_id::text, 'UTF8'),"
            "  convert_to(format($3::text, e.event_id, $4::text, $1::text, $5::text, e.facility_id,"
            "   to_json(e.province_code), to_json(e.regency_code), e.permit_id, to_json(e.nib),"
            "   coalesce(to_json(e.permit_number)::text, 'null'), to_json(e.new_class), to_json(e.new_export),"
            "   to_json($6::text), to_json($7::text),"
            "   to_json(CASE WHEN e.old_basis = 'declared' THEN $8::text ELSE $9::text END)), 'UTF8'),"
            "  jsonb_build_object('content-type', $10::text, 'correlation_id', e.event_id)"
            f" FROM (SELECT gen_random_uuid() AS event_id, c.* FROM class_changes c WHERE {_ANNOUNCED}) e",
            SectorClassChanged.type_name(), SectorClassChanged.topic.name, _CLASS_CHANGED_FORMAT,
            Envelope.source_of(service), _moment(now), ClassBasis.KBLI_TABLE.value, version,
            first_reading_reason(version), revision_reason(version), CONTENT_TYPE, timeout=REDERIVE_TIMEOUT)
        return await self._connection.fetchval(f"SELECT count(*) FROM class_changes c WHERE {_ANNOUNCED}")


# A class announced: the permit operates (issued or frozen), and its class or export orientation moved, or the table
# read it for the first time: services that met the plant before the table (the reports service's staffing caps)
# kept no class for it.
_ANNOUNCED = ("c.status IN ('ISSUED', 'FROZEN') AND (c.old_basis = 'declared' OR c.old_class <> c.new_class"
              " OR c.old_export <> c.new_export)")


def _moment(moment: datetime) -> str:
    """A moment as the event contract writes it."""
    return to_json(moment).decode().strip('"')



_LETTER = ("letter_id, permit_id, kind, sequence, number, permit_number, company_name, nib, regency_code, issued_at,"
           " ground, periods, cause_event_id, warning_id, consecutive, more_periods")


class LetterRepository:
    """Warnings as recorded here, and the letters of warnings and sanctions. Callers hold the permit's row lock."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def record_warning(self, permit_id: uuid.UUID, warning_id: uuid.UUID, period_id: uuid.UUID,
                             deadline: datetime, consecutive: int, now: datetime,
                             cause: WarningCause = WarningCause.MISSED_REPORT,
                             breach_id: uuid.UUID | None = None) -> bool:
        """False when this warning was recorded before (it then has its letter already)."""
        inserted = await self._connection.fetchval(
            "INSERT INTO permit_warnings (warning_id, permit_id, period_id, deadline, consecutive, recorded_at, cause,"
            " breach_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (warning_id) DO NOTHING RETURNING true",
            warning_id, permit_id, period_id, deadline, consecutive, now, cause.value, breach_id,
        )
        return bool(inserted)

    async def breach_periods(self, permit_id: uuid.UUID, breach_ids: list[uuid.UUID]) -> dict[uuid.UUID, LetterPeriod]:
        """The period of each of these breaches that a recorded warning named, with its deadline."""
        rows = await self._connection.fetch(
            "SELECT breach_id, period_id, deadline FROM permit_warnings WHERE permit_id = $1 AND breach_id = ANY($2)",
            permit_id, breach_ids,
        )
        return {row["breach_id"]: LetterPeriod(row["period_id"], row["deadline"]) for row in rows}

    async def deadlines(self, permit_id: uuid.UUID, period_ids: list[uuid.UUID]) -> dict[uuid.UUID, datetime]:
        """The deadline of each of these periods that a recorded warning gave."""
        rows = await self._connection.fetch(
            "SELECT DISTINCT period_id, deadline FROM permit_warnings WHERE permit_id = $1 AND period_id = ANY($2)",
            permit_id, period_ids,
        )
        return {row["period_id"]: row["deadline"] for row in rows}

    async def last_sequence(self, permit_id: uuid.UUID, kind: LetterKind) -> int:
        return await self._connection.fetchval(
            "SELECT coalesce(max(sequence), 0) FROM permit_letters WHERE permit_id = $1 AND kind = $2",
            permit_id, kind.value,
        )

    async def add(self, letter: Letter, *, to_send: bool, correlation_id: str) -> None:
        """`to_send`: for the company's e-mail, by `unsent` and `sent` after this transaction."""
        g = letter.ground
        await self._connection.execute(
            f"INSERT INTO permit_letters ({_LETTER}, to_send, correlation_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12::jsonb, $13, $14, $15, $16, $17, $18)",
            letter.letter_id, letter.permit_id, letter.kind.value, letter.sequence, letter.number,
            letter.permit_number, letter.company_name, letter.nib, letter.regency_code, letter.issued_at,
            json.dumps({"code": g.code.value, "ladder": g.ladder, "rule": g.rule, "text": g.text,
                        "cause": g.cause.value if g.cause else None,
                        "breach_id": str(g.breach_id) if g.breach_id else None}),
            json.dumps([{"period_id": str(p.period_id), "deadline": p.deadline.isoformat() if p.deadline else None}
                        for p in letter.periods]),
            letter.cause_event_id, letter.warning_id, letter.consecutive, letter.more_periods, to_send, correlation_id,
        )

    async def unsent(self, limit: int) -> list[tuple[Letter, str]]:
        """Letters to send, oldest first, each with the correlation id of the event it accompanies."""
        rows = await self._connection.fetch(
            f"SELECT {_LETTER}, correlation_id FROM permit_letters WHERE to_send AND sent_at IS NULL"
            " ORDER BY seq LIMIT $1", limit)
        return [(_letter(row), row["correlation_id"]) for row in rows]

    async def sent(self, letter_id: uuid.UUID, now: datetime) -> bool:
        """Claims the sending, once: False when another sender was first (it then added the event)."""
        status = await self._connection.execute(
            "UPDATE permit_letters SET sent_at = $2 WHERE letter_id = $1 AND sent_at IS NULL", letter_id, now)
        return status == "UPDATE 1"

    async def of_permit(self, permit_id: uuid.UUID) -> list[Letter]:
        rows = await self._connection.fetch(
            f"SELECT {_LETTER} FROM permit_letters WHERE permit_id = $1 ORDER BY seq",
            permit_id)
        return [_letter(row) for row in rows]

    async def by_id(self, permit_id: uuid.UUID, letter_id: uuid.UUID) -> Letter | None:
        row = await self._connection.fetchrow(
            f"SELECT {_LETTER} FROM permit_letters WHERE permit_id = $1 AND letter_id = $2", permit_id, letter_id)
        return _letter(row) if row else None

    async def by_sequence(self, permit_id: uuid.UUID, kind: LetterKind, sequence: int) -> Letter | None:
        row = await self._connection.fetchrow(
            f"SELECT {_LETTER} FROM permit_letters WHERE permit_id = $1 AND kind = $2 AND sequence = $3",
            permit_id, kind.value, sequence)
        return _letter(row) if row else None


_TENANCY = ("estate_permit_id, tenant_permit_id, tenant_facility_id, status, claimed_by, claimed_at, decided_by,"
            " decided_role, decided_at, decision_reason, ended_by, ended_role, ended_at, end_cause, end_reason")


@dataclass(frozen=True)
class ListedTenancy:
    """A tenancy as an estate's list shows it, with the tenant's permit."""

    seq: int
    tenancy: Tenancy
    tenant: Permit


class Tenancies:
    """Plants' claims to lie in industrial estates, and the estates' answers."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def add(self, t: Tenancy) -> None:
        await self._connection.execute(
            f"INSERT INTO estate_tenancies ({_TENANCY}, province_code, regency_code)"
            " SELECT $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15, p.province_code, p.regency_code"
            " FROM permits p WHERE p.permit_id = $2",  # the tenant's region, to list by
            *_tenancy_values(t))

    async def get(self, estate_permit_id: uuid.UUID, tenant_permit_id: uuid.UUID, *,
                  for_update: bool = False) -> Tenancy | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._connection.fetchrow(
            f"SELECT {_TENANCY} FROM estate_tenancies WHERE tenant_permit_id = $2 AND estate_permit_id = $1{lock}",
            estate_permit_id, tenant_permit_id)
        return _tenancy(row) if row else None

    async def confirmed_of_plant(self, facility_id: uuid.UUID) -> Tenancy | None:
        row = await self._connection.fetchrow(
            f"SELECT {_TENANCY} FROM estate_tenancies WHERE tenant_facility_id = $1 AND status = 'confirmed'",
            facility_id)
        return _tenancy(row) if row else None

    async def of_estate(self, estate_permit_id: uuid.UUID, status: TenancyStatus, *,
                        for_update: bool = False) -> list[Tenancy]:
        lock = " FOR UPDATE" if for_update else ""
        rows = await self._connection.fetch(
            f"SELECT {_TENANCY} FROM estate_tenancies WHERE estate_permit_id = $1 AND status = $2 ORDER BY seq{lock}",
            estate_permit_id, status.value)
        return [_tenancy(row) for row in rows]

    async def listed(self, estate_permit_id: uuid.UUID, status: TenancyStatus, *, after: int,
                     limit: int) -> list[ListedTenancy]:
        """An estate's tenancies in one status, in the order they were claimed, after the keyset position."""
        rows = await self._connection.fetch(
            f"SELECT t.seq, {', '.join(f't.{c.strip()}' for c in _TENANCY.split(','))},"
            f" {', '.join(f'p.{c.strip()}' for c in _COLUMNS.split(','))}"
            " FROM estate_tenancies t JOIN permits p ON p.permit_id = t.tenant_permit_id"
            " WHERE t.estate_permit_id = $1 AND t.status = $2 AND t.seq > $3 ORDER BY t.seq LIMIT $4",
            estate_permit_id, status.value, after, limit)
        width = len(_TENANCY.split(","))
        return [ListedTenancy(row[0], _tenancy(row[1:width + 1]), _permit_in_order(row[width + 1:])) for row in rows]

    async def save(self, t: Tenancy) -> None:
        await self._connection.execute(
            "UPDATE estate_tenancies SET status = $3, decided_by = $4, decided_role = $5, decided_at = $6,"
            " decision_reason = $7, ended_by = $8, ended_role = $9, ended_at = $10, end_cause = $11, end_reason = $12"
            " WHERE estate_permit_id = $1 AND tenant_permit_id = $2",
            t.estate_permit_id, t.tenant_permit_id, t.status.value, t.decided_by, t.decided_role, t.decided_at,
            t.decision_reason, t.ended_by, t.ended_role, t.ended_at, t.end_cause.value if t.end_cause else None,
            t.end_reason)


def _tenancy_values(t: Tenancy) -> tuple[Any, ...]:
    return (t.estate_permit_id, t.tenant_permit_id, t.tenant_facility_id, t.status.value, t.claimed_by, t.claimed_at,
            t.decided_by, t.decided_role, t.decided_at, t.decision_reason, t.ended_by, t.ended_role, t.ended_at,
            t.end_cause.value if t.end_cause else None, t.end_reason)


def _tenancy(row: asyncpg.Record | tuple[Any, ...]) -> Tenancy:
    (estate, tenant, facility, status, claimed_by, claimed_at, decided_by, decided_role, decided_at, decision_reason,
     ended_by, ended_role, ended_at, end_cause, end_reason) = row
    return Tenancy(estate, tenant, facility, TenancyStatus(status), claimed_by, claimed_at, decided_by, decided_role,
                   decided_at, decision_reason, ended_by, ended_role, ended_at,
                   TenancyEndCause(end_cause) if end_cause else None, end_reason)


_SANCTION_REQUEST = ("request_id, permit_id, action, ground, reason, office_region, inspection_id, requested_at,"
                     " received_at, status, decided_by, decided_role, decided_at, decision_reason")


@dataclass(frozen=True)
class ListedSanctionRequest:
    seq: int
    request: SanctionRequest
    permit: Permit


@dataclass(frozen=True)
class SanctionRequestSearch:
    """Filters of `GET /sanction-requests`, the caller's region, and the keyset position (the last `seq` seen)."""

    status: SanctionRequestStatus | None = None
    region: str | None = None
    after: int = 0
    limit: int = 50


class SanctionRequests:
    """Regional offices' sanction requests, and the operators' decisions."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def add(self, r: SanctionRequest) -> bool:
        """Kept once: False when the request was already received (a redelivery)."""
        status = await self._connection.execute(
            f"INSERT INTO sanction_requests ({_SANCTION_REQUEST}, province_code, regency_code)"
            " SELECT $1,$2,$3,$4::jsonb,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14, p.province_code, p.regency_code"
            " FROM permits p WHERE p.permit_id = $2 ON CONFLICT (request_id) DO NOTHING",
            *_sanction_request_values(r))
        return status == "INSERT 0 1"

    async def get(self, request_id: uuid.UUID, *, for_update: bool = False) -> SanctionRequest | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._connection.fetchrow(
            f"SELECT {_SANCTION_REQUEST} FROM sanction_requests WHERE request_id = $1{lock}", request_id)
        return _sanction_request(row) if row else None

    async def decided(self, r: SanctionRequest) -> None:
        """The decision, once: a decided request is the record and is never written again."""
        status = await self._connection.execute(
            "UPDATE sanction_requests SET status = $2, decided_by = $3, decided_role = $4, decided_at = $5,"
            " decision_reason = $6 WHERE request_id = $1 AND status = 'pending'",
            r.request_id, r.status.value, r.decided_by, r.decided_role, r.decided_at, r.decision_reason)
        if status != "UPDATE 1":
            raise LookupError(f"sanction request {r.request_id} is not pending")

    async def listed(self, q: SanctionRequestSearch) -> list[ListedSanctionRequest]:
        """Requests, the oldest first, after the keyset position; in one status and a region (a province covers its
        regencies), as given."""
        conditions = ["r.seq > $1"]
        values: list[object] = [q.after]
        if q.status is not None:
            values.append(q.status.value)
            conditions.append(f"r.status = ${len(values)}")
        if q.region is not None:
            values.append(q.region)
            conditions.append(f"r.{'regency_code' if '.' in q.region else 'province_code'} = ${len(values)}")
        values.append(q.limit)
        rows = await self._connection.fetch(
            f"SELECT r.seq, {', '.join(f'r.{c.strip()}' for c in _SANCTION_REQUEST.split(','))},"
            f" {', '.join(f'p.{c.strip()}' for c in _COLUMNS.split(','))}"
            " FROM sanction_requests r JOIN permits p USING (permit_id)"
            f" WHERE {' AND '.join(conditions)} ORDER BY r.seq LIMIT ${len(values)}", *values)
        width = len(_SANCTION_REQUEST.split(","))
        return [ListedSanctionRequest(row[0], _sanction_request(row[1:width + 1]), _permit_in_order(row[width + 1:]))
                for row in rows]


def _sanction_request_values(r: SanctionRequest) -> tuple[Any, ...]:
    return (r.request_id, r.permit_id, r.action.value, r.ground.model_dump_json(), r.reason, r.office_region,
            r.inspection_id, r.requested_at, r.received_at, r.status.value, r.decided_by, r.decided_role, r.decided_at,
            r.decision_reason)


def _sanction_request(row: asyncpg.Record | tuple[Any, ...]) -> SanctionRequest:
    (request_id, permit_id, action, ground, reason, office_region, inspection_id, requested_at, received_at, status,
     decided_by, decided_role, decided_at, decision_reason) = row
    return SanctionRequest(request_id, permit_id, Action(action), SanctionGround.model_validate_json(ground), reason,
                           office_region, inspection_id, requested_at, received_at, SanctionRequestStatus(status),
                           decided_by, decided_role, decided_at, decision_reason)


class PermitsWork(UnitOfWork):
    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.permits = PermitRepository(connection)
        self.closures = ClosureRepository(connection)
        self.reports_filed = FiledReports(connection)
        self.reactivations = ReactivationRequests(connection)
        self.objections = ObjectionRepository(connection)
        self.worklists = Worklists(connection)
        self.letters = LetterRepository(connection)
        self.class_reviews = ClassReviews(connection)
        self.sector_tables = SectorTables(connection)
        self.tenancies = Tenancies(connection)
        self.sanction_requests = SanctionRequests(connection)


# A plant recorded before the KBLI table: its class as the company declared it, until the service first derives it.
_DECLARED = "declared"


def _values(p: Permit) -> tuple[Any, ...]:
    return (p.permit_id, p.facility_id, p.nib, p.company_name, p.province_code, p.regency_code, p.sector_class,
            p.workforce_total, p.status.value, p.permit_number, p.freeze_count, p.revoked_at, p.issued_at,
            p.plant_key, p.export_oriented, p.class_basis.value if p.class_basis else _DECLARED,
            p.class_table_version, p.kind.value, p.estate_nib)


def _permit(row: asyncpg.Record) -> Permit:
    return _permit_in_order(tuple(row[c.strip()] for c in _COLUMNS.split(",")))


def _request_values(r: ReactivationRequest) -> tuple[Any, ...]:
    conditions = [{"condition": c.condition, "met": c.met, "message": c.message,
                   "missing_periods": [str(p) for p in c.missing_periods],
                   "open_request": str(c.open_request) if c.open_request else None} for c in r.conditions]
    return (r.request_id, r.permit_id, r.status.value, r.corrective_action, list(r.missed_periods), r.freeze_count,
            json.dumps(conditions), r.requested_by, r.requested_at, r.decided_by, r.decided_role, r.decided_at,
            r.decision_reason)


def _request(row: asyncpg.Record | tuple[Any, ...]) -> ReactivationRequest:
    (request_id, permit_id, status, corrective_action, missed_periods, freeze_count, conditions, requested_by,
     requested_at, decided_by, decided_role, decided_at, decision_reason) = row
    checks = tuple(ConditionCheck(c["condition"], c["met"], c["message"],
                                  tuple(uuid.UUID(p) for p in c["missing_periods"]),
                                  uuid.UUID(c["open_request"]) if c["open_request"] else None)
                   for c in json.loads(conditions))
    return ReactivationRequest(request_id, permit_id, RequestStatus(status), corrective_action, tuple(missed_periods),
                               freeze_count, checks, requested_by, requested_at, decided_by, decided_role, decided_at,
                               decision_reason)


def _permit_in_order(values: tuple[Any, ...]) -> Permit:
    """A permit from the columns of `_COLUMNS`, in their order (a part of a wider row)."""
    (permit_id, facility_id, nib, company, province, regency, sector, workforce, status, number, freezes, revoked_at,
     issued_at, plant_key, export_oriented, basis, table_version, kind, estate_nib) = values
    return Permit(permit_id, facility_id, nib, company, province, regency, sector, workforce, PermitStatus(status),
                  number, freezes, revoked_at, issued_at, plant_key, export_oriented,
                  None if basis == _DECLARED else ClassBasis(basis), table_version, PermitKind(kind), estate_nib)


def _review_values(r: ClassReview) -> tuple[Any, ...]:
    return (r.review_id, r.permit_id, r.status.value, r.claimed.sector_class.value, r.claimed.export_oriented,
            r.derived.sector_class.value, r.derived.export_oriented, r.table_version, r.origin.value, r.opened_by,
            r.opened_at, r.decided_by, r.decided_role, r.decided_at, r.decision_reason)


def _review(row: asyncpg.Record | tuple[Any, ...]) -> ClassReview:
    (review_id, permit_id, status, claimed_class, claimed_export, derived_class, derived_export, table_version, origin,
     opened_by, opened_at, decided_by, decided_role, decided_at, decision_reason) = row
    return ClassReview(review_id, permit_id, ReviewStatus(status), Classing(SectorClass(claimed_class), claimed_export),
                       Classing(SectorClass(derived_class), derived_export), table_version, ReviewOrigin(origin),
                       opened_by, opened_at, decided_by, decided_role, decided_at, decision_reason)


def _objection_values(o: Objection) -> tuple[Any, ...]:
    return (o.objection_id, o.permit_id, o.sanction.seq, o.sanction.action.value, o.sanction.from_status.value,
            o.sanction.at, o.last_day, o.statement, o.filed_by, o.filed_role, o.filed_at,
            o.outcome.value if o.outcome else None, o.reason, o.decided_by, o.decided_role, o.decided_at)


def _objection(row: asyncpg.Record) -> Objection:
    return Objection(
        row["objection_id"], row["permit_id"],
        Sanction(row["sanction_seq"], Action(row["sanction"]), PermitStatus(row["sanction_from"]),
                 row["sanctioned_at"]),
        row["statement"], row["filed_by"], row["filed_role"], row["filed_at"], row["last_day"],
        ObjectionOutcome(row["outcome"]) if row["outcome"] else None, row["reason"], row["decided_by"],
        row["decided_role"], row["decided_at"])


def _letter(row: asyncpg.Record) -> Letter:
    ground = json.loads(row["ground"])
    return Letter(
        row["letter_id"], row["permit_id"], LetterKind(row["kind"]), row["sequence"], row["number"],
        row["permit_number"], row["company_name"], row["nib"], row["regency_code"], row["issued_at"],
        LetterGround(GroundCode(ground["code"]), ground["ladder"], ground["rule"], ground["text"],
                     WarningCause(ground["cause"]) if ground.get("cause") else None,
                     uuid.UUID(ground["breach_id"]) if ground.get("breach_id") else None),
        tuple(LetterPeriod(uuid.UUID(p["period_id"]), datetime.fromisoformat(p["deadline"]) if p["deadline"] else None)
              for p in json.loads(row["periods"])),
        row["cause_event_id"], row["warning_id"], row["consecutive"], row["more_periods"],
    )
