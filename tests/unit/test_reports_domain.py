"""Reporting schedules and the sanction ladder, walked through months of periods with a fake clock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.reports import domain
from services.reports.domain import (
    FixedInterval, InconsistentReport, InvalidRegime, NextAction, ObligationEnded, Period, PeriodClosed, PeriodStatus,
    ReportFigures, SanctionKind, SanctionLadder, Schedule, SettledPeriod, Situation, Timing, parse_regime,
)
from shared.clock import FakeClock

pytestmark = pytest.mark.unit

NOT_REQUIRED = domain.DeclarationOfTruth(required=False)  # SE 8/2020 and SE 3/2021

UTC = UTC
FRIDAY = parse_regime("weekly:FRI@23:59")


def schedule(province: str = "32", **changes) -> Schedule:
    base = Schedule(uuid.uuid4(), uuid.uuid4(), "8120000123456", province, f"{province}.01",
                    domain.zone_of(province), datetime(2021, 9, 1, tzinfo=UTC))
    return replace(base, **changes)


def figures(**changes) -> ReportFigures:
    base = ReportFigures(1200, (380, 390, 290), 3, 1, 0, 12, 40, 1100, 950, 300, "")
    return replace(base, **changes)


# -- regimes and zones -----------------------------------------------------------------------------


@pytest.mark.parametrize("province, zone", [("32", "Asia/Jakarta"), ("31", "Asia/Jakarta"), ("51", "Asia/Makassar"),
                                            ("73", "Asia/Makassar"), ("64", "Asia/Makassar"),
                                            ("81", "Asia/Jayapura"), ("82", "Asia/Jayapura"),
                                            ("91", "Asia/Jayapura"), ("94", "Asia/Jayapura")])
def test_province_decides_the_zone(province, zone):
    assert domain.zone_of(province) == zone


@pytest.mark.parametrize("province, utc_hour", [("32", 16), ("51", 15), ("91", 14)])
def test_friday_2359_is_local_time_stored_as_utc(province, utc_hour):
    # Wednesday 1 Sep 2021 noon UTC: the next Friday is 3 Sep.
    deadline = FRIDAY.deadline_after(datetime(2021, 9, 1, 12, tzinfo=UTC), domain.zone_of(province))
    assert deadline == datetime(2021, 9, 3, utc_hour, 59, tzinfo=UTC)
    assert deadline.astimezone(ZoneInfo(domain.zone_of(province))).strftime("%a %H:%M") == "Fri 23:59"


def test_a_deadline_is_strictly_after_the_start():
    friday_deadline = datetime(2021, 9, 3, 16, 59, tzinfo=UTC)
    assert FRIDAY.deadline_after(friday_deadline, "Asia/Jakarta") == friday_deadline + timedelta(days=7)
    just_before = friday_deadline - timedelta(seconds=1)
    assert FRIDAY.deadline_after(just_before, "Asia/Jakarta") == friday_deadline


def test_twice_weekly_alternates_tuesday_and_friday():
    regime = parse_regime("twice-weekly:TUE,FRI@23:59")
    moment, deadlines = datetime(2021, 7, 30, tzinfo=UTC), []  # a Friday
    for _ in range(4):
        moment = regime.deadline_after(moment, "Asia/Jakarta")
        deadlines.append(moment.astimezone(ZoneInfo("Asia/Jakarta")).strftime("%a %d"))
    assert deadlines == ["Fri 30", "Tue 03", "Fri 06", "Tue 10"]


def test_weekend_regime_of_2020_and_demo_interval():
    assert parse_regime("weekly:SAT@23:59").deadline_after(
        datetime(2020, 5, 1, tzinfo=UTC), "Asia/Jakarta") == datetime(2020, 5, 2, 16, 59, tzinfo=UTC)
    every = parse_regime("every:5s")
    assert isinstance(every, FixedInterval)
    assert every.deadline_after(datetime(2021, 1, 1, tzinfo=UTC), "Asia/Jayapura") == datetime(2021, 1, 1, 0, 0, 5,
                                                                                                tzinfo=UTC)


@pytest.mark.parametrize("text", ["weekly:FRIDAY@23:59", "weekly:FRI,SAT@23:59", "twice-weekly:FRI@23:59",
                                  "twice-weekly:FRI,FRI@23:59", "weekly:FRI@24:00", "every:0s", "monthly", ""])
def test_malformed_regimes_are_refused(text):
    with pytest.raises(InvalidRegime):
        parse_regime(text)


def test_a_regime_change_applies_from_the_next_period():
    plant, timing = schedule(), Timing()
    first = domain.open_period(plant, FRIDAY, starts_at=datetime(2021, 9, 1, tzinfo=UTC), seq=1, timing=timing)
    twice = parse_regime("twice-weekly:TUE,FRI@23:59")
    second = domain.open_period(plant, twice, starts_at=first.deadline, seq=2, timing=timing)
    assert first.regime == "weekly:FRI@23:59" and first.deadline == datetime(2021, 9, 3, 16, 59, tzinfo=UTC)
    assert second.regime == twice.text and second.deadline == datetime(2021, 9, 7, 16, 59, tzinfo=UTC)  # Tuesday


# -- a period's life -------------------------------------------------------------------------------


def advance(period: Period, plant: Schedule, timing: Timing) -> tuple[Period, domain.Step]:
    """One sweep step of a period, as the sweep takes it: decided by the situation, applied to the period."""
    step = domain.step(Situation.of(period, plant), timing)
    return step.applied_to(period), step


def test_period_reminds_then_goes_overdue_then_warns_once():
    plant, timing = schedule(), Timing(due_lead=timedelta(hours=6), warning_delay=timedelta(hours=9))
    period = domain.open_period(plant, FRIDAY, starts_at=datetime(2021, 9, 1, tzinfo=UTC), seq=1, timing=timing)
    assert (period.next_action, period.next_action_at) == (NextAction.REMIND, period.deadline - timedelta(hours=6))
    reminded, step = advance(period, plant, timing)
    assert step.remind and not step.overdue
    overdue, step = advance(reminded, plant, timing)
    assert step.overdue and step.open_next and overdue.status is PeriodStatus.OVERDUE
    assert overdue.next_action_at == period.deadline + timedelta(hours=9)
    warned, step = advance(overdue, plant, timing)
    assert step.warn and warned.next_action is None


ACTIONS_IN_ORDER = [NextAction.REMIND, NextAction.DEADLINE, NextAction.WARN, None]


@pytest.mark.parametrize("action", ACTIONS_IN_ORDER)
@pytest.mark.parametrize("status", list(PeriodStatus))
@pytest.mark.parametrize("ended", [False, True])
@pytest.mark.parametrize("closed", [False, True])
def test_every_step_moves_the_period_on_and_publishes_at_most_one_fact(action, status, ended, closed):
    """In every situation: the period leaves the action it took (the sweep always ends), a next action is in
    the future of the deadline's day, only a deadline opens the next period, and a revoked permit's period
    only stops."""
    deadline, timing = datetime(2021, 9, 3, 16, 59, tzinfo=UTC), Timing()
    step = domain.step(Situation(action, status, deadline, ended, closed), timing)
    assert ACTIONS_IN_ORDER.index(step.next_action) > ACTIONS_IN_ORDER.index(action) or action is None
    assert (step.next_action is None) == (step.next_action_at is None)
    assert step.next_action_at is None or step.next_action_at >= deadline
    assert step.remind + step.overdue + step.warn <= 1
    assert not step.open_next or action is NextAction.DEADLINE
    if ended:
        assert step == domain.Step(status)


def test_plants_sharing_a_zone_and_a_start_open_the_same_period_but_their_own():
    plants, start, timing = [schedule(), schedule()], datetime(2021, 9, 3, 16, 59, tzinfo=UTC), Timing()
    first, second = (domain.open_period(plant, FRIDAY, starts_at=start, seq=4, timing=timing) for plant in plants)
    assert replace(first, period_id=second.period_id, permit_id=second.permit_id) == second
    assert first.period_id != second.period_id and first.permit_id == plants[0].permit_id
    assert domain.opening(FRIDAY, plants[0].zone, starts_at=start, timing=timing).deadline == first.deadline


def test_reminder_of_a_short_period_goes_out_when_it_opens():
    plant = schedule()
    start = datetime(2021, 9, 1, tzinfo=UTC)
    period = domain.open_period(plant, parse_regime("every:5s"), starts_at=start, seq=1, timing=Timing())
    assert period.next_action_at == start


def test_a_report_after_the_deadline_but_before_the_warning_is_late_and_not_warned():
    plant, timing = schedule(), Timing()
    period = domain.open_period(plant, FRIDAY, starts_at=datetime(2021, 9, 1, tzinfo=UTC), seq=1, timing=timing)
    overdue, _ = advance(advance(period, plant, timing)[0], plant, timing)
    accepted = domain.submit(plant, overdue, figures(), declaration=NOT_REQUIRED,
                             now=period.deadline + timedelta(hours=1))
    assert accepted.late and accepted.period.status is PeriodStatus.LATE and accepted.period.next_action is None


def test_a_closed_plant_is_excused_and_a_reported_period_just_rolls_over():
    plant, timing = schedule(closed=True), Timing()
    period = domain.open_period(plant, FRIDAY, starts_at=datetime(2021, 9, 1, tzinfo=UTC), seq=1, timing=timing)
    excused, step = advance(replace(period, next_action=NextAction.DEADLINE), plant, timing)
    assert excused.status is PeriodStatus.EXCUSED and not step.overdue and step.open_next
    reported = replace(period, status=PeriodStatus.SUBMITTED, next_action=NextAction.DEADLINE)
    rolled, step = advance(reported, schedule(), timing)
    assert step.open_next and not step.overdue and rolled.status is PeriodStatus.SUBMITTED


def test_a_revoked_permit_owes_nothing():
    plant, timing = schedule(), Timing()
    period = domain.open_period(plant, FRIDAY, starts_at=datetime(2021, 9, 1, tzinfo=UTC), seq=1, timing=timing)
    revoked = replace(plant, ended_at=datetime(2021, 9, 2, tzinfo=UTC))
    stepped, step = advance(replace(period, next_action=NextAction.DEADLINE), revoked, timing)
    assert not (step.overdue or step.open_next) and stepped.next_action is None
    with pytest.raises(ObligationEnded):
        domain.submit(revoked, period, figures(), declaration=NOT_REQUIRED, now=datetime(2021, 9, 2, tzinfo=UTC))
    with pytest.raises(PeriodClosed):
        domain.submit(plant, replace(period, status=PeriodStatus.ENDED), figures(),
                      declaration=NOT_REQUIRED, now=datetime(2021, 9, 2, tzinfo=UTC))


def test_a_correction_after_the_deadline_keeps_the_period_on_time():
    plant, timing = schedule(), Timing()
    period = domain.open_period(plant, FRIDAY, starts_at=datetime(2021, 9, 1, tzinfo=UTC), seq=1, timing=timing)
    first = domain.submit(plant, period, figures(), declaration=NOT_REQUIRED, now=period.deadline - timedelta(hours=1))
    correction = domain.submit(plant, first.period, figures(odp=4), declaration=NOT_REQUIRED,
                               now=period.deadline + timedelta(hours=1))
    assert not first.late and correction.late and correction.period.status is PeriodStatus.SUBMITTED


@pytest.mark.parametrize("changes, fields", [
    ({"on_site_per_shift": (500, 500, 300)}, ["workforce.on_site_per_shift"]),
    ({"new_positives": 1300, "case_handling": "isolated"}, ["new_positives"]),
    ({"isolating_workers": 1300, "case_handling": "isolated"}, ["isolating_workers"]),
    # 1060 on site: 141 isolating workers would be people on site and isolating at once.
    ({"isolating_workers": 141, "case_handling": "isolated"}, ["isolating_workers"]),
    ({"on_site_per_shift": (1300,), "isolating_workers": 10, "case_handling": "isolated"},
     ["workforce.on_site_per_shift"]),
    ({"odp": 1201, "pdp": 1201}, ["odp", "pdp"]),
    ({"dose1": 1201, "dose2": 1201, "booster": 0}, ["vaccinated.dose1"]),
    ({"dose2": 1101}, ["vaccinated.dose2"]),
    ({"booster": 951}, ["vaccinated.booster"]),
    ({"new_positives": 2}, ["case_handling"]),
    ({"isolating_workers": 2}, ["case_handling"]),
])
def test_contradictory_counts_name_their_field(changes, fields):
    with pytest.raises(InconsistentReport) as refused:
        domain.submit(schedule(), domain.open_period(schedule(), FRIDAY, starts_at=datetime(2021, 9, 1, tzinfo=UTC),
                                                     seq=1, timing=Timing()), figures(**changes),
                      declaration=NOT_REQUIRED, now=datetime(2021, 9, 2, tzinfo=UTC))
    assert [issue.field for issue in refused.value.issues] == fields


def test_consistent_counts_at_the_limits_pass():
    assert domain.consistency_issues(figures(isolating_workers=140, case_handling="isolated")) == []
    assert domain.consistency_issues(figures(isolating_workers=None, case_handling="")) == []
    assert domain.consistency_issues(figures(on_site_per_shift=(1200,), new_positives=1200, dose1=1200,
                                             dose2=1200, booster=1200, case_handling="isolated, traced")) == []


@pytest.mark.parametrize(("named", "alias", "count"), [(2, None, 2), (None, 2, 2), (2, 2, 2), (0, None, 0)])
def test_new_positives_come_by_their_name_or_their_older_one(named, alias, count):
    assert domain.new_positives(named, alias) == count


@pytest.mark.parametrize(("named", "alias", "field"), [(None, None, "new_positives"), (2, 3, "confirmed_positive"),
                                                       (0, 1, "confirmed_positive")])
def test_new_positives_missing_or_contradicted_by_their_older_name_are_refused(named, alias, field):
    with pytest.raises(InconsistentReport) as refused:
        domain.new_positives(named, alias)
    assert [issue.field for issue in refused.value.issues] == [field]


# -- the sanction ladder, walked with a fake clock -------------------------------------------------


@dataclass
class Plant:
    """A plant living through weekly periods: it reports or not; the ladder answers at each warning."""

    regime: domain.Regime = FRIDAY
    clock: FakeClock = field(default_factory=lambda: FakeClock(datetime(2021, 9, 1, tzinfo=UTC)))
    ladder: SanctionLadder = SanctionLadder()
    timing: Timing = Timing()
    schedule: Schedule = field(default_factory=schedule)
    settled: list[SettledPeriod] = field(default_factory=list)
    sanctions: list[domain.Sanction] = field(default_factory=list)
    warnings: list[int] = field(default_factory=list)  # `consecutive` of each warning

    def live(self, *, reports: bool) -> None:
        """One period: open it, maybe report before the deadline, and run the sweep until it is settled."""
        seq = len(self.settled) + 1
        start = self.settled[-1].deadline if self.settled else self.clock.now()
        period = domain.open_period(self.schedule, self.regime, starts_at=start, seq=seq, timing=self.timing)
        if reports:
            self.clock.set(period.deadline - timedelta(hours=2))
            period = domain.submit(self.schedule, period, figures(), declaration=NOT_REQUIRED,
                                   now=self.clock.now()).period
        warning_id = None
        while period.next_action is not None:
            self.clock.set(max(self.clock.now(), period.next_action_at))
            period, step = advance(period, self.schedule, self.timing)
            if step.warn:
                warning_id = uuid.uuid4()
        self.settled.append(SettledPeriod(period.period_id, seq, period.deadline, warning_id))
        if warning_id:
            self.warnings.append(domain.consecutive_warnings(self.settled))
            sanction = self.ladder.after_missed(self.schedule, self.history())
            if sanction:
                self.sanctions.append(sanction)
                self.schedule = domain.after_sanction(self.schedule, sanction)

    def history(self) -> list[SettledPeriod]:
        """What the repository hands the ladder: the ladder's lookback and at least its last few periods."""
        latest = self.settled[-1]
        recent = [p for p in self.settled if p.deadline >= latest.deadline - self.ladder.lookback]
        return self.settled[-self.ladder.min_periods:] if len(recent) < self.ladder.min_periods else recent

    def pattern(self, outcomes: str) -> None:
        """`r` reports, `m` misses: `"rmmm"` is one report then three misses."""
        for outcome in outcomes:
            self.live(reports=outcome == "r")

    def freeze(self) -> None:
        self.schedule = replace(self.schedule, frozen=True, freeze_count=self.schedule.freeze_count + 1)
        if sanction := self.ladder.after_frozen(self.schedule, self.settled):
            self.sanctions.append(sanction)
            self.schedule = domain.after_sanction(self.schedule, sanction)

    def reactivate(self) -> None:
        self.schedule = replace(self.schedule, frozen=False)

    @property
    def rules(self) -> list[str]:
        return [s.rule for s in self.sanctions]


