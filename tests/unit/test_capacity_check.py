"""A report against the PPKM staffing cap, the plant's latest report for the dose-1 share, and PPKM by region:
`services/reports/capacity.py`, at its boundaries, with the shipped rule sets."""

from __future__ import annotations

import tomllib
from datetime import date

import pytest

from services.reports.app import PPKM_RULES_FILE
from services.reports.capacity import (
    LEVEL_ORDER, DoseChange, LatestReport, PlantsByClass, RegionPpkm, ReportedStaffing, by_province, check_report,
    dose_changes, highest_level, iso_week, replaces, summed,
)
from services.reports.domain import ReportFigures, consistency_issues
from services.reports.staffing import NO_RESTRICTION_RULE, Excess, RuleBook, shipped_rule_sets
from shared.contract import CapacityMeasure, PpkmLevel, SectorClass

pytestmark = pytest.mark.unit

BOOK = RuleBook(tuple(s for s, _ in shipped_rule_sets(tomllib.loads(PPKM_RULES_FILE.read_text(encoding="utf-8")))))
SEPTEMBER = BOOK.named("PPKM September 2021")
DAY = date(2021, 9, 14)
L4, L3 = PpkmLevel.LEVEL_4, PpkmLevel.LEVEL_3
ESSENTIAL = SectorClass.ESSENTIAL


def staffing(per_shift: tuple[int, ...], *, workforce: int = 1000, dose1: int = 0, pedulilindungi: bool = False,
             offices: tuple[int, int] | None = None) -> ReportedStaffing:
    return ReportedStaffing(workforce, per_shift, dose1, pedulilindungi, *(offices or (None, None)))


def export_at_level_4(report: ReportedStaffing, *, permit_active: bool = True):
    return check_report(DAY, L4, SEPTEMBER, ESSENTIAL, True, permit_active=permit_active, report=report)


# -- checking a report ------------------------------------------------------------------------------------------


def test_a_plant_of_unknown_class_is_not_checked_but_its_level_is_told():
    check = check_report(DAY, L4, SEPTEMBER, None, False, permit_active=True, report=staffing((1000,)))
    assert (check.checked, check.level, check.rule, check.within, check.breached) == (False, L4, None, None, False)


@pytest.mark.parametrize("level, rule_set", [(None, SEPTEMBER), (L4, None)])
def test_without_a_level_or_a_rule_set_in_force_nothing_is_restricted(level, rule_set):
    check = check_report(DAY, level, rule_set, SectorClass.NON_ESSENTIAL, False, permit_active=True,
                         report=staffing((600, 400), offices=(10, 10)))
    assert (check.checked, check.rule, check.within, check.excesses) == (True, NO_RESTRICTION_RULE, True, ())


def test_exactly_the_cap_is_within_and_one_more_is_over():
    within = export_at_level_4(staffing((500,), offices=(100, 10)))
    assert (within.rule, within.rule_set, within.within) == ("L4-Export", "PPKM September 2021", True)
    over = export_at_level_4(staffing((501,), offices=(100, 11)))
    assert over.within is False and over.breached
    assert over.excesses == (Excess(CapacityMeasure.ON_SITE_TOTAL, None, 500, 501),
                             Excess(CapacityMeasure.OFFICE_ON_SITE, None, 10, 11))


def test_offices_are_checked_only_when_the_report_states_them():
    assert export_at_level_4(staffing((500,))).within is True
    assert export_at_level_4(staffing((500,), offices=(0, 0))).within is True
    assert export_at_level_4(staffing((500,), offices=(10, 2))).excesses == (
        Excess(CapacityMeasure.OFFICE_ON_SITE, None, 1, 2),)


LIFTING = dict(dose1=500, pedulilindungi=True)


def test_the_september_conditions_all_met_lift_the_cap_to_two_half_shifts():
    check = export_at_level_4(staffing((500, 500), **LIFTING))
    assert (check.allowance.lifted, check.within) == (True, True)
    assert export_at_level_4(staffing((501, 499), **LIFTING)).excesses == (
        Excess(CapacityMeasure.SHIFT_ON_SITE, 1, 500, 501),)


@pytest.mark.parametrize("missing", ["dose1", "pedulilindungi", "permit"])
def test_one_condition_missing_leaves_the_cap_where_it_was(missing):
    report = staffing((500, 500), dose1=499 if missing == "dose1" else 500,
                      pedulilindungi=missing != "pedulilindungi")
    check = export_at_level_4(report, permit_active=missing != "permit")
    assert check.allowance.lifted is False
    assert [e.measure for e in check.excesses] == [CapacityMeasure.ON_SITE_TOTAL, CapacityMeasure.SHIFT_COUNT]


