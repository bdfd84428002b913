"""Close contacts as a line list, over the real database and broker: each quarantines from its own last exposure.

A company enters a case with its contacts listed (or counted); each contact has its own quarantine end and its
own timer, leaves on a negative exit test from day 5 or on a positive test, and may become a case of its own. The
regency health office confirms or corrects cases and closes the follow-up of their contacts once none is in
quarantine; the tracing ratio (contacts per case, Kepmenkes 4641/2021 aims at 15) is read per plant and per region.
Kota Samarinda (64.72) and Kota Balikpapan (64.71), East Kalimantan, are this module's own.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio

from services.incidents.app import create_app
from services.incidents.domain import start_of_day
from shared.clock import FakeClock
from shared.contract import decode
from shared.regions import local_zone
from tests.support.kafka import read_topic
from tests.support.platform import bearer, running_service
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

SAMARINDA, BALIKPAPAN = "64.72", "64.71"
NIB = "8120006472001"
COMPANY = bearer("company", nib=NIB)
OPERATOR = bearer("operator")
HEALTH_OFFICE = bearer("health_office", region=SAMARINDA, sub="dinkes-samarinda")
ZONE = local_zone(SAMARINDA)


class Scene:
    def __init__(self, client, app, clock: FakeClock, admin_url: str) -> None:
        self.client, self.app, self.clock, self.admin_url = client, app, clock, admin_url

    def today(self) -> date:
        return self.clock.now().astimezone(ZONE).date()

    def day(self, offset: int) -> str:
        """The plant's day `offset` days from today, as the API writes it."""
        return (self.today() + timedelta(days=offset)).isoformat()

    async def plant(self, regency: str = SAMARINDA, workforce: int = 500) -> uuid.UUID:
        """A plant as PermitIssued leaves it (its consumption is the slice test's subject)."""
        facility_id = uuid.uuid4()
        async with self.app.state.runtime.database.transaction() as work:
            await work.incidents.learn_plant(facility_id=facility_id, permit_id=uuid.uuid4(), nib=NIB,
                                             province_code=regency[:2], regency_code=regency,
                                             workforce_total=workforce, now=self.clock.now())
        return facility_id

    async def case(self, facility_id: uuid.UUID, **fields) -> dict:
        """A case confirmed today, asymptomatic unless `fields` say otherwise, entered by the company."""
        response = await self.enter(facility_id, **fields)
        assert response.status_code == 201, response.text
        return response.json()

    async def enter(self, facility_id: uuid.UUID, **fields):
        return await self.client.post("/cases", headers=COMPANY, json={
            "facility_id": str(facility_id), "case_ref": f"SMD-{uuid.uuid4().int % 10**8:08d}",
            "confirmed_on": self.day(0), "symptomatic": False} | fields)

    async def contacts(self, case_id: str) -> dict:
        listed = await self.client.get(f"/cases/{case_id}/contacts", headers=COMPANY)
        assert listed.status_code == 200, listed.text
        return listed.json()

    async def test(self, contact_id: str, kind: str, tested_on: str, result: str, headers=COMPANY):
        return await self.client.post(f"/contacts/{contact_id}/tests", headers=headers,
                                      json={"kind": kind, "tested_on": tested_on, "result": result})

    async def status(self, facility_id: uuid.UUID) -> dict:
        response = await self.client.get(f"/facilities/{facility_id}/status", headers=OPERATOR)
        assert response.status_code == 200, response.text
        return response.json()

    async def timers(self, subject_id: str) -> list[asyncpg.Record]:
        """A subject's timers, as the service stored them: those cancelled (superseded) first."""
        connection = await asyncpg.connect(self.admin_url)
        try:
            return await connection.fetch(
                "SELECT kind, due_at, fired_at, cancelled_at FROM incidents.timers WHERE subject_id = $1"
                " ORDER BY cancelled_at IS NULL, due_at", uuid.UUID(subject_id))
        finally:
            await connection.close()

    def midnight(self, day: str) -> datetime:
        """When a day-counted period ending on `day` ends at the plant: its local midnight."""
        return start_of_day(date.fromisoformat(day), ZONE)


