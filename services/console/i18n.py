"""Bahasa Indonesia first, English as a choice: every string the console shows goes through the message catalogue
(`locales/id/*.po`, one file per part of the console; the English is the message itself), and dates, times and
numbers are written the way each language writes them, times in the plant's own zone (WIB, WITA, WIT)."""

from __future__ import annotations

import gettext
import io
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

from shared import regions

LOCALES = ("id", "en")
DEFAULT_LOCALE = "id"
LOCALE_COOKIE = "iomki_bahasa"
CATALOGUES = Path(__file__).parent / "locales"
JAKARTA = ZoneInfo("Asia/Jakarta")
ZONE_NAMES = {"Asia/Jakarta": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT"}


def catalogue(locale: str, folder: Path = CATALOGUES) -> Catalog:
    """Every `.po` file of the locale as one catalogue; a message translated twice differently is an error."""
    merged = Catalog(locale=locale)
    for path in sorted((folder / locale).glob("*.po")):
        with path.open("rb") as source:
            part = read_po(source, locale=locale)
        for message in part:
            if not message.id:
                continue
            held = merged.get(message.id)
            if held is not None and held.string != message.string:
                raise ValueError(f"{path.name}: {message.id!r} is translated otherwise in another part")
            merged.add(message.id, message.string)
    return merged


def translations(folder: Path = CATALOGUES) -> dict[str, gettext.NullTranslations]:
    found: dict[str, gettext.NullTranslations] = {"en": gettext.NullTranslations()}
    for locale in LOCALES:
        if locale == "en":
            continue
        compiled = io.BytesIO()
        write_mo(compiled, catalogue(locale, folder))
        compiled.seek(0)
        found[locale] = Translations(compiled)
    return found


def chosen_locale(cookie: str | None) -> str:
    """Bahasa Indonesia unless the person chose English (the cookie the language link sets): whatever the browser's
    own language, the platform speaks the regulation's language first."""
    return cookie if cookie in LOCALES else DEFAULT_LOCALE


def zone_of(region_code: str | None) -> ZoneInfo:
    return regions.local_zone(region_code) if region_code and regions.is_region(region_code) else JAKARTA


class Formats:
    """The template's formatters for one request's language."""

    def __init__(self, locale: str) -> None:
        self.locale = locale

    def number(self, value: int | float | None) -> str:
        return "–" if value is None else format_decimal(value, locale=self.locale)

    def day(self, value: date | str | None) -> str:
        if value is None or value == "":
            return "–"
        day = date.fromisoformat(value[:10]) if isinstance(value, str) else value
        return format_date(day, format="long", locale=self.locale)

    def month(self, value: str) -> str:
        """`2021-08` as `Agustus 2021`."""
        return format_date(date.fromisoformat(f"{value[:7]}-01"), format="MMMM y", locale=self.locale)

    def moment(self, value: datetime | str | None, region_code: str | None = None) -> str:
        """A moment in the plant's (or region's) zone, named: `12 Agustus 2021 14.05 WIB`."""
        if value is None or value == "":
            return "–"
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        zone = zone_of(region_code)
        written = format_datetime(moment, format="d MMMM y HH.mm" if self.locale == "id" else "d MMMM y HH:mm",
                                  tzinfo=zone, locale=self.locale)
        return f"{written} {ZONE_NAMES.get(zone.key, zone.key)}"
