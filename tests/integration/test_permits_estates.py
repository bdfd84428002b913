"""Industrial estates and the regional offices' sanction requests, over HTTP and the real broker: an estate applies
and is issued, a plant names it, the estate confirms, reads its tenant (and no other plant), cannot act on it, and
releases it; a request on the supervision topic lands in the operators' worklist and is approved, declined, or
declined at intake."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from services.permits.app import create_app
from shared.contract import (
    Decoded, Envelope, GroundCode, GroundEvidence, SanctionAction, SanctionGround, SanctionRequested, decode,
)
from tests.support.kafka import publish, read_topic
from tests.support.platform import bearer, running_service
from tests.support.waiting import poll

pytestmark = pytest.mark.integration

ESTATE_NIB, PLANT_NIB, OTHER_NIB = "8120000777001", "8120000777002", "8120000777003"
OPERATOR = bearer("operator", sub="officer-ani")
ESTATE = bearer("estate", nib=ESTATE_NIB, sub="estate-admin")
PLANT = bearer("company", nib=PLANT_NIB)
OFFICE = bearer("regional_office", region="32.16")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def permits(platform) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(create_app()) as client:
        yield client


def an_application(nib: str, *, regency: str = "32.16", estate_number: str | None = None) -> dict[str, Any]:
    facility: dict[str, Any] = {"name": "Pabrik Cikarang", "address": f"Jalan Industri {uuid.uuid4().hex[:10]}",
                                "province_code": regency[:2], "regency_code": regency}
    if estate_number is not None:
        facility["estate_permit_number"] = estate_number
    return {"company": {"nib": nib, "npwp": "0012345678901000", "name": "PT Plastik Bekasi"}, "facility": facility,
            "kbli": ["22220"], "workforce": {"total": 120, "on_site_per_shift": [60, 60]},
            "health_protocol_commitment": True}


def an_estate_application() -> dict[str, Any]:
    return an_application(ESTATE_NIB) | {
        "kind": "estate", "kbli": ["68130"],
        "company": {"nib": ESTATE_NIB, "npwp": "0012345678901000", "name": "PT Kawasan Industri Cikarang"}}


async def issued(permits: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    applied = await permits.post("/permits", json=body, headers=headers)
    assert applied.status_code == 201, applied.text
    permit_id = applied.json()["permit_id"]
    answer = await permits.post(f"/permits/{permit_id}/decision", json={"decision": "issue", "reason": "lengkap"},
                                headers=OPERATOR)
    assert answer.status_code == 200, answer.text
    return (await permits.get(f"/permits/{permit_id}", headers=OPERATOR)).json()


async def published(platform, facility_id: str, event_type: str) -> list[Decoded]:
    """The permits topic's events of one type about one plant (filtered by its id before decoding)."""
    mark, wanted = facility_id.encode(), f"iomki.{event_type}.v1".encode()
    messages = await read_topic(platform.bootstrap, "iomki.permits",
                                until=lambda ms: any(mark in m.value and wanted in m.value for m in ms))
    return [found for m in messages if mark in m.value and wanted in m.value
            if (found := decode(m.value)).envelope.type == wanted.decode()]


