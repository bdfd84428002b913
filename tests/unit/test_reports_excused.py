"""ExcusedOnReactivation: a frozen plant files its missed reports late, its reactivation is approved, and from then on
no rule of any ladder counts those periods as missed or warned. Each rule is held to it, where the excused periods
would otherwise have decided, and where they would have been evidence."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.reports import domain
from services.reports.domain import (
    LADDERS, ExcusedOnReactivation, LadderName, MissedWhileFrozen, NextAction, Period, PeriodStatus, ReportFigures,
    SanctionKind, Schedule, SecondFreeze, SettledPeriod, ThreeMissedPeriods, ThreeWarningsInARow,
    ThreeWarningsWithinAMonth, Timing, parse_regime,
)

pytestmark = pytest.mark.unit

START = datetime(2021, 9, 3, 16, 59, tzinfo=UTC)  # a Friday deadline, 23:59 WIB
WEEK = timedelta(days=7)
NOT_REQUIRED = domain.DeclarationOfTruth(required=False)


def plant(**changes) -> Schedule:
    return replace(Schedule(permit_id=uuid.uuid4(), facility_id=uuid.uuid4(), nib="8120000123456",
                            province_code="32", regency_code="32.16", zone="Asia/Jakarta", issued_at=START),
                   **changes)


def history(pattern: str, *, gap: timedelta = WEEK) -> list[SettledPeriod]:
    """`r` reported, `m` missed and warned, `x` missed, warned, then filed late and excused on reactivation."""
    return [SettledPeriod(uuid.uuid4(), seq, START + (seq - 1) * gap, uuid.uuid4() if outcome in "mx" else None,
                          "SE-3/2021", excused=outcome == "x")
            for seq, outcome in enumerate(pattern, start=1)]


# -- the rule itself ---------------------------------------------------------------------------------------------


def test_an_excused_period_is_neither_missed_nor_warned_though_its_warning_stays_on_record():
    [missed, excused, reported] = history("mxr")
    assert missed.warned and not excused.warned and not reported.warned
    assert excused.warning_id is not None


def a_period(status: PeriodStatus, *, warned: bool) -> Period:
    return Period(uuid.uuid4(), uuid.uuid4(), 1, "weekly:FRI@23:59", START - WEEK, START, status,
                  warning_id=uuid.uuid4() if warned else None)


@pytest.mark.parametrize("warned", [True, False])
@pytest.mark.parametrize("status", list(PeriodStatus))
def test_only_a_warned_period_reported_since_can_be_excused(status, warned):
    expected = warned and status in (PeriodStatus.LATE, PeriodStatus.SUBMITTED)
    assert ExcusedOnReactivation().excusable(a_period(status, warned=warned)) is expected


def test_of_the_plants_periods_only_those_named_and_excusable_are_excused():
    filed_late = [a_period(PeriodStatus.LATE, warned=True) for _ in range(3)]
    still_overdue = a_period(PeriodStatus.OVERDUE, warned=True)
    not_named = a_period(PeriodStatus.LATE, warned=True)
    named = {p.period_id for p in filed_late} | {still_overdue.period_id, uuid.uuid4()}
    excused = ExcusedOnReactivation().excused([*filed_late, still_overdue, not_named], named)
    assert excused == filed_late


def test_a_frozen_plant_files_a_missed_and_warned_period_late_and_keeps_its_warning_until_excused():
    frozen = plant(frozen=True, freeze_count=1)
    missed = replace(a_period(PeriodStatus.OVERDUE, warned=True), permit_id=frozen.permit_id)
    figures = ReportFigures(1200, (400, 400, 300), 0, 0, 0, 10, 20, 1100, 900, 100, "")
    accepted = domain.submit(frozen, missed, figures, now=START + 3 * WEEK, declaration=NOT_REQUIRED)
    assert accepted.late and accepted.period.status is PeriodStatus.LATE
    assert accepted.period.warning_id == missed.warning_id and accepted.period.next_action is None
    assert ExcusedOnReactivation().excusable(accepted.period)


def test_a_frozen_plant_reporting_before_the_warning_is_late_and_never_warned():
    frozen = plant(frozen=True, freeze_count=1)
    overdue = replace(a_period(PeriodStatus.OVERDUE, warned=False), next_action=NextAction.WARN,
                      next_action_at=START + timedelta(hours=9))
    figures = ReportFigures(1200, (400,), 0, 0, 0, 0, 0, 0, 0, 0, "")
    accepted = domain.submit(frozen, overdue, figures, now=START + timedelta(hours=1), declaration=NOT_REQUIRED)
    assert accepted.period.status is PeriodStatus.LATE and accepted.period.next_action is None


# -- each ladder rule, where the excused periods would have decided ------------------------------------------------
# The ladder's reset (`ladder_reset_seq`) already keeps a freeze's own evidence from counting twice; these plants
# have none (a freeze by an officer, say), so only the excuse keeps the periods out.


@pytest.mark.parametrize(("pattern", "freezes"), [
    ("mmm", True),
    ("xmm", False), ("mxm", False), ("mmx", False), ("xxx", False),
    ("xmmm", True),  # three in a row after the excused one
])
def test_three_warnings_in_a_row_do_not_count_an_excused_period(pattern, freezes):
    sanction = ThreeWarningsInARow().decide(plant(), history(pattern))
    assert (sanction is not None) is freezes
    if sanction:
        assert len(sanction.missed_periods) == 3


@pytest.mark.parametrize(("pattern", "freezes"), [
    ("mrmrm", True),
    ("xrmrm", False), ("mrxrm", False), ("xrxrx", False),
    ("xrmrmrm", True),
])
def test_three_warnings_within_a_month_do_not_count_an_excused_period(pattern, freezes):
    settled = history(pattern, gap=timedelta(days=3))
    sanction = ThreeWarningsWithinAMonth().decide(plant(), settled)
    assert (sanction is not None) is freezes
    if sanction:
        assert not {p.period_id for p in settled if p.excused} & set(sanction.missed_periods)


@pytest.mark.parametrize(("pattern", "revokes"), [
    ("mrmrm", True), ("xrmrm", False), ("xxxmm", False), ("xxxmmm", True),
])
def test_three_missed_periods_of_se_8_2020_do_not_count_an_excused_period(pattern, revokes):
    assert (ThreeMissedPeriods().decide(plant(), history(pattern)) is not None) is revokes


def test_a_second_freeze_cites_no_excused_period_as_its_evidence():
    # Frozen once on three warnings, filed late, excused, reactivated; three more warnings, frozen again.
    settled = history("xxxrrmmm")
    sanction = SecondFreeze().decide(plant(frozen=True, freeze_count=2), settled)
    assert sanction is not None and sanction.action is SanctionKind.REVOKE
    assert sanction.missed_periods == tuple(p.period_id for p in settled[5:])
    assert sanction.warnings == tuple(p.warning_id for p in settled[5:])


def test_a_miss_while_frozen_is_judged_on_the_latest_period_alone():
    settled = history("xxxm")
    sanction = MissedWhileFrozen().decide(plant(frozen=True, freeze_count=1), settled)
    assert sanction is not None and sanction.missed_periods == (settled[-1].period_id,)


def test_warnings_in_a_row_stop_at_an_excused_period():
    assert domain.consecutive_warnings(history("mmm")) == 3
    assert domain.consecutive_warnings(history("xxxm")) == 1
    assert domain.consecutive_warnings(history("mxm")) == 1


@pytest.mark.parametrize("name", list(LadderName))
def test_after_a_reactivation_a_single_miss_recommends_nothing_under_any_ladder(name):
    ladder = LADDERS[name]
    reactivated = plant()  # no reset: the excuse alone must keep the three periods out
    assert ladder.after_missed(reactivated, history("mmm")) is not None
    assert ladder.after_missed(reactivated, history("xxxm")) is None


def test_the_whole_story_with_the_sweep():
    """Three Fridays missed under SE 3/2021: frozen. The plant files the three late, is reactivated with them excused,
    then misses one Friday: a first warning, and no sanction."""
    regime, timing = parse_regime("weekly:FRI@23:59"), Timing(warning_delay=timedelta(hours=9))
    schedule, ladder, settled = plant(), LADDERS[LadderName.SE_3_2021], []
    start = START - WEEK
    periods = []
    for seq in range(1, 4):
        period = domain.open_period(schedule, regime, starts_at=start, seq=seq, timing=timing)
        start = period.deadline
        while period.next_action is not None:
            period = domain.step(domain.Situation.of(period, schedule), timing).applied_to(period)
        period = replace(period, warning_id=uuid.uuid4())
        periods.append(period)
        settled.append(SettledPeriod(period.period_id, seq, period.deadline, period.warning_id, "SE-3/2021"))
    freeze = ladder.after_missed(schedule, settled)
    assert freeze is not None and freeze.rule == "ThreeWarningsInARow"
    schedule = replace(schedule, frozen=True, freeze_count=1)  # no reset: as if an officer had frozen it

    figures = ReportFigures(1200, (400, 400, 300), 0, 0, 0, 10, 20, 1100, 900, 100, "")
    filed = [domain.submit(schedule, p, figures, now=start + timedelta(days=1), declaration=NOT_REQUIRED).period
             for p in periods]
    excused = {p.period_id for p in ExcusedOnReactivation().excused(filed, set(freeze.missed_periods))}
    assert excused == set(freeze.missed_periods)
    schedule = replace(schedule, frozen=False)

    settled = [replace(p, excused=p.period_id in excused) for p in settled]
    settled.append(SettledPeriod(uuid.uuid4(), 4, start + WEEK, uuid.uuid4(), "SE-3/2021"))
    assert domain.consecutive_warnings(settled) == 1
    assert ladder.after_missed(schedule, settled) is None
