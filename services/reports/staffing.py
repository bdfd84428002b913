"""PPKM staffing: how many people a plant may have on site, by its region's PPKM level and its sector.

The community activity restrictions (PPKM) set a level per regency, week by week (the Minister of Home Affairs'
instructions, Instruksi Mendagri); what a plant may run depends on that level and on whether its sector is critical,
essential or export-oriented. From September 2021, plants at levels 2 to 4 could run at 100 % in at least two
shifts only with an active IOMKI, PeduliLindungi in use and at least half of the staff on a first dose.

The rules are data (`ppkm_rules.toml`, or a rule set an operator publishes with its start date), each rule named.
Pure: no I/O; days are passed in. Every question a reader might ask ("which level applies to this plant today?",
"what may it run?", "is this report over the cap?", "when do breaches lead to a freeze?") is answered here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from services.reports.domain import EARLIEST_ZONE, ZONES, Refused
from shared.contract import (
    INSTRUCTION_MAX_LENGTH, MAX_SHIFTS, CapacityMeasure, PpkmLevel, PpkmLevelSet, SectorClass,
)
from shared.regions import local_zone

# ------------------------------------------------------------------------------------------------ levels


class LevelSource(StrEnum):
    OPERATOR = "operator"  # a ministry operator recorded it (POST /ppkm/levels, `iomki ppkm set-level`)
    AGENCY = "agency"  # the agency that sets levels published it (PpkmLevelSet on iomki.ppkm)


@dataclass(frozen=True)
class LevelEntry:
    """One instruction's level for a regency, or for every regency of a province (`region_code` is then the
    province's code), from a day and, if it says so, until a day (inclusive)."""

    region_code: str
    level: PpkmLevel
    effective_from: date
    effective_until: date | None
    instruction: str
    source: LevelSource
    recorded_at: datetime

    def in_force_on(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_until is None or day <= self.effective_until)


def level_on(entries: Iterable[LevelEntry], day: date) -> LevelEntry | None:
    """The level of a regency on a day, from the entries for the regency and for its province: the one that took
    effect last on or before the day (an instruction supersedes the ones before it, whether it names the regency or
    its whole province); for entries taking effect on the same day, the one recorded last. None when no entry has
    taken effect, or when the latest one has run out (`effective_until` passed): no PPKM restriction then."""
    begun = [e for e in entries if e.effective_from <= day]
    if not begun:
        return None
    latest = max(begun, key=lambda e: (e.effective_from, e.recorded_at))
    return latest if latest.in_force_on(day) else None


def local_day(region_code: str, now: datetime) -> date:
    """The day it is in a region's zone (a province or regency code): a level's days are the region's own."""
    return now.astimezone(local_zone(region_code)).date()


LEVEL_REASON_MAX = 1000  # an operator's reason, as the permits API takes an officer's
# How far from today an operator's level may start: instructions came week by week, and were sometimes recorded a
# few days after they took effect; a level years away in either direction is a mistyped date.
LEVEL_LATE_MAX = timedelta(days=31)
LEVEL_AHEAD_MAX = timedelta(days=366)


class LevelRefused(Refused):
    """An operator's level that a rule refuses; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class RegionNames(Protocol):
    def name_of(self, code: str) -> str | None: ...


def operator_level(*, province_code: str, regency_code: str | None, level: PpkmLevel, effective_from: date,
                   effective_until: date | None, instruction: str, reason: str, regions: RegionNames,
                   now: datetime) -> LevelEntry:
    """A level an operator records for a regency, or for every regency of a province (no regency): a region that
    exists, a regency of that province, a first day at most `LEVEL_LATE_MAX` before today there (an instruction is
    sometimes recorded after it took effect) and at most `LEVEL_AHEAD_MAX` after, a last day not before the first,
    the instruction that sets it and the operator's reason, each bounded."""
    if regions.name_of(province_code) is None or "." in province_code:
        raise LevelRefused("province_code", "a Kemendagri province code, e.g. 32")
    if regency_code is not None:
        if not regency_code.startswith(f"{province_code}."):
            raise LevelRefused("regency_code", f"not in province {province_code}")
        if regions.name_of(regency_code) is None:
            raise LevelRefused("regency_code", "a Kemendagri regency or city code, e.g. 32.16")
    today = local_day(province_code, now)
    if not today - LEVEL_LATE_MAX <= effective_from <= today + LEVEL_AHEAD_MAX:
        raise LevelRefused("effective_from", f"from {(today - LEVEL_LATE_MAX).isoformat()} to "
                                             f"{(today + LEVEL_AHEAD_MAX).isoformat()}: at most {LEVEL_LATE_MAX.days} "
                                             f"days ago, at most {LEVEL_AHEAD_MAX.days} days ahead")
    if effective_until is not None and effective_until < effective_from:
        raise LevelRefused("effective_until", "on or after effective_from")
    if not instruction.strip() or len(instruction) > INSTRUCTION_MAX_LENGTH:
        raise LevelRefused("instruction", f"the instruction that sets the level, 1 to {INSTRUCTION_MAX_LENGTH} "
                                          "characters, e.g. Inmendagri 22/2021")
    if not reason.strip() or len(reason) > LEVEL_REASON_MAX:
        raise LevelRefused("reason", f"why the level is recorded, 1 to {LEVEL_REASON_MAX} characters")
    return LevelEntry(regency_code or province_code, level, effective_from, effective_until, instruction.strip(),
                      LevelSource.OPERATOR, now)


