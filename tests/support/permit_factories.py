"""The permits domain's objects for unit tests: an application as a company submits it, and the regions it names."""

from __future__ import annotations

from dataclasses import replace

from services.permits.domain import Application


class Regions:
    """The two regions these stories need, instead of the whole Kemendagri dataset."""

    names = {"32": "Jawa Barat", "32.16": "Kabupaten Bekasi", "33": "Jawa Tengah", "33.16": "Kabupaten Blora"}

    def name_of(self, code: str) -> str | None:
        return self.names.get(code)


def an_application(**changes) -> Application:
    base = Application(nib="8120000123456", npwp="01.234.567.8-901.000", company_name="PT Baja Nusantara",
                       facility_name="Pabrik Cibitung", address="Kawasan MM2100, Cibitung", province_code="32",
                       regency_code="32.16", kbli=["24101"], sector_class="critical", workforce_total=1200,
                       on_site_per_shift=[400, 400, 300], health_protocol_commitment=True,
                       contact_email=None, contact_phone=None)
    return replace(base, **changes)
