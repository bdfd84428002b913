"""PPKM levels as operators and the agency record them, when they take effect and lapse in each zone, rule sets an
operator publishes, and what a plant is told it may run: the rules of services/reports/staffing.py at their
boundaries."""

from __future__ import annotations

import tomllib
import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.reports.app import PPKM_RULES_FILE
from services.reports.staffing import (
    CLASS_UNKNOWN_RULE, NO_RESTRICTION, NO_RESTRICTION_RULE, InvalidRuleSet, LevelEntry, LevelRefused, LevelSource,
    PendingLevel, PlantFacts, RuleBook, RuleSetTaken, agency_level, allowance, allowance_summary, level_on,
    levels_due, local_day, operator_level, publishable, rule_set_from_mapping, rule_set_mapping, shipped_rule_sets,
    zones_begun,
)
from shared.contract import PpkmLevel, PpkmLevelSet, SectorClass

pytestmark = pytest.mark.unit

SHIPPED = shipped_rule_sets(tomllib.loads(PPKM_RULES_FILE.read_text(encoding="utf-8")))
BOOK = RuleBook(tuple(rule_set for rule_set, _ in SHIPPED))
JULY = BOOK.named("Inmendagri 22/2021")
SEPTEMBER = BOOK.named("PPKM September 2021")
NOW = datetime(2026, 12, 7, 3, tzinfo=UTC)  # Monday 7 December 2026, 10:00 in Jakarta


class Names:
    KNOWN = {"32": "Jawa Barat", "32.16": "Kabupaten Bekasi", "33": "Jawa Tengah", "33.74": "Kota Semarang"}

    def name_of(self, code: str) -> str | None:
        return self.KNOWN.get(code)


class Names91(Names):
    KNOWN = Names.KNOWN | {"91": "Papua"}


def level(**changes) -> LevelEntry:
    values = dict(province_code="32", regency_code="32.16", level=PpkmLevel.LEVEL_4, effective_from=date(2026, 12, 7),
                  effective_until=None, instruction="Inmendagri 22/2021", reason="the minister's instruction",
                  regions=Names(), now=NOW)
    return operator_level(**(values | changes))


