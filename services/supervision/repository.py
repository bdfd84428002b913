"""Plain SQL for the supervision service; no SQL anywhere else in it."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.supervision.domain import RISK_INPUTS, DeclaredReport, PlantRisk, RiskCounts, RiskScore
from shared.contract import ProtocolItem
from shared.storage.db import Connection
from shared.storage.unit_of_work import UnitOfWork

# RiskCounts' fields (RISK_INPUTS), spelled here as the columns they are.
RISK_COLUMNS = ("missed_reports", "late_reports", "protocol_lapses", "capacity_breaches", "cases", "clusters",
                "complaints")
_COUNTS = ", ".join(RISK_COLUMNS)
_R_COUNTS = ", ".join(f"r.{column}" for column in RISK_COLUMNS)
_UPDATED_COUNTS = ", ".join(f"{column} = EXCLUDED.{column}" for column in RISK_COLUMNS)
_RISK = f"facility_id, {_COUNTS}, since_on, last_inspected_on"
_INSPECTION = ("inspection_id, reference, facility_id, permit_id, province_code, regency_code, status, planned_on,"
               " team, purpose, planned_by, planned_role, planned_at, inspected_on, findings, violations, notes,"
               " contradicted_report_id, recorded_by, recorded_role, recorded_at")
_COMPLAINT = ("complaint_id, status, category, text, permit_number_given, address, province_code, regency_code,"
              " facility_id, permit_id, contact_email, contact_phone, filed_at, updated_at, note")
_REQUEST = ("request_id, facility_id, permit_id, province_code, regency_code, action, ground, reason, office_region,"
            " inspection_id, requested_by, requested_at, status, decision_reason, decided_at")


def reference_hash(reference: str) -> bytes:
    return hashlib.sha256(reference.encode()).digest()


@dataclass(frozen=True)
class PlantFacts:
    """A plant as PermitIssued tells it."""

    facility_id: uuid.UUID
    permit_id: uuid.UUID
    permit_number: str
    nib: str
    company_name: str
    province_code: str
    regency_code: str
    issued_on: date


class SupervisionRepository:
    def __init__(self, connection: Connection, score: RiskScore) -> None:
        self._connection = connection
        self._score = score

    # -- plants and their risk ---------------------------------------------------------------------

    async def learn_plants(self, facts: list[PlantFacts], now: datetime) -> None:
        """Insert or refresh plants from PermitIssued (a run of them in three statements): the registry row, and
        the risk row listed again, its rank recomputed from the counts it may already hold."""
        latest = list({fact.facility_id: fact for fact in facts}.values())  # a statement touches a row once
        ids = [fact.facility_id for fact in latest]
        await self._connection.execute(
            "INSERT INTO plants (facility_id, permit_id, permit_number, nib, company_name, province_code, regency_code,"
            " issued_on, status, updated_at)"
            " SELECT f.*, 'issued', $9 FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],"
            " $6::text[], $7::text[], $8::date[]) AS f"
            " ON CONFLICT (facility_id) DO UPDATE SET permit_id = EXCLUDED.permit_id,"
            " permit_number = EXCLUDED.permit_number, nib = EXCLUDED.nib, company_name = EXCLUDED.company_name,"
            " province_code = EXCLUDED.province_code, regency_code = EXCLUDED.regency_code, status = 'issued',"
            " issued_on = EXCLUDED.issued_on, updated_at = EXCLUDED.updated_at",
            ids, [f.permit_id for f in latest], [f.permit_number for f in latest], [f.nib for f in latest],
            [f.company_name for f in latest], [f.province_code for f in latest], [f.regency_code for f in latest],
            [f.issued_on for f in latest], now)
        known = {risk.facility_id: risk for risk in await self.risks(ids)}
        risks = [(known.get(f.facility_id) or PlantRisk(f.facility_id, RiskCounts(), f.issued_on)).issued(f.issued_on)
                 for f in latest]
        await self._save_risks(risks, [(f.province_code, f.regency_code) for f in latest], listed=True)

    async def plant(self, facility_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self._connection.fetchrow("SELECT * FROM plants WHERE facility_id = $1", facility_id)
        return dict(row) if row else None

    async def plant_by_permit(self, permit_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self._connection.fetchrow("SELECT * FROM plants WHERE permit_id = $1", permit_id)
        return dict(row) if row else None

    async def plants_by_number(self, permit_numbers: list[str]) -> dict[str, dict[str, Any]]:
        """The plants holding these numbers now, by number (a revoked permit's names none)."""
        rows = await self._connection.fetch(
            "SELECT * FROM plants WHERE permit_number = ANY($1::text[]) AND status <> 'revoked'", permit_numbers)
        return {row["permit_number"]: dict(row) for row in rows}

    async def plant_by_number(self, permit_number: str) -> dict[str, Any] | None:
        """The plant holding this number now (a revoked permit's number names no plant to complain about)."""
        return (await self.plants_by_number([permit_number])).get(permit_number)

    async def set_status(self, facility_id: uuid.UUID, status: str, now: datetime) -> None:
        """The permit frozen, reactivated, revoked or restored: a revoked plant leaves the worklist."""
        await self._connection.execute(
            "WITH p AS (UPDATE plants SET status = $2, updated_at = $3 WHERE facility_id = $1 RETURNING facility_id)"
            " UPDATE plant_risk r SET listed = ($2 <> 'revoked') FROM p WHERE r.facility_id = p.facility_id",
            facility_id, status, now)

    async def risk(self, facility_id: uuid.UUID) -> PlantRisk | None:
        """The plant's risk, locked until the transaction ends: every change to one plant's counts is serialised."""
        risks = await self.risks([facility_id])
        return risks[0] if risks else None

    async def save_risks(self, risks: list[PlantRisk], regions: list[tuple[str, str]], *,
                         open_complaints: int = 0) -> None:
        """Plants' counts and ranks, each plant's open complaints changed by `open_complaints`."""
        await self._save_risks(risks, regions, listed=None, open_complaints=open_complaints)

    async def risks(self, ids: list[uuid.UUID]) -> list[PlantRisk]:
        """The plants' risks, locked until the transaction ends (in one order, so that two batches never deadlock)."""
        rows = await self._connection.fetch(
            f"SELECT {_RISK} FROM plant_risk WHERE facility_id = ANY($1::uuid[]) ORDER BY facility_id FOR UPDATE", ids)
        return [PlantRisk(row["facility_id"], RiskCounts(*(row[name] for name in RISK_INPUTS)), row["since_on"],
                          row["last_inspected_on"]) for row in rows]

    async def save_risk(self, risk: PlantRisk, province_code: str, regency_code: str, *,
                        open_complaints: int = 0) -> None:
        """A plant's counts and rank, and its open complaints changed by `open_complaints`; a plant first heard of
        here is not listed until its permit is known."""
        await self.save_risks([risk], [(province_code, regency_code)], open_complaints=open_complaints)

    async def _save_risks(self, risks: list[PlantRisk], regions: list[tuple[str, str]], *, listed: bool | None,
                          open_complaints: int = 0) -> None:
        counts = [[getattr(risk.counts, name) for risk in risks] for name in RISK_COLUMNS]
        await self._connection.execute(
            f"INSERT INTO plant_risk (facility_id, province_code, regency_code, {_COUNTS}, since_on,"
            " last_inspected_on, rank_key, listed, open_complaints)"
            " SELECT r.*, coalesce($14::boolean, false), greatest(0, $15::int)"
            " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::int[], $6::int[], $7::int[], $8::int[],"
            " $9::int[], $10::int[], $11::date[], $12::date[], $13::float8[]) AS r"
            f" ON CONFLICT (facility_id) DO UPDATE SET {_UPDATED_COUNTS}, province_code = EXCLUDED.province_code,"
            " regency_code = EXCLUDED.regency_code, since_on = EXCLUDED.since_on,"
            " last_inspected_on = EXCLUDED.last_inspected_on, rank_key = EXCLUDED.rank_key,"
            " listed = coalesce($14::boolean, plant_risk.listed),"
            " open_complaints = greatest(0, plant_risk.open_complaints + $15)",
            [risk.facility_id for risk in risks], [province for province, _ in regions],
            [regency for _, regency in regions], *counts, [risk.since for risk in risks],
            [risk.last_inspected_on for risk in risks],
            [self._score.rank_key(risk.counts, risk.since) for risk in risks], listed, open_complaints)

    async def worklist(self, *, province: str | None, regency: str | None,
                       after: tuple[float, uuid.UUID] | None, limit: int) -> list[dict[str, Any]]:
        """Listed plants by rank, highest first, one keyset page after `after` (rank_key, facility_id).

        Only the filters given become conditions, so that each shape reads its own partial index backwards."""
        conditions = ["r.listed"]
        args: list[object] = []
        for column, value in (("r.province_code", province), ("r.regency_code", regency)):
            if value is not None:
                args.append(value)
                conditions.append(f"{column} = ${len(args)}")
        if after is not None:
            args.append(after[0])
            rank = f"${len(args)}"
            args.append(after[1])
            conditions.append(f"(r.rank_key, r.facility_id) < ({rank}, ${len(args)})")
        args.append(limit)
        rows = await self._connection.fetch(
            f"SELECT r.facility_id, {_R_COUNTS}, r.since_on, r.last_inspected_on,"
            " r.open_complaints, r.rank_key, r.regency_code, p.permit_id, p.permit_number, p.company_name, p.status"
            f" FROM plant_risk r JOIN plants p USING (facility_id) WHERE {' AND '.join(conditions)}"
            f" ORDER BY r.rank_key DESC, r.facility_id DESC LIMIT ${len(args)}", *args)
        return [dict(row) for row in rows]

    # -- declared reports ----------------------------------------------------------------------------

    async def remember_declared(self, reports: list[tuple[uuid.UUID, DeclaredReport]]) -> None:
        """Declared reports of their plants, in one statement (the items answered no as a comma-separated text
        each, since an array of arrays would be flattened by unnest)."""
        if not reports:
            return
        await self._connection.execute(
            "INSERT INTO declared_reports (report_id, facility_id, period_starts_on, protocol_lapses)"
            " SELECT r.report_id, r.facility_id, r.period_starts_on, string_to_array(r.lapses, ',')"
            " FROM unnest($1::uuid[], $2::uuid[], $3::date[], $4::text[])"
            " AS r (report_id, facility_id, period_starts_on, lapses) ON CONFLICT (report_id) DO NOTHING",
            [report.report_id for _, report in reports], [facility for facility, _ in reports],
            [report.period_starts_on for _, report in reports],
            [",".join(sorted(report.protocol_lapses)) for _, report in reports])

    async def latest_declared(self, facility_id: uuid.UUID, on_or_before: date) -> DeclaredReport | None:
        row = await self._connection.fetchrow(
            "SELECT report_id, period_starts_on, protocol_lapses FROM declared_reports"
            " WHERE facility_id = $1 AND period_starts_on <= $2 ORDER BY period_starts_on DESC LIMIT 1",
            facility_id, on_or_before)
        if row is None:
            return None
        return DeclaredReport(row["report_id"], row["period_starts_on"],
                              frozenset(ProtocolItem(item) for item in row["protocol_lapses"]))

    # -- inspections ----------------------------------------------------------------------------------

    async def next_inspection_number(self, year: int) -> int:
        return await self._connection.fetchval(
            "INSERT INTO inspection_sequences (year, last) VALUES ($1, 1)"
            " ON CONFLICT (year) DO UPDATE SET last = inspection_sequences.last + 1 RETURNING last", year)

    async def add_inspection(self, row: dict[str, Any], complaint_ids: list[uuid.UUID]) -> None:
        await self._connection.execute(
            "INSERT INTO inspections (inspection_id, reference, facility_id, permit_id, province_code, regency_code,"
            " status, planned_on, team, purpose, planned_by, planned_role, planned_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, 'planned', $7, $8::jsonb, $9, $10, $11, $12)",
            row["inspection_id"], row["reference"], row["facility_id"], row["permit_id"], row["province_code"],
            row["regency_code"], row["planned_on"], json.dumps(row["team"]), row["purpose"], row["planned_by"],
            row["planned_role"], row["planned_at"])
        if complaint_ids:
            await self._connection.execute(
                "INSERT INTO inspection_complaints (inspection_id, complaint_id) SELECT $1, unnest($2::uuid[])",
                row["inspection_id"], complaint_ids)

    async def inspection(self, inspection_id: uuid.UUID, *, for_update: bool = False) -> dict[str, Any] | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._connection.fetchrow(
            f"SELECT {_INSPECTION}, ARRAY(SELECT complaint_id FROM inspection_complaints c WHERE"
            f" c.inspection_id = i.inspection_id ORDER BY complaint_id) AS complaint_ids,"
            " ARRAY(SELECT photo_id FROM inspection_photos f WHERE f.inspection_id = i.inspection_id"
            f" ORDER BY uploaded_at, photo_id) AS photo_ids FROM inspections i WHERE inspection_id = $1{lock}",
            inspection_id)
        return _inspection(row) if row else None

    async def record_inspection(self, inspection_id: uuid.UUID, *, inspected_on: date, findings: dict[str, str],
                                violations: int, notes: str, contradicted_report_id: uuid.UUID | None, by: str,
                                role: str, now: datetime) -> None:
        await self._connection.execute(
            "UPDATE inspections SET status = 'recorded', inspected_on = $2, findings = $3::jsonb, violations = $4,"
            " notes = $5, contradicted_report_id = $6, recorded_by = $7, recorded_role = $8, recorded_at = $9"
            " WHERE inspection_id = $1",
            inspection_id, inspected_on, json.dumps(findings), violations, notes, contradicted_report_id, by, role, now)

    async def inspections(self, *, province: str | None, regency: str | None,
                          status: str | None, after: uuid.UUID | None, limit: int) -> list[dict[str, Any]]:
        rows = await self._page(_INSPECTION, "inspections", "inspection_id", (province, regency, status, after), limit)
        return [_inspection(row) for row in rows]

    async def photo_count(self, inspection_id: uuid.UUID) -> int:
        return await self._connection.fetchval(
            "SELECT count(*) FROM inspection_photos WHERE inspection_id = $1", inspection_id)

    async def add_photo(self, *, photo_id: uuid.UUID, inspection_id: uuid.UUID, content_type: str, data: bytes,
                        width: int, height: int, by: str, now: datetime) -> None:
        await self._connection.execute(
            "INSERT INTO inspection_photos (photo_id, inspection_id, content_type, data, width, height, uploaded_by,"
            " uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            photo_id, inspection_id, content_type, data, width, height, by, now)

    async def photo(self, inspection_id: uuid.UUID, photo_id: uuid.UUID) -> tuple[str, bytes] | None:
        row = await self._connection.fetchrow(
            "SELECT content_type, data FROM inspection_photos WHERE inspection_id = $1 AND photo_id = $2",
            inspection_id, photo_id)
        return (row["content_type"], row["data"]) if row else None

    # -- complaints ----------------------------------------------------------------------------------

    async def add_complaints(self, rows: list[dict[str, Any]]) -> None:
        await self._connection.executemany(
            "INSERT INTO complaints (complaint_id, reference_hash, status, category, text, permit_number_given,"
            " address, province_code, regency_code, facility_id, permit_id, contact_email, contact_phone, filed_at,"
            " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)",
            [(row["complaint_id"], reference_hash(row["reference"]), row["status"], row["category"], row["text"],
              row["permit_number_given"], row["address"], row["province_code"], row["regency_code"],
              row["facility_id"], row["permit_id"], row["contact_email"], row["contact_phone"], row["filed_at"])
             for row in rows])

    async def complaint_by_reference(self, reference: str) -> dict[str, Any] | None:
        row = await self._connection.fetchrow(
            "SELECT status, filed_at, updated_at FROM complaints WHERE reference_hash = $1", reference_hash(reference))
        return dict(row) if row else None

    async def complaint(self, complaint_id: uuid.UUID, *, for_update: bool = False) -> dict[str, Any] | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._connection.fetchrow(f"SELECT {_COMPLAINT} FROM complaints WHERE complaint_id = $1{lock}",
                                              complaint_id)
        return dict(row) if row else None

    async def complaints_of(self, ids: list[uuid.UUID]) -> list[dict[str, Any]]:
        rows = await self._connection.fetch(
            f"SELECT {_COMPLAINT} FROM complaints WHERE complaint_id = ANY($1::uuid[]) ORDER BY complaint_id"
            " FOR UPDATE", ids)
        return [dict(row) for row in rows]

    async def update_complaint(self, complaint_id: uuid.UUID, *, status: str, now: datetime, by: str | None = None,
                               note: str | None = None, plant: dict[str, Any] | None = None) -> None:
        """A complaint's new status; matched, its plant and region (the plant's) too."""
        await self._connection.execute(
            "UPDATE complaints SET status = $2, updated_at = $3, updated_by = coalesce($4, updated_by),"
            " note = coalesce($5, note), facility_id = coalesce($6, facility_id), permit_id = coalesce($7, permit_id),"
            " province_code = coalesce($8, province_code), regency_code = coalesce($9, regency_code)"
            " WHERE complaint_id = $1",
            complaint_id, status, now, by, note, plant and plant["facility_id"], plant and plant["permit_id"],
            plant and plant["province_code"], plant and plant["regency_code"])

    async def mark_inspected(self, complaint_ids: list[uuid.UUID], now: datetime) -> None:
        await self._connection.execute(
            "UPDATE complaints SET status = 'inspected', updated_at = $2 WHERE complaint_id = ANY($1::uuid[])",
            complaint_ids, now)

    async def complaints(self, *, province: str | None, regency: str | None, status: str | None,
                         after: uuid.UUID | None, limit: int) -> list[dict[str, Any]]:
        rows = await self._page(_COMPLAINT, "complaints", "complaint_id", (province, regency, status, after), limit)
        return [dict(row) for row in rows]

    async def change_open_complaints(self, facility_id: uuid.UUID, delta: int) -> None:
        await self._connection.execute(
            "UPDATE plant_risk SET open_complaints = greatest(0, open_complaints + $2) WHERE facility_id = $1",
            facility_id, delta)

    # -- sanction requests ------------------------------------------------------------------------------

    async def add_request(self, row: dict[str, Any]) -> None:
        await self._connection.execute(
            f"INSERT INTO sanction_requests ({_REQUEST}) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11,"
            " $12, 'pending', NULL, NULL)",
            row["request_id"], row["facility_id"], row["permit_id"], row["province_code"], row["regency_code"],
            row["action"], json.dumps(row["ground"]), row["reason"], row["office_region"], row["inspection_id"],
            row["requested_by"], row["requested_at"])

    async def request(self, request_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self._connection.fetchrow(f"SELECT {_REQUEST} FROM sanction_requests WHERE request_id = $1",
                                              request_id)
        return _request(row) if row else None

    async def decide_request(self, request_id: uuid.UUID, status: str, reason: str, now: datetime) -> None:
        """Decided once: a redelivered or late decision leaves the first standing."""
        await self._connection.execute(
            "UPDATE sanction_requests SET status = $2, decision_reason = $3, decided_at = $4"
            " WHERE request_id = $1 AND status = 'pending'", request_id, status, reason, now)

    async def requests(self, *, province: str | None, regency: str | None, status: str | None,
                       after: uuid.UUID | None, limit: int) -> list[dict[str, Any]]:
        rows = await self._page(_REQUEST, "sanction_requests", "request_id", (province, regency, status, after), limit)
        return [_request(row) for row in rows]

    async def _page(self, columns: str, table: str, key: str, filters: tuple[object, object, object, object],
                    limit: int) -> list[Any]:
        """One keyset page of a list by `key`, in a province, a regency and a status, as given (`filters`: those
        and the last key of the page before). Only the filters given become conditions."""
        province, regency, status, after = filters
        args: list[object] = []
        where = ["true"]
        for column, operator, value in (("province_code", "=", province), ("regency_code", "=", regency),
                                        ("status", "=", status), (key, ">", after)):
            if value is not None:
                args.append(value)
                where.append(f"{column} {operator} ${len(args)}")
        args.append(limit)
        return await self._connection.fetch(
            f"SELECT {columns} FROM {table} WHERE {' AND '.join(where)} ORDER BY {key} LIMIT ${len(args)}", *args)


class SupervisionWork(UnitOfWork):
    def __init__(self, connection: Connection, score: RiskScore) -> None:
        super().__init__(connection)
        self.supervision = SupervisionRepository(connection, score)


def _inspection(row: Any) -> dict[str, Any]:
    found = dict(row)
    found["team"] = json.loads(found["team"])
    found["findings"] = json.loads(found["findings"]) if found["findings"] else None
    return found


def _request(row: Any) -> dict[str, Any]:
    found = dict(row)
    found["ground"] = json.loads(found["ground"])
    return found