def agency_level(event: PpkmLevelSet, now: datetime) -> LevelEntry:
    """A level as the agency that sets levels published it (the contract has checked its fields)."""
    return LevelEntry(event.regency_code or event.province_code, event.level, event.effective_from,
                      event.effective_until, event.instruction, LevelSource.AGENCY, now)


@dataclass(frozen=True)
class PendingLevel:
    """A recorded level whose first day has not been applied to its region's allowances yet (`applied` false), or
    whose last day is set and whose passing has not been (`applied` true)."""

    level_id: uuid.UUID
    region_code: str
    effective_from: date
    effective_until: date | None
    applied: bool


@dataclass(frozen=True)
class LevelsDue:
    regions: tuple[str, ...]  # to re-evaluate, none within another
    applied: tuple[uuid.UUID, ...]  # levels whose first day has come in their region
    lapsed: tuple[uuid.UUID, ...]  # levels whose last day has passed there


def levels_due(pending: Iterable[PendingLevel], now: datetime) -> LevelsDue:
    """Which regions' allowances change now: those where a level's first day has come, or where a level's last day
    has passed, each by the region's own day. A province's re-evaluation covers its regencies."""
    regions, applied, lapsed = set(), [], []
    for level in pending:
        today = local_day(level.region_code, now)
        lapses = level.effective_until is not None and level.effective_until < today
        if not level.applied and level.effective_from <= today:
            applied.append(level.level_id)
            regions.add(level.region_code)
            if lapses:
                lapsed.append(level.level_id)
        elif level.applied and lapses:
            lapsed.append(level.level_id)
            regions.add(level.region_code)
    covered = tuple(sorted(r for r in regions if r.split(".")[0] == r or r.split(".")[0] not in regions))
    return LevelsDue(covered, tuple(applied), tuple(lapsed))


def checked_day(submitted_at: datetime, deadline: datetime, zone: str) -> date:
    """The day a report's counts are checked against: the day it was made, in the plant's zone; for a late report,
    its period's deadline, the last day the counts could describe."""
    return min(submitted_at, deadline).astimezone(ZoneInfo(zone)).date()


# ------------------------------------------------------------------------------------------------ rules

RULE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
RULE_SET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ./_-]{0,63}$"
RULE_SET_SOURCE_MAX = 500
MAX_RULES = 200  # a rule set: every level, class and orientation takes 30 rules at most, named one by one
_RULE_NAME = re.compile(RULE_NAME_PATTERN)
_RULE_SET_NAME = re.compile(RULE_SET_NAME_PATTERN)


@dataclass(frozen=True)
class Capacity:
    """What a plant may have on site: a share of its workforce across its production shifts, at most a share of it
    in any one shift (None: no limit but the whole), a number of production shifts (None: as many as it runs), and
    a share of its office staff. "Two shifts at 50 %" is 100 across, 50 a shift, 2 shifts."""

    production_share: int  # percent of the workforce, across the production shifts
    max_shifts: int | None
    office_share: int  # percent of the office staff
    shift_share: int | None = None  # percent of the workforce, in any one production shift

    def total_cap(self, workforce_total: int) -> int:
        return workforce_total * self.production_share // 100

    def shift_cap(self, workforce_total: int) -> int | None:
        return None if self.shift_share is None else workforce_total * self.shift_share // 100

    def office_cap(self, office_staff: int) -> int:
        return office_staff * self.office_share // 100


