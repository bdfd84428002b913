"""One function per command, consumed event and sweep step: load, ask the domain, save, add outgoing events."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import structlog

from services.reports import domain
from services.reports.domain import (
    Period, PeriodNotFound, Regime, RegimeEntry, RegimeTimeline, ReportFigures, Sanction, SanctionLadder, Schedule,
    ScheduleNotFound, Timing,
)
from services.reports import staffing
from services.reports.capacity import (
    CapacityCheck, LatestReport, PlantsByClass, RegionPpkm, ReportedStaffing, by_province, check_report,
    dose_changes, iso_week, replaces, summed,
)
from services.reports.repository import (
    DuePeriod, PlantRow, RegionCounts, ReportsWork, StoredReport, Target, TenantRow,
)
from services.reports.staffing import (
    CAPACITY_LADDER, Allowance, LevelEntry, RegionNames, RepeatedCapacityBreaches, RuleBook, RuleSet,
    checked_day, level_on,
)
from shared.clock import Clock
from shared.regions import KemendagriRegions
from shared.web.access import Access, Scope
from shared.contract import (
    EVIDENCE_MAX_ITEMS, CapacityBreachDetected, CapacityExcess, ClosureScope, Envelope, EstateTenancyConfirmed,
    EstateTenancyEnded, FacilityClosureOrdered, FacilityReopened, GroundCode, PermitFrozen, PermitIssued,
    PermitReactivated, PermitRevoked, PpkmLevel, PpkmLevelSet, ProtocolItem, ReportDue, ReportOverdue,
    ReportSubmitted, SanctionAction, SanctionEvidence, SanctionRecommended, SanctionReversed, SectorClass,
    SectorClassChanged, WarningCause, WarningIssued,
)
from shared.messaging.group_commit import GroupCommit
from shared.observability import record
from shared.storage.unit_of_work import Database

SERVICE = "reports"
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ReportsConfig:
    """`regime` (IOMKI_REPORT_REGIME, for demonstrations and tests) replaces the timeline with that one rule from
    the beginning of time, under SE 3/2021's ladder; without it, the timeline is the database's (the `shipped`
    entries, upserted at start, and those operators scheduled)."""

    regime: Regime | None = None
    timing: Timing = Timing()
    shipped: tuple[RegimeEntry, ...] = ()
    # Periods per sweep transaction. A batch costs a few statements and a commit whatever its size: larger batches
    # swept faster in `make bench` up to this size, and no faster beyond it (docs/performance.md).
    # A batch holds its plants' rows for its fraction of a second: a report for one of them waits that long.
    sweep_batch: int = 5000
    sweep_lanes: int = 2  # concurrent batch transactions while much is due (each holds a pool connection)
    # The PPKM staffing rule sets shipped in ppkm_rules.toml, each with its rules as the file states them.
    shipped_rule_sets: tuple[tuple[RuleSet, list[dict[str, Any]]], ...] = ()
    # When repeated breaches of the staffing cap recommend a freeze (IOMKI_CAPACITY_BREACHES, _WINDOW_DAYS).
    capacity_ladder: RepeatedCapacityBreaches = RepeatedCapacityBreaches()
    # Seconds a replica keeps the rule sets in memory before reading them again (IOMKI_PPKM_RULES_REFRESH_SECONDS).
    rules_refresh: float = 5.0
    # Plants per transaction when a region's allowances are re-evaluated: each chunk is read, evaluated and written
    # in one statement, and holds its plants' allowance rows only for that long.
    allowance_chunk: int = 5000


@dataclass(frozen=True)
class PlantAllowance:
    """A plant's allowance on a day, with the level entry it rests on and what it says in words."""

    plant: PlantRow
    allowance: Allowance
    level_entry: LevelEntry | None
    summary_id: str
    summary_en: str


@dataclass(frozen=True)
class ReportIn:
    permit_id: uuid.UUID
    period_id: uuid.UUID
    figures: ReportFigures
    payload_json: str  # the report as submitted, stored as it came
    declared: bool = False  # the company declares the report's data true (SE 5/2021)
    pedulilindungi: bool = False  # its protocol checklist says PeduliLindungi is scanned at the gate
    lapses: tuple[ProtocolItem, ...] = ()  # the checklist items the company answered no


@dataclass(frozen=True)
class Accepted:
    report_id: uuid.UUID
    late: bool
    supersedes: uuid.UUID | None
    capacity: CapacityCheck | None = None  # the report against the PPKM staffing cap
    breach_id: uuid.UUID | None = None  # the breach recorded when it was over the cap


class _Acceptance(NamedTuple):
    report: StoredReport
    corrects: bool  # the period's current report is superseded by this one
    event: Envelope
    target: Target
    staffing: ReportedStaffing


def _about(schedule: Schedule) -> dict[str, Any]:
    return dict(facility_id=schedule.facility_id, province_code=schedule.province_code,
                regency_code=schedule.regency_code, permit_id=schedule.permit_id)


