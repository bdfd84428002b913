"""A revocation reversed on objection, as the incidents service takes it over the real broker: the plant, no longer
monitored once revoked, is monitored again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from services.incidents.app import create_app
from shared.contract import Envelope, PermitIssued, PermitRevoked, SanctionAction, SanctionReversed, SectorClass
from tests.support.kafka import publish
from tests.support.platform import bearer, running_service
from tests.support.waiting import until

pytestmark = pytest.mark.integration

OPERATOR = bearer("operator")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def incidents(platform):
    async with running_service(create_app()) as client:
        yield client


async def test_a_reversed_revocation_monitors_the_plant_again(platform, incidents):
    about: dict[str, Any] = dict(facility_id=uuid.uuid4(), province_code="32", regency_code="32.16",
                                 permit_id=uuid.uuid4(), nib="8120000654777")
    number = "IOMKI-2026-000778"

    async def monitored() -> bool | None:
        answer = await incidents.get(f"/facilities/{about['facility_id']}/status", headers=OPERATOR)
        return answer.json()["monitored"] if answer.status_code == 200 else None

    def reversed_(sanction: SanctionAction) -> Envelope:
        return Envelope.wrap(SanctionReversed(
            **about, objection_id=uuid.uuid4(), permit_number=number, reversed=sanction, to_status="ISSUED",
            reason="the reports were received on time", freeze_count=0), service="permits")

    await publish(platform.bootstrap, Envelope.wrap(PermitIssued(
        **about, permit_number=number, company_name="PT Baja Nusantara", sector_class=SectorClass.CRITICAL,
        workforce_total=1200, issued_at=datetime.now(UTC)), service="permits"))
    await until(monitored, lambda m: m is True, "learned and monitored")
    await publish(platform.bootstrap, Envelope.wrap(PermitRevoked(
        **about, permit_number=number, reason="false declaration",
        reapply_after=(datetime.now(UTC) + timedelta(days=14)).date()), service="permits"))
    await until(monitored, lambda m: m is False, "no longer monitored once revoked")
    await publish(platform.bootstrap, reversed_(SanctionAction.REVOKE))
    await until(monitored, lambda m: m is True, "monitored again")