def test_the_rule_depends_on_the_level_class_and_orientation():
    report = staffing((300, 300))
    assert check_report(DAY, L3, SEPTEMBER, ESSENTIAL, True, permit_active=True, report=report).rule == "L3-Export"
    assert check_report(DAY, L3, SEPTEMBER, ESSENTIAL, False, permit_active=True, report=report).rule == (
        "L4-L3-Essential")
    critical = check_report(DAY, PpkmLevel.EMERGENCY, SEPTEMBER, SectorClass.CRITICAL, True, permit_active=True,
                            report=staffing((1000,)))
    assert (critical.rule, critical.within) == ("L4-L3-Critical", True)


# -- the plant's latest report ------------------------------------------------------------------------------------


def test_a_report_for_the_latest_period_or_a_later_one_replaces_the_latest_and_a_late_earlier_one_does_not():
    current = LatestReport(period_seq=5, dose1=100, workforce=200)
    assert replaces(None, LatestReport(1, 0, 10))
    assert replaces(current, LatestReport(5, 120, 200))  # a correction
    assert replaces(current, LatestReport(6, 90, 200))
    assert not replaces(current, LatestReport(4, 200, 200))  # filed late for an earlier week


def test_dose_changes_are_summed_per_regency_in_regency_order():
    changes = dose_changes([
        ("35.78", "35", None, LatestReport(1, 60, 100)),  # first report: one more plant counted
        ("32.16", "32", LatestReport(1, 50, 100), LatestReport(1, 80, 100)),  # a correction
        ("35.78", "35", LatestReport(2, 30, 40), LatestReport(3, 20, 50)),
    ])
    assert changes == [DoseChange("32.16", "32", 0, 30, 0), DoseChange("35.78", "35", 1, 50, 110)]
    assert dose_changes([]) == []


# -- by region --------------------------------------------------------------------------------------------------


def test_the_highest_level_is_the_most_restrictive_and_the_emergency_stage_above_level_4():
    assert LEVEL_ORDER[-1] is PpkmLevel.EMERGENCY
    assert highest_level([PpkmLevel.LEVEL_2, None, L4, L3]) is L4
    assert highest_level([L4, PpkmLevel.EMERGENCY]) is PpkmLevel.EMERGENCY
    assert highest_level([None, None]) is None
    assert highest_level([]) is None


@pytest.mark.parametrize("day, monday", [
    (date(2021, 9, 13), date(2021, 9, 13)),  # a Monday
    (date(2021, 9, 19), date(2021, 9, 13)),  # its Sunday
    (date(2021, 9, 20), date(2021, 9, 20)),
    (date(2022, 1, 1), date(2021, 12, 27)),  # a week across the year
])
def test_this_week_runs_monday_to_sunday(day, monday):
    assert iso_week(day) == (monday, date.fromordinal(monday.toordinal() + 6))


def test_the_dose1_share_is_taken_from_the_sums_and_none_without_a_workforce():
    assert RegionPpkm("32.16", None, dose1=900, workforce=1400).dose1_share == 0.6429
    assert RegionPpkm("32.16", None, dose1=0, workforce=0).dose1_share is None
    assert RegionPpkm("32.16", None, dose1=10, workforce=10).dose1_share == 1.0


def test_regencies_sum_into_their_provinces_under_the_most_restrictive_level():
    pangkal_pinang = RegionPpkm("19.71", L3, PlantsByClass(critical=1, essential=1, export_oriented=1), 1, 3, 2, 900,
                                1400)
    bangka = RegionPpkm("19.01", L4, PlantsByClass(non_essential=1, unknown=1), 1, 1, 2, 150, 300)
    bandung = RegionPpkm("32.73", None, PlantsByClass(critical=2), 0, 0, 0, 0, 0)
    provinces = by_province([pangkal_pinang, bandung, bangka])
    assert [p.code for p in provinces] == ["19", "32"]
    assert provinces[0] == RegionPpkm("19", L4, PlantsByClass(1, 1, 1, 1, 1), 2, 4, 4, 1050, 1700)
    assert provinces[1] == RegionPpkm("32", None, PlantsByClass(critical=2))
    assert summed("", provinces) == RegionPpkm("", L4, PlantsByClass(3, 1, 1, 1, 1), 2, 4, 4, 1050, 1700)
    assert summed("", []) == RegionPpkm("", None)


# -- the offices a report states ----------------------------------------------------------------------------------


@pytest.mark.parametrize("offices, issues", [
    ((None, None), []), ((10, 10), []), ((0, 0), []),
    ((10, 11), ["offices.on_site"]),
])
def test_a_report_cannot_count_more_office_staff_on_site_than_it_has(offices, issues):
    figures = ReportFigures(1000, (500,), 0, 0, 0, 0, 0, 500, 400, 0, "", *offices)
    assert [issue.field for issue in consistency_issues(figures)] == issues