@dataclass(frozen=True)
class Lift:
    """Conditions that lift a rule's cap to another capacity (September 2021: 100 % in at least two shifts, that is
    the whole workforce but at most half of it in any one shift, with an active IOMKI, PeduliLindungi and half the
    staff on a first dose)."""

    capacity: Capacity
    active_permit: bool = True
    pedulilindungi: bool = True
    min_dose1_share: int = 0  # percent of the workforce with a first dose


@dataclass(frozen=True)
class CapacityRule:
    """A named rule: for these levels, sector classes and export orientations (None: either), this capacity,
    lifted to another when the lift's conditions are met."""

    name: str
    levels: frozenset[PpkmLevel]
    classes: frozenset[SectorClass]
    export_oriented: bool | None
    capacity: Capacity
    lift: Lift | None = None

    def applies(self, level: PpkmLevel, sector_class: SectorClass, export_oriented: bool) -> bool:
        return (level in self.levels and sector_class in self.classes
                and self.export_oriented in (None, export_oriented))


@dataclass(frozen=True)
class RuleSet:
    """The rules an instruction set, in force from `starts_on` until the next set starts. The first rule that
    applies decides, so a set lists its particular rules before its general ones; every level, class and
    orientation has a rule (checked when the set is read)."""

    name: str
    starts_on: date
    source: str
    rules: tuple[CapacityRule, ...]

    def rule_for(self, level: PpkmLevel, sector_class: SectorClass, export_oriented: bool) -> CapacityRule:
        return next(r for r in self.rules if r.applies(level, sector_class, export_oriented))


@dataclass(frozen=True)
class RuleBook:
    """Every rule set, shipped and published, in order of their start days."""

    sets: tuple[RuleSet, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "sets", tuple(sorted(self.sets, key=lambda s: s.starts_on)))

    def in_force_on(self, day: date) -> RuleSet | None:
        begun = [s for s in self.sets if s.starts_on <= day]
        return begun[-1] if begun else None

    def named(self, name: str) -> RuleSet | None:
        return next((s for s in self.sets if s.name == name), None)


@dataclass(frozen=True)
class RuleSetIssue:
    field: str
    message: str


class InvalidRuleSet(Refused, ValueError):
    """A rule set that cannot be read (the shipped file, or an operator's request): every issue, each naming its
    field."""

    def __init__(self, issues: Sequence[RuleSetIssue]) -> None:
        super().__init__("; ".join(f"{i.field}: {i.message}" for i in issues))
        self.issues = list(issues)


def rule_set_from_mapping(document: Mapping[str, Any]) -> RuleSet:
    """A rule set as the shipped file or an operator's request states it, every field checked and named when wrong:
    `name`, `starts_on`, `source`, and `rules`, each with `name`, `levels`, `classes`, `export_oriented` (true,
    false, or absent for either), `production_share`, `shift_share` and `max_shifts` (absent: no limit),
    `office_share`, and an optional `lift` (the same four, and `active_permit`, `pedulilindungi`,
    `min_dose1_share`)."""
    issues: list[RuleSetIssue] = []
    name = document.get("name")
    if not (isinstance(name, str) and _RULE_SET_NAME.fullmatch(name)):
        issues.append(RuleSetIssue("name", f"a name matching {RULE_SET_NAME_PATTERN}, e.g. Inmendagri 22/2021"))
    raw_start = document.get("starts_on")
    starts_on = raw_start if type(raw_start) is date else None
    if starts_on is None:
        issues.append(RuleSetIssue("starts_on", "a date (YYYY-MM-DD)"))
    source = document.get("source")
    # PostgreSQL text cannot hold U+0000: refused here, naming the field, rather than failing where it is stored.
    if not (isinstance(source, str) and source.strip() and len(source) <= RULE_SET_SOURCE_MAX
            and "\x00" not in source):
        issues.append(RuleSetIssue("source", f"the instruction that sets the rules, 1 to {RULE_SET_SOURCE_MAX} "
                                             "characters"))
    raw_rules = document.get("rules")
    rules: list[CapacityRule] = []
    if not (isinstance(raw_rules, list) and 0 < len(raw_rules) <= MAX_RULES):
        issues.append(RuleSetIssue("rules", f"a list of 1 to {MAX_RULES} rules"))
    else:
        for index, raw in enumerate(raw_rules):
            rule = _rule(raw, f"rules[{index}]", issues)
            if rule is not None:
                rules.append(rule)
        names = [r.name for r in rules]
        for duplicate in sorted({n for n in names if names.count(n) > 1}):
            issues.append(RuleSetIssue("rules", f"two rules are named {duplicate}"))
        if len(rules) == len(raw_rules):
            issues.extend(_uncovered(rules))
    if issues or starts_on is None:
        raise InvalidRuleSet(issues)
    return RuleSet(str(name), starts_on, str(source).strip(), tuple(rules))