def test_a_plant_that_always_reports_is_never_warned():
    plant = Plant()
    plant.pattern("r" * 26)  # half a year
    assert plant.warnings == [] and plant.sanctions == []


def test_three_misses_in_a_row_recommend_a_freeze_with_the_evidence():
    plant = Plant()
    plant.pattern("rmm")
    assert plant.sanctions == []
    plant.pattern("m")
    assert plant.warnings == [1, 2, 3]
    (freeze,) = plant.sanctions
    assert (freeze.action, freeze.rule) == (SanctionKind.FREEZE, "ThreeWarningsInARow")
    assert freeze.missed_periods == tuple(p.period_id for p in plant.settled[1:4])
    assert freeze.warnings == tuple(p.warning_id for p in plant.settled[1:4])


def test_a_report_between_misses_breaks_the_row_but_not_the_month():
    plant = Plant()
    plant.pattern("mrm")
    assert plant.sanctions == []
    plant.pattern("m")  # Fridays 3, 17, 24 Sep: not in a row, but within a month of the first
    assert plant.warnings == [1, 1, 2] and plant.rules == ["ThreeWarningsWithinAMonth"]


def daily_plant(start: datetime) -> Plant:
    """Daily periods make the calendar-month boundary exact: period k has its deadline k days after start."""
    return Plant(regime=parse_regime("every:86400s"), clock=FakeClock(start))


