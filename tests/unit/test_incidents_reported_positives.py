"""A report's new positives and isolating workers against the cases a plant already has: each worker counted once,
whether the company entered the case first, reported it first, or reported the same isolating workers weeks running.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time

import pytest

from services.incidents.domain import (
    Actor, Case, IncidentPolicy, NewCase, Outcome, Plant, ReportedPositives,
)
from shared.contract import CaseSource
from shared.regions import WIB

pytestmark = pytest.mark.unit

POLICY = IncidentPolicy()
COMPANY = Actor("k3-officer", "company")
# Weekly periods at a plant in Kab. Bekasi (WIB dates, both included); each report comes in on its last day.
WEEK_1 = (date(2026, 11, 14), date(2026, 11, 20))
WEEK_2 = (date(2026, 11, 21), date(2026, 11, 27))
WEEK_3 = (date(2026, 11, 28), date(2026, 12, 4))


class Ledger:
    """One plant's cases as the incidents service keeps them, fed by reports and entries as the handlers do."""

    def __init__(self) -> None:
        self.plant = Plant(uuid.uuid4(), uuid.uuid4(), "8120000777001", "32", "32.16", 1200)
        self.cases: dict[uuid.UUID, Case] = {}

    def report(self, week: tuple[date, date], *, new_positives: int | None, isolating_workers: int | None,
               confirmed_positive: int | None = None) -> list[Case]:
        """A ReportSubmitted on the week's last day, as `on_report_submitted` reconciles it: the placeholders."""
        on = week[1]
        stated = ReportedPositives.stated_by(
            confirmed_positive=new_positives if confirmed_positive is None else confirmed_positive,
            new_positives=new_positives, isolating_workers=isolating_workers)
        reported = stated.against(known_in_period=sum(week[0] <= c.confirmed_on <= week[1]
                                                      for c in self.cases.values()),
                                  known_isolating=self.isolating_on(on))
        added = []
        for new in reported.placeholders(uuid.uuid4(), on, week, POLICY):
            outcome = self.plant.detect_case(new, unclustered=self.unclustered(), now=self.noon(on), policy=POLICY,
                                             recorded_by=Actor("report", "company"))
            added.append(self.apply(outcome))
        return added

    def enter(self, ref: str, confirmed_on: date, *, on: date, symptomatic: bool = False) -> Case:
        """A case the company enters by POST /cases on day `on`: it claims a placeholder that counted it, if any."""
        new = NewCase(case_ref=ref, confirmed_on=confirmed_on, symptomatic=symptomatic, close_contacts=0,
                      source=CaseSource.DIRECT, symptom_onset_on=confirmed_on if symptomatic else None)
        outcome = self.plant.enter_case(new, placeholders=self.to_complete(), unclustered=self.unclustered(),
                                        now=self.noon(on), policy=POLICY, by=COMPANY)
        return self.apply(outcome)

    def isolating_on(self, day: date) -> int:
        """As the repository counts them: isolation begun by that day and not ended (closed or as planned)."""
        return sum(c.isolation_starts_on <= day < (c.closed_on or c.isolation_ends_on) for c in self.cases.values())

    def to_complete(self) -> list[Case]:
        return [c for c in self.cases.values() if c.is_placeholder]

    def unclustered(self) -> list[tuple[uuid.UUID, date]]:
        return [(c.case_id, c.confirmed_on) for c in self.cases.values() if c.cluster_id is None]

    def apply(self, outcome: Outcome) -> Case:
        self.plant = outcome.plant
        for cluster in outcome.clusters:  # the repository tags the earlier cases of a new cluster
            for case_id in cluster.case_ids:
                if case_id in self.cases:
                    self.cases[case_id] = replace(self.cases[case_id], cluster_id=cluster.cluster_id)
        for case in outcome.cases:
            self.cases[case.case_id] = case
        return outcome.cases[0]

    @staticmethod
    def noon(day: date) -> datetime:
        return datetime.combine(day, time(12), WIB).astimezone(UTC)


