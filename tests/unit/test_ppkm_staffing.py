"""PPKM staffing rules (services/reports/staffing.py): levels over time, rule sets as data, allowances, excesses
and the capacity ladder, each rule at its boundaries; and the shipped rule sets, rule by rule."""

from __future__ import annotations

import tomllib
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from services.reports.app import PPKM_RULES_FILE
from services.reports.staffing import (
    NO_RESTRICTION_RULE, Allowance, Capacity, ConditionName, Excess, InvalidRuleSet, LevelEntry, LevelSource, OnSite,
    PlantFacts, RecordedBreach, RepeatedCapacityBreaches, RuleBook, allowance, checked_day, excesses, level_on,
    rule_set_from_mapping, shipped_rule_sets,
)
from shared.contract import CapacityMeasure, PpkmLevel, SectorClass

pytestmark = pytest.mark.unit

CRITICAL, ESSENTIAL, OTHER = SectorClass.CRITICAL, SectorClass.ESSENTIAL, SectorClass.NON_ESSENTIAL
L4, L3, L2, L1, EMERGENCY = (PpkmLevel.LEVEL_4, PpkmLevel.LEVEL_3, PpkmLevel.LEVEL_2, PpkmLevel.LEVEL_1,
                             PpkmLevel.EMERGENCY)
SHIPPED = RuleBook(tuple(s for s, _ in shipped_rule_sets(tomllib.loads(PPKM_RULES_FILE.read_text("utf-8")))))
SEPTEMBER = date(2021, 9, 20)


def entry(region: str, level: PpkmLevel, start: date, until: date | None = None, *, at: int = 0) -> LevelEntry:
    return LevelEntry(region, level, start, until, "Inmendagri 22/2021", LevelSource.OPERATOR,
                      datetime(2021, 7, 1, tzinfo=UTC) + timedelta(minutes=at))


# ------------------------------------------------------------------------------------------------ levels


def test_no_level_before_the_first_takes_effect():
    assert level_on([entry("32.16", L4, date(2021, 7, 26))], date(2021, 7, 25)) is None


def test_a_level_holds_from_its_first_day():
    first = entry("32.16", L4, date(2021, 7, 26))
    assert level_on([first], date(2021, 7, 26)) == first


def test_the_later_instruction_supersedes_whether_for_the_regency_or_its_province():
    regency = entry("32.16", L4, date(2021, 7, 26))
    province = entry("32", L3, date(2021, 8, 3))
    assert level_on([regency, province], date(2021, 8, 2)) == regency
    assert level_on([regency, province], date(2021, 8, 3)) == province
    later_regency = entry("32.16", L4, date(2021, 8, 10))
    assert level_on([regency, province, later_regency], date(2021, 8, 10)) == later_regency


def test_of_two_entries_taking_effect_the_same_day_the_one_recorded_last_holds():
    first, correction = entry("32.16", L4, date(2021, 7, 26), at=0), entry("32", L3, date(2021, 7, 26), at=5)
    assert level_on([correction, first], date(2021, 7, 27)) == correction


def test_a_level_runs_out_after_its_last_day_and_no_restriction_follows():
    bounded = entry("32.16", L4, date(2021, 7, 26), date(2021, 8, 2))
    assert bounded.in_force_on(date(2021, 8, 2))
    assert level_on([bounded], date(2021, 8, 2)) == bounded
    assert level_on([bounded], date(2021, 8, 3)) is None


def test_a_report_is_checked_on_its_own_day_in_the_plants_zone_or_on_its_deadline_when_late():
    deadline = datetime(2021, 9, 17, 16, 59, tzinfo=UTC)  # Friday 23:59 WIB
    # Friday 18:00 UTC is Saturday 01:00 in Jayapura (WIT): a report made then is after the deadline.
    assert checked_day(datetime(2021, 9, 17, 1, tzinfo=UTC), deadline, "Asia/Jakarta") == date(2021, 9, 17)
    assert checked_day(datetime(2021, 9, 16, 18, tzinfo=UTC), deadline, "Asia/Jayapura") == date(2021, 9, 17)
    assert checked_day(datetime(2021, 9, 20, 3, tzinfo=UTC), deadline, "Asia/Jakarta") == date(2021, 9, 17)