def exposed(scene: Scene, days_ago: int, **fields) -> dict:
    return {"last_exposure_on": scene.day(-days_ago)} | fields


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def scene(platform):
    clock = FakeClock(datetime.now(UTC))
    app = create_app(clock=clock)
    async with running_service(app) as client:
        yield Scene(client, app, clock, platform.admin_url)


async def test_each_listed_contact_quarantines_fourteen_days_from_its_own_last_exposure(scene):
    plant = await scene.plant()
    case = await scene.case(plant, contacts=[
        exposed(scene, 1), exposed(scene, 3, entry_test={"tested_on": scene.day(-2), "result": "negative"}),
        exposed(scene, 6), exposed(scene, 2, entry_test={"tested_on": scene.day(-1), "result": "positive"})])
    assert case["close_contacts"] == 4

    listed = await scene.contacts(case["case_id"])
    items = listed["items"]
    assert [c["number"] for c in items] == [1, 2, 3, 4]
    assert [(c["quarantine"]["starts_on"], c["quarantine"]["ends_on"]) for c in items] == [
        (scene.day(-1), scene.day(13)), (scene.day(-3), scene.day(11)), (scene.day(-6), scene.day(8)),
        (scene.day(-2), scene.day(12))]
    assert [c["status"] for c in items] == ["quarantining", "quarantining", "quarantining", "tested_positive"]
    assert not any(c["exposure_assumed"] for c in items)
    assert items[1]["entry_test"] == {"tested_on": scene.day(-2), "result": "negative"}
    assert items[3]["left_on"] == scene.day(-1)  # out on its positive entry test: a case of its own
    assert (listed["total"], listed["quarantining"], listed["released"], listed["tested_positive"],
            listed["last_quarantine_ends_on"]) == (4, 3, 0, 1, scene.day(13))

    # Each quarantining contact has a timer of its own, due at the plant's midnight of its own end.
    for contact in items[:3]:
        [timer] = await scene.timers(contact["contact_id"])
        assert (timer["kind"], timer["due_at"]) == ("quarantine_end", scene.midnight(contact["quarantine"]["ends_on"]))
    assert await scene.timers(items[3]["contact_id"]) == []
    shown = await scene.client.get(f"/contacts/{items[0]['contact_id']}", headers=HEALTH_OFFICE)
    assert shown.status_code == 200 and shown.json() == items[0]
    assert (await scene.status(plant))["active_quarantines"] == 3


async def test_a_negative_exit_test_on_day_five_releases_the_contact_that_day(scene):
    plant = await scene.plant()
    case = await scene.case(plant, contacts=[exposed(scene, 5), exposed(scene, 4), exposed(scene, 4)])
    day_five, day_four, other = (c["contact_id"] for c in (await scene.contacts(case["case_id"]))["items"])
    assert (await scene.status(plant))["active_quarantines"] == 3

    # Day 4 is too early for an exit test: refused, naming the field and the first day it counts.
    early = await scene.test(day_four, "exit", scene.day(0), "negative")
    assert early.status_code == 422, early.text
    [error] = early.json()["errors"]
    assert error["field"] == "tested_on" and scene.day(1) in error["message"]
    assert error["message"].startswith("Tes keluar diambil hari ke-5")

    released = await scene.test(day_five, "exit", scene.day(0), "negative")
    assert released.status_code == 200, released.text
    assert (released.json()["status"], released.json()["left_on"], released.json()["quarantine"]["ends_on"]) == (
        "released", scene.day(0), scene.day(0))
    assert released.json()["exit_test"] == {"tested_on": scene.day(0), "result": "negative"}
    [timer] = await scene.timers(day_five)
    assert timer["cancelled_at"] is not None and timer["fired_at"] is None
    assert (await scene.status(plant))["active_quarantines"] == 2

    # Released, it takes no more tests.
    again = await scene.test(day_five, "entry", scene.day(-1), "negative")
    assert again.status_code == 409 and again.json()["current_status"] == "released"

    # A positive entry test: out of quarantine, a case of its own.
    positive = await scene.test(other, "entry", scene.day(-3), "positive")
    assert positive.status_code == 200, positive.text
    assert (positive.json()["status"], positive.json()["left_on"]) == ("tested_positive", scene.day(-3))
    assert (await scene.status(plant))["active_quarantines"] == 1