# -- the rule -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("new", "isolating", "known_in_period", "known_isolating", "placeholders"), [
    (2, 2, 0, 0, (2, 0)),     # two new positives, isolating: two placeholders
    (0, 2, 0, 2, (0, 0)),     # the same two still isolating a week later: nothing new
    (2, 2, 2, 2, (0, 0)),     # both entered before the report: nothing new
    (2, 2, 1, 1, (1, 0)),     # one entered, one not: the other is new, and isolates with it
    (1, 3, 0, 0, (1, 2)),     # two isolating beyond the new one, confirmed earlier, unknown: placeholders too
    (1, 3, 0, 1, (1, 1)),     # one of those two is a known isolating case
    (1, 3, 1, 3, (0, 0)),     # all known
    (2, 5, 1, 1, (1, 3)),
    (0, 3, 2, 0, (0, 3)),     # the period's known cases no longer isolate: the three isolating are others
    (3, 1, 0, 0, (3, 0)),     # new positives not isolating (in hospital): the isolating count adds nothing
    (0, 1, 0, 3, (0, 0)),     # fewer than known removes nothing
    (1, 0, 2, 0, (0, 0)),
    (0, 0, 0, 0, (0, 0)),
    (2, None, 0, 0, (2, 0)),  # isolation not stated (a v1 report): new positives only
    (2, None, 1, 9, (1, 0)),
])
def test_placeholders_are_the_new_positives_and_isolating_workers_not_already_known(
        new, isolating, known_in_period, known_isolating, placeholders):
    reported = ReportedPositives(new, isolating).against(known_in_period=known_in_period,
                                                         known_isolating=known_isolating)
    assert (reported.new_cases, reported.earlier_cases) == placeholders


@pytest.mark.parametrize(("confirmed_positive", "new_positives", "isolating_workers", "stated"), [
    (2, None, None, ReportedPositives(2, None)),  # v1: confirmed_positive is the new positives
    (0, None, None, ReportedPositives(0, None)),
    (2, 2, 3, ReportedPositives(2, 3)),
    (0, 0, 2, ReportedPositives(0, 2)),
])
def test_a_report_states_its_positives_by_their_names_or_as_v1_did(confirmed_positive, new_positives,
                                                                    isolating_workers, stated):
    assert ReportedPositives.stated_by(confirmed_positive=confirmed_positive, new_positives=new_positives,
                                       isolating_workers=isolating_workers) == stated


def test_a_report_counting_nobody_has_nothing_to_reconcile():
    assert not ReportedPositives(0, None).stated and not ReportedPositives(0, 0).stated
    assert ReportedPositives(0, 1).stated and ReportedPositives(1, None).stated


def test_earlier_positives_may_be_confirmed_before_the_period_within_the_longest_isolation():
    # Isolating on 20 Nov, not new since 14 Nov: confirmed at most 13 days before (10 days + 3 symptom-free).
    assert ReportedPositives.earlier_days(date(2026, 11, 20), WEEK_1, POLICY) == (date(2026, 11, 7),
                                                                                 date(2026, 11, 13))
    # However long a period, the days kept are before it.
    month = (date(2026, 11, 1), date(2026, 11, 30))
    assert ReportedPositives.earlier_days(date(2026, 11, 30), month, POLICY) == (date(2026, 10, 31),
                                                                                date(2026, 10, 31))


def test_placeholders_are_numbered_after_the_known_and_keep_the_days_their_case_may_be_confirmed_on():
    report_id = uuid.uuid4()
    reported = ReportedPositives(2, 4).against(known_in_period=1, known_isolating=1)
    made = reported.placeholders(report_id, WEEK_1[1], WEEK_1, POLICY)
    assert [p.case_ref for p in made] == [f"R-{report_id.hex[:12]}-{n}" for n in (2, 3, 4)]
    assert [p.report_period for p in made] == [WEEK_1, (date(2026, 11, 7), date(2026, 11, 13)),
                                               (date(2026, 11, 7), date(2026, 11, 13))]
    assert {(p.confirmed_on, p.source, p.report_id) for p in made} == {(WEEK_1[1], CaseSource.REPORT, report_id)}


# -- walks ----------------------------------------------------------------------------------------------


