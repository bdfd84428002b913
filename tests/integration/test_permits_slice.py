"""A company applies for a permit, the ministry issues it, and PermitIssued reaches the topic."""

from __future__ import annotations

import pytest

from services.permits.app import create_app
from shared.contract import decode
from tests.support.kafka import read_topic
from tests.support.platform import bearer, running_service

pytestmark = pytest.mark.integration

APPLICATION = {
    "company": {"nib": "8120000123456", "npwp": "01.234.567.8-901.000", "name": "PT Baja Nusantara"},
    "facility": {"name": "Pabrik Cibitung", "address": "Kawasan MM2100, Cibitung", "province_code": "32",
                 "regency_code": "32.16"},
    "kbli": ["24101"], "sector_class": "critical",
    "workforce": {"total": 1200, "on_site_per_shift": [400, 400, 300]},
    "health_protocol_commitment": True,
    "contact": {"email": "k3@bajanusantara.example", "phone": "+62211234567"},
}


async def test_issued_permit_is_published(platform):
    async with running_service(create_app()) as permits:
        applied = await permits.post("/permits", json=APPLICATION, headers=bearer("company", nib="8120000123456"))
        assert applied.status_code == 201, applied.text
        permit_id = applied.json()["permit_id"]

        issued = await permits.post(f"/permits/{permit_id}/decision", json={"decision": "issue", "reason": "ok"},
                                    headers=bearer("operator"))
        assert issued.status_code == 200, issued.text
        assert issued.json()["permit_number"].startswith("IOMKI-")

        messages = await read_topic(platform.bootstrap, "iomki.permits",
                                    until=lambda ms: any(b"PermitIssued" in m.value and permit_id.encode() in m.value
                                                         for m in ms))
        ours = [(m, decode(m.value)) for m in messages if permit_id.encode() in m.value]
        issued_events = {d.envelope.id: m for m, d in ours if d.envelope.type == "iomki.PermitIssued.v1"}
        assert len(issued_events) == 1  # at-least-once on the wire: one event, however often delivered
        assert next(iter(issued_events.values())).key == applied.json()["facility_id"].encode()