@dataclass
class ReportHandlers:
    database: Database[ReportsWork]
    clock: Clock
    config: ReportsConfig
    regions: RegionNames = field(default_factory=KemendagriRegions)
    _submissions: GroupCommit[tuple[ReportIn, Access], Accepted] = field(init=False, repr=False)
    _rule_book: tuple[float, RuleBook] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        # Under load a short wait lets the reports on their way join the next transaction (docs/performance.md).
        self._submissions = GroupCommit(self._submit_together, key=lambda submitted: submitted[0].permit_id,
                                        linger=0.002, busy_batch=4)

    # -- consumed events ---------------------------------------------------------------------------

    async def on_permit_issued(self, work: ReportsWork, envelope: Envelope, event: PermitIssued) -> None:
        now = self.clock.now()
        schedule = Schedule(
            permit_id=event.permit_id, facility_id=event.facility_id, nib=event.nib,
            province_code=event.province_code, regency_code=event.regency_code,
            zone=domain.zone_of(event.province_code), issued_at=event.issued_at,
            closed=await work.closures.is_closed(event.facility_id),
        )
        if not await work.schedules.add(schedule):
            return
        await work.schedules.classify(event.permit_id, event.sector_class, event.export_oriented,
                                      workforce_total=event.workforce_total, permit_number=event.permit_number,
                                      company_name=event.company_name)
        # The first period starts when this service learns of the permit, never in the past: replaying the
        # permits topic into a fresh service must not warn plants for periods nobody could have reported.
        first = domain.open_period(schedule, await self.timeline(work), starts_at=max(now, event.issued_at), seq=1,
                                   timing=self.config.timing)
        await work.periods.add(first, schedule)
        await self._reevaluate_plant(work, event.permit_id)
        log.info("schedule_opened", permit_id=str(schedule.permit_id), zone=schedule.zone,
                 first_deadline=first.deadline.isoformat(), regime=first.regime_name, rule=first.regime)

    async def on_permit_frozen(self, work: ReportsWork, envelope: Envelope, event: PermitFrozen) -> None:
        schedule = await work.schedules.get(event.permit_id, for_update=True)
        if schedule is None:
            log.warning("freeze_without_schedule", permit_id=str(event.permit_id))
            return
        schedule = replace(schedule, frozen=True, freeze_count=max(schedule.freeze_count + 1, event.freeze_count))
        now = self.clock.now()
        # A freeze is judged by the ladder of the regime in force for the plant now.
        timeline = await self.timeline(work)
        ladder_name = timeline.in_force(now, schedule.zone).ladder
        ladder = domain.ladder_named(ladder_name)
        history = await self._history(work, schedule.permit_id, 1 << 30, now, ladder, timeline)
        sanction = ladder.after_frozen(schedule, history)
        if sanction is not None:
            schedule, recommended = await self._recommend(work, schedule, sanction, ladder_name, envelope)
            await work.outbox.add(recommended)
        await work.schedules.save(schedule)
        await self._reevaluate_plant(work, schedule.permit_id)

    async def on_permit_reactivated(self, work: ReportsWork, envelope: Envelope, event: PermitReactivated) -> None:
        """Unfrozen; the periods the reactivation names, filed late, are excused from the ladder."""
        schedule = await work.schedules.get(event.permit_id, for_update=True)
        if schedule is None:
            return
        await work.schedules.save(replace(schedule, frozen=False))
        await self._reevaluate_plant(work, schedule.permit_id)
        if not event.excused_periods:
            return
        periods = await work.periods.of_permit(schedule.permit_id, event.excused_periods)
        excused = domain.ExcusedOnReactivation().excused(periods, set(event.excused_periods))
        await work.periods.excuse([period.period_id for period in excused], request_id=event.request_id,
                                  at=self.clock.now())
        log.info("periods_excused", permit_id=str(schedule.permit_id), request_id=str(event.request_id),
                 excused=len(excused), named=len(event.excused_periods))

    async def on_permit_revoked(self, work: ReportsWork, envelope: Envelope, event: PermitRevoked) -> None:
        schedule = await work.schedules.get(event.permit_id, for_update=True)
        if schedule is None or schedule.ended:
            return
        now = self.clock.now()
        await work.schedules.save(replace(schedule, ended_at=now))
        await work.periods.end_obligation(schedule.permit_id, now)
        await self._reevaluate_plant(work, schedule.permit_id)
        log.info("schedule_ended", permit_id=str(schedule.permit_id))

    async def on_sanction_reversed(self, work: ReportsWork, envelope: Envelope, event: SanctionReversed) -> None:
        schedule = await work.schedules.get(event.permit_id, for_update=True)
        if schedule is None:
            log.warning("reversal_without_schedule", permit_id=str(event.permit_id))
            return
        last_seq = await work.periods.last_seq(schedule.permit_id)
        resumed = domain.after_reversal(schedule, frozen=event.to_status == "FROZEN",
                                        freeze_count=event.freeze_count, through_seq=last_seq)
        if schedule.ended:
            # As for a new permit: the next period starts when this service learns of it, never in the past.
            period = domain.open_period(resumed, await self.timeline(work), starts_at=self.clock.now(),
                                        seq=last_seq + 1, timing=self.config.timing)
            await work.periods.add(period, resumed)
            log.info("schedule_resumed", permit_id=str(schedule.permit_id), deadline=period.deadline.isoformat())
        await work.schedules.save(resumed)
        await self._reevaluate_plant(work, schedule.permit_id)

    async def on_sector_class_changed(self, work: ReportsWork, envelope: Envelope,
                                      event: SectorClassChanged) -> None:
        if not await work.schedules.classify(event.permit_id, event.sector_class, event.export_oriented):
            log.info("sector_class_of_unknown_permit", permit_id=str(event.permit_id))
            return
        await self._reevaluate_plant(work, event.permit_id)

    async def on_tenancy_confirmed(self, work: ReportsWork, envelope: Envelope,
                                   event: EstateTenancyConfirmed) -> None:
        """The estate's company reads the plant from now on; the plant's permit may not be known here yet."""
        await work.tenancies.confirm(event.facility_id, estate_facility_id=event.estate_facility_id,
                                     estate_nib=event.estate_nib, confirmed_at=event.confirmed_at,
                                     at=self.clock.now())
        log.info("estate_tenancy_confirmed", facility_id=str(event.facility_id),
                 estate_facility_id=str(event.estate_facility_id))

    async def on_tenancy_ended(self, work: ReportsWork, envelope: Envelope, event: EstateTenancyEnded) -> None:
        ended = await work.tenancies.end(event.facility_id, estate_facility_id=event.estate_facility_id)
        log.info("estate_tenancy_ended", facility_id=str(event.facility_id),
                 estate_facility_id=str(event.estate_facility_id), cause=event.cause.value, known=ended)

    # -- PPKM levels, rule sets and allowances ------------------------------------------------------

    async def on_ppkm_level_set(self, work: ReportsWork, envelope: Envelope, event: PpkmLevelSet) -> None:
        """The agency's level, recorded once (its event id); the level sweep applies it on its first day."""
        entry = staffing.agency_level(event, self.clock.now())
        if await work.ppkm.record_level(entry, level_id=uuid.uuid4(), province_code=event.province_code,
                                        actor=envelope.source, reason=None, event_id=envelope.id):
            log.info("ppkm_level_recorded", region_code=entry.region_code, level=entry.level.value,
                     effective_from=entry.effective_from.isoformat(), source=entry.source.value)

    async def set_level(self, access: Access, *, province_code: str, regency_code: str | None, level: PpkmLevel,
                        effective_from: date, effective_until: date | None, instruction: str,
                        reason: str) -> tuple[uuid.UUID, LevelEntry]:
        """An operator records a level (audited: the table is append-only, with who, when and why)."""
        now = self.clock.now()
        entry = staffing.operator_level(province_code=province_code, regency_code=regency_code, level=level,
                                        effective_from=effective_from, effective_until=effective_until,
                                        instruction=instruction, reason=reason, regions=self.regions, now=now)
        level_id = uuid.uuid4()
        async with self.database.transaction() as work:
            await work.ppkm.record_level(entry, level_id=level_id, province_code=province_code, actor=access.actor,
                                         reason=reason.strip(), event_id=None)
        record("ppkm_level_set", level_id=str(level_id), region_code=entry.region_code, level=entry.level.value,
               effective_from=entry.effective_from.isoformat(), actor=access.actor)
        return level_id, entry

    async def levels(self, *, province: str | None, regency: str | None,
                     limit: int) -> tuple[list[tuple[str, LevelEntry | None]], list[dict[str, Any]]]:
        """The level in force today in each regency in scope that has plants or levels of its own (today in its
        zone), and the levels recorded there, newest first."""
        now = self.clock.now()
        async with self.database.reading() as work:
            regencies = await work.ppkm.regencies(province=province, regency=regency)
            days = [staffing.local_day(code, now) for code in regencies]
            found = await work.ppkm.level_entries([(code, code.split(".")[0], day)
                                                   for code, day in zip(regencies, days, strict=True)])
            history = await work.ppkm.level_history(province=province, regency=regency, limit=limit)
        current = [(code, staffing.level_on(entries, day))
                   for code, day, entries in zip(regencies, days, found, strict=True)]
        return current, history

    async def rule_book(self, work: ReportsWork) -> RuleBook:
        """The PPKM staffing rule sets, shipped and published, kept in memory: read again at most every
        `rules_refresh` seconds, and at once after this replica publishes one. A set is published only for a day
        not yet begun anywhere, so a copy a few seconds old misses only one published in the last seconds before
        its first day."""
        cached, now = self._rule_book, time.monotonic()
        if cached is not None and now - cached[0] < self.config.rules_refresh:
            return cached[1]
        book = RuleBook(await work.ppkm.rule_sets())
        self._rule_book = (now, book)
        return book

    async def rule_sets(self) -> tuple[list[dict[str, Any]], dict[str, str | None]]:
        """Every rule set as stored, and the one in force today in each zone."""
        now = self.clock.now()
        async with self.database.reading() as work:
            listing = await work.ppkm.rule_set_listing()
            book = await self.rule_book(work)
        in_force = {}
        for zone in domain.ZONES:
            found = book.in_force_on(now.astimezone(ZoneInfo(zone)).date())
            in_force[zone] = found.name if found else None
        return listing, in_force

    async def publish_rule_set(self, access: Access, document: Mapping[str, Any]) -> RuleSet:
        """An operator publishes a rule set for a day not yet begun anywhere; its name and start day its own."""
        rule_set = staffing.rule_set_from_mapping(document)
        now = self.clock.now()
        async with self.database.transaction() as work:
            await work.ppkm.lock_rule_sets()
            staffing.publishable(RuleBook(await work.ppkm.rule_sets()), rule_set, now=now)
            await work.ppkm.publish_rule_set(rule_set, staffing.rule_set_mapping(rule_set)["rules"],
                                             actor=access.actor, at=now)
        self._rule_book = None
        record("ppkm_rule_set_published", name=rule_set.name, starts_on=rule_set.starts_on.isoformat(),
               actor=access.actor)
        return rule_set

    async def plant_allowance(self, facility_id: uuid.UUID, access: Access, on: date | None) -> PlantAllowance:
        """What a plant may run on a day (today in its zone unless asked), computed afresh: the level that day, the
        rule set in force, its class, and the facts of its latest report."""
        async with self.database.reading() as work:
            plant = await work.allowances.plant_of_facility(facility_id)
            if plant is None or not access.may_see(region_code=plant.regency_code, nib=plant.nib,
                                                   estate_nib=await _estate_of(work, facility_id, access)):
                raise ScheduleNotFound("Plant")
            day = on or staffing.local_day(plant.province_code, self.clock.now())
            entry = (await self._levels_on(work, plant.province_code, [plant.regency_code], day))[plant.regency_code]
            book = await self.rule_book(work)
        found = staffing.allowance(day, entry.level if entry else None, book.in_force_on(day), _facts(plant))
        summary_id, summary_en = staffing.allowance_summary(
            found, region=self.regions.name_of(plant.regency_code) or plant.regency_code,
            instruction=entry.instruction if entry else None)
        return PlantAllowance(plant, found, entry, summary_id, summary_en)

    async def sweep_ppkm(self) -> int:
        """The level sweep: re-evaluate the allowances of every region where a level's first day has come or its
        last day has passed, and of every province with levels where a rule set's first day has come (zone by
        zone); then mark them applied. One replica at a time; the plants evaluated."""
        now = self.clock.now()
        evaluated = 0
        async with self.database.transaction() as held:
            if not await held.ppkm.try_lock_sweep():
                return 0
            async with self.database.reading() as work:
                due = staffing.levels_due(await work.ppkm.pending_levels(_latest_day(now)), now)
                starting = await work.ppkm.rule_sets_to_apply()
                with_levels = await work.ppkm.provinces_with_levels() if starting else []
            done: set[str] = set()
            for name, starts_on, zones_done in starting:
                zones = staffing.zones_begun(starts_on, zones_done, now)
                if not zones:
                    continue
                for province in with_levels:
                    if domain.zone_of(province) in zones and province not in done:
                        evaluated += await self.reevaluate(province)
                        done.add(province)
                async with self.database.transaction() as work:
                    await work.ppkm.rule_set_applied(name, zones, every_zone=len(domain.ZONES), at=now)
                log.info("ppkm_rule_set_applied", name=name, zones=list(zones))
            for region in due.regions:
                if region.split(".")[0] not in done:
                    evaluated += await self.reevaluate(region)
            if due.applied or due.lapsed:
                async with self.database.transaction() as work:
                    await work.ppkm.levels_applied(due.applied, due.lapsed, at=now)
                log.info("ppkm_levels_applied", regions=list(due.regions), applied=len(due.applied),
                         lapsed=len(due.lapsed), plants=evaluated)
        return evaluated

    async def reevaluate(self, region_code: str) -> int:
        """Re-evaluate the allowances of a province's or a regency's plants as of today in its zone, set-wise: a
        chunk of plants per transaction, read with their latest reports' facts, evaluated by `staffing.allowance`
        and written in one statement. Plants whose permit has ended lose theirs. The plants evaluated."""
        province, regency = region_code.split(".")[0], region_code if "." in region_code else None
        now = self.clock.now()
        day = staffing.local_day(province, now)
        async with self.database.reading() as work:
            book = await self.rule_book(work)
            levels = await self._levels_on(work, province,
                                           await work.ppkm.regencies(province=province, regency=regency), day)
        rule_set = book.in_force_on(day)
        after, through = (regency or "", uuid.UUID(int=0)), regency or f"{province}.99"
        chunk = self.config.allowance_chunk
        evaluated = 0
        while True:
            async with self.database.transaction() as work:
                plants = await work.allowances.plants(province, after=after, through_regency=through, limit=chunk)
                missing = sorted({p.regency_code for p in plants} - levels.keys())
                if missing:  # a regency whose first plant came meanwhile
                    levels |= await self._levels_on(work, province, missing, day)
                live = [(p, _allowance_of(p, levels[p.regency_code], rule_set, day)) for p in plants if not p.ended]
                evaluated += await work.allowances.save(live, ended=[p.permit_id for p in plants if p.ended], at=now)
            if len(plants) < chunk:
                return evaluated
            after = (plants[-1].regency_code, plants[-1].permit_id)

    async def _reevaluate_plant(self, work: ReportsWork, permit_id: uuid.UUID) -> None:
        """One plant's allowance, as its state or class changed, in the transaction that changed it."""
        plant = await work.allowances.plant(permit_id)
        if plant is None:
            return
        now = self.clock.now()
        if plant.ended:
            await work.allowances.save([], ended=[permit_id], at=now)
            return
        day = staffing.local_day(plant.province_code, now)
        entry = (await self._levels_on(work, plant.province_code, [plant.regency_code], day))[plant.regency_code]
        rule_set = (await self.rule_book(work)).in_force_on(day)
        await work.allowances.save([(plant, _allowance_of(plant, entry, rule_set, day))], ended=[], at=now)

    @staticmethod
    async def _levels_on(work: ReportsWork, province: str, regencies: Sequence[str],
                         day: date) -> dict[str, LevelEntry | None]:
        """The level entry in force on the day in each of a province's regencies (None: no restriction)."""
        found = await work.ppkm.level_entries([(code, province, day) for code in regencies])
        return {code: staffing.level_on(entries, day) for code, entries in zip(regencies, found, strict=True)}

    async def on_closure_ordered(self, work: ReportsWork, envelope: Envelope, event: FacilityClosureOrdered) -> None:
        if event.scope is not ClosureScope.PLANT:
            return  # a room closed for disinfection does not stop the plant from operating or reporting
        await work.closures.order(event.closure_id, event.facility_id, event.starts_at)
        await self._refresh_closed(work, event.facility_id)

    async def on_facility_reopened(self, work: ReportsWork, envelope: Envelope, event: FacilityReopened) -> None:
        await work.closures.reopen(event.closure_id, event.facility_id, event.reopened_at)
        await self._refresh_closed(work, event.facility_id)

    async def _refresh_closed(self, work: ReportsWork, facility_id: uuid.UUID) -> None:
        closed = await work.closures.is_closed(facility_id)
        for schedule in await work.schedules.for_facility(facility_id):
            await work.schedules.save(replace(schedule, closed=closed))

    # -- the deadline sweep ------------------------------------------------------------------------

    async def sweep(self, max_batches: int = 20) -> int:
        """Run every period action whose time has come, a locked batch per transaction, until none is left.

        Idempotent across restarts and replicas: a step moves the period to its next action in the same
        transaction as the events it emits, so each reminder, overdue and warning is emitted exactly once.
        """
        done, more = await self._sweep_batch()
        if more and max_batches > 1:
            # Much is due (a deadline shared by every plant): lanes keep the database busy on more than one core.
            # `due` locks the schedule with its periods and skips locked rows, so the lanes never share a plant,
            # and each plant's steps still run one transaction after another, in order.
            lanes = [self._sweep_lane(max_batches - 1) for _ in range(self.config.sweep_lanes)]
            done += sum(await asyncio.gather(*lanes))
        if done:
            log.info("sweep_done", steps=done)
        return done

    async def _sweep_lane(self, max_batches: int) -> int:
        done = 0
        for _ in range(max_batches):
            steps, more = await self._sweep_batch()
            done += steps
            if not more:
                break
        return done

    async def _sweep_batch(self) -> tuple[int, bool]:
        """One locked batch in one transaction: how many steps ran, and whether a full batch suggests more."""
        now = self.clock.now()
        async with self.database.transaction() as work:
            due = await work.periods.due(now, self.config.sweep_batch)
            if due:
                await self._steps(work, due, now)
        return len(due), len(due) == self.config.sweep_batch

    async def _steps(self, work: ReportsWork, due: list[DuePeriod], now: datetime) -> None:
        """Ask the domain for each period's step, then write the whole batch with a few set-based statements.

        A deadline falling for every plant at once (a 23:59 regime) makes batches of thousands of reminders or
        overdues in a handful of situations: the domain decides once per situation (and per zone, the next
        period), and the database applies each decision to the batch's periods, opens their next periods and
        writes their events, a statement each. Warnings go one plant at a time, after every step of the batch is
        saved: the sanction ladder reads each plant's history, which counts the period's own warning and only
        periods up to it. Events go to the outbox in batch order, which keeps each plant's events in the order
        of its steps.
        """
        timing = self.config.timing
        situations: dict[domain.Situation, int] = {}
        step_of = [situations.setdefault(period.situation, len(situations)) for period in due]
        decided = [domain.step(situation, timing) for situation in situations]
        starts: dict[tuple[str, datetime], int] = {}  # (zone, deadline): the next periods that open
        opened = [period for period, index in zip(due, step_of, strict=True) if decided[index].open_next]
        opening_of = [starts.setdefault((period.zone, period.situation.deadline), len(starts)) for period in opened]

        warned = await work.periods.advance([period.period_id for period in due], step_of, decided, now=now)
        timeline = await self.timeline(work)
        # Each opening under the regime in force, in its zone, when it starts.
        openings = [domain.opening(timeline, zone, starts_at=deadline, timing=timing) for zone, deadline in starts]
        await work.periods.open_next(opened, opening_of, openings)
        events: list[tuple[DuePeriod, type[ReportDue | ReportOverdue]]] = []
        for period, index in zip(due, step_of, strict=True):
            step = decided[index]
            if step.remind:
                events.append((period, ReportDue))
            if step.overdue:
                events.append((period, ReportOverdue))
            if step.warn:
                await work.outbox.add_period_events(events, service=SERVICE, now=now)
                events = []
                await work.outbox.add(*await self._warn(work, warned[period.period_id], period.permit_id, now,
                                                        timeline))
        await work.outbox.add_period_events(events, service=SERVICE, now=now)

    async def _warn(self, work: ReportsWork, period: Period, permit_id: uuid.UUID, now: datetime,
                    timeline: RegimeTimeline) -> list[Envelope]:
        """The warning of a period already saved with its `warning_id`, and the answer of the ladder of the regime
        the period opened under: the events to publish, in order."""
        # Read under the lock the batch holds: an earlier step of this batch may have sanctioned the plant.
        schedule = await work.schedules.get(permit_id)
        if schedule is None:  # a period's schedule outlives it
            raise LookupError(f"period {period.period_id} has no schedule")
        ladder_name = timeline.ladder_name_for(period.regime_name)
        ladder = domain.ladder_named(ladder_name)
        history = await self._history(work, schedule.permit_id, period.seq, period.deadline, ladder, timeline)
        warning = Envelope.wrap(WarningIssued(
            **_about(schedule), warning_id=period.warning_id, period_id=period.period_id,
            deadline=period.deadline, consecutive=domain.consecutive_warnings(history),
        ), service=SERVICE, time=now)
        sanction = ladder.after_missed(schedule, history)
        if sanction is None:
            return [warning]
        schedule, recommended = await self._recommend(work, schedule, sanction, ladder_name, warning)
        await work.schedules.save(schedule)
        return [warning, recommended]

    async def _history(self, work: ReportsWork, permit_id: uuid.UUID, through_seq: int, latest: datetime,
                       ladder: SanctionLadder, timeline: RegimeTimeline) -> list[domain.SettledPeriod]:
        settled = await work.periods.settled(permit_id, through_seq, since=latest - ladder.lookback,
                                             min_periods=ladder.min_periods)
        return timeline.evidence(ladder, settled)

    async def _recommend(self, work: ReportsWork, schedule: Schedule, sanction: Sanction, ladder: str,
                         cause: Envelope) -> tuple[Schedule, Envelope]:
        """Record the sanction; the schedule afterwards and the event for the caller to add to the outbox."""
        now = self.clock.now()
        sanction_id = uuid.uuid4()
        event = SanctionRecommended(
            **_about(schedule), action=SanctionAction(sanction.action.value), rule=sanction.rule, ladder=ladder,
            # The latest of the evidence, within the event's bound whatever the window; the sanctions table keeps
            # all of it.
            evidence=SanctionEvidence(missed_periods=list(sanction.missed_periods[-EVIDENCE_MAX_ITEMS:]),
                                      warnings=list(sanction.warnings[-EVIDENCE_MAX_ITEMS:])),
        )
        await work.sanctions.add(sanction_id, schedule.permit_id, sanction, now, str(cause.id))
        log.info("sanction_recommended", permit_id=str(schedule.permit_id), action=sanction.action.value,
                 rule=sanction.rule)
        return domain.after_sanction(schedule, sanction), cause.caused(event, service=SERVICE, time=now)

    # -- the regime timeline ----------------------------------------------------------------------

    async def timeline(self, work: ReportsWork) -> RegimeTimeline:
        """The timeline in force: IOMKI_REPORT_REGIME's one rule when set, else the database's, read afresh (a few
        rows) so that every replica sees an operator's change at once."""
        if self.config.regime is not None:
            return domain.configured_timeline(self.config.regime)
        return RegimeTimeline(await work.regimes.timeline())

    async def ship_regimes(self) -> None:
        """At start: the shipped entries upserted, idempotently (a change to the configuration is audited)."""
        if not self.config.shipped:
            return
        async with self.database.transaction() as work:
            await work.regimes.lock()
            changed, held = await work.regimes.ship(self.config.shipped, at=self.clock.now())
        if changed:
            log.info("regimes_shipped", names=changed)
        for name, holder in held.items():
            # An operator's entry is never overridden by a release; the service starts and says what it left out.
            log.error("regime_not_shipped", name=name, held_by=holder,
                      hint="an operator's entry holds its date: withdraw it (or ship another date) to ship this one")

    async def ship_rule_sets(self) -> None:
        """At start: the shipped PPKM rule sets upserted, idempotently; an operator's set is never replaced."""
        if not self.config.shipped_rule_sets:
            return
        async with self.database.transaction() as work:
            await work.ppkm.lock_rule_sets()
            changed = await work.ppkm.ship_rule_sets(self.config.shipped_rule_sets, at=self.clock.now())
        if changed:
            log.info("ppkm_rule_sets_shipped", names=changed)

    async def regimes(self) -> tuple[RegimeTimeline, list[dict[str, Any]], list[dict[str, Any]]]:
        """The timeline in force, the stored entries (with who scheduled them) and the latest changes."""
        async with self.database.reading() as work:
            return await self.timeline(work), await work.regimes.listing(), await work.regimes.changes(100)

    async def schedule_regime(self, access: Access, *, name: str, source: str, effective_on: date, rule: str,
                              ladder: str, declaration: bool = domain.DECLARATION_UNLESS_STATED) -> RegimeEntry:
        now = self.clock.now()
        async with self.database.transaction() as work:
            await work.regimes.lock()
            timeline = RegimeTimeline(await work.regimes.timeline())
            entry = domain.scheduled_entry(timeline, name=name, source=source, effective_on=effective_on, rule=rule,
                                           ladder=ladder, now=now, declaration=declaration)
            await work.regimes.schedule(entry, actor=access.actor, at=now)
        record("regime_scheduled", name=entry.name, effective_on=entry.effective_on.isoformat(), actor=access.actor)
        return entry

    async def withdraw_regime(self, access: Access, name: str) -> RegimeEntry:
        now = self.clock.now()
        async with self.database.transaction() as work:
            await work.regimes.lock()
            entry = domain.withdrawn_entry(RegimeTimeline(await work.regimes.timeline()), name, now=now)
            await work.regimes.withdraw(entry, actor=access.actor, at=now)
        record("regime_withdrawn", name=entry.name, actor=access.actor)
        return entry

    # -- commands ----------------------------------------------------------------------------------

    async def submit(self, report: ReportIn, access: Access) -> Accepted:
        """Accept a report, or say why not. Reports submitted together share a transaction (`GroupCommit`)."""
        accepted = await self._submissions.submit((report, access))
        record("report_submitted", permit_id=str(report.permit_id), period_id=str(report.period_id),
               late=accepted.late, supersedes=str(accepted.supersedes) if accepted.supersedes else None,
               actor=access.actor)
        return accepted

    async def _submit_together(self, batch: list[tuple[ReportIn, Access]]) -> list[Accepted | Exception]:
        """One transaction for a batch of reports, each for another plant: lock their schedules and periods, ask
        the domain about each, then store the accepted ones with their events, in a statement or two. Each report
        is checked against the PPKM staffing cap of its plant on its day; a breach adds its own rows and events."""
        async with self.database.transaction() as work:
            targets = await work.reports.targets([(report.permit_id, report.period_id) for report, _ in batch],
                                                 levels_on=self.clock.now())
            now = self.clock.now()  # once the plants are locked: their reports are stored in the order of this moment
            decided: list[_Acceptance | Exception] = []
            for report, access in batch:
                try:
                    decided.append(self._accept(report, access, targets.get(report.permit_id), now))
                except domain.Refused as refused:
                    decided.append(refused)
            accepted = [decision for decision in decided if not isinstance(decision, Exception)]
            checks = await self._capacity_checks(work, accepted, now)
            superseded = await work.reports.supersede(
                {a.report.period.period_id: a.report.report_id for a in accepted if a.corrects}, now)
            latest = [(a, LatestReport(a.report.period.seq, a.staffing.dose1, a.staffing.workforce_total,
                                       a.staffing.pedulilindungi))
                      for a in accepted]
            replaced = [(a, report) for a, report in latest if replaces(a.target.latest, report)]
            await work.reports.record(
                [a.report for a in accepted], submitted_at=now,
                latest=[(a.target.schedule.permit_id, report) for a, report in replaced],
                dose_changes=dose_changes((a.target.schedule.regency_code, a.target.schedule.province_code,
                                           a.target.latest, report) for a, report in replaced))
            await work.outbox.add(*(a.event for a in accepted))
            breaches: dict[uuid.UUID, uuid.UUID] = {}
            for acceptance, check in zip(accepted, checks, strict=True):
                if check.breached:
                    breach_id, events = await self._breach(work, acceptance, check, now)
                    breaches[acceptance.report.report_id] = breach_id
                    await work.outbox.add(*events)
        results: list[Accepted | Exception] = []
        checked = iter(checks)
        for decision in decided:
            if isinstance(decision, Exception):
                results.append(decision)
                continue
            report_id = decision.report.report_id
            results.append(Accepted(report_id, decision.report.late, superseded.get(decision.report.period.period_id),
                                    next(checked), breaches.get(report_id)))
        return results

    @staticmethod
    def _accept(report: ReportIn, access: Access, target: Target | None, now: datetime) -> _Acceptance:
        """The report accepted, or the rule that refuses it."""
        if target is None or not access.may_see(region_code=target.schedule.regency_code, nib=target.schedule.nib):
            raise ScheduleNotFound("Permit")
        schedule, period = target.schedule, target.period
        if period is None:
            raise PeriodNotFound(report.period_id)
        # The rule of the regime the period opened under, as stored (IOMKI_REPORT_REGIME's is not: see `of_regime`).
        accepted = domain.submit(schedule, period, report.figures, now=now, declared=report.declared,
                                 declaration=domain.DeclarationOfTruth.of_regime(target.declaration))
        report_id = uuid.uuid4()
        f = report.figures
        event = Envelope.wrap(ReportSubmitted(
            **_about(schedule), report_id=report_id, period_id=period.period_id,
            period_starts_at=period.starts_at, deadline=period.deadline, late=accepted.late,
            workforce_total=f.workforce_total, on_site_total=f.on_site_total, odp=f.odp, pdp=f.pdp,
            confirmed_positive=f.new_positives, tests_pcr=f.tests_pcr, tests_antigen=f.tests_antigen,
            vaccinated_dose1=f.dose1, vaccinated_dose2=f.dose2, vaccinated_booster=f.booster,
            declared=accepted.declared, new_positives=f.new_positives, isolating_workers=f.isolating_workers,
            protocol_lapses=list(report.lapses),
        ), service=SERVICE, time=now)
        # Who declared is the caller, when is now: never what the report says of itself.
        stored = StoredReport(accepted.period, report_id, accepted.late, access.actor, access.principal.role.value,
                              report.payload_json, f.new_positives, f.isolating_workers,
                              access.actor if accepted.declared else None, now if accepted.declared else None)
        staffing = ReportedStaffing(f.workforce_total, f.on_site_per_shift, f.dose1, report.pedulilindungi,
                                    f.office_staff, f.office_on_site)
        # A period holds a current report exactly when it is reported: only then is there one to supersede.
        return _Acceptance(stored, period.reported, event, target, staffing)

    async def _capacity_checks(self, work: ReportsWork, accepted: list[_Acceptance],
                               now: datetime) -> list[CapacityCheck]:
        """Each accepted report against the staffing cap of its plant on its checked day: the level in force there
        that day, the rule set in force that day, the plant's class, and the conditions as the report states them
        (the permit not frozen, PeduliLindungi in use, its first doses)."""
        days = [checked_day(now, a.report.period.deadline, a.target.schedule.zone) for a in accepted]
        entries = [list(a.target.levels) for a in accepted]
        # `targets` read the levels for a moment before the plants were locked: a report whose day has turned since
        # (midnight in its zone) has them read again.
        turned = [i for i, (a, day) in enumerate(zip(accepted, days, strict=True)) if day != a.target.level_day]
        if turned:
            again = await work.ppkm.level_entries([(accepted[i].target.schedule.regency_code,
                                                    accepted[i].target.schedule.province_code, days[i])
                                                   for i in turned])
            for i, found in zip(turned, again, strict=True):
                entries[i] = found
        levels = [level_on(found, day) for found, day in zip(entries, days, strict=True)]
        # The rule book only when a level is in force for a plant that can be checked.
        book = None
        if any(level is not None and a.target.sector_class is not None for a, level in zip(accepted, levels,
                                                                                            strict=True)):
            book = await self.rule_book(work)
        checks = []
        for a, day, level in zip(accepted, days, levels, strict=True):
            rule_set = book.in_force_on(day) if book is not None and level is not None else None
            checks.append(check_report(day, level.level if level else None, rule_set, a.target.sector_class,
                                       a.target.export_oriented, permit_active=not a.target.schedule.frozen,
                                       report=a.staffing))
        return checks

    async def _breach(self, work: ReportsWork, acceptance: _Acceptance, check: CapacityCheck,
                      now: datetime) -> tuple[uuid.UUID, list[Envelope]]:
        """A report over the cap: the breach recorded, CapacityBreachDetected, a warning to the company, and, when
        the capacity ladder fires on the plant's breaches since its last capacity sanction, a freeze recommended
        with them as evidence. The breach and the events to publish, in order.

        One breach a period: a correction over the cap of a period that already breached is the same breach, not a
        second warning on the ladder (a company correcting its figures twice is not twice over the cap)."""
        schedule, period = acceptance.target.schedule, acceptance.report.period
        if acceptance.corrects:
            earlier = await work.capacity.of_period(schedule.permit_id, period.period_id)
            if earlier is not None:
                return earlier, []
        allowance = check.allowance
        if allowance is None or check.level is None or allowance.rule_set is None:
            raise ValueError("a breach is found only under a level and a rule set")
        breach_id, warning_id = uuid.uuid4(), uuid.uuid4()
        excesses = [CapacityExcess(measure=e.measure, shift=e.shift, cap=e.cap, count=e.count)
                    for e in check.excesses]
        detected = acceptance.event.caused(CapacityBreachDetected(
            **_about(schedule), breach_id=breach_id, report_id=acceptance.report.report_id,
            period_id=period.period_id, day=check.day, level=check.level, rule_set=allowance.rule_set,
            rule=allowance.rule, sector_class=allowance.sector_class, export_oriented=allowance.export_oriented,
            excesses=excesses), service=SERVICE, time=now)
        await work.capacity.record_breach(
            breach_id=breach_id, warning_id=warning_id, permit_id=schedule.permit_id,
            report_id=acceptance.report.report_id, period_id=period.period_id, province_code=schedule.province_code,
            regency_code=schedule.regency_code, day=check.day, level=check.level, rule_set=allowance.rule_set,
            rule=allowance.rule, excesses=[e.model_dump(mode="json") for e in excesses], at=now)
        ladder = self.config.capacity_ladder
        # Breaches older than a window before this one fall outside any window that holds it.
        counted = await work.capacity.unsanctioned(schedule.permit_id, since=check.day - ladder.window
                                                   + timedelta(days=1))
        warning = detected.caused(WarningIssued(
            **_about(schedule), warning_id=warning_id, period_id=period.period_id, deadline=period.deadline,
            consecutive=len(ladder.within_window(list(counted))), cause=WarningCause.CAPACITY_BREACH,
            breach_id=breach_id), service=SERVICE, time=now)
        log.info("capacity_breach", permit_id=str(schedule.permit_id), breach_id=str(breach_id),
                 level=check.level.value, rule=allowance.rule, day=check.day.isoformat())
        recommendation = ladder.decide(list(counted), permit_issued=not (schedule.frozen or schedule.ended))
        if recommendation is None:
            return breach_id, [detected, warning]
        sanction_id = uuid.uuid4()
        breaches = list(recommendation.breaches[-EVIDENCE_MAX_ITEMS:])
        by_id = {breach.breach_id: warned for breach, warned in counted.items()}
        warnings = [by_id[b] for b in breaches]
        recommended = warning.caused(SanctionRecommended(
            **_about(schedule), action=SanctionAction.FREEZE, rule=recommendation.rule, ladder=CAPACITY_LADDER,
            ground=GroundCode.CAPACITY_BREACHES,
            evidence=SanctionEvidence(missed_periods=[], warnings=warnings, breaches=breaches)),
            service=SERVICE, time=now)
        await work.sanctions.add_capacity(sanction_id, schedule.permit_id, rule=recommendation.rule,
                                          warnings=[by_id[b] for b in recommendation.breaches],
                                          breaches=recommendation.breaches, at=now, causation_id=str(warning.id))
        await work.capacity.sanctioned(recommendation.breaches, sanction_id)
        log.info("sanction_recommended", permit_id=str(schedule.permit_id), action="freeze",
                 rule=recommendation.rule, ladder=CAPACITY_LADDER)
        return breach_id, [detected, warning, recommended]

    # -- queries -----------------------------------------------------------------------------------

    async def schedule(self, permit_id: uuid.UUID, access: Access,
                       limit: int) -> tuple[Schedule, list[Period], dict[uuid.UUID, uuid.UUID | None]]:
        """The schedule, its latest periods, and which of those were excused on reactivation (by which request)."""
        async with self.database.reading() as work:
            schedule = await self._visible(work, permit_id, access, "Schedule")
            periods = await work.periods.listing(permit_id, limit)
            excused = await work.periods.excused(permit_id, [p.period_id for p in periods if p.warning_id])
            return schedule, periods, excused

    async def reports(self, permit_id: uuid.UUID, access: Access, limit: int,
                      after: tuple[datetime, uuid.UUID] | None = None) -> list[dict[str, Any]]:
        async with self.database.reading() as work:
            await self._visible(work, permit_id, access, "Permit")
            return await work.reports.listing(permit_id, limit, after)

    async def compliance(self, *, province: str | None, regency: str | None, window: timedelta) -> dict[str, Any]:
        """The compliance counts of the scope, and PPKM in it (`ppkm`): each regency of a regency's or a province's
        scope, or each province of the whole country, with their totals."""
        now = self.clock.now()
        async with self.database.reading() as work:
            counts = await work.compliance.rates(province=province, regency=regency, since=now - window, until=now)
            regencies = await self._ppkm_regencies(work, province=province, regency=regency, now=now, window=window)
        rows = regencies if (province or regency) else by_province(regencies)
        return {"since": now - window, "until": now} | counts | {"ppkm": rows, "ppkm_totals": summed("", rows)}

    async def estate_compliance(self, estate_nib: str, *, province: str | None, regency: str | None,
                                window: timedelta) -> tuple[datetime, datetime, list[TenantRow]]:
        """The estate's confirmed tenants with their counts over the window (in a region, when one is asked)."""
        now = self.clock.now()
        since = now - window
        async with self.database.reading() as work:
            tenants = await work.tenancies.compliance(estate_nib, since=since, until=now,
                                                      since_day=_latest_day(since) + timedelta(days=1))
        region = regency or province
        if region:
            tenants = [t for t in tenants if t.regency_code == region or t.province_code == region]
        return since, now, tenants

    @staticmethod
    async def _ppkm_regencies(work: ReportsWork, *, province: str | None, regency: str | None, now: datetime,
                              window: timedelta) -> list[RegionPpkm]:
        """Each regency of the scope with its counts, its level today, its breaches this week and in the window,
        "today" and "this week" in its own time zone."""
        counted = {row.regency_code: row for row in await work.compliance.ppkm_counts(province=province,
                                                                                        regency=regency)}
        if regency and regency not in counted:  # asked for by name: shown, with nothing counted
            counted[regency] = RegionCounts(regency, regency.split(".", 1)[0], PlantsByClass(), 0, 0, 0)
        asked = []
        for row in counted.values():
            zone = ZoneInfo(domain.zone_of(row.province_code))
            today = now.astimezone(zone).date()
            asked.append((row.regency_code, row.province_code, today, iso_week(today)[0],
                          (now - window).astimezone(zone).date() + timedelta(days=1)))
        days = await work.compliance.ppkm_days(asked)
        regions = []
        for row, (_, _, today, _, _), day in zip(counted.values(), asked, days, strict=True):
            level = level_on(day.levels, today)
            regions.append(RegionPpkm(row.regency_code, level.level if level else None, row.plants,
                                      day.breaches_this_week, day.breaches_in_window, row.reported, row.dose1,
                                      row.workforce))
        return regions

    @staticmethod
    async def _visible(work: ReportsWork, permit_id: uuid.UUID, access: Access, what: str) -> Schedule:
        schedule = await work.schedules.get(permit_id)
        if schedule is None or not access.may_see(
                region_code=schedule.regency_code, nib=schedule.nib,
                estate_nib=await _estate_of(work, schedule.facility_id, access)):
            raise ScheduleNotFound(what)
        return schedule


async def _estate_of(work: ReportsWork, facility_id: uuid.UUID, access: Access) -> str | None:
    """The plant's estate company, asked only for a caller whose scope reaches tenants."""
    return await work.tenancies.estate_of(facility_id) if access.scope is Scope.TENANTS else None


def _facts(plant: PlantRow) -> staffing.PlantFacts:
    return staffing.PlantFacts(
        sector_class=SectorClass(plant.sector_class) if plant.sector_class else None,
        export_oriented=plant.export_oriented, workforce_total=plant.workforce_total or 0,
        permit_active=not (plant.frozen or plant.ended), pedulilindungi=plant.pedulilindungi, dose1=plant.dose1)


def _allowance_of(plant: PlantRow, entry: LevelEntry | None, rule_set: RuleSet | None, day: date) -> Allowance:
    return staffing.allowance(day, entry.level if entry else None, rule_set, _facts(plant))


def _latest_day(now: datetime) -> date:
    """The latest day any zone has reached (the easternmost zone's)."""
    return now.astimezone(ZoneInfo(domain.EARLIEST_ZONE)).date()