# ------------------------------------------------------------------------------------------------ reading rule sets


def _rule(**overrides: object) -> dict[str, object]:
    return {"name": "All", "levels": [lvl.value for lvl in PpkmLevel], "classes": [c.value for c in SectorClass],
            "production_share": 50, "office_share": 25} | overrides


def _set(**overrides: object) -> dict[str, object]:
    return {"name": "Inmendagri 99/2026", "starts_on": date(2026, 12, 14), "source": "an instruction",
            "rules": [_rule()]} | overrides


def _fields(document: dict[str, object]) -> set[str]:
    with pytest.raises(InvalidRuleSet) as refused:
        rule_set_from_mapping(document)
    return {issue.field for issue in refused.value.issues}


def test_a_complete_rule_set_reads():
    rule_set = rule_set_from_mapping(_set())
    assert rule_set.name == "Inmendagri 99/2026" and rule_set.starts_on == date(2026, 12, 14)
    assert rule_set.rules[0].capacity == Capacity(50, None, 25)


@pytest.mark.parametrize(("overrides", "field"), [
    ({"name": "Instruksi\nbaru"}, "name"),
    ({"name": "x" * 65}, "name"),
    ({"starts_on": "2026-12-14"}, "starts_on"),
    ({"starts_on": datetime(2026, 12, 14)}, "starts_on"),
    ({"source": " "}, "source"),
    ({"source": "s" * 501}, "source"),
    ({"rules": []}, "rules"),
    ({"rules": [_rule()] * 201}, "rules"),
    ({"rules": ["All"]}, "rules[0]"),
    ({"rules": [_rule(name="Semua aturan")]}, "rules[0].name"),
    ({"rules": [_rule(levels=["5"])]}, "rules[0].levels"),
    ({"rules": [_rule(levels=[])]}, "rules[0].levels"),
    ({"rules": [_rule(classes=["kritikal"])]}, "rules[0].classes"),
    ({"rules": [_rule(export_oriented="yes")]}, "rules[0].export_oriented"),
    ({"rules": [_rule(production_share=101)]}, "rules[0].production_share"),
    ({"rules": [_rule(production_share=-1)]}, "rules[0].production_share"),
    ({"rules": [_rule(production_share=50.5)]}, "rules[0].production_share"),
    ({"rules": [_rule(production_share=True)]}, "rules[0].production_share"),
    ({"rules": [_rule(office_share=None)]}, "rules[0].office_share"),
    ({"rules": [_rule(shift_share=60)]}, "rules[0].shift_share"),
    ({"rules": [_rule(max_shifts=0)]}, "rules[0].max_shifts"),
    ({"rules": [_rule(max_shifts=9)]}, "rules[0].max_shifts"),
    ({"rules": [_rule(lift="yes")]}, "rules[0].lift"),
    ({"rules": [_rule(lift={"production_share": 100, "office_share": 10, "pedulilindungi": "ya"})]},
     "rules[0].lift.pedulilindungi"),
    ({"rules": [_rule(lift={"production_share": 100, "office_share": 10, "min_dose1_share": 150})]},
     "rules[0].lift.min_dose1_share"),
])
def test_a_wrong_field_is_named(overrides, field):
    assert field in _fields(_set(**overrides))


def test_two_rules_of_one_name_are_refused():
    assert "rules" in _fields(_set(rules=[_rule(), _rule()]))


def test_every_level_class_and_orientation_needs_a_rule():
    partial = [_rule(levels=["4"], export_oriented=True)]
    with pytest.raises(InvalidRuleSet) as refused:
        rule_set_from_mapping(_set(rules=partial))
    messages = [issue.message for issue in refused.value.issues]
    assert len(messages) == 5 * 3 * 2 - 3  # only level 4's export-oriented plants are covered
    assert "no rule for level 3, critical, export-oriented" in messages


def test_the_first_rule_that_applies_decides():
    rule_set = rule_set_from_mapping(_set(rules=[_rule(name="Export", export_oriented=True, production_share=100),
                                                 _rule(name="Rest")]))
    assert rule_set.rule_for(L4, OTHER, True).name == "Export"
    assert rule_set.rule_for(L4, OTHER, False).name == "Rest"