def test_the_same_two_isolating_workers_reported_two_weeks_running_are_two_cases_not_four():
    plant = Ledger()
    week_1 = plant.report(WEEK_1, new_positives=2, isolating_workers=2)
    assert len(week_1) == 2 and all(c.is_placeholder and c.report_period == WEEK_1 for c in week_1)
    # A week later the two still isolate and nobody new tested positive.
    assert plant.report(WEEK_2, new_positives=0, isolating_workers=2) == []
    assert len(plant.cases) == 2 and plant.isolating_on(WEEK_2[1]) == 2
    # The week after, their isolation is over and the report says so: still two.
    assert plant.report(WEEK_3, new_positives=0, isolating_workers=0) == []
    assert len(plant.cases) == 2 and len(plant.to_complete()) == 2  # the company has two cases to complete


def test_cases_entered_first_then_reported_are_not_counted_again():
    plant = Ledger()
    plant.enter("LINE1-A", date(2026, 11, 16), on=date(2026, 11, 16), symptomatic=True)
    plant.enter("LINE1-B", date(2026, 11, 17), on=date(2026, 11, 17), symptomatic=True)
    assert plant.report(WEEK_1, new_positives=2, isolating_workers=2) == []
    # Both still isolate on 27 Nov (10 days and 3 symptom-free): the same two, nothing new.
    assert plant.report(WEEK_2, new_positives=0, isolating_workers=2) == []
    assert len(plant.cases) == 2 and plant.to_complete() == []


def test_cases_reported_first_then_entered_claim_the_placeholders():
    plant = Ledger()
    placeholders = plant.report(WEEK_1, new_positives=2, isolating_workers=2)
    entered = [plant.enter(ref, date(2026, 11, 18), on=date(2026, 11, 21), symptomatic=True)
               for ref in ("LINE2-A", "LINE2-B")]
    assert {c.case_id for c in entered} == {p.case_id for p in placeholders}
    assert len(plant.cases) == 2 and plant.to_complete() == []
    # Still isolating a week on (symptomatic: 10 days and 3 symptom-free from 18 Nov): the report adds nobody.
    assert plant.report(WEEK_2, new_positives=0, isolating_workers=2) == []
    assert len(plant.cases) == 2


def test_isolating_workers_beyond_the_known_cases_are_placeholders_for_the_days_before_the_period():
    plant = Ledger()
    plant.enter("LINE3-A", date(2026, 11, 19), on=date(2026, 11, 19))
    # One new positive (the case entered) and three isolating: two confirmed before the period, unknown here.
    earlier = plant.report(WEEK_1, new_positives=1, isolating_workers=3)
    assert [c.report_period for c in earlier] == [(date(2026, 11, 7), date(2026, 11, 13))] * 2
    assert len(plant.cases) == 3 and plant.isolating_on(WEEK_1[1]) == 3
    # Sent again (redelivered, or a correction with the same counts): nothing more.
    assert plant.report(WEEK_1, new_positives=1, isolating_workers=3) == []
    # The company completes one, confirmed on 12 Nov: it claims a placeholder; one confirmed on 6 Nov (isolated
    # before the report) claims none, and is a case of its own.
    claimed = plant.enter("LINE3-B", date(2026, 11, 12), on=date(2026, 11, 21))
    assert claimed.case_id in {c.case_id for c in earlier} and len(plant.to_complete()) == 1
    own = plant.enter("LINE3-C", date(2026, 11, 6), on=date(2026, 11, 21))
    assert own.source is CaseSource.DIRECT and len(plant.cases) == 4
    # A week on: the case of 19 Nov and the placeholder still isolate (the claimed one ended on 22 Nov).
    assert plant.isolating_on(WEEK_2[1]) == 2
    assert plant.report(WEEK_2, new_positives=0, isolating_workers=2) == []
    assert len(plant.cases) == 4


def test_an_old_report_with_only_confirmed_positive_counts_them_as_new_positives():
    plant = Ledger()
    assert len(plant.report(WEEK_1, new_positives=None, isolating_workers=None, confirmed_positive=2)) == 2
    # In v1 the count meant new positives: two more a week later are two more cases.
    assert len(plant.report(WEEK_2, new_positives=None, isolating_workers=None, confirmed_positive=2)) == 2
    assert plant.report(WEEK_3, new_positives=None, isolating_workers=None, confirmed_positive=0) == []
    assert len(plant.cases) == 4
