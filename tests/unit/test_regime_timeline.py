"""Regimes as data: the shipped timeline, the switch at each plant's local midnight, each circular's own ladder,
and what an operator may schedule or withdraw."""

from __future__ import annotations

import tomllib
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.reports import domain
from services.reports.app import REGIMES_FILE
from services.reports.domain import (
    LADDERS, ZONES, InvalidRegime, LadderName, MissedWhileFrozen, RegimeEntry, RegimeExists, RegimeInEffect,
    RegimeNotFound, RegimeRefused, RegimeTimeline, SanctionKind, SanctionLadder, Schedule, SecondFreeze,
    SettledPeriod, ThreeMissedPeriods, ThreeWarningsInARow, ThreeWarningsWithinAMonth, Timing, parse_regime,
)

pytestmark = pytest.mark.unit

SHIPPED = RegimeTimeline(domain.timeline_from_toml(tomllib.loads(REGIMES_FILE.read_text(encoding="utf-8"))))
START = datetime(2020, 6, 1, tzinfo=UTC)


def local_midnight(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone))


def plant(**changes) -> Schedule:
    return replace(Schedule(permit_id=uuid.uuid4(), facility_id=uuid.uuid4(), nib="8120000123456",
                            province_code="32", regency_code="32.16", zone="Asia/Jakarta", issued_at=START), **changes)


def history(*warned: bool, regime_name: str = "SE-8/2020", gap: timedelta = timedelta(days=7)) -> list[SettledPeriod]:
    return [SettledPeriod(uuid.uuid4(), seq, START + seq * gap, uuid.uuid4() if w else None, regime_name)
            for seq, w in enumerate(warned, start=1)]


# -- the shipped timeline ----------------------------------------------------------------------------------------


def test_the_three_circulars_are_shipped_in_order_with_their_rules_and_ladders():
    assert [(e.name, e.effective_on, e.rule.text, e.ladder) for e in SHIPPED.entries] == [
        ("SE-8/2020", date(2020, 5, 19), "weekly:SAT@23:59", LadderName.SE_8_2020),
        ("SE-3/2021", date(2021, 7, 30), "twice-weekly:TUE,FRI@23:59", LadderName.SE_3_2021),
        ("SE-5/2021", date(2021, 9, 10), "weekly:FRI@23:59", LadderName.SE_5_2021),
    ]
    assert all(e.source for e in SHIPPED.entries)
    assert "[inference]" in REGIMES_FILE.read_text(encoding="utf-8")  # SE 8/2020's date is not in a source


@pytest.mark.parametrize("zone", ["Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"])
@pytest.mark.parametrize("index", [1, 2])
def test_a_regime_takes_effect_exactly_at_the_local_midnight_of_its_date(zone, index):
    before, entry = SHIPPED.entries[index - 1], SHIPPED.entries[index]
    midnight = local_midnight(entry.effective_on, zone)
    assert SHIPPED.in_force(midnight - timedelta(microseconds=1), zone) == before
    assert SHIPPED.in_force(midnight, zone) == entry
    # The same instant in UTC: as the plant's zone sees it, whatever the zone of the moment given.
    assert SHIPPED.in_force(midnight.astimezone(UTC), zone) == entry
    assert SHIPPED.in_force((midnight - timedelta(microseconds=1)).astimezone(UTC), zone) == before


def test_the_same_instant_falls_under_different_regimes_in_different_zones():
    # 30 Jul 2021 00:30 WITA is 29 Jul 23:30 WIB: SE 3/2021 in Bali, still SE 8/2020 in Java.
    moment = datetime(2021, 7, 30, 0, 30, tzinfo=ZoneInfo("Asia/Makassar"))
    assert SHIPPED.in_force(moment, "Asia/Makassar").name == "SE-3/2021"
    assert SHIPPED.in_force(moment, "Asia/Jayapura").name == "SE-3/2021"
    assert SHIPPED.in_force(moment, "Asia/Jakarta").name == "SE-8/2020"


@pytest.mark.parametrize("zone", ZONES)
def test_before_the_first_regime_the_first_applies(zone):
    assert SHIPPED.in_force(datetime(2020, 4, 1, tzinfo=UTC), zone).name == "SE-8/2020"