def test_three_weekly_warnings_five_weeks_apart_are_not_within_a_month():
    plant = Plant()
    plant.pattern("m" + "rm" + "rrm")  # Fridays 3 Sep, 17 Sep, 8 Oct: 8 Oct is past 3 Oct
    assert plant.warnings == [1, 1, 1] and plant.sanctions == []


def test_the_third_warning_exactly_one_calendar_month_after_the_first_counts():
    plant = daily_plant(datetime(2021, 2, 28, 12, tzinfo=UTC))
    plant.pattern("m" + "r" * 15 + "m" + "r" * 14 + "m")  # 1 Mar, 17 Mar, 1 Apr 12:00 (exactly a month)
    assert [p.deadline.date().isoformat() for p in plant.settled if p.warned] == ["2021-03-01", "2021-03-17",
                                                                                  "2021-04-01"]
    assert plant.rules == ["ThreeWarningsWithinAMonth"]


def test_the_third_warning_a_day_after_one_month_does_not_count():
    plant = daily_plant(datetime(2021, 2, 28, 12, tzinfo=UTC))
    plant.pattern("m" + "r" * 15 + "m" + "r" * 15 + "m")  # 1 Mar, 17 Mar, 2 Apr
    assert plant.sanctions == []


def test_a_month_from_31_january_ends_on_28_february():
    assert domain.add_month(datetime(2021, 1, 31, 16, 59, tzinfo=UTC)) == datetime(2021, 2, 28, 16, 59, tzinfo=UTC)
    plant = daily_plant(datetime(2021, 1, 30, 16, 59, tzinfo=UTC))
    plant.pattern("m" + "r" * 10 + "m" + "r" * 17 + "m")  # 31 Jan, 11 Feb, 1 Mar: past 28 Feb
    assert plant.sanctions == []