async def test_a_contact_entered_as_a_case_leaves_quarantine_and_the_two_cases_are_linked(scene):
    plant = await scene.plant()
    first = await scene.case(plant, contacts=[exposed(scene, 2), exposed(scene, 2)])
    became, stays = (c["contact_id"] for c in (await scene.contacts(first["case_id"]))["items"])
    assert (await scene.status(plant))["active_quarantines"] == 2

    unknown = await scene.enter(plant, from_contact_id=str(uuid.uuid4()))
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "from_contact_id"

    second = await scene.case(plant, from_contact_id=became)
    contact = (await scene.client.get(f"/contacts/{became}", headers=COMPANY)).json()
    assert (contact["status"], contact["became_case_id"], contact["left_on"]) == (
        "tested_positive", second["case_id"], scene.day(0))
    assert (await scene.client.get(f"/contacts/{stays}", headers=COMPANY)).json()["status"] == "quarantining"
    [timer] = await scene.timers(became)
    assert timer["cancelled_at"] is not None
    for case_id, other in ((second["case_id"], first["case_id"]), (first["case_id"], second["case_id"])):
        links = (await scene.client.get(f"/cases/{case_id}", headers=COMPANY)).json()["links"]
        assert [(link["case_id"], link["kind"]) for link in links] == [(other, "named_contact")]
    assert (await scene.status(plant))["active_quarantines"] == 1

    # A contact becomes one case only.
    twice = await scene.enter(plant, from_contact_id=became)
    assert twice.status_code == 422 and twice.json()["errors"][0]["field"] == "from_contact_id"


async def test_correcting_an_assumed_exposure_re_times_the_contacts_quarantine(scene):
    plant = await scene.plant()
    # Counted, not listed: each contact is taken as exposed on the case's first day of isolation (its swab).
    case = await scene.case(plant, tested_on=scene.day(-2), close_contacts=2)
    corrected, assumed = (await scene.contacts(case["case_id"]))["items"]
    assert (corrected["last_exposure_on"], corrected["exposure_assumed"], corrected["quarantine"]["ends_on"]) == (
        scene.day(-2), True, scene.day(12))

    patched = await scene.client.patch(f"/contacts/{corrected['contact_id']}", headers=COMPANY,
                                       json={"last_exposure_on": scene.day(-6)})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["last_exposure_on"], patched.json()["exposure_assumed"],
            patched.json()["quarantine"]["ends_on"], patched.json()["status"]) == (
        scene.day(-6), False, scene.day(8), "quarantining")
    old, new = await scene.timers(corrected["contact_id"])
    assert old["due_at"] == scene.midnight(scene.day(12)) and old["cancelled_at"] is not None
    assert new["due_at"] == scene.midnight(scene.day(8)) and new["cancelled_at"] is None
    [untouched] = await scene.timers(assumed["contact_id"])
    assert untouched["due_at"] == scene.midnight(scene.day(12)) and untouched["cancelled_at"] is None

    # An exposure outside the trace-back is refused, naming the field.
    too_early = await scene.client.patch(f"/contacts/{assumed['contact_id']}", headers=COMPANY,
                                         json={"last_exposure_on": scene.day(-17)})
    assert too_early.status_code == 422 and too_early.json()["errors"][0]["field"] == "last_exposure_on"


