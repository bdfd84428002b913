"""Facts about Indonesia's regions that every service must read the same way."""

from __future__ import annotations

from zoneinfo import ZoneInfo

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