def _uncovered(rules: Sequence[CapacityRule]) -> Iterable[RuleSetIssue]:
    for level in PpkmLevel:
        for sector_class in SectorClass:
            for export in (False, True):
                if not any(r.applies(level, sector_class, export) for r in rules):
                    kind = "export-oriented" if export else "not export-oriented"
                    yield RuleSetIssue("rules", f"no rule for level {level.value}, {sector_class.value}, {kind}")


def _rule(raw: object, where: str, issues: list[RuleSetIssue]) -> CapacityRule | None:
    before = len(issues)
    if not isinstance(raw, Mapping):
        issues.append(RuleSetIssue(where, "a rule is an object"))
        return None
    name = raw.get("name")
    if not (isinstance(name, str) and _RULE_NAME.fullmatch(name)):
        issues.append(RuleSetIssue(f"{where}.name", f"a name matching {RULE_NAME_PATTERN}"))
    levels = _members(raw.get("levels"), PpkmLevel, f"{where}.levels", issues)
    classes = _members(raw.get("classes"), SectorClass, f"{where}.classes", issues)
    export = raw.get("export_oriented")
    if export is not None and not isinstance(export, bool):
        issues.append(RuleSetIssue(f"{where}.export_oriented", "true, false, or absent for either"))
    capacity = _capacity(raw, where, issues)
    lift = None
    if "lift" in raw:
        lift = _lift(raw["lift"], f"{where}.lift", issues)
    if len(issues) > before or capacity is None:
        return None
    return CapacityRule(str(name), levels, classes, export, capacity, lift)


_Member = TypeVar("_Member", bound=StrEnum)


def _members(raw: object, kind: type[_Member], where: str, issues: list[RuleSetIssue]) -> frozenset[_Member]:
    allowed = [m.value for m in kind]
    if not (isinstance(raw, list) and raw and all(isinstance(v, str) and v in allowed for v in raw)):
        issues.append(RuleSetIssue(where, f"a list of one or more of {', '.join(allowed)}"))
        return frozenset()
    return frozenset(kind(v) for v in raw)


def _percent(raw: Mapping[str, Any], key: str, where: str, issues: list[RuleSetIssue]) -> int:
    value = raw.get(key)
    if type(value) is not int or not 0 <= value <= 100:
        issues.append(RuleSetIssue(f"{where}.{key}", "a whole percentage from 0 to 100"))
        return 0
    return value


def _capacity(raw: Mapping[str, Any], where: str, issues: list[RuleSetIssue]) -> Capacity | None:
    before = len(issues)
    production = _percent(raw, "production_share", where, issues)
    office = _percent(raw, "office_share", where, issues)
    shift_share = None
    if raw.get("shift_share") is not None:
        shift_share = _percent(raw, "shift_share", where, issues)
        if shift_share > production:
            issues.append(RuleSetIssue(f"{where}.shift_share", "at most production_share: a shift is part of the "
                                                               "whole"))
    shifts = raw.get("max_shifts")
    if shifts is not None and (type(shifts) is not int or not 1 <= shifts <= MAX_SHIFTS):
        issues.append(RuleSetIssue(f"{where}.max_shifts", f"a number of shifts from 1 to {MAX_SHIFTS}, or absent"))
    return Capacity(production, shifts, office, shift_share) if len(issues) == before else None


def _lift(raw: object, where: str, issues: list[RuleSetIssue]) -> Lift | None:
    if not isinstance(raw, Mapping):
        issues.append(RuleSetIssue(where, "a lift is an object"))
        return None
    capacity = _capacity(raw, where, issues)
    flags = {}
    for key in ("active_permit", "pedulilindungi"):
        value = raw.get(key, True)
        if not isinstance(value, bool):
            issues.append(RuleSetIssue(f"{where}.{key}", "true or false"))
        flags[key] = value is True
    dose1 = _percent({"min_dose1_share": raw.get("min_dose1_share", 0)}, "min_dose1_share", where, issues)
    if capacity is None:
        return None
    return Lift(capacity, flags["active_permit"], flags["pedulilindungi"], dose1)