async def test_each_contacts_timer_releases_it_on_its_own_day_and_no_other(scene):
    plant = await scene.plant()
    # Out on days +4, +7, +8 and +13 from today.
    case = await scene.case(plant, contacts=[exposed(scene, 10), exposed(scene, 7), exposed(scene, 6),
                                             exposed(scene, 1)])
    ids = [c["contact_id"] for c in (await scene.contacts(case["case_id"]))["items"]]
    ends = [scene.day(4), scene.day(7), scene.day(8), scene.day(13)]

    scene.clock.advance(timedelta(days=7))  # day +7: the first two are due, the third tomorrow

    async def two_released():
        listed = await scene.contacts(case["case_id"])
        return listed if listed["released"] == 2 else None
    listed = await eventually(two_released)
    assert [(c["status"], c["left_on"]) for c in listed["items"]] == [
        ("released", ends[0]), ("released", ends[1]), ("quarantining", None), ("quarantining", None)]
    for contact_id, fired in zip(ids, (True, True, False, False), strict=True):
        [timer] = await scene.timers(contact_id)
        assert (timer["fired_at"] is not None) is fired
    assert (await scene.status(plant))["active_quarantines"] == 2


async def test_the_health_office_confirms_a_case_and_corrects_a_symptomatic_cases_onset(scene, platform):
    plant = await scene.plant()
    confirmed = await scene.client.post(f"/cases/{(await scene.case(plant))['case_id']}/verification",
                                        headers=HEALTH_OFFICE, json={"verdict": "confirmed"})
    assert confirmed.status_code == 200, confirmed.text
    assert (confirmed.json()["verification"]["status"], confirmed.json()["verification"]["verified_by_role"]) == (
        "confirmed", "health_office")

    # Symptoms from two days ago: isolation from then, 10 days and 3 symptom-free ones.
    case = await scene.case(plant, symptomatic=True, symptom_onset_on=scene.day(-2))
    case_id = case["case_id"]
    assert case["isolation"] == {"starts_on": scene.day(-2), "ends_on": scene.day(11)}

    unexplained = await scene.client.post(f"/cases/{case_id}/verification", headers=HEALTH_OFFICE, json={
        "verdict": "corrected", "corrections": {"symptom_onset_on": scene.day(-5)}})
    assert unexplained.status_code == 422, unexplained.text
    assert unexplained.json()["errors"][0]["field"] == "reason"

    corrected = await scene.client.post(f"/cases/{case_id}/verification", headers=HEALTH_OFFICE, json={
        "verdict": "corrected", "corrections": {"symptom_onset_on": scene.day(-5)},
        "reason": "Gejala sejak hasil wawancara PE / onset per the epidemiological interview"})
    assert corrected.status_code == 200, corrected.text
    shown = (await scene.client.get(f"/cases/{case_id}", headers=COMPANY)).json()
    assert (shown["symptom_onset_on"], shown["isolation"], shown["verification"]["status"]) == (
        scene.day(-5), {"starts_on": scene.day(-5), "ends_on": scene.day(8)}, "corrected")
    isolation = [t for t in await scene.timers(case_id) if t["kind"] == "isolation_end"]
    assert [(t["due_at"], t["cancelled_at"] is None) for t in isolation] == [
        (scene.midnight(scene.day(11)), False), (scene.midnight(scene.day(8)), True)]

    def about_the_case(messages) -> list:
        return [d for d in map(decode, (m.value for m in messages if m.key == str(plant).encode()))
                if getattr(d.event, "case_id", None) == uuid.UUID(case_id)]

    messages = await read_topic(platform.bootstrap, "iomki.incidents", until=lambda ms: any(
        d.envelope.type == "iomki.CaseVerified.v1" for d in about_the_case(ms)) and sum(
        d.envelope.type == "iomki.IsolationStarted.v1" for d in about_the_case(ms)) >= 2)
    events = about_the_case(messages)
    [verified] = [d.event for d in events if d.envelope.type == "iomki.CaseVerified.v1"]
    assert (verified.verdict, verified.corrected, verified.verified_by_role) == (
        "corrected", ["symptom_onset_on"], "health_office")
    started = [(d.event.starts_on.isoformat(), d.event.ends_on.isoformat()) for d in events
               if d.envelope.type == "iomki.IsolationStarted.v1"]
    assert started == [(scene.day(-2), scene.day(11)), (scene.day(-5), scene.day(8))]


