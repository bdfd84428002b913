"""Objections over HTTP and the real broker: a company objects to a freeze or a revocation within 21 working days
(UU 30/2014 Pasal 77(1)), counted on Indonesia's calendar in the plant's own zone by the service's clock; an
operator decides, and a decision for the company reverses the sanction as a transition of the permit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio

from services.permits.app import PermitsSettings, create_app
from shared.clock import FakeClock
from shared.contract import Decoded, decode
from tests.support.kafka import read_topic
from tests.support.platform import bearer, running_service

pytestmark = pytest.mark.integration

NIB = "8120000765001"
COMPANY = bearer("company", nib=NIB, sub="k3-admin")
COMPETITOR = bearer("company", nib="8120000765002", sub="k3-other")
OPERATOR = bearer("operator", sub="officer-ani")
REVIEWER = bearer("operator", sub="officer-budi")
TASK_FORCE = bearer("task_force", region="32", sub="satgas-jabar")

WIB, WIT = ZoneInfo("Asia/Jakarta"), ZoneInfo("Asia/Jayapura")
# Monday 5 July 2021, 10:00 WIB: 21 working days later (Eid al-Adha on the 20th skipped) is Wednesday 4 August.
T0 = datetime(2021, 7, 5, 3, 0, tzinfo=UTC)
LAST_DAY = date(2021, 8, 4)
SANCTION = {"reason": "masker tidak dipakai di lini produksi",
            "ground": {"code": "inspection_finding", "evidence": {"finding": "BAP-17/2021"}}}


def application(address: str, province: str, regency: str) -> dict[str, Any]:
    return {
        "company": {"nib": NIB, "npwp": "01.234.567.8-901.000", "name": "PT Tekstil Priangan"},
        "facility": {"name": "Pabrik", "address": address, "province_code": province, "regency_code": regency},
        "kbli": ["13112"], "sector_class": "essential",
        "workforce": {"total": 800, "on_site_per_shift": [300, 300]},
        "health_protocol_commitment": True,
    }


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def clock() -> FakeClock:
    return FakeClock(T0)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def permits(platform, clock) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(create_app(clock=clock)) as client:
        yield client


async def sanctioned(permits: httpx.AsyncClient, clock: FakeClock, *steps: str, at: datetime = T0,
                     province: str = "32", regency: str = "32.04", address: str | None = None) -> str:
    """A permit issued, then frozen or revoked by an operator at `at` (steps: "freeze", "revoke")."""
    clock.set(at)
    applied = await permits.post("/permits", json=application(address or f"Jl. Keberatan {uuid.uuid4().hex[:8]}",
                                                              province, regency), headers=COMPANY)
    assert applied.status_code == 201, applied.text
    permit_id = applied.json()["permit_id"]
    issued = await permits.post(f"/permits/{permit_id}/decision", json={"decision": "issue", "reason": "complete"},
                                headers=OPERATOR)
    assert issued.status_code == 200, issued.text
    for step in steps:
        answer = await permits.post(f"/permits/{permit_id}/{step}", json=SANCTION, headers=OPERATOR)
        assert answer.status_code == 200, answer.text
    return permit_id


async def object_to(permits: httpx.AsyncClient, permit_id: str, *, headers: dict[str, str] = COMPANY,
                    statement: str = "Laporan minggu 27-29 sudah kami kirim; bukti terlampir.") -> httpx.Response:
    return await permits.post(f"/permits/{permit_id}/objections", json={"statement": statement}, headers=headers)


async def decide(permits: httpx.AsyncClient, objection_id: str, outcome: str,
                 reason: str = "the reports were received on time") -> httpx.Response:
    return await permits.post(f"/objections/{objection_id}/decision", json={"outcome": outcome, "reason": reason},
                              headers=REVIEWER)


async def events_of(platform, permit_id: str, until_type: str, count: int = 1) -> list[Decoded]:
    """The permit's events on iomki.permits in order, once each, read until `count` of `until_type` are there."""
    def mine(messages) -> list[Decoded]:
        seen, found = set(), []
        # Only this permit's: other tests publish malformed and hostile messages to the same topic.
        for message in (m for m in messages if permit_id.encode() in m.value):
            decoded = decode(message.value)
            if str(getattr(decoded.event, "permit_id", "")) == permit_id and decoded.envelope.id not in seen:
                seen.add(decoded.envelope.id)
                found.append(decoded)
        return found
    messages = await read_topic(platform.bootstrap, "iomki.permits",
                                until=lambda ms: sum(d.envelope.type == until_type for d in mine(ms)) >= count)
    return mine(messages)


async def counted(permits: httpx.AsyncClient) -> dict[str, int]:
    """Sanctions counted on the inspection-finding ground in Jawa Barat, as GET /permits/summary shows them."""
    summary = (await permits.get("/permits/summary", params={"province": "32"}, headers=OPERATOR)).json()
    return {action: grounds["inspection_finding"] for action, grounds in summary["sanctions"]["by_ground"].items()}


