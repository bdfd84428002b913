"""A plant's permit through the running permits service: the application its company submits, and the ministry's
issue, as the end-to-end stories begin."""

from __future__ import annotations

import httpx

from tests.support.platform import bearer
from tests.support.processes import RunningServices

NIB = "8120000654321"
APPLICATION = {
    "company": {"nib": NIB, "npwp": "01.234.567.8-901.000", "name": "PT Kimia Cibitung"},
    "facility": {"name": "Pabrik Cibitung 2", "address": "Jl. Industri Raya No. 7, Cibitung",
                 "province_code": "32", "regency_code": "32.16"},
    "kbli": ["20111"], "sector_class": "essential",
    "workforce": {"total": 300, "on_site_per_shift": [150, 150]},
    "health_protocol_commitment": True,
    "contact": {"email": "k3@kimia.example", "phone": "+62218900000"},
}


async def issued_permit(http: httpx.AsyncClient, services: RunningServices, application: dict) -> tuple[str, str]:
    """(permit_id, facility_id) of `application`, applied for by its company and issued by an operator."""
    nib = application["company"]["nib"]
    applied = await http.post(f"{services.url('permits')}/permits", json=application,
                              headers=bearer("company", nib=nib))
    assert applied.status_code == 201, applied.text
    permit_id, facility_id = applied.json()["permit_id"], applied.json()["facility_id"]
    issued = await http.post(f"{services.url('permits')}/permits/{permit_id}/decision", headers=bearer("operator"),
                             json={"decision": "issue", "reason": "documents complete"})
    assert issued.status_code == 200, issued.text
    assert issued.json()["status"] == "ISSUED"
    return permit_id, facility_id