def test_two_in_a_row_then_a_gap_is_not_three_in_a_row():
    plant = Plant()
    plant.pattern("mm")
    plant.pattern("r")
    plant.pattern("m")  # 3rd warning, 21 days after the first: the month rule, not the row rule
    assert plant.warnings == [1, 2, 1] and plant.rules == ["ThreeWarningsWithinAMonth"]


def test_within_a_month_slides_to_a_later_first_warning():
    plant = daily_plant(datetime(2021, 1, 1, tzinfo=UTC))
    plant.pattern("m" + "r" * 20 + "m" + "r" * 15 + "m")  # 2 Jan, 23 Jan, 8 Feb: 37 days from the first
    assert plant.sanctions == []
    plant.pattern("r" * 5 + "m")  # 14 Feb: 23 Jan → 14 Feb is within a month
    assert plant.rules == ["ThreeWarningsWithinAMonth"]
    assert len(plant.sanctions[0].warnings) == 3


def test_warnings_behind_a_freeze_do_not_count_twice():
    plant = Plant()
    plant.pattern("mmm")
    assert plant.rules == ["ThreeWarningsInARow"]
    plant.pattern("m")  # not frozen by permits (yet): a fourth miss is not a second freeze recommendation
    assert plant.rules == ["ThreeWarningsInARow"]
    assert plant.warnings == [1, 2, 3, 4]