@pytest.mark.parametrize("zone", ZONES)
def test_a_period_opens_under_the_regime_in_force_when_it_opens(zone):
    midnight = local_midnight(date(2021, 9, 10), zone)
    last_under_se3 = domain.opening(SHIPPED, zone, starts_at=midnight - timedelta(microseconds=1), timing=Timing())
    first_under_se5 = domain.opening(SHIPPED, zone, starts_at=midnight, timing=Timing())
    assert (last_under_se3.regime_name, last_under_se3.regime) == ("SE-3/2021", "twice-weekly:TUE,FRI@23:59")
    # Friday 10 Sep 2021 00:00 local: the deadline is that evening, the last one (Fri 23:59) of SE 3/2021 as well.
    assert last_under_se3.deadline == datetime.combine(date(2021, 9, 10), time(23, 59), ZoneInfo(zone))
    assert (first_under_se5.regime_name, first_under_se5.regime) == ("SE-5/2021", "weekly:FRI@23:59")
    assert first_under_se5.period(uuid.uuid4(), 1).regime_name == "SE-5/2021"


def test_opening_under_a_single_rule_names_no_regime():
    opened = domain.opening(parse_regime("every:5s"), "Asia/Jakarta", starts_at=START, timing=Timing())
    assert opened.regime_name == "" and opened.regime == "every:5s"


def test_the_configured_rule_replaces_the_timeline_from_the_beginning_of_time_under_se_3_2021():
    configured = domain.configured_timeline(parse_regime("every:5s"))
    for zone in ZONES:
        for moment in (datetime(1, 1, 2, tzinfo=UTC), START, datetime(9999, 12, 30, tzinfo=UTC)):
            entry = configured.in_force(moment, zone)
            assert (entry.name, entry.rule.text, entry.ladder) == ("configured", "every:5s", LadderName.SE_3_2021)
    assert configured.ladder_for("configured") is LADDERS[LadderName.SE_3_2021]


def test_a_period_is_judged_by_the_ladder_of_the_regime_it_opened_under():
    assert SHIPPED.ladder_for("SE-8/2020") is LADDERS[LadderName.SE_8_2020]
    assert SHIPPED.ladder_for("SE-3/2021") is LADDERS[LadderName.SE_3_2021]
    assert SHIPPED.ladder_for("SE-5/2021") is LADDERS[LadderName.SE_5_2021]
    assert SHIPPED.ladder_for("no-longer-held") is LADDERS[LadderName.SE_3_2021]


def test_misses_under_one_ladder_are_no_evidence_for_another():
    old = history(True, True, regime_name="SE-8/2020")
    new = [replace(p, seq=p.seq + 2) for p in history(True, regime_name="SE-3/2021")]
    later = [replace(p, seq=p.seq + 3) for p in history(True, regime_name="SE-5/2021")]
    se3 = LADDERS[LadderName.SE_3_2021]
    assert SHIPPED.evidence(se3, old + new + later) == new + later  # SE 5/2021 keeps SE 3/2021's ladder
    assert SHIPPED.evidence(LADDERS[LadderName.SE_8_2020], old + new + later) == old


# -- SE 8/2020's ladder -----------------------------------------------------------------------------------------

SE8 = LADDERS[LadderName.SE_8_2020]


@pytest.mark.parametrize("warned", [(), (True,), (True, True), (True, False, True), (False, False, False, True, True)])
def test_se_8_2020_fewer_than_three_missed_periods_is_no_sanction(warned):
    assert SE8.after_missed(plant(), history(*warned)) is None


@pytest.mark.parametrize("warned", [(True, True, True), (True, False, True, False, True),
                                    (True, False, False, False, False, False, True, True)])
def test_se_8_2020_three_missed_periods_revoke_in_a_row_or_not(warned):
    settled = history(*warned)
    sanction = SE8.after_missed(plant(), settled)
    missed = [p for p in settled if p.warned]
    assert sanction is not None and (sanction.action, sanction.rule) == (SanctionKind.REVOKE, "ThreeMissedPeriods")
    assert sanction.missed_periods == tuple(p.period_id for p in missed[-3:])
    assert sanction.warnings == tuple(p.warning_id for p in missed[-3:])
    assert sanction.through_seq == missed[-1].seq