class RuleSetTaken(Refused):
    """Another rule set has that name or starts that day; `field` says which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def publishable(book: RuleBook, rule_set: RuleSet, *, now: datetime) -> RuleSet:
    """An operator's rule set, to be published: it starts on a day not yet begun in any zone (a rule set never
    changes days already judged), and its name and start day are its own."""
    today = now.astimezone(ZoneInfo(EARLIEST_ZONE)).date()
    if rule_set.starts_on <= today:
        raise InvalidRuleSet([RuleSetIssue("starts_on", f"a day not yet begun in any zone (after {today.isoformat()}"
                                                        "): a rule set never changes days already judged")])
    if book.named(rule_set.name) is not None:
        raise RuleSetTaken("name", f"a rule set named {rule_set.name} exists")
    if any(s.starts_on == rule_set.starts_on for s in book.sets):
        raise RuleSetTaken("starts_on", f"another rule set starts on {rule_set.starts_on.isoformat()}")
    return rule_set


def rule_set_mapping(rule_set: RuleSet) -> dict[str, Any]:
    """A rule set as `rule_set_from_mapping` reads it, with nothing else: what is stored and shown."""
    return {"name": rule_set.name, "starts_on": rule_set.starts_on, "source": rule_set.source,
            "rules": [_rule_mapping(rule) for rule in rule_set.rules]}


def _rule_mapping(rule: CapacityRule) -> dict[str, Any]:
    mapping: dict[str, Any] = {"name": rule.name, "levels": [m.value for m in PpkmLevel if m in rule.levels],
                               "classes": [m.value for m in SectorClass if m in rule.classes]}
    if rule.export_oriented is not None:
        mapping["export_oriented"] = rule.export_oriented
    mapping |= _capacity_mapping(rule.capacity)
    if rule.lift is not None:
        lift = rule.lift
        mapping["lift"] = _capacity_mapping(lift.capacity) | {
            "active_permit": lift.active_permit, "pedulilindungi": lift.pedulilindungi,
            "min_dose1_share": lift.min_dose1_share}
    return mapping


def _capacity_mapping(capacity: Capacity) -> dict[str, int]:
    mapping = {"production_share": capacity.production_share, "office_share": capacity.office_share}
    if capacity.shift_share is not None:
        mapping["shift_share"] = capacity.shift_share
    if capacity.max_shifts is not None:
        mapping["max_shifts"] = capacity.max_shifts
    return mapping


def zones_begun(starts_on: date, done: Iterable[str], now: datetime) -> tuple[str, ...]:
    """The zones where a rule set's first day has come and its plants were not re-evaluated for it yet."""
    applied = set(done)
    return tuple(zone for zone in ZONES if zone not in applied and now.astimezone(ZoneInfo(zone)).date() >= starts_on)


def shipped_rule_sets(document: Mapping[str, Any]) -> tuple[tuple[RuleSet, list[dict[str, Any]]], ...]:
    """The `[[rule_set]]` tables of the shipped file, each checked as an operator's would be, with its rules as the
    file states them (what the database stores)."""
    tables = document.get("rule_set")
    if not isinstance(tables, list) or not tables:
        raise InvalidRuleSet([RuleSetIssue("rule_set", "the file names no [[rule_set]]")])
    sets = tuple((rule_set_from_mapping(table), table["rules"]) for table in tables)
    if len({s.name for s, _ in sets}) != len(sets) or len({s.starts_on for s, _ in sets}) != len(sets):
        raise InvalidRuleSet([RuleSetIssue("rule_set", "each rule set has a name and a start day of its own")])
    return sets


# ------------------------------------------------------------------------------------------------ allowance


@dataclass(frozen=True)
class PlantFacts:
    """What the allowance of a plant rests on, besides its level: its class (None: not known yet, for a plant issued
    before classes were derived from KBLI codes, until the permits service announces it), its workforce, and the
    conditions that may lift its cap as its latest report states them (None: not stated yet)."""

    sector_class: SectorClass | None
    export_oriented: bool
    workforce_total: int
    permit_active: bool
    pedulilindungi: bool | None = None
    dose1: int | None = None