def names(events: list[Decoded]) -> list[str]:
    return [d.envelope.type.split(".")[1] for d in events]


# -- filing ---------------------------------------------------------------------------------------------------


async def test_a_frozen_company_objects_and_an_operator_overturns_the_freeze(platform, permits, clock):
    permit_id = await sanctioned(permits, clock, "freeze")
    # The company sees what it may object to, and until when.
    clock.set(T0 + timedelta(days=3))
    before = (await permits.get(f"/permits/{permit_id}/objections", headers=COMPANY)).json()
    assert before["objections"] == [] and before["status"] == "FROZEN"
    assert before["open_to_objection"] == {"sanction": "freeze", "sanctioned_at": T0.isoformat(),
                                           "last_day": LAST_DAY.isoformat(), "open": True}

    filed = await object_to(permits, permit_id)
    assert filed.status_code == 201, filed.text
    objection = filed.json()
    assert (objection["status"], objection["last_day"], objection["filed_by"], objection["filed_at"]) == (
        "pending", LAST_DAY.isoformat(), "k3-admin", (T0 + timedelta(days=3)).isoformat())
    assert objection["sanction"] == {"action": "freeze", "at": T0.isoformat(), "from_status": "ISSUED"}
    # One objection per sanction.
    again = await object_to(permits, permit_id)
    assert again.status_code == 409 and again.json()["objection_id"] == objection["objection_id"]
    assert again.json()["detail"].startswith("Keberatan atas pembekuan ini sudah diajukan")

    # Operators, the region's task force and the company read the same record; the listing closes the window.
    for headers in (OPERATOR, TASK_FORCE, COMPANY):
        listed = (await permits.get(f"/permits/{permit_id}/objections", headers=headers)).json()
        assert [o["objection_id"] for o in listed["objections"]] == [objection["objection_id"]]
        assert listed["open_to_objection"] is None

    clock.set(T0 + timedelta(days=9))
    decided = await decide(permits, objection["objection_id"], "overturned")
    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert body["status"] == "decided" and body["decision"] == {
        "outcome": "overturned", "reason": "the reports were received on time", "decided_by": "officer-budi",
        "decided_role": "operator", "decided_at": (T0 + timedelta(days=9)).isoformat()}
    assert (body["permit"]["status"], body["permit"]["freeze_count"]) == ("ISSUED", 0)
    # Decided once.
    twice = await decide(permits, objection["objection_id"], "upheld")
    assert twice.status_code == 409 and twice.json()["outcome"] == "overturned"

    # The reversal is a transition of its own in the permit's history, by the deciding operator, with the reason.
    history = (await permits.get(f"/permits/{permit_id}/history", headers=OPERATOR)).json()["transitions"]
    last = history[-1]
    assert (last["from_status"], last["to_status"], last["action"], last["actor"], last["role"]) == (
        "FROZEN", "ISSUED", "reinstate", "officer-budi", "operator")
    assert objection["objection_id"] in last["reason"] and "received on time" in last["reason"]
    registry = (await permits.get(f"/permits/{permit_id}", headers=OPERATOR)).json()
    assert (registry["status"], registry["freeze_count"]) == ("ISSUED", 0)

    events = await events_of(platform, permit_id, "iomki.SanctionReversed.v1")
    assert names(events)[-4:] == ["PermitFrozen", "ObjectionFiled", "ObjectionDecided", "SanctionReversed"]
    filed_event, decided_event, reversed_event = (d.event for d in events[-3:])
    assert (filed_event.objection_id, filed_event.sanction, filed_event.sanctioned_at, filed_event.filed_at) == (
        uuid.UUID(objection["objection_id"]), "freeze", T0, T0 + timedelta(days=3))
    assert (decided_event.outcome, decided_event.reason) == ("overturned", "the reports were received on time")
    assert (reversed_event.reversed, reversed_event.to_status, reversed_event.freeze_count) == ("freeze", "ISSUED", 0)
    assert events[-1].envelope.causationid == str(events[-2].envelope.id)