def test_the_rule_book_answers_the_set_in_force_on_a_day():
    book = SHIPPED
    assert book.in_force_on(date(2021, 7, 2)) is None
    assert [book.in_force_on(day).name for day in (date(2021, 7, 3), date(2021, 7, 25), date(2021, 7, 26),
                                                     date(2021, 9, 6), date(2021, 9, 7), date(2026, 12, 6))] == [
        "Inmendagri 15/2021", "Inmendagri 15/2021", "Inmendagri 22/2021", "Inmendagri 22/2021",
        "PPKM September 2021", "PPKM September 2021"]
    assert book.named("Inmendagri 22/2021") is book.sets[1] and book.named("Inmendagri 1/2020") is None


def test_a_shipped_file_needs_rule_sets_of_distinct_names_and_days():
    with pytest.raises(InvalidRuleSet):
        shipped_rule_sets({})
    twice = {"rule_set": [_set(), _set(name="Inmendagri 98/2026")]}
    with pytest.raises(InvalidRuleSet):
        shipped_rule_sets(twice)


# ------------------------------------------------------------------------------------------------ shipped rules

def plant(sector_class: SectorClass = ESSENTIAL, export: bool = True, *, workforce: int = 1200, active: bool = True,
          pedulilindungi: bool | None = True, dose1: int | None = 1000) -> PlantFacts:
    return PlantFacts(sector_class, export, workforce, active, pedulilindungi, dose1)


# (day, level, class, export-oriented) → the rule, its capacity (production %, shift %, shifts, offices %), lifted.
SHIPPED_CASES = [
    (date(2021, 7, 10), EMERGENCY, CRITICAL, False, "Darurat-Critical", (100, None, None, 25)),
    (date(2021, 7, 10), L4, CRITICAL, True, "Darurat-Critical", (100, None, None, 25)),
    (date(2021, 7, 10), EMERGENCY, ESSENTIAL, True, "Darurat-Export", (50, None, None, 10)),
    (date(2021, 7, 10), EMERGENCY, OTHER, True, "Darurat-Export", (50, None, None, 10)),
    (date(2021, 7, 10), EMERGENCY, ESSENTIAL, False, "Darurat-Essential", (50, None, None, 50)),
    (date(2021, 7, 10), EMERGENCY, OTHER, False, "Darurat-NonEssential", (0, None, None, 0)),
    (date(2021, 8, 2), L4, CRITICAL, True, "L4-L3-Critical", (100, None, None, 25)),
    (date(2021, 8, 2), L3, CRITICAL, False, "L4-L3-Critical", (100, None, None, 25)),
    (date(2021, 8, 2), L4, ESSENTIAL, True, "L4-Export", (50, None, 1, 10)),
    (date(2021, 8, 2), EMERGENCY, OTHER, True, "L4-Export", (50, None, 1, 10)),
    (date(2021, 8, 2), L3, OTHER, True, "L3-Export", (100, 50, 2, 10)),
    (date(2021, 8, 2), L4, ESSENTIAL, False, "L4-L3-Essential", (50, None, None, 50)),
    (date(2021, 8, 2), L3, OTHER, False, "L4-L3-NonEssential", (0, None, None, 0)),
    (date(2021, 8, 2), L2, CRITICAL, False, "L2-Critical", (100, None, None, 50)),
    (date(2021, 8, 2), L2, ESSENTIAL, True, "L2-Other", (50, None, None, 50)),
    (date(2021, 8, 2), L1, OTHER, False, "L1-All", (100, None, None, 75)),
]


@pytest.mark.parametrize(("day", "level", "sector_class", "export", "rule", "capacity"), SHIPPED_CASES,
                         ids=[f"{c[4]}-{c[1].value}-{c[2].value}-{c[3]}" for c in SHIPPED_CASES])
def test_each_shipped_rule_of_july_2021(day, level, sector_class, export, rule, capacity):
    found = allowance(day, level, SHIPPED.in_force_on(day), plant(sector_class, export))
    production, shift, shifts, office = capacity
    assert (found.rule, found.capacity, found.lifted) == (rule, Capacity(production, shifts, office, shift), False)