class ConditionName(StrEnum):
    ACTIVE_PERMIT = "ActivePermit"
    PEDULILINDUNGI_IN_USE = "PeduliLindungiInUse"
    FIRST_DOSE_SHARE = "FirstDoseShare"


@dataclass(frozen=True)
class ConditionResult:
    name: ConditionName
    met: bool
    said_id: str  # in Bahasa Indonesia, for the company
    said_en: str


def lift_conditions(lift: Lift, plant: PlantFacts) -> tuple[ConditionResult, ...]:
    """The named conditions of a lift, each met or not for this plant, with why in words."""
    results = []
    if lift.active_permit:
        results.append(ConditionResult(
            ConditionName.ACTIVE_PERMIT, plant.permit_active,
            "IOMKI aktif" if plant.permit_active else "IOMKI tidak aktif (dibekukan)",
            "IOMKI active" if plant.permit_active else "IOMKI not active (frozen)"))
    if lift.pedulilindungi:
        used = plant.pedulilindungi is True
        results.append(ConditionResult(
            ConditionName.PEDULILINDUNGI_IN_USE, used,
            "PeduliLindungi digunakan" if used else "PeduliLindungi belum dinyatakan digunakan",
            "PeduliLindungi in use" if used else "PeduliLindungi not reported in use"))
    if lift.min_dose1_share:
        share = dose1_share(plant.dose1, plant.workforce_total)
        met = share is not None and share * 100 >= lift.min_dose1_share
        shown = "belum dilaporkan" if share is None else f"{share:.0%}"
        shown_en = "not reported" if share is None else f"{share:.0%}"
        results.append(ConditionResult(
            ConditionName.FIRST_DOSE_SHARE, met,
            f"pekerja dengan vaksin dosis 1: {shown} (minimal {lift.min_dose1_share}%)",
            f"staff with a first dose: {shown_en} (at least {lift.min_dose1_share}%)"))
    return tuple(results)


def dose1_share(dose1: int | None, workforce_total: int) -> float | None:
    if dose1 is None or workforce_total <= 0:
        return None
    return min(dose1, workforce_total) / workforce_total


NO_RESTRICTION = Capacity(production_share=100, max_shifts=None, office_share=100)
NO_RESTRICTION_RULE = "NoRestriction"  # no PPKM level in force in the regency that day
# A level is in force but the plant's sector class is not known yet: no rule can be chosen, so no cap is applied
# (a cap the company cannot be told the reason for is not enforced), and the plant is counted apart.
CLASS_UNKNOWN_RULE = "ClassUnknown"


@dataclass(frozen=True)
class Allowance:
    """What a plant may run on a day, and why: the level, the rule set and rule, the capacity in force (lifted or
    not), and each lifting condition met or not."""

    day: date
    level: PpkmLevel | None
    rule_set: str | None
    rule: str
    sector_class: SectorClass | None
    export_oriented: bool
    workforce_total: int
    capacity: Capacity
    lifted: bool
    conditions: tuple[ConditionResult, ...] = field(default=())

    @property
    def total_cap(self) -> int:
        return self.capacity.total_cap(self.workforce_total)

    @property
    def shift_cap(self) -> int | None:
        return self.capacity.shift_cap(self.workforce_total)

    @property
    def restricted(self) -> bool:
        return self.level is not None


def allowance(day: date, level: PpkmLevel | None, rule_set: RuleSet | None, plant: PlantFacts) -> Allowance:
    """A plant's allowance on a day. No level in force, or no rule set yet: no restriction. A level but no class
    known for the plant: `ClassUnknown`, no cap. Otherwise the rule set's rule for the level, class and orientation;
    its lift applies when every one of its conditions is met."""
    if level is None or rule_set is None:
        return Allowance(day, level, rule_set.name if rule_set else None, NO_RESTRICTION_RULE, plant.sector_class,
                         plant.export_oriented, plant.workforce_total, NO_RESTRICTION, lifted=False)
    if plant.sector_class is None:
        return Allowance(day, level, rule_set.name, CLASS_UNKNOWN_RULE, None, plant.export_oriented,
                         plant.workforce_total, NO_RESTRICTION, lifted=False)
    rule = rule_set.rule_for(level, plant.sector_class, plant.export_oriented)
    conditions = lift_conditions(rule.lift, plant) if rule.lift else ()
    lifted = rule.lift is not None and all(c.met for c in conditions)
    capacity = rule.lift.capacity if lifted and rule.lift else rule.capacity
    return Allowance(day, level, rule_set.name, rule.name, plant.sector_class, plant.export_oriented,
                     plant.workforce_total, capacity, lifted, conditions)