async def test_an_estate_confirms_reads_and_releases_its_tenant(permits, platform):
    estate = await issued(permits, an_estate_application(), ESTATE)
    assert (estate["kind"], estate["sector"]["class"]) == ("estate", "non_essential")
    number = estate["permit_number"]
    assert (await permits.get(f"/registry/{number}")).json()["kind"] == "estate"
    issued_event, = await published(platform, estate["facility_id"], "PermitIssued")
    assert issued_event.event.kind.value == "estate"  # type: ignore[attr-defined]

    # The claim names an issued estate in the plant's regency.
    for body, says in ((an_application(PLANT_NIB, estate_number="IOMKI-1999-000001"), "no industrial estate"),
                       (an_application(PLANT_NIB, regency="32.15", estate_number=number), "regency 32.16")):
        refused = await permits.post("/permits", json=body, headers=PLANT)
        assert refused.status_code == 422, refused.text
        error, = refused.json()["errors"]
        assert error["field"] == "facility.estate_permit_number" and says in error["message"]

    tenant = await issued(permits, an_application(PLANT_NIB, estate_number=number), PLANT)
    other = await issued(permits, an_application(OTHER_NIB), OPERATOR)
    applied, = await published(platform, tenant["facility_id"], "PermitApplied")
    assert applied.event.estate_permit_number == number  # type: ignore[attr-defined]

    pending = (await permits.get(f"/estates/{estate['permit_id']}/tenants?status=pending", headers=ESTATE)).json()
    assert [t["tenant_permit_id"] for t in pending["items"]] == [tenant["permit_id"]]
    # Before it confirms, the estate does not read the plant.
    assert (await permits.get(f"/permits/{tenant['permit_id']}", headers=ESTATE)).status_code == 404
    # Only the estate's company (or an operator) answers.
    path = f"/estates/{estate['permit_id']}/tenants/{tenant['permit_id']}"
    confirm = {"decision": "confirm", "reason": "Blok C-12"}
    assert (await permits.post(f"{path}/decision", json=confirm, headers=PLANT)).status_code == 403
    assert (await permits.post(f"{path}/decision", json=confirm,
                               headers=bearer("estate", nib=OTHER_NIB))).status_code == 404

    confirmed = await permits.post(f"{path}/decision", json=confirm, headers=ESTATE)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["decision"]["by"] == {"sub": "estate-admin", "role": "estate"}
    again = await permits.post(f"{path}/decision", json=confirm, headers=ESTATE)
    assert again.status_code == 409 and again.json()["current_status"] == "confirmed"
    event, = await published(platform, tenant["facility_id"], "EstateTenancyConfirmed")
    assert (event.event.permit_id, event.event.estate_permit_id, event.event.estate_nib,  # type: ignore[attr-defined]
            event.event.estate_permit_number) == (  # type: ignore[attr-defined]
        uuid.UUID(tenant["permit_id"]), uuid.UUID(estate["permit_id"]), ESTATE_NIB, number)

    # The estate reads its tenant, its own estate, and no other plant; it acts on none but its own.
    read = await permits.get(f"/permits/{tenant['permit_id']}", headers=ESTATE)
    assert read.status_code == 200 and read.json()["estate_nib"] == ESTATE_NIB and "contact" not in read.json()
    assert (await permits.get(f"/permits/{tenant['permit_id']}/history", headers=ESTATE)).status_code == 200
    assert (await permits.get(f"/permits/{other['permit_id']}", headers=ESTATE)).status_code == 404
    listed = {p["permit_id"] for p in (await permits.get("/permits?limit=200", headers=ESTATE)).json()["items"]}
    assert {estate["permit_id"], tenant["permit_id"]} <= listed and other["permit_id"] not in listed
    assert (await permits.post(f"/permits/{tenant['permit_id']}/freeze", headers=ESTATE, json={
        "reason": "x", "ground": {"code": "company_request"}})).status_code == 403
    assert (await permits.post(f"/permits/{tenant['permit_id']}/objections", json={"statement": "x"},
                               headers=ESTATE)).status_code == 404
    assert (await permits.get(f"/permits/{tenant['permit_id']}/letters", headers=ESTATE)).status_code == 404

    released = await permits.post(f"{path}/release", json={"reason": "pabrik pindah"}, headers=ESTATE)
    assert released.status_code == 200, released.text
    assert released.json()["ended"]["cause"] == "released"
    ended, = await published(platform, tenant["facility_id"], "EstateTenancyEnded")
    assert ended.event.cause.value == "released"  # type: ignore[attr-defined]
    assert (await permits.get(f"/permits/{tenant['permit_id']}", headers=ESTATE)).status_code == 404
    twice = await permits.post(f"{path}/release", json={"reason": "lagi"}, headers=ESTATE)
    assert twice.status_code == 409 and twice.json()["current_status"] == "released"


async def test_revoking_an_estate_ends_its_tenancies(permits, platform):
    estate = await issued(permits, an_estate_application(), ESTATE)
    tenant = await issued(permits, an_application(OTHER_NIB, estate_number=estate["permit_number"]), OPERATOR)
    path = f"/estates/{estate['permit_id']}/tenants/{tenant['permit_id']}"
    assert (await permits.post(f"{path}/decision", json={"decision": "confirm", "reason": "ok"},
                               headers=OPERATOR)).status_code == 200
    revoked = await permits.post(f"/permits/{estate['permit_id']}/revoke", headers=OPERATOR, json={
        "reason": "kawasan tidak beroperasi", "ground": {"code": "company_request"}})
    assert revoked.status_code == 200, revoked.text
    ended, = await published(platform, tenant["facility_id"], "EstateTenancyEnded")
    assert ended.event.cause.value == "estate_revoked"  # type: ignore[attr-defined]
    gone = (await permits.get(f"/estates/{estate['permit_id']}/tenants?status=released", headers=OPERATOR)).json()
    assert gone["items"][0]["ended"]["cause"] == "estate_revoked"