def test_every_shipped_rule_is_reached_by_a_case():
    reached = {case[4] for case in SHIPPED_CASES} | {case[3] for case in SEPTEMBER_CASES}
    assert reached == {rule.name for rule_set in SHIPPED.sets for rule in rule_set.rules}


# September 2021: level, class, export-oriented → the rule; lifted for a plant meeting every condition.
SEPTEMBER_CASES = [
    (L4, ESSENTIAL, True, "L4-Export", True),
    (L3, OTHER, True, "L3-Export", True),
    (L4, ESSENTIAL, False, "L4-L3-Essential", True),
    (L2, ESSENTIAL, False, "L2-Other", True),
    (L4, CRITICAL, False, "L4-L3-Critical", False),
    (L3, OTHER, False, "L4-L3-NonEssential", False),
    (L2, CRITICAL, True, "L2-Critical", False),
    (L1, ESSENTIAL, True, "L1-All", False),
]


@pytest.mark.parametrize(("level", "sector_class", "export", "rule", "liftable"), SEPTEMBER_CASES,
                         ids=[c[3] + "-" + c[0].value for c in SEPTEMBER_CASES])
def test_each_shipped_rule_of_september_2021_and_its_lift(level, sector_class, export, rule, liftable):
    found = allowance(SEPTEMBER, level, SHIPPED.in_force_on(SEPTEMBER), plant(sector_class, export))
    assert found.rule == rule and found.lifted is liftable
    if liftable:  # 100 % in at least two shifts: the whole workforce, at most half of it in a shift
        assert (found.capacity.production_share, found.capacity.shift_share, found.capacity.max_shifts) == (
            100, 50, None)
        assert (found.total_cap, found.shift_cap) == (1200, 600)


@pytest.mark.parametrize(("facts", "unmet"), [
    (plant(active=False), ConditionName.ACTIVE_PERMIT),
    (plant(pedulilindungi=False), ConditionName.PEDULILINDUNGI_IN_USE),
    (plant(pedulilindungi=None), ConditionName.PEDULILINDUNGI_IN_USE),
    (plant(dose1=599), ConditionName.FIRST_DOSE_SHARE),
    (plant(dose1=None), ConditionName.FIRST_DOSE_SHARE),
])
def test_one_unmet_condition_keeps_the_cap(facts, unmet):
    found = allowance(SEPTEMBER, L4, SHIPPED.in_force_on(SEPTEMBER), facts)
    assert not found.lifted and found.rule == "L4-Export"
    assert (found.capacity.production_share, found.capacity.max_shifts) == (50, 1)
    assert [c.name for c in found.conditions if not c.met] == [unmet]


def test_half_the_staff_on_a_first_dose_is_enough():
    found = allowance(SEPTEMBER, L4, SHIPPED.in_force_on(SEPTEMBER), plant(dose1=600))
    assert found.lifted
    share = next(c for c in found.conditions if c.name is ConditionName.FIRST_DOSE_SHARE)
    assert share.said_id == "pekerja dengan vaksin dosis 1: 50% (minimal 50%)"
    assert share.said_en == "staff with a first dose: 50% (at least 50%)"


def test_no_level_or_no_rule_set_is_no_restriction():
    for level, rule_set in ((None, SHIPPED.in_force_on(SEPTEMBER)), (L4, None)):
        found = allowance(SEPTEMBER, level, rule_set, plant())
        assert found.rule == NO_RESTRICTION_RULE and found.capacity == Capacity(100, None, 100)
    assert not allowance(SEPTEMBER, None, None, plant()).restricted


# ------------------------------------------------------------------------------------------------ excesses


def capped(capacity: Capacity, workforce: int = 1200) -> Allowance:
    return allowance(SEPTEMBER, L4, rule_set_from_mapping(_set(rules=[_rule(
        production_share=capacity.production_share, shift_share=capacity.shift_share,
        max_shifts=capacity.max_shifts, office_share=capacity.office_share)])), plant(workforce=workforce))


def test_within_every_cap_is_nothing():
    assert excesses(capped(Capacity(100, 2, 10, 50)), OnSite((600, 600), office_staff=100, office_on_site=10)) == ()