async def test_the_follow_up_closes_only_once_every_contact_has_left_quarantine(scene):
    plant = await scene.plant()
    case_id = (await scene.case(plant, contacts=[exposed(scene, 5), exposed(scene, 5)]))["case_id"]
    negative, positive = (c["contact_id"] for c in (await scene.contacts(case_id))["items"])

    early = await scene.client.post(f"/cases/{case_id}/contacts/close", headers=HEALTH_OFFICE)
    assert early.status_code == 409, early.text
    assert (early.json()["quarantining"], early.json()["last_quarantine_ends_on"]) == (2, scene.day(9))

    assert (await scene.test(negative, "exit", scene.day(0), "negative")).json()["status"] == "released"
    assert (await scene.test(positive, "exit", scene.day(0), "positive")).json()["status"] == "tested_positive"
    closed = await scene.client.post(f"/cases/{case_id}/contacts/close", headers=HEALTH_OFFICE)
    assert closed.status_code == 200, closed.text
    assert closed.json()["contact_follow_up_closed_at"] == scene.clock.now().isoformat()
    assert (await scene.contacts(case_id))["follow_up_closed_at"] == scene.clock.now().isoformat()

    late = await scene.client.post(f"/cases/{case_id}/contacts", headers=COMPANY,
                                   json={"contacts": [exposed(scene, 1)]})
    assert late.status_code == 409 and late.json()["current_status"] == "closed"
    assert (await scene.contacts(case_id))["total"] == 2


async def test_the_tracing_ratio_per_plant_and_per_region_against_fifteen(scene):
    # Balikpapan's plants only: one traces 16 contacts for its case, the other 3 for each of its two.
    thorough, sparse = await scene.plant(BALIKPAPAN), await scene.plant(BALIKPAPAN)
    await scene.case(thorough, close_contacts=16)
    for _ in range(2):
        await scene.case(sparse, contacts=[exposed(scene, 1)] * 3)

    assert (await scene.status(thorough))["tracing"] == {
        "cases": 1, "contacts": 16, "contacts_per_case": 16.0, "target": 15, "meets_target": True}
    assert (await scene.status(sparse))["tracing"] == {
        "cases": 2, "contacts": 6, "contacts_per_case": 3.0, "target": 15, "meets_target": False}

    office = bearer("health_office", region=BALIKPAPAN)
    region = await scene.client.get("/tracing", headers=office)  # its own regency by default
    assert region.status_code == 200, region.text
    assert region.json() == {"province_code": None, "regency_code": BALIKPAPAN, "plants_with_cases": 2,
                             "plants_below_target": 1, "cases": 3, "contacts": 22, "contacts_per_case": 7.33,
                             "target": 15, "meets_target": False}
    assert (await scene.client.get("/tracing", headers=office, params={"regency": SAMARINDA})).status_code == 404


async def test_a_symptomatic_case_needs_its_onset_and_a_case_lists_at_most_a_thousand_contacts(scene):
    plant = await scene.plant(workforce=5000)
    no_onset = await scene.enter(plant, symptomatic=True, close_contacts=1)
    assert no_onset.status_code == 422, no_onset.text
    [error] = no_onset.json()["errors"]
    assert error["field"] == "symptom_onset_on" and "Kepmenkes 4641/2021" in error["message"]

    for too_many, field in (({"close_contacts": 1001}, "close_contacts"),
                            ({"contacts": [exposed(scene, 1)] * 1001}, "contacts")):
        refused = await scene.enter(plant, **too_many)
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == [field]
    assert (await scene.status(plant))["cases_total"] == 0
