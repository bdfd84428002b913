"""One function per command, consumed event and sweep step: load, ask the domain, save, add outgoing events."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from pydantic_core import to_json

from services.reports import domain
from services.reports.domain import (
    Period, PeriodNotFound, Regime, ReportFigures, Sanction, SanctionLadder, Schedule, ScheduleNotFound, Timing,
)
from services.reports.repository import OutboxRow, ReportsWork
from shared.access import Access
from shared.clock import Clock
from shared.contract import (
    CONTENT_TYPE, ClosureScope, Envelope, FacilityClosureOrdered, FacilityReopened, PermitFrozen, PermitIssued,
    PermitReactivated, PermitRevoked, ReportDue, ReportOverdue, ReportSubmitted, SanctionAction, SanctionEvidence,
    SanctionRecommended, WarningIssued,
)
from shared.unit_of_work import Database

SERVICE = "reports"
_SOURCE = f"/iomki/{SERVICE}"  # as Envelope.wrap names it
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ReportsConfig:
    regime: Regime
    timing: Timing
    ladder: SanctionLadder = SanctionLadder()
    sweep_batch: int = 1000
    sweep_lanes: int = 2  # concurrent batch transactions while much is due (each holds a pool connection)


@dataclass(frozen=True)
class ReportIn:
    permit_id: uuid.UUID
    period_id: uuid.UUID
    figures: ReportFigures
    payload: dict[str, Any]


@dataclass(frozen=True)
class Accepted:
    report_id: uuid.UUID
    late: bool
    supersedes: uuid.UUID | None


def _about(schedule: Schedule) -> dict[str, Any]:
    return dict(facility_id=schedule.facility_id, province_code=schedule.province_code,
                regency_code=schedule.regency_code, permit_id=schedule.permit_id)


# Per event type: its CloudEvents type and its topic.
_SWEEP_EVENTS = {event_type: (event_type.type_name(), event_type.topic.name)
                 for event_type in (ReportDue, ReportOverdue)}


def _sweep_event(event_type: type[ReportDue | ReportOverdue], schedule: Schedule, period: Period,
                 now: datetime) -> OutboxRow:
    """The outbox row of `Envelope.wrap(event_type(...))` for the sweep's reminders and overdues, encoded
    without building or validating models.

    When a deadline falls for every plant at once the sweep emits a million of these; validating values that
    come typed from the database's own rows cost more than the rest of the sweep's Python. The unit tests
    check that the row is exactly the one `Outbox.add` writes for `Envelope.wrap`.
    """
    type_name, topic = _SWEEP_EVENTS[event_type]
    event_id, facility = uuid.uuid4(), schedule.facility_id
    # The data fields in the contract's order (the unit tests hold the two to the same bytes). Ids go in as
    # UUIDs: `to_json` writes their text itself, several times faster than `str` (four of them an event).
    data = {"facility_id": facility, "province_code": schedule.province_code, "regency_code": schedule.regency_code,
            "permit_id": schedule.permit_id, "period_id": period.period_id, "deadline": period.deadline}
    envelope = {"specversion": "1.0", "id": event_id, "source": _SOURCE, "type": type_name, "time": now,
                "subject": facility, "datacontenttype": "application/json", "data": data, "correlationid": event_id,
                "causationid": event_id}
    headers = {"content-type": CONTENT_TYPE, "correlation_id": event_id}
    return OutboxRow(event_id, type_name, topic, str(facility).encode(), to_json(envelope), to_json(headers).decode())


@dataclass
class ReportHandlers:
    database: Database[ReportsWork]
    clock: Clock
    config: ReportsConfig

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
        # The first period starts when this service learns of the permit, never in the past: replaying the
        # permits topic into a fresh service must not warn plants for periods nobody could have reported.
        first = domain.open_period(schedule, self.config.regime, starts_at=max(now, event.issued_at), seq=1,
                                   timing=self.config.timing)
        await work.periods.add(first, schedule)
        log.info("schedule_opened", permit_id=str(schedule.permit_id), zone=schedule.zone,
                 first_deadline=first.deadline.isoformat(), regime=first.regime)

    async def on_permit_frozen(self, work: ReportsWork, envelope: Envelope, event: PermitFrozen) -> None:
        schedule = await work.schedules.get(event.permit_id, for_update=True)
        if schedule is None:
            log.warning("freeze_without_schedule", permit_id=str(event.permit_id))
            return
        schedule = replace(schedule, frozen=True, freeze_count=max(schedule.freeze_count + 1, event.freeze_count))
        history = await self._history(work, schedule.permit_id, 1 << 30, self.clock.now())
        sanction = self.config.ladder.after_frozen(schedule, history)
        if sanction is not None:
            schedule, recommended = await self._recommend(work, schedule, sanction, envelope)
            await work.outbox.add(recommended)
        await work.schedules.save(schedule)

    async def on_permit_reactivated(self, work: ReportsWork, envelope: Envelope, event: PermitReactivated) -> None:
        schedule = await work.schedules.get(event.permit_id, for_update=True)
        if schedule is not None:
            await work.schedules.save(replace(schedule, frozen=False))

    async def on_permit_revoked(self, work: ReportsWork, envelope: Envelope, event: PermitRevoked) -> None:
        schedule = await work.schedules.get(event.permit_id, for_update=True)
        if schedule is None or schedule.ended:
            return
        now = self.clock.now()
        await work.schedules.save(replace(schedule, ended_at=now))
        await work.periods.end_obligation(schedule.permit_id, now)
        log.info("schedule_ended", permit_id=str(schedule.permit_id))

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
            # Much is due (a deadline shared by every plant): lanes overlap one batch's Python work with another's
            # statements. `due` locks the schedule with its periods and skips locked rows, so the lanes never
            # share a plant, and each plant's steps still run one transaction after another, in order.
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
            batch = await work.periods.due(now, self.config.sweep_batch)
            await self._steps(work, batch, now)
        return len(batch), len(batch) == self.config.sweep_batch

    async def _steps(self, work: ReportsWork, batch: list[tuple[Period, Schedule]], now: datetime) -> None:
        """Ask the domain for each period's step, then write the whole batch with a few set-based statements.

        A deadline falling for every plant at once (a 23:59 regime) makes a batch of thousands of reminders
        or overdues: one statement per period and table would cost a round trip each. Every period of the
        batch is written by one statement, warnings included (which also keeps the compliance rollup to one
        update per transaction, see migration 0003); then each warned plant's history is read for the
        sanction ladder. The batch's events go to the outbox in one call, in batch order, which keeps each
        plant's events in the order of its steps.
        """
        changed: list[Period] = []
        warned: list[tuple[list[Envelope | OutboxRow], Period, Schedule]] = []
        opened: list[tuple[Period, Schedule]] = []
        events: list[list[Envelope | OutboxRow]] = []  # per step in batch order; warnings filled in later
        for period, schedule in batch:
            step = domain.step(period, schedule, self.config.timing)
            own: list[Envelope | OutboxRow] = []
            if step.remind:
                own.append(_sweep_event(ReportDue, schedule, period, now))
            if step.overdue:
                own.append(_sweep_event(ReportOverdue, schedule, period, now))
            if step.open_next:
                opened.append((domain.open_period(schedule, self.config.regime, starts_at=period.deadline,
                                                  seq=period.seq + 1, timing=self.config.timing), schedule))
            after = step.period
            if step.warn:
                after = replace(after, warning_id=uuid.uuid4())
                warned.append((own, after, schedule))
            changed.append(after)
            events.append(own)
        await work.periods.add_many(opened)
        # The warnings are saved before any history is read: the ladder counts the period's own warning, and
        # reads only periods up to it, so a later period's warning in the same batch does not count early.
        await work.periods.save_many(changed, warned_at=now)
        for own, period, schedule in warned:
            own.extend(await self._warn(work, period, schedule, now))
        await work.outbox.add_in_order([event for own in events for event in own])

    async def _warn(self, work: ReportsWork, period: Period, schedule: Schedule, now: datetime) -> list[Envelope]:
        """The warning of a period already saved with its `warning_id`, and the sanction ladder's answer: the
        events to publish, in order."""
        # Re-read under the lock already held: an earlier step of this batch may have sanctioned the plant.
        schedule = await work.schedules.get(schedule.permit_id) or schedule
        history = await self._history(work, schedule.permit_id, period.seq, period.deadline)
        warning = Envelope.wrap(WarningIssued(
            **_about(schedule), warning_id=period.warning_id, period_id=period.period_id,
            deadline=period.deadline, consecutive=domain.consecutive_warnings(history),
        ), service=SERVICE, time=now)
        sanction = self.config.ladder.after_missed(schedule, history)
        if sanction is None:
            return [warning]
        schedule, recommended = await self._recommend(work, schedule, sanction, warning)
        await work.schedules.save(schedule)
        return [warning, recommended]

    async def _history(self, work: ReportsWork, permit_id: uuid.UUID, through_seq: int,
                       latest: datetime) -> list[domain.SettledPeriod]:
        ladder = self.config.ladder
        return await work.periods.settled(permit_id, through_seq, since=latest - ladder.lookback,
                                          min_periods=ladder.min_periods)

    async def _recommend(self, work: ReportsWork, schedule: Schedule, sanction: Sanction,
                         cause: Envelope) -> tuple[Schedule, Envelope]:
        """Record the sanction; the schedule afterwards and the event for the caller to add to the outbox."""
        now = self.clock.now()
        sanction_id = uuid.uuid4()
        event = SanctionRecommended(
            **_about(schedule), action=SanctionAction(sanction.action.value), rule=sanction.rule,
            evidence=SanctionEvidence(missed_periods=list(sanction.missed_periods), warnings=list(sanction.warnings)),
        )
        await work.sanctions.add(sanction_id, schedule.permit_id, sanction, now, str(cause.id))
        log.info("sanction_recommended", permit_id=str(schedule.permit_id), action=sanction.action.value,
                 rule=sanction.rule)
        return domain.after_sanction(schedule, sanction), cause.caused(event, service=SERVICE, time=now)

    # -- commands ----------------------------------------------------------------------------------

    async def submit(self, report: ReportIn, access: Access) -> Accepted:
        now = self.clock.now()
        async with self.database.transaction() as work:
            schedule, period = await work.reports.target(report.permit_id, report.period_id)
            if schedule is None or not access.may_see(region_code=schedule.regency_code, nib=schedule.nib):
                raise ScheduleNotFound(report.permit_id)
            if period is None:
                raise PeriodNotFound(report.period_id)
            accepted = domain.submit(schedule, period, report.figures, now=now)
            report_id = uuid.uuid4()
            # A period holds a current report exactly when it is reported: only then is there one to supersede.
            supersedes = await work.reports.supersede(period.period_id, report_id, now) if period.reported else None
            f = report.figures
            await work.reports.record(
                accepted.period, report_id=report_id, submitted_at=now, late=accepted.late, actor=access.actor,
                role=access.principal.role.value, payload=report.payload,
                event=Envelope.wrap(ReportSubmitted(
                    **_about(schedule), report_id=report_id, period_id=period.period_id,
                    period_starts_at=period.starts_at, deadline=period.deadline, late=accepted.late,
                    workforce_total=f.workforce_total, on_site_total=f.on_site_total, odp=f.odp, pdp=f.pdp,
                    confirmed_positive=f.confirmed_positive, tests_pcr=f.tests_pcr, tests_antigen=f.tests_antigen,
                    vaccinated_dose1=f.dose1, vaccinated_dose2=f.dose2, vaccinated_booster=f.booster,
                ), service=SERVICE, time=now),
            )
        log.info("report_submitted", permit_id=str(schedule.permit_id), period_id=str(period.period_id),
                 late=accepted.late, supersedes=str(supersedes) if supersedes else None, actor=access.actor)
        return Accepted(report_id, accepted.late, supersedes)

    # -- queries -----------------------------------------------------------------------------------

    async def schedule(self, permit_id: uuid.UUID, access: Access, limit: int) -> tuple[Schedule, list[Period]]:
        async with self.database.reading() as work:
            schedule = await self._visible(work, permit_id, access)
            return schedule, await work.periods.listing(permit_id, limit)

    async def reports(self, permit_id: uuid.UUID, access: Access, limit: int) -> list[dict[str, Any]]:
        async with self.database.reading() as work:
            await self._visible(work, permit_id, access)
            return await work.reports.listing(permit_id, limit)

    async def compliance(self, *, province: str | None, regency: str | None, window: timedelta) -> dict[str, Any]:
        now = self.clock.now()
        async with self.database.reading() as work:
            counts = await work.compliance.rates(province=province, regency=regency, since=now - window, until=now)
        return {"since": now - window, "until": now} | counts

    @staticmethod
    async def _visible(work: ReportsWork, permit_id: uuid.UUID, access: Access) -> Schedule:
        schedule = await work.schedules.get(permit_id)
        if schedule is None or not access.may_see(region_code=schedule.regency_code, nib=schedule.nib):
            raise ScheduleNotFound(permit_id)
        return schedule