def test_the_shifts_together_over_the_plants_cap():
    assert excesses(capped(Capacity(50, None, 100)), OnSite((300, 301))) == (
        Excess(CapacityMeasure.ON_SITE_TOTAL, None, 600, 601),)


def test_one_shift_over_a_shifts_cap_is_named_by_its_number():
    assert excesses(capped(Capacity(100, None, 100, 50)), OnSite((500, 601, 0))) == (
        Excess(CapacityMeasure.SHIFT_ON_SITE, 2, 600, 601),)


def test_more_shifts_than_allowed_counts_only_shifts_that_ran():
    assert excesses(capped(Capacity(50, 1, 100)), OnSite((300, 0, 0))) == ()
    assert excesses(capped(Capacity(50, 1, 100)), OnSite((300, 1))) == (
        Excess(CapacityMeasure.SHIFT_COUNT, None, 1, 2),)


def test_offices_are_checked_when_the_report_states_them():
    assert excesses(capped(Capacity(100, None, 10)), OnSite((100,), office_staff=95, office_on_site=9)) == ()
    assert excesses(capped(Capacity(100, None, 10)), OnSite((100,), office_staff=95, office_on_site=10)) == (
        Excess(CapacityMeasure.OFFICE_ON_SITE, None, 9, 10),)
    assert excesses(capped(Capacity(100, None, 10)), OnSite((100,), office_staff=None, office_on_site=50)) == ()


def test_a_cap_is_never_rounded_against_the_company():
    # 50 % of 7 is 3.5: 3 on site is within, 4 is over (and the cap shown is 3).
    assert excesses(capped(Capacity(50, None, 100), workforce=7), OnSite((3,))) == ()
    assert excesses(capped(Capacity(50, None, 100), workforce=7), OnSite((4,))) == (
        Excess(CapacityMeasure.ON_SITE_TOTAL, None, 3, 4),)


def test_a_sector_that_must_work_from_home_may_have_no_one_on_site():
    assert excesses(capped(Capacity(0, None, 0)), OnSite((0, 0))) == ()
    assert excesses(capped(Capacity(0, None, 0)), OnSite((1,))) == (Excess(CapacityMeasure.ON_SITE_TOTAL, None, 0, 1),)


# ------------------------------------------------------------------------------------------------ capacity ladder


def breaches(*days: int) -> list[RecordedBreach]:
    return [RecordedBreach(uuid.uuid5(uuid.NAMESPACE_OID, str(day)), date(2021, 9, 1) + timedelta(days=day))
            for day in days]


def test_three_breaches_within_thirty_days_recommend_a_freeze():
    ladder = RepeatedCapacityBreaches()
    found = breaches(0, 10, 29)
    decided = ladder.decide(found, permit_issued=True)
    assert decided is not None and decided.rule == "RepeatedCapacityBreaches"
    assert decided.breaches == tuple(b.breach_id for b in found)


def test_breaches_thirty_days_apart_do_not_add_up():
    assert RepeatedCapacityBreaches().decide(breaches(0, 10, 30), permit_issued=True) is None
    assert RepeatedCapacityBreaches().within_window(breaches(0, 10, 30)) == tuple(breaches(10, 30))


def test_two_breaches_are_not_enough_and_a_frozen_permit_is_not_frozen_again():
    assert RepeatedCapacityBreaches().decide(breaches(0, 1), permit_issued=True) is None
    assert RepeatedCapacityBreaches().decide(breaches(0, 1, 2), permit_issued=False) is None
    assert RepeatedCapacityBreaches().decide([], permit_issued=True) is None


def test_the_ladder_is_configurable_and_refuses_nonsense():
    assert RepeatedCapacityBreaches(count=2, window=timedelta(days=7)).decide(breaches(0, 6), permit_issued=True)
    assert RepeatedCapacityBreaches(count=2, window=timedelta(days=7)).decide(breaches(0, 7),
                                                                               permit_issued=True) is None
    with pytest.raises(ValueError):
        RepeatedCapacityBreaches(count=0)
    with pytest.raises(ValueError):
        RepeatedCapacityBreaches(window=timedelta(hours=12))