def midnight(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


# -- an operator's level -----------------------------------------------------------------------------------------


def test_an_operator_sets_a_level_for_a_regency_or_for_every_regency_of_a_province():
    regency = level()
    assert (regency.region_code, regency.level, regency.source, regency.recorded_at) == (
        "32.16", PpkmLevel.LEVEL_4, LevelSource.OPERATOR, NOW)
    assert level(regency_code=None).region_code == "32"
    assert level(instruction="  Inmendagri 22/2021 ").instruction == "Inmendagri 22/2021"


@pytest.mark.parametrize("changes, field", [
    ({"province_code": "99"}, "province_code"),
    ({"province_code": "32.16", "regency_code": None}, "province_code"),
    ({"regency_code": "33.74"}, "regency_code"),
    ({"regency_code": "32.99"}, "regency_code"),
    ({"effective_until": date(2026, 12, 6)}, "effective_until"),
    ({"effective_from": date(2026, 11, 5)}, "effective_from"),
    ({"effective_from": date(2027, 12, 9)}, "effective_from"),
    ({"instruction": " "}, "instruction"),
    ({"instruction": "x" * 201}, "instruction"),
    ({"reason": ""}, "reason"),
    ({"reason": "x" * 1001}, "reason"),
])
def test_an_operators_level_is_refused_naming_the_field(changes, field):
    with pytest.raises(LevelRefused) as refused:
        level(**changes)
    assert refused.value.field == field


def test_the_bounds_of_an_operators_level_are_inclusive():
    assert level(effective_until=date(2026, 12, 7)).effective_until == date(2026, 12, 7)
    assert len(level(instruction="x" * 200).instruction) == 200
    level(reason="x" * 1000)
    # An instruction is sometimes recorded after it took effect; it is seldom known a year ahead.
    assert level(effective_from=date(2026, 11, 6)).effective_from == date(2026, 11, 6)
    assert level(effective_from=date(2027, 12, 8)).effective_from == date(2027, 12, 8)
    # The days are the region's: 6 December 23:30 in Jakarta is already 7 December in Papua.
    late = datetime(2026, 12, 6, 16, 30, tzinfo=UTC)
    assert level(now=late, effective_from=date(2026, 11, 5)).effective_from == date(2026, 11, 5)
    with pytest.raises(LevelRefused):
        level(province_code="91", regency_code=None, regions=Names91(), now=late, effective_from=date(2026, 11, 5))


def test_the_agencys_level_is_recorded_as_published():
    event = PpkmLevelSet(province_code="32", regency_code=None, level=PpkmLevel.LEVEL_3,
                         effective_from=date(2026, 12, 14), effective_until=date(2026, 12, 20),
                         instruction="Inmendagri 23/2026")
    entry = agency_level(event, NOW)
    assert entry == LevelEntry("32", PpkmLevel.LEVEL_3, date(2026, 12, 14), date(2026, 12, 20), "Inmendagri 23/2026",
                               LevelSource.AGENCY, NOW)


# -- which level applies -----------------------------------------------------------------------------------------


def test_the_instruction_that_took_effect_last_decides_whether_it_names_the_regency_or_its_province():
    regency = level(level=PpkmLevel.LEVEL_3, effective_from=date(2026, 12, 1))
    province = level(regency_code=None, level=PpkmLevel.LEVEL_4, effective_from=date(2026, 12, 7))
    assert level_on([regency, province], date(2026, 12, 6)) == regency
    assert level_on([regency, province], date(2026, 12, 7)) == province
    # Of two taking effect the same day, the one recorded last.
    later = level(level=PpkmLevel.LEVEL_2, effective_from=date(2026, 12, 7), now=NOW + timedelta(minutes=1))
    assert level_on([regency, province, later], date(2026, 12, 7)) == later


def test_a_level_that_ran_out_leaves_no_restriction_and_one_not_begun_applies_nothing():
    bounded = level(effective_from=date(2026, 12, 7), effective_until=date(2026, 12, 13))
    assert level_on([bounded], date(2026, 12, 13)) == bounded
    assert level_on([bounded], date(2026, 12, 14)) is None
    assert level_on([bounded], date(2026, 12, 6)) is None


# -- when a level is applied to the plants' allowances ----------------------------------------------------------


def pending(region: str, first: date, last: date | None = None, *, applied: bool = False) -> PendingLevel:
    return PendingLevel(uuid.uuid4(), region, first, last, applied)


@pytest.mark.parametrize("region, zone", [("32.16", "Asia/Jakarta"), ("73.71", "Asia/Makassar"),
                                          ("91", "Asia/Jayapura")])
def test_a_level_is_applied_at_the_local_midnight_of_its_first_day(region, zone):
    level_ = pending(region, date(2026, 12, 8))
    start = midnight(date(2026, 12, 8), zone)
    assert levels_due([level_], start - timedelta(microseconds=1)).applied == ()
    due = levels_due([level_], start)
    assert (due.regions, due.applied, due.lapsed) == ((region,), (level_.level_id,), ())
    assert local_day(region, start) == date(2026, 12, 8)


def test_the_passing_of_a_levels_last_day_is_applied_the_day_after():
    level_ = pending("32.16", date(2026, 12, 1), date(2026, 12, 7), applied=True)
    day_after = midnight(date(2026, 12, 8), "Asia/Jakarta")
    assert levels_due([level_], day_after - timedelta(microseconds=1)) == levels_due([], NOW)
    due = levels_due([level_], day_after)
    assert (due.regions, due.applied, due.lapsed) == (("32.16",), (), (level_.level_id,))


def test_a_level_recorded_after_its_last_day_is_applied_and_lapsed_at_once():
    level_ = pending("32", date(2026, 11, 23), date(2026, 11, 29))
    due = levels_due([level_], NOW)
    assert (due.regions, due.applied, due.lapsed) == (("32",), (level_.level_id,), (level_.level_id,))


def test_a_provinces_re_evaluation_covers_its_regencies():
    levels = [pending("32.16", date(2026, 12, 7)), pending("32", date(2026, 12, 7)),
              pending("33.74", date(2026, 12, 1)), pending("32.04", date(2026, 12, 9))]
    due = levels_due(levels, NOW)
    assert due.regions == ("32", "33.74")
    assert set(due.applied) == {levels[0].level_id, levels[1].level_id, levels[2].level_id}


def test_a_rule_set_is_applied_zone_by_zone_from_the_local_midnight_of_its_first_day():
    first = date(2026, 12, 8)
    assert zones_begun(first, [], midnight(first, "Asia/Jayapura") - timedelta(microseconds=1)) == ()
    assert zones_begun(first, [], midnight(first, "Asia/Jayapura")) == ("Asia/Jayapura",)
    assert zones_begun(first, ["Asia/Jayapura"], midnight(first, "Asia/Makassar")) == ("Asia/Makassar",)
    assert zones_begun(first, [], midnight(first, "Asia/Jakarta")) == ("Asia/Jakarta", "Asia/Makassar",
                                                                        "Asia/Jayapura")


# -- rule sets an operator publishes -----------------------------------------------------------------------------


def a_rule_set(name: str = "Inmendagri 1/2027", starts_on: date = date(2026, 12, 8)):
    return rule_set_from_mapping(rule_set_mapping(SEPTEMBER) | {"name": name, "starts_on": starts_on})


def test_a_rule_set_starts_on_a_day_not_yet_begun_in_any_zone():
    # 7 December, 23:00 in Jakarta: already the 8th in Jayapura.
    late = datetime(2026, 12, 7, 16, tzinfo=UTC)
    with pytest.raises(InvalidRuleSet) as refused:
        publishable(BOOK, a_rule_set(starts_on=date(2026, 12, 8)), now=late)
    assert [issue.field for issue in refused.value.issues] == ["starts_on"]
    assert publishable(BOOK, a_rule_set(starts_on=date(2026, 12, 9)), now=late).starts_on == date(2026, 12, 9)
    assert publishable(BOOK, a_rule_set(starts_on=date(2026, 12, 8)), now=NOW - timedelta(hours=3))


def test_a_rule_sets_name_and_first_day_are_its_own():
    with pytest.raises(RuleSetTaken) as taken:
        publishable(BOOK, a_rule_set(name="PPKM September 2021"), now=NOW)
    assert taken.value.field == "name"
    book = RuleBook((*BOOK.sets, a_rule_set(name="Inmendagri 1/2027", starts_on=date(2026, 12, 20))))
    with pytest.raises(RuleSetTaken) as taken:
        publishable(book, a_rule_set(name="Inmendagri 2/2027", starts_on=date(2026, 12, 20)), now=NOW)
    assert taken.value.field == "starts_on"


def test_a_rule_set_reads_back_from_what_is_stored_of_it():
    for rule_set, _ in SHIPPED:
        stored = rule_set_mapping(rule_set)
        assert rule_set_from_mapping(stored) == rule_set
        assert all("[inference]" not in str(rule) for rule in stored["rules"])


def test_a_rule_sets_source_cannot_hold_what_the_database_cannot_store():
    with pytest.raises(InvalidRuleSet) as refused:
        rule_set_from_mapping(rule_set_mapping(SEPTEMBER) | {"source": "Inmendagri\x00"})
    assert [issue.field for issue in refused.value.issues] == ["source"]


# -- a plant's allowance and what it is told --------------------------------------------------------------------


def plant(**changes) -> PlantFacts:
    values = dict(sector_class=SectorClass.ESSENTIAL, export_oriented=True, workforce_total=1200, permit_active=True)
    return PlantFacts(**(values | changes))


def test_a_plant_whose_class_is_not_known_has_no_cap_and_is_named_apart():
    found = allowance(date(2021, 7, 30), PpkmLevel.LEVEL_4, JULY, plant(sector_class=None))
    assert (found.rule, found.capacity, found.lifted, found.sector_class) == (CLASS_UNKNOWN_RULE, NO_RESTRICTION,
                                                                            False, None)
    without_level = allowance(date(2021, 7, 30), None, JULY, plant(sector_class=None))
    assert without_level.rule == NO_RESTRICTION_RULE


def test_the_company_is_told_what_it_may_run_and_why_in_bahasa_indonesia_then_english():
    found = allowance(date(2021, 7, 30), PpkmLevel.LEVEL_4, JULY, plant())
    said_id, said_en = allowance_summary(found, region="Kabupaten Bekasi", instruction="Inmendagri 22/2021")
    assert said_id == ("PPKM Level 4 di Kabupaten Bekasi (Inmendagri 22/2021): industri orientasi ekspor boleh 1 "
                       "shift, paling banyak 50% pekerja (600 orang) di lokasi, dan 10% staf kantor (aturan "
                       "L4-Export dari Inmendagri 22/2021).")
    assert said_en.startswith("PPKM level 4 in Kabupaten Bekasi (Inmendagri 22/2021): an export-oriented plant may "
                              "run 1 shift, at most 50% of its staff (600 people) on site")


def test_the_summary_says_which_lifting_conditions_are_unmet_or_that_they_are_met():
    unmet = allowance(date(2021, 9, 30), PpkmLevel.LEVEL_3, SEPTEMBER, plant(pedulilindungi=True, dose1=500))
    said_id, said_en = allowance_summary(unmet, region="Kabupaten Bekasi", instruction=None)
    assert "belum dilonggarkan: pekerja dengan vaksin dosis 1: 42% (minimal 50%)" in said_id
    assert "PeduliLindungi" not in said_id and "not lifted: staff with a first dose: 42%" in said_en
    met = allowance(date(2021, 9, 30), PpkmLevel.LEVEL_3, SEPTEMBER, plant(pedulilindungi=True, dose1=600))
    said_id, said_en = allowance_summary(met, region="Kabupaten Bekasi", instruction=None)
    assert met.lifted and "50% (600 orang) per shift" in said_id and "syarat pelonggaran terpenuhi" in said_id
    assert "its lifting conditions met" in said_en


def test_the_summary_of_no_level_of_an_unknown_class_and_of_a_plant_that_may_not_work_on_site():
    none = allowance(date(2021, 9, 30), None, SEPTEMBER, plant())
    assert allowance_summary(none, region="Kota Semarang", instruction=None) == (
        "Tidak ada level PPKM yang berlaku di Kota Semarang pada 30 September 2021: tidak ada batas jumlah pekerja "
        "di lokasi.", "No PPKM level is in force in Kota Semarang on 30 September 2021: no cap on the staff on site.")
    unknown = allowance(date(2021, 9, 30), PpkmLevel.EMERGENCY, SEPTEMBER, plant(sector_class=None))
    said_id, _ = allowance_summary(unknown, region="Kota Semarang", instruction="Inmendagri 15/2021")
    assert said_id.startswith("PPKM Darurat di Kota Semarang (Inmendagri 15/2021): kelas sektor pabrik belum "
                              "diketahui")
    home = allowance(date(2021, 9, 30), PpkmLevel.LEVEL_4, SEPTEMBER,
                     plant(sector_class=SectorClass.NON_ESSENTIAL, export_oriented=False))
    said_id, said_en = allowance_summary(home, region="Kota Semarang", instruction=None)
    assert "pabrik sektor non-esensial tidak boleh bekerja di lokasi produksi" in said_id
    assert "may have no one on site in production" in said_en