_LEVEL_NAMES = {PpkmLevel.EMERGENCY: ("PPKM Darurat", "PPKM emergency stage")} | {
    level: (f"PPKM Level {level.value}", f"PPKM level {level.value}") for level in PpkmLevel
    if level is not PpkmLevel.EMERGENCY}
_CLASS_NAMES = {SectorClass.CRITICAL: ("sektor kritikal", "a critical sector"),
                SectorClass.ESSENTIAL: ("sektor esensial", "an essential sector"),
                SectorClass.NON_ESSENTIAL: ("sektor non-esensial", "a non-essential sector")}
_MONTHS = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
           "November", "Desember")


def allowance_summary(allowance: Allowance, *, region: str, instruction: str | None) -> tuple[str, str]:
    """What the plant may run on the day and why, in one sentence each: Bahasa Indonesia, then English. `region` is
    the regency as people name it (Kabupaten Bekasi); `instruction` the one that set the level."""
    a = allowance
    day_id = f"{a.day.day} {_MONTHS[a.day.month - 1]} {a.day.year}"
    day_en = a.day.strftime("%d %B %Y").lstrip("0")
    if a.level is None:
        return (f"Tidak ada level PPKM yang berlaku di {region} pada {day_id}: tidak ada batas jumlah pekerja di "
                "lokasi.", f"No PPKM level is in force in {region} on {day_en}: no cap on the staff on site.")
    level_id, level_en = _LEVEL_NAMES[a.level]
    where_id = f"{level_id} di {region}" + (f" ({instruction})" if instruction else "")
    where_en = f"{level_en} in {region}" + (f" ({instruction})" if instruction else "")
    if a.rule_set is None:
        return (f"{where_id}: belum ada aturan kapasitas yang berlaku pada {day_id}, jadi tidak ada batas.",
                f"{where_en}: no capacity rules are in force on {day_en}, so there is no cap.")
    if a.sector_class is None:
        return (f"{where_id}: kelas sektor pabrik belum diketahui, jadi belum ada batas yang diterapkan (kelas "
                "ditetapkan dari kode KBLI-nya).",
                f"{where_en}: the plant's sector class is not known yet, so no cap applies (the class is derived "
                "from its KBLI codes).")
    if a.export_oriented and a.sector_class is not SectorClass.CRITICAL:
        who_id, who_en = "industri orientasi ekspor", "an export-oriented plant"
    else:
        who_id, who_en = (f"pabrik {_CLASS_NAMES[a.sector_class][0]}", f"a plant in {_CLASS_NAMES[a.sector_class][1]}")
    may_id, may_en = _capacity_words(a)
    why_id = f"aturan {a.rule} dari {a.rule_set}"
    why_en = f"rule {a.rule} of {a.rule_set}"
    if a.lifted:
        why_id += ", syarat pelonggaran terpenuhi"
        why_en += ", its lifting conditions met"
    elif a.conditions:
        why_id += ", belum dilonggarkan: " + "; ".join(c.said_id for c in a.conditions if not c.met)
        why_en += ", not lifted: " + "; ".join(c.said_en for c in a.conditions if not c.met)
    return f"{where_id}: {who_id} {may_id} ({why_id}).", f"{where_en}: {who_en} {may_en} ({why_en})."


def _capacity_words(a: Allowance) -> tuple[str, str]:
    c = a.capacity
    if c.production_share == 0:
        return ("tidak boleh bekerja di lokasi produksi (bekerja dari rumah)",
                "may have no one on site in production (work from home)")
    shifts_id = f"boleh {c.max_shifts} shift, " if c.max_shifts else "boleh "
    shifts_en = f"may run {c.max_shifts} shift{'s' if c.max_shifts != 1 else ''}, " if c.max_shifts else "may have "
    words_id = f"{shifts_id}paling banyak {c.production_share}% pekerja ({a.total_cap} orang) di lokasi"
    words_en = f"{shifts_en}at most {c.production_share}% of its staff ({a.total_cap} people) on site"
    if c.shift_share is not None:
        words_id += f", {c.shift_share}% ({a.shift_cap} orang) per shift"
        words_en += f", {c.shift_share}% ({a.shift_cap} people) in any one shift"
    words_id += f", dan {c.office_share}% staf kantor"
    words_en += f", and {c.office_share}% of its office staff"
    return words_id, words_en