async def test_the_last_day_counts_whole_in_the_plants_zone_and_a_day_later_is_refused(permits, clock):
    # A plant in Jayapura (WIT) frozen at 23:30 WIB on Monday 5 July: Tuesday 01:30 where the plant is.
    sanctioned_at = datetime(2021, 7, 5, 16, 30, tzinfo=UTC)
    in_time = await sanctioned(permits, clock, "freeze", at=sanctioned_at, province="91", regency="91.71")
    too_late = await sanctioned(permits, clock, "freeze", at=sanctioned_at, province="91", regency="91.71")
    last_day = date(2021, 8, 5)  # counted from Tuesday there
    midnight_after = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=WIT)

    clock.set(midnight_after - timedelta(microseconds=1))
    listed = (await permits.get(f"/permits/{in_time}/objections", headers=COMPANY)).json()
    assert listed["open_to_objection"]["last_day"] == last_day.isoformat()
    assert (await object_to(permits, in_time)).status_code == 201

    clock.set(midnight_after)
    refused = await object_to(permits, too_late)
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert (problem["title"], problem["last_day"], problem["sanction"]) == ("Objection too late", "2021-08-05",
                                                                            "freeze")
    assert problem["detail"].index("Batas waktu keberatan atas pembekuan ini berakhir pada 2021-08-05") \
        < problem["detail"].index("The time to object to this freeze ended on 2021-08-05")
    assert (await permits.get(f"/permits/{too_late}/objections", headers=COMPANY)).json()["open_to_objection"][
        "open"] is False


async def test_nothing_to_object_to_and_a_statement_that_says_nothing_are_refused_clearly(permits, clock):
    issued = await sanctioned(permits, clock)
    refused = await object_to(permits, issued)
    assert refused.status_code == 409 and refused.json()["current_status"] == "ISSUED"
    assert refused.json()["detail"].startswith("Izin ini (ISSUED) tidak sedang dibekukan atau dicabut")

    frozen = await sanctioned(permits, clock, "freeze")
    blank = await object_to(permits, frozen, statement="  .  ")
    assert blank.status_code == 422
    assert [e["field"] for e in blank.json()["errors"]] == ["statement"]
    endless = await object_to(permits, frozen, statement="x" * 8001)
    assert endless.status_code == 422 and [e["field"] for e in endless.json()["errors"]] == ["statement"]
    nul = await object_to(permits, frozen, statement="keberatan\x00")
    assert nul.status_code == 422 and [e["field"] for e in nul.json()["errors"]] == ["statement"]
    # A competitor neither objects to nor reads another company's sanction.
    assert (await object_to(permits, frozen, headers=COMPETITOR)).status_code == 404
    assert (await permits.get(f"/permits/{frozen}/objections", headers=COMPETITOR)).status_code == 404
    # An operator does not object for the company.
    assert (await object_to(permits, frozen, headers=OPERATOR)).status_code == 403


# -- deciding -------------------------------------------------------------------------------------------------


async def test_an_overturned_revocation_returns_the_permit_to_issued_and_valid(platform, permits, clock):
    permit_id = await sanctioned(permits, clock, "revoke")
    clock.set(T0 + timedelta(days=1))
    objection = (await object_to(permits, permit_id)).json()
    before = await counted(permits)
    decided = await decide(permits, objection["objection_id"], "overturned")
    assert decided.status_code == 200, decided.text
    # The ministry's count of revocations on this ground no longer holds it.
    assert await counted(permits) == before | {"revoke": before["revoke"] - 1}
    detail = (await permits.get(f"/permits/{permit_id}", headers=OPERATOR)).json()
    assert (detail["status"], detail["revoked_at"], detail["reapply_after"]) == ("ISSUED", None, None)
    number = detail["permit_number"]
    registry = (await permits.get(f"/registry/{number}")).json()
    assert registry["status"] == "valid" and registry["validity"]["valid_until"] is None
    events = await events_of(platform, permit_id, "iomki.SanctionReversed.v1")
    reversed_event = events[-1].event
    assert (reversed_event.reversed, reversed_event.to_status, reversed_event.permit_number) == (
        "revoke", "ISSUED", number)


async def test_partly_reduces_a_revocation_to_a_freeze_and_an_overturned_one_returns_to_its_freeze(permits, clock):
    from_issued = await sanctioned(permits, clock, "revoke")
    from_frozen = await sanctioned(permits, clock, "freeze", "revoke")
    clock.set(T0 + timedelta(days=2))
    before = await counted(permits)
    partly = await decide(permits, (await object_to(permits, from_issued)).json()["objection_id"], "partly")
    assert partly.status_code == 200, partly.text
    assert (partly.json()["permit"]["status"], partly.json()["permit"]["freeze_count"]) == ("FROZEN", 1)
    # Counted as what stands: a freeze now, on the same ground, no longer a revocation.
    assert await counted(permits) == {"freeze": before["freeze"] + 1, "revoke": before["revoke"] - 1}
    overturned = await decide(permits, (await object_to(permits, from_frozen)).json()["objection_id"], "overturned")
    assert (overturned.json()["permit"]["status"], overturned.json()["permit"]["freeze_count"]) == ("FROZEN", 1)
    assert await counted(permits) == {"freeze": before["freeze"] + 1, "revoke": before["revoke"] - 2}
    history = (await permits.get(f"/permits/{from_frozen}/history", headers=OPERATOR)).json()["transitions"]
    assert [t["action"] for t in history] == ["apply", "issue", "freeze", "revoke", "reduce_to_freeze"]
    # The freeze it returns to is not a new sanction to object to: the decision is final here.
    assert (await object_to(permits, from_frozen)).status_code == 409


