"""A report checked against the PPKM staffing rules in force for its plant on its day, and what compliance shows of
PPKM by region: the level, plants by sector class, breaches this week and the share of staff with a first dose.

Pure: the caller reads the level entries, the rule set, the plant and its latest report, and passes the day. The
rules themselves (levels over time, rule sets, allowances, excesses, the capacity ladder) are in `staffing`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from services.reports.staffing import (
    Allowance, Excess, OnSite, PlantFacts, RuleSet, allowance, dose1_share, excesses,
)
from shared.contract import PpkmLevel, SectorClass

# ------------------------------------------------------------------------------------------------ checking a report


@dataclass(frozen=True)
class ReportedStaffing:
    """What a report states that the staffing rules judge: the workforce, the people on site in each production
    shift, the offices when it states them, the staff with a first dose, and whether PeduliLindungi is in use (its
    protocol checklist)."""

    workforce_total: int
    per_shift: tuple[int, ...]
    dose1: int
    pedulilindungi: bool
    office_staff: int | None = None
    office_on_site: int | None = None


@dataclass(frozen=True)
class CapacityCheck:
    """A report's check: the day it was checked on, the level in force, and, when the plant's sector class is known,
    the allowance it was judged by and where it is over it. A plant whose class is not known yet (issued before
    classes were derived) is not checked: no rule can be chosen for it."""

    day: date
    level: PpkmLevel | None
    checked: bool
    allowance: Allowance | None = None
    excesses: tuple[Excess, ...] = field(default=())

    @property
    def rule(self) -> str | None:
        return self.allowance.rule if self.allowance else None

    @property
    def rule_set(self) -> str | None:
        return self.allowance.rule_set if self.allowance else None

    @property
    def within(self) -> bool | None:
        """Within the cap; None when the report was not checked."""
        return not self.excesses if self.checked else None

    @property
    def breached(self) -> bool:
        return bool(self.excesses)


def check_report(day: date, level: PpkmLevel | None, rule_set: RuleSet | None, sector_class: SectorClass | None,
                 export_oriented: bool, *, permit_active: bool, report: ReportedStaffing) -> CapacityCheck:
    """The report against the allowance of its plant on `day`: the rule of `rule_set` (the set in force that day)
    for the level, class and orientation, lifted when the report meets the lift's conditions (an active permit,
    PeduliLindungi in use, the share of the workforce with a first dose). No level in force: no restriction."""
    if sector_class is None:
        return CapacityCheck(day, level, checked=False)
    plant = PlantFacts(sector_class, export_oriented, report.workforce_total, permit_active, report.pedulilindungi,
                       report.dose1)
    found = allowance(day, level, rule_set, plant)
    over = excesses(found, OnSite(report.per_shift, report.office_staff, report.office_on_site))
    return CapacityCheck(day, level, True, found, over)


# ------------------------------------------------------------------------------------------------ the dose-1 share


@dataclass(frozen=True)
class LatestReport:
    """A plant's latest report as the dose-1 share counts it: the period it is for, its first doses, its
    workforce; and its PeduliLindungi answer, which a plant's allowance reads with them."""

    period_seq: int
    dose1: int
    workforce: int
    pedulilindungi: bool | None = None


def replaces(current: LatestReport | None, candidate: LatestReport) -> bool:
    """A plant's latest report is the current report of its latest reported period: a report for that period (a
    correction) or a later one replaces it; a report filed late for an earlier period does not."""
    return current is None or candidate.period_seq >= current.period_seq


@dataclass(frozen=True)
class DoseChange:
    """What one region's sums gain: plants counted, first doses, workforce (each may be negative)."""

    regency_code: str
    province_code: str
    plants: int
    dose1: int
    workforce: int


def dose_changes(replaced: Iterable[tuple[str, str, LatestReport | None, LatestReport]]) -> list[DoseChange]:
    """Each regency's change to its sums when plants' latest reports are replaced (`regency, province, before,
    after` per plant), in regency order: the order in which a transaction locks them."""
    sums: dict[str, list[int]] = {}
    provinces: dict[str, str] = {}
    for regency, province, before, after in replaced:
        total = sums.setdefault(regency, [0, 0, 0])
        provinces[regency] = province
        total[0] += before is None
        total[1] += after.dose1 - (before.dose1 if before else 0)
        total[2] += after.workforce - (before.workforce if before else 0)
    return [DoseChange(regency, provinces[regency], *sums[regency]) for regency in sorted(sums)]


# ------------------------------------------------------------------------------------------------ by region

# From the least restrictive to the most: PPKM Darurat was stricter than level 4.
LEVEL_ORDER = (PpkmLevel.LEVEL_1, PpkmLevel.LEVEL_2, PpkmLevel.LEVEL_3, PpkmLevel.LEVEL_4, PpkmLevel.EMERGENCY)


def highest_level(levels: Iterable[PpkmLevel | None]) -> PpkmLevel | None:
    """The most restrictive of the levels in force (a province's, over its regencies); None when none is."""
    found = [level for level in levels if level is not None]
    return max(found, key=LEVEL_ORDER.index) if found else None


def iso_week(day: date) -> tuple[date, date]:
    """The ISO week of a day, Monday to Sunday: "this week" for breaches, in the region's own time zone."""
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


@dataclass(frozen=True)
class PlantsByClass:
    """Live plants (permit not revoked) by sector class; export-oriented ones are counted again on their own."""

    critical: int = 0
    essential: int = 0
    non_essential: int = 0
    unknown: int = 0  # issued before classes were derived, not classified since
    export_oriented: int = 0

    def __add__(self, other: PlantsByClass) -> PlantsByClass:
        return PlantsByClass(self.critical + other.critical, self.essential + other.essential,
                             self.non_essential + other.non_essential, self.unknown + other.unknown,
                             self.export_oriented + other.export_oriented)


@dataclass(frozen=True)
class RegionPpkm:
    """PPKM in one region (a regency, or a province summed over its regencies): its level today, its plants by
    class, its breaches this week and in compliance's window, and the sums its dose-1 share is taken from."""

    code: str
    level: PpkmLevel | None
    plants: PlantsByClass = PlantsByClass()
    breaches_this_week: int = 0
    breaches_in_window: int = 0
    reported_plants: int = 0  # plants whose latest report the dose-1 share counts
    dose1: int = 0
    workforce: int = 0

    @property
    def dose1_share(self) -> float | None:
        """First doses over the workforce of the plants' latest reports, rounded as compliance rates are; None
        without a workforce reported."""
        share = dose1_share(self.dose1, self.workforce)
        return None if share is None else round(share, 4)


def summed(code: str, regions: Sequence[RegionPpkm]) -> RegionPpkm:
    """Regions taken together: their most restrictive level, and every count summed."""
    plants = PlantsByClass()
    for region in regions:
        plants += region.plants
    return RegionPpkm(code, highest_level(r.level for r in regions), plants,
                      sum(r.breaches_this_week for r in regions), sum(r.breaches_in_window for r in regions),
                      sum(r.reported_plants for r in regions), sum(r.dose1 for r in regions),
                      sum(r.workforce for r in regions))


def by_province(regencies: Iterable[RegionPpkm]) -> list[RegionPpkm]:
    """Regencies summed into their provinces (a regency's code begins with its province's), in code order."""
    grouped: dict[str, list[RegionPpkm]] = {}
    for regency in regencies:
        grouped.setdefault(regency.code.split(".", 1)[0], []).append(regency)
    return [summed(province, grouped[province]) for province in sorted(grouped)]