def test_a_miss_while_frozen_recommends_revocation_once():
    plant = Plant()
    plant.pattern("mmm")
    plant.freeze()
    plant.pattern("r")
    assert plant.rules == ["ThreeWarningsInARow"]
    plant.pattern("m")
    assert plant.rules == ["ThreeWarningsInARow", "MissedWhileFrozen"]
    revoke = plant.sanctions[-1]
    assert revoke.action is SanctionKind.REVOKE and revoke.missed_periods == (plant.settled[-1].period_id,)
    plant.pattern("m")
    assert len(plant.sanctions) == 2


def test_a_second_freeze_recommends_revocation():
    plant = Plant()
    plant.pattern("mmm")
    plant.freeze()
    plant.pattern("rr")
    plant.reactivate()
    plant.pattern("rrmmm")
    assert plant.rules == ["ThreeWarningsInARow", "ThreeWarningsInARow"]
    plant.freeze()
    assert plant.rules[-1] == "SecondFreeze" and plant.sanctions[-1].action is SanctionKind.REVOKE
    assert len(plant.sanctions[-1].warnings) == 6


def test_a_closure_excuses_periods_without_warnings():
    plant = Plant()
    plant.schedule = replace(plant.schedule, closed=True)
    plant.pattern("mmmm")
    assert plant.warnings == [] and plant.sanctions == []