async def test_upheld_leaves_the_sanction_and_publishes_the_decision_only(platform, permits, clock):
    permit_id = await sanctioned(permits, clock, "freeze")
    clock.set(T0 + timedelta(days=2))
    objection = (await object_to(permits, permit_id)).json()
    before = await counted(permits)
    upheld = await decide(permits, objection["objection_id"], "upheld", reason="three reports were missed")
    assert upheld.status_code == 200 and upheld.json()["permit"]["status"] == "FROZEN"
    assert await counted(permits) == before
    events = await events_of(platform, permit_id, "iomki.ObjectionDecided.v1")
    assert names(events) == ["PermitApplied", "PermitIssued", "PermitFrozen", "ObjectionFiled", "ObjectionDecided"]
    assert events[-1].event.outcome == "upheld"


async def test_a_decision_names_what_it_cannot_do(permits, clock):
    frozen = await sanctioned(permits, clock, "freeze")
    clock.set(T0 + timedelta(days=2))
    objection = (await object_to(permits, frozen)).json()
    partly = await decide(permits, objection["objection_id"], "partly")
    assert partly.status_code == 422 and [e["field"] for e in partly.json()["errors"]] == ["outcome"]
    unknown_outcome = await decide(permits, objection["objection_id"], "annulled")
    assert unknown_outcome.status_code == 422 and [e["field"] for e in unknown_outcome.json()["errors"]] == ["outcome"]
    no_reason = await decide(permits, objection["objection_id"], "upheld", reason=" ")
    assert no_reason.status_code == 422 and [e["field"] for e in no_reason.json()["errors"]] == ["reason"]
    assert (await decide(permits, str(uuid.uuid4()), "upheld")).status_code == 404
    # Revoked meanwhile: the freeze objected to no longer stands by itself; it can be upheld, not reversed.
    assert (await permits.post(f"/permits/{frozen}/revoke", json=SANCTION, headers=OPERATOR)).status_code == 200
    superseded = await decide(permits, objection["objection_id"], "overturned")
    assert superseded.status_code == 409 and superseded.json()["current_status"] == "REVOKED"
    listed = (await permits.get(f"/permits/{frozen}/objections", headers=OPERATOR)).json()
    assert listed["objections"][0]["status"] == "pending"  # refused decisions leave nothing behind
    assert listed["open_to_objection"]["sanction"] == "revoke"  # the revocation may be objected to in turn
    assert (await decide(permits, objection["objection_id"], "upheld")).status_code == 200


async def test_a_revocation_is_not_reversed_while_the_plant_has_another_active_permit(permits, clock):
    address = f"Jl. Pabrik Baru {uuid.uuid4().hex[:8]}"
    revoked = await sanctioned(permits, clock, "revoke", address=address)
    clock.set(T0 + timedelta(days=14))  # SE 3/2021: the company may apply again after 14 days
    objection = (await object_to(permits, revoked)).json()
    again = await permits.post("/permits", json=application(address, "32", "32.04"), headers=COMPANY)
    assert again.status_code == 201, again.text
    for outcome in ("overturned", "partly"):
        refused = await decide(permits, objection["objection_id"], outcome)
        assert refused.status_code == 409, refused.text
        assert (refused.json()["other_permit_id"], refused.json()["other_status"]) == (
            again.json()["permit_id"], "SUBMITTED")
    # Once the new application is rejected, the revocation may be reversed.
    rejected = await permits.post(f"/permits/{again.json()['permit_id']}/decision",
                                  json={"decision": "reject", "reason": "duplicate"}, headers=OPERATOR)
    assert rejected.status_code == 200
    decided = await decide(permits, objection["objection_id"], "overturned")
    assert decided.status_code == 200 and decided.json()["permit"]["status"] == "ISSUED"


# -- the configured window ---------------------------------------------------------------------------------


async def test_the_window_follows_iomki_objection_working_days(platform, clock):
    async with running_service(create_app(clock=clock, permits_settings=PermitsSettings(
            IOMKI_OBJECTION_WORKING_DAYS="1"))) as permits:
        friday = datetime(2021, 7, 9, 3, 0, tzinfo=UTC)
        permit_id = await sanctioned(permits, clock, "freeze", at=friday)
        clock.set(datetime.combine(date(2021, 7, 13), time(0), tzinfo=WIB))  # Tuesday: Monday was the one day
        listed = (await permits.get(f"/permits/{permit_id}/objections", headers=COMPANY)).json()
        assert listed["open_to_objection"]["last_day"] == "2021-07-12"
        refused = await object_to(permits, permit_id)
        assert refused.status_code == 409 and refused.json()["last_day"] == "2021-07-12"
