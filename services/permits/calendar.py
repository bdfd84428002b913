"""Indonesia's holidays from the `holidays` package (vacanza/holidays), which follows each year's joint decree of
three ministers (SKB 3 Menteri) on national holidays and collective leave; years are built on first use."""

from __future__ import annotations

from datetime import date

import holidays
from holidays.constants import GOVERNMENT, PUBLIC

# Collective leave (cuti bersama, the package's `government` category) counts as a holiday. It is leave, not a
# national holiday, but the SKB sets it for the civil service, and presidential decrees each year send the whole
# civil service on it: the official who receives an objection (UU 30/2014 Pasal 77(2)) is away. A day the office
# is closed does not shorten the time a company has to object.
NON_WORKING = (PUBLIC, GOVERNMENT)


class IndonesianHolidays:
    """National holidays (`public`) and collective leave days (`government`), in Bahasa Indonesia."""

    def __init__(self) -> None:
        self._days = holidays.country_holidays("ID", categories=NON_WORKING, language="id")

    def is_holiday(self, day: date) -> bool:
        return day in self._days

    def name_of(self, day: date) -> str | None:
        return self._days.get(day)