def test_se_8_2020_counts_misses_however_far_apart():
    assert SE8.after_missed(plant(), history(True, True, True, gap=timedelta(days=120))) is not None
    assert SE8.lookback > timedelta(days=365 * 5)


def test_se_8_2020_counts_no_miss_twice_and_revokes_once():
    settled = history(True, True, True, True)
    assert SE8.after_missed(plant(ladder_reset_seq=2), settled) is None
    assert SE8.after_missed(plant(revoke_recommended=True), settled) is None


def test_se_8_2020_knows_no_freeze():
    assert [rule.name for rule in SE8.on_missed] == ["ThreeMissedPeriods"] and SE8.on_frozen == ()
    frozen_twice = plant(frozen=True, freeze_count=2)
    assert SE8.after_frozen(frozen_twice, history(True, True)) is None
    assert SE8.after_missed(frozen_twice, history(True)) is None  # SE 3/2021's MissedWhileFrozen is not its rule


def test_three_missed_periods_is_a_rule_of_its_own():
    rule = ThreeMissedPeriods(count=2)
    assert rule.decide(plant(), history(True, False)) is None
    assert rule.decide(plant(), history(True, False, True)) is not None


# -- SE 3/2021's ladder, kept by SE 5/2021 ----------------------------------------------------------------------


def test_se_3_2021_is_the_warning_freeze_revoke_ladder():
    se3 = LADDERS[LadderName.SE_3_2021]
    assert se3 == SanctionLadder()
    assert [type(rule) for rule in se3.on_missed] == [MissedWhileFrozen, ThreeWarningsInARow,
                                                      ThreeWarningsWithinAMonth]
    assert [type(rule) for rule in se3.on_frozen] == [SecondFreeze]


def test_se_5_2021_keeps_se_3_2021s_ladder():
    assert LADDERS[LadderName.SE_5_2021] == LADDERS[LadderName.SE_3_2021]
    assert set(LADDERS) == set(LadderName)


@pytest.mark.parametrize("name", [LadderName.SE_3_2021, LadderName.SE_5_2021])
def test_se_3_and_5_freeze_where_se_8_revokes(name):
    settled = history(True, True, True, regime_name=name.value)
    sanction = LADDERS[name].after_missed(plant(), settled)
    assert sanction is not None and (sanction.action, sanction.rule) == (SanctionKind.FREEZE, "ThreeWarningsInARow")
    assert LADDERS[name].after_missed(plant(frozen=True, freeze_count=1), settled).rule == "MissedWhileFrozen"
    assert LADDERS[name].after_frozen(plant(frozen=True, freeze_count=2), settled).rule == "SecondFreeze"


# -- an operator's changes ---------------------------------------------------------------------------------------

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
WIT = ZoneInfo("Asia/Jayapura")


def scheduled(**changes):
    asked = dict(name="SE-2/2027", source="SE Menperin 2/2027", effective_on=date(2027, 1, 4),
                 rule="weekly:MON@12:00", ladder="SE-5/2021", now=NOW) | changes
    return domain.scheduled_entry(SHIPPED, **asked)


def test_an_operator_schedules_a_regime_ahead_of_time():
    entry = scheduled()
    assert entry == RegimeEntry("SE-2/2027", "SE Menperin 2/2027", date(2027, 1, 4), parse_regime("weekly:MON@12:00"),
                                LadderName.SE_5_2021)
    later = RegimeTimeline((*SHIPPED.entries, entry))
    assert later.in_force(local_midnight(date(2027, 1, 4), "Asia/Jakarta"), "Asia/Jakarta") == entry


def test_the_date_must_not_have_begun_in_any_zone():
    tomorrow_in_wit = date(2026, 12, 7)
    at_wit_midnight = local_midnight(tomorrow_in_wit, "Asia/Jayapura")
    # A microsecond before it begins in Jayapura: still ahead everywhere (it is the 6th in Jakarta as well).
    assert scheduled(effective_on=tomorrow_in_wit, now=at_wit_midnight - timedelta(microseconds=1))
    for now in (at_wit_midnight, at_wit_midnight + timedelta(hours=1)):  # begun in WIT, not yet in WIB
        with pytest.raises(RegimeRefused) as refused:
            scheduled(effective_on=tomorrow_in_wit, now=now)
        assert refused.value.field == "effective_on"
    with pytest.raises(RegimeRefused):
        scheduled(effective_on=date(2021, 9, 10))