# ------------------------------------------------------------------------------------------------ checking a report


@dataclass(frozen=True)
class Excess:
    measure: CapacityMeasure
    shift: int | None  # from 1, for a shift's head count
    cap: int
    count: int


@dataclass(frozen=True)
class OnSite:
    """A report's on-site counts: each production shift, and the offices when the report states them."""

    per_shift: tuple[int, ...]
    office_staff: int | None = None
    office_on_site: int | None = None


def excesses(allowance: Allowance, on_site: OnSite) -> tuple[Excess, ...]:
    """Where a report is over its allowance: the shifts together over the plant's cap, each shift over a shift's
    cap, more shifts run than allowed, and the offices over theirs. Nothing when it is within the cap. Compared
    exactly (count x 100 against share x staff), so that a cap is never rounded in the company's disfavour."""
    found = []
    capacity = allowance.capacity
    workforce = allowance.workforce_total
    on_site_total = sum(on_site.per_shift)
    if on_site_total * 100 > capacity.production_share * workforce:
        found.append(Excess(CapacityMeasure.ON_SITE_TOTAL, None, allowance.total_cap, on_site_total))
    shift_cap = allowance.shift_cap
    if capacity.shift_share is not None and shift_cap is not None:
        for number, count in enumerate(on_site.per_shift, start=1):
            if count * 100 > capacity.shift_share * workforce:
                found.append(Excess(CapacityMeasure.SHIFT_ON_SITE, number, shift_cap, count))
    run = sum(1 for count in on_site.per_shift if count > 0)
    if capacity.max_shifts is not None and run > capacity.max_shifts:
        found.append(Excess(CapacityMeasure.SHIFT_COUNT, None, capacity.max_shifts, run))
    if on_site.office_staff is not None and on_site.office_on_site is not None:
        if on_site.office_on_site * 100 > capacity.office_share * on_site.office_staff:
            found.append(Excess(CapacityMeasure.OFFICE_ON_SITE, None, capacity.office_cap(on_site.office_staff),
                                on_site.office_on_site))
    return tuple(found)


# ------------------------------------------------------------------------------------------------ capacity ladder

CAPACITY_LADDER = "PPKM"


@dataclass(frozen=True)
class RecordedBreach:
    breach_id: uuid.UUID
    day: date


@dataclass(frozen=True)
class CapacityRecommendation:
    rule: str
    breaches: tuple[uuid.UUID, ...]


@dataclass(frozen=True)
class RepeatedCapacityBreaches:
    """Repeated breaches of the staffing cap are a ground for freezing the permit: `count` breaches within `window`
    days (the newest breach's day counting as the window's last). Breaches before the permit's last sanction on
    this ground do not count again. Configurable (IOMKI_CAPACITY_BREACHES, IOMKI_CAPACITY_WINDOW_DAYS); the permits
    service decides, as for the reporting ladder."""

    count: int = 3
    window: timedelta = timedelta(days=30)
    name: str = "RepeatedCapacityBreaches"

    def __post_init__(self) -> None:
        if self.count < 1 or self.window < timedelta(days=1):
            raise ValueError("a capacity ladder needs at least one breach and a window of at least a day")

    def within_window(self, breaches: Sequence[RecordedBreach]) -> tuple[RecordedBreach, ...]:
        """The breaches that count towards the newest: those within the window that ends on its day."""
        if not breaches:
            return ()
        newest = max(b.day for b in breaches)
        return tuple(sorted((b for b in breaches if newest - b.day < self.window), key=lambda b: b.day))

    def decide(self, breaches: Sequence[RecordedBreach], *, permit_issued: bool) -> CapacityRecommendation | None:
        """After a breach: recommend a freeze when the permit is issued (not already frozen or revoked) and enough
        breaches fall in the window. `breaches` are those since the last sanction on this ground."""
        counted = self.within_window(breaches)
        if not permit_issued or len(counted) < self.count:
            return None
        return CapacityRecommendation(self.name, tuple(b.breach_id for b in counted))