async def a_request(permits: httpx.AsyncClient, platform, permit: dict[str, Any], ground: SanctionGround,
                    status: str) -> dict[str, Any]:
    request_id = uuid.uuid4()
    await publish(platform.bootstrap, Envelope.wrap(SanctionRequested(
        facility_id=permit["facility_id"], province_code="32", regency_code="32.16", permit_id=permit["permit_id"],
        request_id=request_id, action=SanctionAction.FREEZE, ground=ground, reason="Masker tidak dipakai di lini 2",
        office_region="32.16", inspection_id=uuid.uuid4(), requested_at=datetime.now(UTC)), service="supervision"))
    return await poll(permits, f"/sanction-requests/{request_id}", OPERATOR, lambda body: body["status"] == status)


FINDING = SanctionGround(code=GroundCode.INSPECTION_FINDING, evidence=GroundEvidence(finding="INSP-2021-000042"))


async def test_an_offices_request_waits_in_the_worklist_and_an_approval_freezes_the_permit(permits, platform):
    permit = await issued(permits, an_application(PLANT_NIB), PLANT)
    request = await a_request(permits, platform, permit, FINDING, "pending")
    lists = (await permits.get("/worklists?kind=sanction_request&region=32.16&limit=200", headers=OFFICE)).json()
    worklist, = lists["worklists"]
    assert worklist["sla_working_days"] == 5
    assert request["request_id"] in [item["item_id"] for item in worklist["items"]]
    mine = (await permits.get("/sanction-requests?status=pending&regency=32.16&limit=200", headers=OFFICE)).json()
    assert request["request_id"] in [item["request_id"] for item in mine["items"]]
    assert (await permits.get(f"/sanction-requests/{request['request_id']}",
                              headers=bearer("regional_office", region="33"))).status_code == 404
    path = f"/sanction-requests/{request['request_id']}/decision"
    assert (await permits.post(path, json={"decision": "approve", "reason": "x"}, headers=OFFICE)).status_code == 403

    approved = await permits.post(path, json={"decision": "approve", "reason": "temuan terbukti"}, headers=OPERATOR)
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["permit"]["status"]) == ("approved", "FROZEN")
    frozen, = await published(platform, permit["facility_id"], "PermitFrozen")
    assert frozen.event.ground.code is GroundCode.INSPECTION_FINDING  # type: ignore[attr-defined]
    decided, = await published(platform, permit["facility_id"], "SanctionRequestDecided")
    assert decided.event.decision.value == "approved"  # type: ignore[attr-defined]
    assert frozen.envelope.causationid == str(decided.envelope.id)
    history = (await permits.get(f"/permits/{permit['permit_id']}/history", headers=OPERATOR)).json()["transitions"]
    assert request["request_id"] in history[-1]["reason"] and "32.16" in history[-1]["reason"]
    letters = (await permits.get(f"/permits/{permit['permit_id']}/letters", headers=PLANT)).json()["letters"]
    assert [letter["kind"] for letter in letters] == ["freeze"]
    again = await permits.post(path, json={"decision": "decline", "reason": "x"}, headers=OPERATOR)
    assert again.status_code == 409 and again.json()["request_status"] == "approved"


async def test_a_declined_request_changes_nothing(permits, platform):
    permit = await issued(permits, an_application(PLANT_NIB), PLANT)
    request = await a_request(permits, platform, permit, FINDING, "pending")
    declined = await permits.post(f"/sanction-requests/{request['request_id']}/decision", headers=OPERATOR,
                                  json={"decision": "decline", "reason": "bukti foto tidak jelas"})
    assert declined.status_code == 200, declined.text
    assert (declined.json()["status"], declined.json()["permit"]["status"]) == ("declined", "ISSUED")
    decided, = await published(platform, permit["facility_id"], "SanctionRequestDecided")
    assert decided.event.decision.value == "declined"  # type: ignore[attr-defined]


async def test_a_false_declaration_not_resting_on_a_declared_report_is_declined_at_intake(permits, platform):
    permit = await issued(permits, an_application(PLANT_NIB), PLANT)
    ground = SanctionGround(code=GroundCode.FALSE_DECLARATION,
                            evidence=GroundEvidence(report_id=uuid.uuid4(), finding="INSP-2021-000043"))
    request = await a_request(permits, platform, permit, ground, "declined")
    assert "ground.evidence.report_id" in request["decision"]["reason"]
    assert request["decision"]["by"]["role"] == "system"
    decided, = await published(platform, permit["facility_id"], "SanctionRequestDecided")
    assert decided.event.decision.value == "declined"  # type: ignore[attr-defined]
    assert "ground.evidence.report_id" in decided.event.reason  # type: ignore[attr-defined]
    shown = (await permits.get(f"/permits/{permit['permit_id']}", headers=OPERATOR)).json()
    assert shown["status"] == "ISSUED"