@pytest.mark.parametrize("changes, field", [
    ({"name": ""}, "name"), ({"name": "SE 2/2027"}, "name"), ({"name": "SÉ-2/2027"}, "name"),
    ({"name": "x" * 41}, "name"), ({"name": "/etc"}, "name"),
    ({"source": " "}, "source"), ({"source": "x" * 501}, "source"),
    ({"rule": "weekly:XYZ@23:59"}, "rule"), ({"rule": "every:5s"}, "rule"), ({"rule": "monthly"}, "rule"),
    ({"ladder": "SE-4/2020"}, "ladder"), ({"ladder": ""}, "ladder"),
    ({"effective_on": date(2021, 9, 10) + timedelta(days=2000)}, "effective_on"),
])
def test_what_an_operator_may_not_schedule(changes, field):
    timeline = RegimeTimeline((*SHIPPED.entries, replace(SHIPPED.entries[0], name="taken",
                                                         effective_on=date(2021, 9, 10) + timedelta(days=2000))))
    asked = dict(name="SE-2/2027", source="SE Menperin 2/2027", effective_on=date(2027, 1, 4),
                 rule="weekly:MON@12:00", ladder="SE-5/2021", now=NOW) | changes
    with pytest.raises(RegimeRefused) as refused:
        domain.scheduled_entry(timeline, **asked)
    assert refused.value.field == field


def test_a_name_is_the_regimes_own():
    with pytest.raises(RegimeExists):
        scheduled(name="SE-5/2021")


def test_an_entry_is_withdrawn_only_before_it_takes_effect_anywhere():
    entry = scheduled()
    timeline = RegimeTimeline((*SHIPPED.entries, entry))
    begins = local_midnight(entry.effective_on, "Asia/Jayapura")
    assert domain.withdrawn_entry(timeline, entry.name, now=begins - timedelta(microseconds=1)) == entry
    with pytest.raises(RegimeInEffect):
        domain.withdrawn_entry(timeline, entry.name, now=begins)
    with pytest.raises(RegimeInEffect):
        domain.withdrawn_entry(timeline, "SE-8/2020", now=NOW)
    with pytest.raises(RegimeNotFound):
        domain.withdrawn_entry(timeline, "SE-9/2099", now=NOW)


# -- the shipped configuration's checks --------------------------------------------------------------------------


@pytest.mark.parametrize("document", [
    "", "regime = 1",
    '[[regime]]\nname = "a b"\nsource = "s"\neffective_on = 2020-01-01\nrule = "weekly:SAT@23:59"\n'
    'ladder = "SE-8/2020"',
    '[[regime]]\nname = "a"\nsource = "s"\neffective_on = 2020-01-01T00:00:00\nrule = "weekly:SAT@23:59"\n'
    'ladder = "SE-8/2020"',
    '[[regime]]\nname = "a"\nsource = "s"\neffective_on = 2020-01-01\nrule = "weekly:SAT@25:59"\nladder = "SE-8/2020"',
    '[[regime]]\nname = "a"\nsource = "s"\neffective_on = 2020-01-01\nrule = "weekly:SAT@23:59"\nladder = "SE-1"',
    '[[regime]]\nname = "a"\nsource = "s"\neffective_on = 2020-01-01\nrule = "weekly:SAT@23:59"\nladder = "SE-8/2020"'
    '\n[[regime]]\nname = "a"\nsource = "s"\neffective_on = 2020-01-02\nrule = "weekly:SAT@23:59"\n'
    'ladder = "SE-8/2020"',
])
def test_a_wrong_configuration_is_refused_at_start(document):
    with pytest.raises((InvalidRegime, ValueError)):
        domain.timeline_from_toml(tomllib.loads(document))


def test_an_empty_timeline_has_no_regime_in_force():
    with pytest.raises(LookupError):
        RegimeTimeline(()).in_force(NOW, "Asia/Jakarta")
